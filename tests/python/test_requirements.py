"""Requirements files read with pip-requirements-parser, checked against imports and installs."""

from __future__ import annotations

from pathlib import Path

from depaudit.findings import Finding, FindingKind
from depaudit.python.environment import load_environment
from depaudit.python.model import DeclaredRequirement, TargetPython
from depaudit.python.requirements import check_declarations, read_requirements
from helpers import make_dist

TARGET = TargetPython(python_version="3.10", python_full_version="3.10.12")


def test_read_requirements(tmp_path: Path) -> None:
    svc = tmp_path / "svc"
    svc.mkdir()
    (svc / "requirements.txt").write_text(
        "numpy==1.26.4 ; python_version >= '3.9'\n"
        "-r requirements-extra.txt\n"
        "-c constraints.txt\n"
        "foo @ https://example.invalid/foo-1.0.tar.gz\n"
        "-e git+https://example.invalid/bar.git#egg=bar\n"
        "baz==1.0 --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\n"
        "!!! not a requirement\n"
        "pywin32; sys_platform == 'win32'\n"
        "-r missing.txt\n"
    )
    (svc / "requirements-extra.txt").write_text("Requests_OAuthlib\n")
    (svc / "constraints.txt").write_text("six==1.16.0\n")
    declared, findings = read_requirements([svc / "requirements.txt"], tmp_path, TARGET)
    assert sorted(declared, key=lambda d: (d.file, d.line)) == [
        DeclaredRequirement("requests-oauthlib", "Requests_OAuthlib", "svc/requirements-extra.txt", 1, True),
        DeclaredRequirement("numpy", "numpy==1.26.4", "svc/requirements.txt", 1, True),
        DeclaredRequirement("foo", "foo @ https://example.invalid/foo-1.0.tar.gz", "svc/requirements.txt", 4, True),
        DeclaredRequirement("bar", "bar", "svc/requirements.txt", 5, True),
        DeclaredRequirement("baz", "baz==1.0", "svc/requirements.txt", 6, True),
        DeclaredRequirement("pywin32", "pywin32", "svc/requirements.txt", 8, False),
    ]
    assert [(f.kind, f.path, f.line) for f in findings] == [
        (FindingKind.BAD_REQUIREMENT, "svc/requirements.txt", 7),
        (FindingKind.BAD_REQUIREMENT, "svc/requirements.txt", 9),
    ]
    assert findings[1].message == "included file svc/missing.txt does not exist"


def test_check_declarations(tmp_path: Path) -> None:
    for name in ("numpy", "soundfile", "cffi", "pillow"):
        make_dist(tmp_path, name)
    env = load_environment([tmp_path])

    def declared(key: str, line: int) -> DeclaredRequirement:
        return DeclaredRequirement(key, key, "svc/requirements.txt", line, True)

    reqs = [declared("soundfile", 1), declared("cffi", 2), declared("pillow", 3), declared("absent", 4)]
    imported = {"soundfile": ("svc/app.py", 3), "numpy": ("svc/app.py", 1)}
    needed = {"soundfile", "numpy", "cffi"}  # cffi: a dependency of soundfile, declared explicitly
    findings = check_declarations(reqs, imported, needed, env, has_requirements=True)
    assert [(f.kind, f.path, f.line) for f in findings] == [
        (FindingKind.NOT_INSTALLED, "svc/requirements.txt", 4),
        (FindingKind.UNDECLARED_IMPORT, "svc/app.py", 1),
        (FindingKind.UNUSED_REQUIREMENT, "svc/requirements.txt", 3),
    ]
    assert findings[1] == Finding(
        FindingKind.UNDECLARED_IMPORT,
        "svc/app.py",
        1,
        "imports numpy, which no requirements file of the service declares; add it",
    )
    # A service with no requirements file declares nothing: no flood of undeclared imports.
    assert check_declarations([], imported, needed, env, has_requirements=False) == []
