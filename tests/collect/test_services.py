"""Which folders are services, and which of their files are read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from depaudit.collect.model import Service
from depaudit.collect.services import discover_services
from depaudit.findings import Finding, FindingKind


def rel(paths: tuple[Path, ...], base: Path) -> list[str]:
    assert all(p.is_absolute() for p in paths)
    return [p.relative_to(base).as_posix() for p in paths]


def test_a_folder_of_services_with_the_skip_rules(tree) -> None:
    base = tree(
        {
            "README.md": "",
            "stt/main.py": "",
            "stt/requirements.txt": "",
            "stt/requirements-dev.txt": "",
            "stt/requirements.in": "",
            "stt/core/requirements.txt": "",  # not directly in the service folder
            "stt/core/__init__.py": "",
            "stt/core/z/deep.py": "",
            "stt/core/native.cpython-311-x86_64-linux-gnu.so": "",
            "stt/lib/libvendored.so.1": "",
            "stt/lib/libvendored.so.1.2.3": "",
            "stt/lib/libplain.so": "",
            "stt/lib/libsomething.sox": "",
            "stt/lib/notes.txt": "",
            "stt/.venv/pyvenv.cfg": "",
            "stt/.venv/lib/x.py": "",
            "stt/env/pyvenv.cfg": "",  # a venv not named like one
            "stt/env/lib/y.py": "",
            "stt/env/lib/libz.so": "",
            "stt/.git/hooks/h.py": "",
            "stt/__pycache__/main.py": "",
            "stt/node_modules/z.py": "",
            "stt/vendor/site-packages/w.py": "",
            "stt/vendor/site-packages/libw.so": "",
            "stt/.hidden.py": "",  # only hidden folders are skipped
            "face/pkg/detect.py": "",  # Python only deeper down: still a service
            "docs/README.md": "",  # no Python: not a service
            ".hidden/a.py": "",
            "venv/pyvenv.cfg": "",
            "venv/lib/v.py": "",
            "node_modules/n.py": "",
        }
    )
    services, findings = discover_services(base)
    assert findings == []
    assert services == [
        Service(
            name="face",
            root=base / "face",
            display_root=base,
            files=(base / "face/pkg/detect.py",),
            requirement_files=(),
            elf_files=(),
        ),
        Service(
            name="stt",
            root=base / "stt",
            display_root=base,
            files=tuple(
                base / p for p in ("stt/.hidden.py", "stt/core/__init__.py", "stt/core/z/deep.py", "stt/main.py")
            ),
            requirement_files=(base / "stt/requirements-dev.txt", base / "stt/requirements.txt"),
            elf_files=tuple(
                base / p
                for p in (
                    "stt/core/native.cpython-311-x86_64-linux-gnu.so",
                    "stt/lib/libplain.so",
                    "stt/lib/libvendored.so.1",
                    "stt/lib/libvendored.so.1.2.3",
                )
            ),
        ),
    ]


def test_one_service_folder(tree) -> None:
    base = tree({"svc/app.py": "", "svc/sub/x.py": "", "svc/requirements.txt": "", "svc/libx.so": ""})
    services, findings = discover_services(base / "svc")
    assert findings == []
    assert services == [
        Service(
            name="svc",
            root=base / "svc",
            display_root=base,
            files=(base / "svc/app.py", base / "svc/sub/x.py"),
            requirement_files=(base / "svc/requirements.txt",),
            elf_files=(base / "svc/libx.so",),
        )
    ]


def test_a_requirements_file_alone_makes_a_folder_one_service(tree) -> None:
    base = tree({"svc/requirements-gpu.txt": "", "svc/src/app.py": ""})
    services, _ = discover_services(base / "svc")
    assert [(s.name, s.display_root, rel(s.files, base)) for s in services] == [("svc", base, ["svc/src/app.py"])]


def test_a_folder_named_like_a_file_does_not_make_one_service(tree) -> None:
    base = tree({"fleet/x.py/inner.py": "", "fleet/requirements.txt/r.py": ""})
    services, _ = discover_services(base / "fleet")
    assert [s.name for s in services] == ["requirements.txt", "x.py"]


def test_a_relative_path_with_dots_is_made_absolute(tree, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tree({"svc/app.py": ""})
    monkeypatch.chdir(base / "svc")
    services, _ = discover_services(Path("."))
    assert [(s.name, s.root, s.display_root) for s in services] == [("svc", base / "svc", base)]


def test_symlinked_folders_are_not_followed(tree) -> None:
    base = tree({"fleet/svc/app.py": "", "outside/stolen.py": "", "outside/libstolen.so": ""})
    svc = base / "fleet" / "svc"
    (svc / "loop").symlink_to(svc, target_is_directory=True)  # would walk forever
    (svc / "shared").symlink_to(base / "outside", target_is_directory=True)
    (svc / "linked.py").symlink_to(base / "outside" / "stolen.py")  # a file symlink is a file
    (base / "fleet" / "alias").symlink_to(svc, target_is_directory=True)
    services, findings = discover_services(base / "fleet")
    assert findings == []
    assert [(s.name, rel(s.files, base), s.elf_files) for s in services] == [
        ("svc", ["fleet/svc/app.py", "fleet/svc/linked.py"], ()),
    ]


def test_a_missing_path_is_a_finding(tmp_path: Path) -> None:
    assert discover_services(tmp_path / "nope") == (
        [],
        [Finding(FindingKind.UNREADABLE_FILE, "nope", None, "cannot list: No such file or directory")],
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists folders whatever their mode")
def test_a_folder_that_cannot_be_listed_is_a_finding_and_the_rest_goes_on(tree) -> None:
    base = tree({"stt/main.py": "", "stt/private/secret.py": "", "tts/app.py": "", "locked/x.py": ""})
    (base / "stt" / "private").chmod(0)
    (base / "locked").chmod(0)
    try:
        services, findings = discover_services(base)
    finally:
        (base / "stt" / "private").chmod(0o755)
        (base / "locked").chmod(0o755)
    assert [(s.name, rel(s.files, base)) for s in services] == [("stt", ["stt/main.py"]), ("tts", ["tts/app.py"])]
    assert findings == [
        Finding(FindingKind.UNREADABLE_FILE, "locked", None, "cannot list: Permission denied"),
        Finding(FindingKind.UNREADABLE_FILE, "stt/private", None, "cannot list: Permission denied"),
    ]
