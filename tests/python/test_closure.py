"""The Requires-Dist closure: markers for the target, extras only when asked for."""

from __future__ import annotations

from pathlib import Path

from depaudit.python.closure import missing_requirements, requires_closure
from depaudit.python.environment import load_environment
from depaudit.python.model import RequirementEdge, TargetPython
from helpers import make_dist

TARGET = TargetPython(python_version="3.10", python_full_version="3.10.12")


def test_closure_with_markers_extras_and_cycles(tmp_path: Path) -> None:
    make_dist(
        tmp_path,
        "app",
        requires=[
            "lib-a>=1",
            'win-only; sys_platform == "win32"',
            'old-py; python_version < "3.8"',
            'x86-only; platform_machine == "x86_64"',
            "with-extra[fast]",
            "not-installed",
        ],
    )
    make_dist(tmp_path, "lib-a", requires=["lib-b"])
    make_dist(tmp_path, "lib-b", requires=["lib-a"])  # a cycle
    for name in ("win-only", "old-py", "x86-only", "speedups", "docs-tool", "not-requested"):
        make_dist(tmp_path, name)
    make_dist(
        tmp_path,
        "with-extra",
        requires=['speedups; extra == "fast"', 'docs-tool; extra == "docs"'],
    )
    make_dist(tmp_path, "other", requires=['not-requested; extra == "x"'])
    env = load_environment([tmp_path])

    closure = requires_closure(env, ["app", "other"], TARGET)
    assert closure == {
        "app": (),
        "other": (),
        "lib-a": (RequirementEdge("app", "lib-a", "lib-a>=1"),),
        "x86-only": (RequirementEdge("app", "x86-only", 'x86-only; platform_machine == "x86_64"'),),
        "with-extra": (RequirementEdge("app", "with-extra", "with-extra[fast]"),),
        "lib-b": (RequirementEdge("app", "lib-a", "lib-a>=1"), RequirementEdge("lib-a", "lib-b", "lib-b")),
        "speedups": (
            RequirementEdge("app", "with-extra", "with-extra[fast]"),
            RequirementEdge("with-extra", "speedups", 'speedups; extra == "fast"'),
        ),
    }
    assert missing_requirements(env, ["app"], TARGET) == [("app", "not-installed")]
