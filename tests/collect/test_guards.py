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
