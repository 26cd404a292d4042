"""A guarded local import guards what the local file it runs imports, on every path."""

from __future__ import annotations

from pathlib import Path

from depaudit.collect.guards import LocalEdge, guarded_only
from depaudit.collect.imports import collect_imports
from depaudit.collect.model import GuardedImport
from depaudit.collect.services import discover_services, entry_service

HELPER = "def record():\n    try:\n        import helper\n    except Exception:\n        return None\n    return helper.capture()\n"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _flags(imports) -> list[tuple[str, str, bool, str | None]]:
    return [(r.file, r.module, r.guarded, r.via and f"{r.via.file}:{r.via.line} {r.via.statement}") for r in imports]


def test_a_directory_service_file_behind_a_guarded_import(tmp_path: Path) -> None:
    _write(
        tmp_path / "services",
        {
            "recorder/app.py": HELPER,
            "recorder/helper.py": "import sounddevice\nfrom . import deeper\nimport deeper\n",
            "recorder/deeper.py": "import numpy\n",
            "viewer/app.py": HELPER + "import shared\n",
            "viewer/helper.py": "import sounddevice\n",
            "viewer/shared.py": "import helper\n",  # an unguarded path to helper.py
        },
    )
    recorder, viewer = (collect_imports(s) for s in discover_services(tmp_path / "services")[0])
    assert _flags(r for r in recorder.imports if r.scope.value == "third-party") == [
        ("recorder/deeper.py", "numpy", True, "recorder/app.py:3 import helper"),
        ("recorder/helper.py", "sounddevice", True, "recorder/app.py:3 import helper"),
    ]
    assert _flags(r for r in viewer.imports if r.module == "sounddevice") == [("viewer/helper.py", "sounddevice", False, None)]


def test_an_entry_service_follows_the_guard_through_its_local_closure(tmp_path: Path) -> None:
    _write(tmp_path, {"main.py": HELPER + "import plain\n", "helper.py": "import sounddevice\n", "plain.py": "import numpy\n"})
    service = entry_service("main", tmp_path / "main.py", (tmp_path,), tmp_path, ())
    assert _flags(r for r in collect_imports(service).imports if r.module in ("numpy", "sounddevice")) == [
        ("helper.py", "sounddevice", True, "main.py:3 import helper"),
        ("plain.py", "numpy", False, None),
    ]


def test_guarded_only_paths_cycles_and_what_no_root_reaches() -> None:
    def edge(source: str, target: str, guarded: bool) -> LocalEdge:
        return LocalEdge(source, target, guarded, GuardedImport(source, 1, target, ()))

    edges = [
        edge("main", "a", True),
        edge("a", "b", False),  # behind a's guard too
        edge("b", "a", False),  # a cycle inside the guarded part
        edge("main", "c", False),
        edge("c", "d", True),
        edge("main", "d", False),  # d also has a free path
        edge("x", "y", False),  # x and y: a cycle no root reaches, so each counts as run
        edge("y", "x", True),
    ]
    behind = guarded_only(["main"], edges)
    assert {key: where.file for key, where in behind.items()} == {"a": "main", "b": "main"}


def test_entry_services_sharing_one_scan_s_graph_see_each_their_own_guards(tmp_path: Path) -> None:
    """One scan builds each file's part of the local import graph once; each service still gets
    the guards of its own walk: a file behind a guard for one service is plain for another, and
    the guard named is the one on that service's way."""
    from depaudit.collect.imports import ImportMemo
    from depaudit.collect.local import LocalFinder

    _write(
        tmp_path,
        {
            "agents/guarded.py": HELPER,  # helper.py only behind its guard
            "agents/plain.py": "import helper\nimport lib.extra\n",  # helper.py plainly
            "agents/both.py": "import lib.wrap\nimport helper\n",  # lib/wrap.py guards helper; this line does not
            "helper.py": "import sounddevice\nimport lib.extra\n",
            "lib/__init__.py": "",
            "lib/extra.py": "import numpy  # sorted after helper.py's records\n",
            "lib/wrap.py": "try:\n    import helper\nexcept ImportError:\n    helper = None\n",
        },
    )
    names = ("guarded", "plain", "both")
    services = [entry_service(name, tmp_path / f"agents/{name}.py", (tmp_path,), tmp_path, ()) for name in names]
    memo, finder = ImportMemo(), LocalFinder()
    shared = {service.name: collect_imports(service, finder=finder, memo=memo) for service in services}
    shared |= {service.name: collect_imports(service, finder=finder, memo=memo) for service in reversed(services)}
    alone = {service.name: collect_imports(service) for service in services}
    assert shared == alone
    assert len(memo.graphs) == 1  # one sys.path (agents/, the root): one graph for all three
    third_party = {name: _flags(r for r in found.imports if r.module in ("numpy", "sounddevice")) for name, found in alone.items()}
    assert third_party == {
        "guarded": [
            ("helper.py", "sounddevice", True, "agents/guarded.py:3 import helper"),
            ("lib/extra.py", "numpy", True, "agents/guarded.py:3 import helper"),
        ],
        "plain": [("helper.py", "sounddevice", False, None), ("lib/extra.py", "numpy", False, None)],
        "both": [("helper.py", "sounddevice", False, None), ("lib/extra.py", "numpy", False, None)],
    }
    assert [str(path.relative_to(tmp_path)) for path in alone["both"].files] == [
        "agents/both.py", "helper.py", "lib/__init__.py", "lib/extra.py", "lib/wrap.py"
    ]
