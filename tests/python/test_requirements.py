"""Requirements files read with pip-requirements-parser, checked against imports and installs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from depaudit.findings import Finding, FindingKind
from depaudit.python.environment import load_environment
from depaudit.python.model import DeclaredRequirement as Declared
from depaudit.python.model import TargetPython
from depaudit.python.requirements import check_declarations, read_requirements

TARGET = TargetPython(python_version="3.10", python_full_version="3.10.12")
WriteDist = Callable[..., Path]
HASH = "sha256:" + "0" * 64


def _service(tmp_path: Path, files: dict[str, str]) -> Path:
    svc = tmp_path / "svc"
    for name, text in files.items():
        (svc / name).parent.mkdir(parents=True, exist_ok=True)
        (svc / name).write_text(text)
    return svc


def test_includes_constraints_markers_hashes_urls_and_editables(tmp_path: Path) -> None:
    svc = _service(
        tmp_path,
        {
            "requirements.txt": (
                "# the service's runtime dependencies\n"
                "numpy==1.26.4 ; python_version >= '3.9'  # pinned\n"
                "-r requirements-extra.txt\n"
                "-c constraints.txt\n"
                "foo @ https://example.invalid/foo-1.0.tar.gz\n"
                "-e git+https://example.invalid/bar.git#egg=bar\n"
                f"baz==1.0 --hash={HASH} \\\n"
                f"    --hash={HASH}\n"
                "pywin32==306; sys_platform == 'win32'\n"
                "https://example.invalid/pkgs/qux-2.0.tar.gz#egg=qux\n"
                "-e ./libs/core\n"
                "-e ./libs/legacy#egg=legacy-core\n"
                "--index-url https://example.invalid/simple\n"
                "Requests_OAuthlib>=1\n"
            ),
            "requirements-extra.txt": "Requests_OAuthlib>=1\n-r requirements.txt\n",  # a cycle
            "constraints.txt": "six==1.16.0\nurllib3<2\n",
            "libs/core/pyproject.toml": '[project]\nname = "Core_Lib"\nversion = "0.1"\n',
        },
    )
    declared, findings = read_requirements([svc / "requirements.txt"], tmp_path, TARGET)
    assert findings == []
    assert declared == [
        Declared("requests-oauthlib", "Requests_OAuthlib>=1", "svc/requirements-extra.txt", 1, True),
        Declared("numpy", "numpy==1.26.4", "svc/requirements.txt", 2, True),
        Declared("foo", "foo @ https://example.invalid/foo-1.0.tar.gz", "svc/requirements.txt", 5, True),
        Declared("bar", "bar", "svc/requirements.txt", 6, True),
        Declared("baz", "baz==1.0", "svc/requirements.txt", 7, True),
        Declared("pywin32", "pywin32==306", "svc/requirements.txt", 9, False),
        Declared("qux", "qux", "svc/requirements.txt", 10, True),
        Declared("core-lib", "Core_Lib", "svc/requirements.txt", 11, True),
        Declared("legacy-core", "legacy-core", "svc/requirements.txt", 12, True),
        Declared("requests-oauthlib", "Requests_OAuthlib>=1", "svc/requirements.txt", 14, True),
    ]


def test_a_file_given_twice_is_read_once(tmp_path: Path) -> None:
    svc = _service(tmp_path, {"requirements.txt": "numpy\n", "requirements-dev.txt": "-r requirements.txt\npytest\n"})
    declared, findings = read_requirements(
        [svc / "requirements-dev.txt", svc / "requirements.txt"], svc, TARGET
    )
    assert findings == []
    assert declared == [
        Declared("pytest", "pytest", "requirements-dev.txt", 2, True),
        Declared("numpy", "numpy", "requirements.txt", 1, True),
    ]


def test_lines_that_cannot_be_understood_and_missing_includes(tmp_path: Path) -> None:
    svc = _service(
        tmp_path,
        {
            "requirements.txt": (
                "good==1\n"
                "!!! not a requirement\n"
                "-r missing.txt\n"
                "-c missing-constraints.txt\n"
                "--frobnicate x\n"
                "https://example.invalid/nameless-1.0.tar.gz\n"
                "-r https://example.invalid/remote.txt\n"
                "after==2\n"
            ),
        },
    )
    declared, findings = read_requirements([svc / "requirements.txt", svc / "absent.txt"], tmp_path, TARGET)
    assert declared == [
        Declared("good", "good==1", "svc/requirements.txt", 1, True),
        Declared("after", "after==2", "svc/requirements.txt", 8, True),
    ]
    where = "svc/requirements.txt"
    assert findings == [
        Finding(
            FindingKind.BAD_REQUIREMENT,
            where,
            2,
            "cannot understand `!!! not a requirement`: Expected package name at the start of dependency specifier",
        ),
        Finding(FindingKind.BAD_REQUIREMENT, where, 3, "included file svc/missing.txt does not exist"),
        Finding(FindingKind.BAD_REQUIREMENT, where, 4, "constraints file svc/missing-constraints.txt does not exist"),
        Finding(FindingKind.BAD_REQUIREMENT, where, 5, "cannot understand `--frobnicate x`: no such option: --frobnicate"),
        Finding(
            FindingKind.BAD_REQUIREMENT,
            where,
            6,
            "cannot tell which distribution this line installs; name it (`name @ url` or `#egg=name`)",
        ),
        Finding(
            FindingKind.BAD_REQUIREMENT,
            where,
            7,
            "remote file https://example.invalid/remote.txt is not fetched; its requirements are not checked",
        ),
        Finding(FindingKind.UNREADABLE_FILE, "svc/absent.txt", None, "requirements file does not exist"),
    ]


def test_the_same_requirement_on_one_line_is_declared_once(tmp_path: Path) -> None:
    svc = _service(tmp_path, {"a.txt": "-r common.txt\n", "b.txt": "-r common.txt\n", "common.txt": "numpy\n"})
    declared, findings = read_requirements([svc / "a.txt", svc / "b.txt"], svc, TARGET)
    assert (declared, findings) == ([Declared("numpy", "numpy", "common.txt", 1, True)], [])


def _env(tmp_path: Path, dist: WriteDist, *names: str):
    for name in names:
        dist(tmp_path / "site-packages", name)
    return load_environment([tmp_path / "site-packages"])


def _declared(key: str, line: int, applies: bool = True) -> Declared:
    return Declared(key, f"{key}==1.0", "svc/requirements.txt", line, applies)


def test_check_declarations_reports_all_three_kinds(tmp_path: Path, dist: WriteDist) -> None:
    env = _env(tmp_path, dist, "numpy", "soundfile", "cffi", "Pillow", "pywin32")
    reqs = [
        _declared("soundfile", 1),
        _declared("cffi", 2),  # a dependency of soundfile, declared explicitly: fine
        _declared("pillow", 3),  # installed, never imported, nothing needs it
        _declared("absent", 4),  # not installed
        _declared("absent-on-linux", 5, applies=False),  # its marker excludes the target
        _declared("pywin32", 6, applies=False),
    ]
    imported = {"soundfile": ("svc/app.py", 3), "numpy": ("svc/app.py", 1)}
    needed = {"soundfile", "numpy", "cffi"}
    assert check_declarations(reqs, imported, needed, env, has_requirements=True) == [
        Finding(
            FindingKind.NOT_INSTALLED,
            "svc/requirements.txt",
            4,
            "absent==1.0 is declared but not installed in the scanned environment",
        ),
        Finding(
            FindingKind.UNDECLARED_IMPORT,
            "svc/app.py",
            1,
            "imports numpy, which no requirements file of the service declares; add it",
        ),
        Finding(
            FindingKind.UNUSED_REQUIREMENT,
            "svc/requirements.txt",
            3,
            "pillow==1.0 is declared but never imported, nor needed by what is imported; "
            "remove it if nothing loads it by other means",
        ),
    ]


def test_a_declared_transitive_dependency_is_not_unused(tmp_path: Path, dist: WriteDist) -> None:
    env = _env(tmp_path, dist, "soundfile", "cffi", "pycparser")
    reqs = [_declared("soundfile", 1), _declared("cffi", 2), _declared("pycparser", 3)]
    imported = {"soundfile": ("svc/app.py", 3)}
    assert check_declarations(reqs, imported, {"soundfile", "cffi", "pycparser"}, env, has_requirements=True) == []


def test_a_marker_guarded_declaration_still_declares_its_import(tmp_path: Path, dist: WriteDist) -> None:
    env = _env(tmp_path, dist, "pywin32")
    reqs = [_declared("pywin32", 1, applies=False)]
    imported = {"pywin32": ("svc/win.py", 2)}
    assert check_declarations(reqs, imported, {"pywin32"}, env, has_requirements=True) == []


def test_no_requirements_file_means_no_undeclared_imports(tmp_path: Path, dist: WriteDist) -> None:
    env = _env(tmp_path, dist, "numpy", "soundfile")
    imported = {"soundfile": ("svc/app.py", 3), "numpy": ("svc/app.py", 1)}
    assert check_declarations([], imported, {"soundfile", "numpy"}, env, has_requirements=False) == []
    # An empty requirements file does declare something: that nothing is needed.
    assert [f.kind for f in check_declarations([], imported, set(), env, has_requirements=True)] == [
        FindingKind.UNDECLARED_IMPORT,
        FindingKind.UNDECLARED_IMPORT,
    ]


def test_a_fifo_an_overlong_include_and_a_fifo_project_file_neither_block_nor_crash(tmp_path: Path) -> None:
    """Found by benchmarks/fuzz_readers.py: `-r` and 300 bytes of garbage raised ENAMETOOLONG
    out of the reader; a FIFO would block pip-requirements-parser (and the local project's
    pyproject.toml reader) forever."""
    import os

    from helpers import deadline

    long_name = "x" * 300 + ".txt"
    svc = _service(tmp_path, {"requirements.txt": f"numpy\n-r {long_name}\n-r pipe.txt\n-e ./core\n"})
    os.mkfifo(svc / "pipe.txt")
    os.mkfifo(svc / "fifo.txt")
    (svc / "core").mkdir()
    os.mkfifo(svc / "core" / "pyproject.toml")
    with deadline(30):  # a regression hangs: fail instead of stalling the suite
        declared, findings = read_requirements([svc / "requirements.txt", svc / "fifo.txt"], tmp_path, TARGET)
    where = "svc/requirements.txt"
    assert [(d.key, d.line) for d in declared] == [("numpy", 1)]
    assert findings == sorted(
        [
            Finding(FindingKind.BAD_REQUIREMENT, where, 2, f"included file svc/{long_name} cannot be read: File name too long"),
            Finding(FindingKind.BAD_REQUIREMENT, where, 3, "included file svc/pipe.txt is not a regular file"),
            Finding(
                FindingKind.BAD_REQUIREMENT,
                where,
                4,
                "cannot tell which distribution this line installs; name it (`name @ url` or `#egg=name`)",
            ),
            Finding(FindingKind.UNREADABLE_FILE, "svc/fifo.txt", None, "requirements file is not a regular file"),
        ]
    )


def test_a_nul_in_a_local_project_path_is_a_finding(tmp_path: Path) -> None:
    """Found by benchmarks/fuzz_readers.py: the local project's pyproject.toml was opened by a
    path holding a NUL byte, and the ValueError ended the scan."""
    svc = tmp_path / "svc"
    svc.mkdir()
    (svc / "requirements.txt").write_bytes(b"./loc\x00al\nnumpy\n")
    declared, findings = read_requirements([svc / "requirements.txt"], tmp_path, TARGET)
    assert [(d.key, d.line) for d in declared] == [("numpy", 2)]
    assert [(f.kind, f.line) for f in findings] == [(FindingKind.BAD_REQUIREMENT, 1)]
