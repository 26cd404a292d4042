"""Which folders are services, and which of their files are read."""

from __future__ import annotations

from pathlib import Path

from depaudit.collect.services import discover_services


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")


def test_a_folder_of_services(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "stt/main.py",
        "stt/requirements.txt",
        "stt/requirements-dev.txt",
        "stt/lib/libvendored.so.1",
        "stt/.venv/pyvenv.cfg",
        "stt/.venv/lib/x.py",
        "stt/env/pyvenv.cfg",
        "stt/env/y.py",
        "stt/__pycache__/main.py",
        "stt/node_modules/z.py",
        "face/pkg/detect.py",
        "docs/README.md",
        ".hidden/a.py",
    )
    services, findings = discover_services(tmp_path)
    assert findings == []
    assert [s.name for s in services] == ["face", "stt"]
    face, stt = services
    assert stt.display_root == tmp_path.resolve()
    assert [p.relative_to(tmp_path.resolve()).as_posix() for p in stt.files] == ["stt/main.py"]
    assert [p.name for p in stt.requirement_files] == ["requirements-dev.txt", "requirements.txt"]
    assert [p.name for p in stt.elf_files] == ["libvendored.so.1"]
    assert [p.name for p in face.files] == ["detect.py"]


def test_one_service_folder(tmp_path: Path) -> None:
    _touch(tmp_path, "svc/app.py", "svc/sub/x.py")
    services, _ = discover_services(tmp_path / "svc")
    assert [(s.name, s.display_root) for s in services] == [("svc", tmp_path.resolve())]
    assert [p.name for p in services[0].files] == ["app.py", "x.py"]
