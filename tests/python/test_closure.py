"""The Requires-Dist closure: markers for the target, extras only when asked for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from depaudit.python.closure import closure_missing, missing_requirements, requires_closure
from depaudit.python.environment import load_environment
from depaudit.python.model import RequirementEdge as Edge
from depaudit.python.model import TargetPython

TARGET = TargetPython(python_version="3.10", python_full_version="3.10.12")
WriteDist = Callable[..., Path]


def test_markers_are_evaluated_for_the_target(tmp_path: Path, dist: WriteDist) -> None:
    dist(
        tmp_path,
        "app",
        requires=[
            'win-only; sys_platform == "win32"',
            'old-py; python_version < "3.8"',
            'x86-only; platform_machine == "x86_64"',
            'arm-only; platform_machine == "aarch64"',
            'new-py; python_full_version >= "3.10.1"',
        ],
    )
    for name in ("win-only", "old-py", "x86-only", "arm-only", "new-py"):
        dist(tmp_path, name)
    env = load_environment([tmp_path])

    assert requires_closure(env, ["app"], TARGET) == {
        "app": (),
        "x86-only": (Edge("app", "x86-only", 'x86-only; platform_machine == "x86_64"'),),
        "new-py": (Edge("app", "new-py", 'new-py; python_full_version >= "3.10.1"'),),
    }
    # The target decides, not the interpreter running depaudit.
    old_arm = TargetPython(python_version="3.7", python_full_version="3.7.0", platform_machine="aarch64")
    assert requires_closure(env, ["app"], old_arm) == {
        "app": (),
        "old-py": (Edge("app", "old-py", 'old-py; python_version < "3.8"'),),
        "arm-only": (Edge("app", "arm-only", 'arm-only; platform_machine == "aarch64"'),),
    }


def test_extras_are_followed_only_when_requested(tmp_path: Path, dist: WriteDist) -> None:
    dist(
        tmp_path,
        "lib",
        requires=[
            'speedups; extra == "fast"',
            'docs-tool; extra == "docs"',
            'gpu-win; extra == "fast" and sys_platform == "win32"',
        ],
    )
    dist(tmp_path, "asks-fast", requires=["lib[fast]"])
    for name in ("speedups", "docs-tool", "gpu-win"):
        dist(tmp_path, name)
    env = load_environment([tmp_path])

    assert requires_closure(env, ["lib"], TARGET) == {"lib": ()}
    assert requires_closure(env, ["lib[fast]"], TARGET) == {
        "lib": (),
        "speedups": (Edge("lib", "speedups", 'speedups; extra == "fast"'),),
    }
    assert requires_closure(env, ["lib[Fast,docs]"], TARGET) == {
        "lib": (),
        "speedups": (Edge("lib", "speedups", 'speedups; extra == "fast"'),),
        "docs-tool": (Edge("lib", "docs-tool", 'docs-tool; extra == "docs"'),),
    }
    assert requires_closure(env, ["asks-fast"], TARGET) == {
        "asks-fast": (),
        "lib": (Edge("asks-fast", "lib", "lib[fast]"),),
        "speedups": (Edge("asks-fast", "lib", "lib[fast]"), Edge("lib", "speedups", 'speedups; extra == "fast"')),
    }


def test_an_extra_requested_deeper_still_counts(tmp_path: Path, dist: WriteDist) -> None:
    # `lib` is reached plain at depth 1 and with [fast] at depth 2: speedups comes from the latter.
    dist(tmp_path, "app", requires=["lib", "mid"])
    dist(tmp_path, "mid", requires=["lib[fast]"])
    dist(tmp_path, "lib", requires=['speedups; extra == "fast"'])
    dist(tmp_path, "speedups")
    env = load_environment([tmp_path])
    assert requires_closure(env, ["app"], TARGET) == {
        "app": (),
        "lib": (Edge("app", "lib", "lib"),),
        "mid": (Edge("app", "mid", "mid"),),
        "speedups": (Edge("app", "lib", "lib"), Edge("lib", "speedups", 'speedups; extra == "fast"')),
    }


def test_cycles_terminate(tmp_path: Path, dist: WriteDist) -> None:
    dist(tmp_path, "a", requires=["b>=1"])
    dist(tmp_path, "b", requires=["a", "c"])
    dist(tmp_path, "c", requires=["c", "a"])
    env = load_environment([tmp_path])
    assert requires_closure(env, ["a"], TARGET) == {
        "a": (),
        "b": (Edge("a", "b", "b>=1"),),
        "c": (Edge("a", "b", "b>=1"), Edge("b", "c", "c")),
    }
    assert requires_closure(env, ["b", "a"], TARGET) == {
        "a": (),
        "b": (),
        "c": (Edge("b", "c", "c"),),
    }


def test_paths_come_from_the_nearest_root(tmp_path: Path, dist: WriteDist) -> None:
    dist(tmp_path, "far", requires=["step"])
    dist(tmp_path, "step", requires=["Shared_Lib"])
    dist(tmp_path, "near", requires=["shared-lib; os_name == 'posix'"])
    dist(tmp_path, "shared.lib")
    env = load_environment([tmp_path])
    assert requires_closure(env, ["far", "near"], TARGET) == {
        "far": (),
        "near": (),
        "step": (Edge("far", "step", "step"),),
        "shared-lib": (Edge("near", "shared-lib", "shared-lib; os_name == 'posix'"),),
    }


def test_uninstalled_invalid_and_unknown_requirements(tmp_path: Path, dist: WriteDist) -> None:
    dist(tmp_path, "app", requires=["lib", "not-installed>=2", "bad name!!", 'also-missing; extra == "x"'])
    dist(tmp_path, "lib", requires=['gone; sys_platform == "linux"', 'win-gone; sys_platform == "win32"'])
    env = load_environment([tmp_path])
    assert requires_closure(env, ["app", "unknown-root"], TARGET) == {
        "app": (),
        "lib": (Edge("app", "lib", "lib"),),
    }
    assert closure_missing(env, ["app"], TARGET) == [
        ("app", "not-installed>=2"),
        ("lib", 'gone; sys_platform == "linux"'),
    ]
    assert closure_missing(env, ["app[x]"], TARGET) == [
        ("app", 'also-missing; extra == "x"'),
        ("app", "not-installed>=2"),
        ("lib", 'gone; sys_platform == "linux"'),
    ]
    # Only the distributions named, not their closure.
    assert missing_requirements(env, ["app", "unknown-root"], TARGET) == [("app", "not-installed>=2")]
    assert requires_closure(env, [], TARGET) == {}
