"""Hostile Python sources: each bad file is one exact finding, and the rest of the scan is still
reported (the service's good file resolves to its installed distribution). Files are generated
here, never committed as blobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from depaudit.findings import Finding, FindingKind
from depaudit.scan import ScanOptions, run_scan
from helpers import make_dist

READ = "its imports were read line by line"
PARSE = FindingKind.PARSE_ERROR


def _tree(root: Path, files: dict[str, str | bytes]) -> tuple[Path, Path]:
    site_packages = root / "sp"
    make_dist(site_packages, "goodlib", files={"goodlib/__init__.py": ""}, top_level=["goodlib"])
    service = root / "services" / "svc"
    service.mkdir(parents=True)
    (service / "good.py").write_text("import goodlib\n")
    for name, content in files.items():
        (service / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return root / "services", site_packages


def _scan(tmp_path: Path, files: dict[str, str | bytes]) -> tuple[list[Finding], list[tuple[str, int, str, bool, str | None]]]:
    services, site_packages = _tree(tmp_path, files)
    report = run_scan(ScanOptions((services,), (site_packages,), "ubuntu-22.04", use_cache=False, processes=1))
    service = report.services[0]
    parse = [f for f in service.findings if f.kind not in (FindingKind.UNRESOLVED_IMPORT, FindingKind.MISSING_MODULE)]
    imports = [(i.record.file, i.record.line, i.record.module, i.record.fallback, i.distribution) for i in service.imports]
    # The rest of the scan: the good file's import still reaches its distribution.
    assert ("svc/good.py", 1, "goodlib", False, "goodlib") in imports
    return parse, [i for i in imports if i[0] != "svc/good.py"]


def _depaudit(tmp_path: Path, services: Path, site_packages: Path) -> dict:  # type: ignore[type-arg]
    """The one service of a real `depaudit scan` process: a crash or a hang fails the test,
    never the test run."""
    out = tmp_path / "report.json"
    command = [sys.executable, "-m", "depaudit", "scan", str(services), "--site-packages", str(site_packages)]
    command += ["--distro", "ubuntu-22.04", "--no-cache", "--format", "json", "--output", str(out), "--fail-on", "never"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())["services"][0]  # type: ignore[no-any-return]


def _python3(line: int | None, reason: str) -> list[Finding]:
    return [Finding(PARSE, "svc/bad.py", line, f"Python 3 cannot parse this file: {reason}; {READ}")]


def _fb(line: int, module: str) -> tuple[str, int, str, bool, None]:
    return ("svc/bad.py", line, module, True, None)


def _ok(line: int, module: str) -> tuple[str, int, str, bool, None]:
    return ("svc/bad.py", line, module, False, None)


BIG = "import numpy\n" + "".join(f"value_{i} = {i} * 2  # filler to make the file large\n" for i in range(40_000)) + "import scipy\n"

CASES: dict[str, tuple[dict[str, str | bytes], list[Finding], list[tuple[str, int, str, bool, None]]]] = {
    "unclosed parenthesis": (
        {"bad.py": "import numpy\nvalue = (1,\n"},
        _python3(2, "'(' was never closed"),
        [_fb(1, "numpy")],
    ),
    "unexpected indent": (
        {"bad.py": "import numpy\n    import scipy\n"},
        _python3(2, "unexpected indent"),
        [_fb(1, "numpy"), _fb(2, "scipy")],
    ),
    "invalid character": ({"bad.py": "import numpy\nx = $y\n"}, _python3(2, "invalid syntax"), [_fb(1, "numpy")]),
    "python 2 print": (
        {"bad.py": "import numpy\nprint 'hello'\n"},
        _python3(2, "Missing parentheses in call to 'print'. Did you mean print(...)?"),
        [_fb(1, "numpy")],
    ),
    "python 2 exec": (
        {"bad.py": "import numpy\nexec 'x = 1'\n"},
        _python3(2, "Missing parentheses in call to 'exec'. Did you mean exec(...)?"),
        [_fb(1, "numpy")],
    ),
    "python 2 backticks": ({"bad.py": "import numpy\nx = `1`\n"}, _python3(2, "invalid syntax"), [_fb(1, "numpy")]),
    # libcst reads `except E, e:` as a tuple: parsed, the guard seen, nothing to report.
    "python 2 except comma alone": ({"bad.py": "try:\n    import numpy\nexcept ImportError, e:\n    pass\n"}, [], [_ok(2, "numpy")]),
    "tabs and spaces": (
        {"bad.py": "import numpy\nif True:\n        x = 1\n\ty = 2\n"},
        _python3(4, "inconsistent use of tabs and spaces in indentation"),
        [_fb(1, "numpy")],
    ),
    "utf-8 bom": ({"bad.py": b"\xef\xbb\xbfimport numpy\n"}, [], [_ok(1, "numpy")]),
    "latin-1 without a cookie": (
        {"bad.py": b"import numpy\nname = '\xe9'\n"},
        _python3(2, "byte 0xe9 on line 2 is not utf-8: declare the file's encoding (# -*- coding: latin-1 -*-) or save it as UTF-8"),
        [_fb(1, "numpy")],
    ),
    "latin-1 with a cookie": ({"bad.py": b"# -*- coding: latin-1 -*-\nimport numpy\nname = '\xe9'\n"}, [], [_ok(2, "numpy")]),
    "unknown coding cookie": (
        {"bad.py": "# coding: klingon\nimport numpy\n"},
        _python3(1, "unknown encoding: klingon in its coding line"),
        [_fb(2, "numpy")],
    ),
    "utf-16 text": (
        {"bad.py": "import numpy\n".encode("utf-16")},
        _python3(1, "it is UTF-16 text, which Python does not read as source: save it as UTF-8"),
        [],
    ),
    "a NUL byte": ({"bad.py": b"import numpy\nx = 1\x00\n"}, _python3(2, "it holds a NUL byte: is it a binary file?"), [_fb(1, "numpy")]),
    "a binary file named .py": (
        {"bad.py": bytes(range(256)) * 40},
        _python3(1, "it holds a NUL byte: is it a binary file?"),
        [],
    ),
    "an ELF file named .py": ({"bad.py": b"\x7fELF\x02\x01\x01" + bytes(200)}, _python3(1, "it holds a NUL byte: is it a binary file?"), []),
    "a 2 MB generated file": ({"bad.py": BIG}, [], [_ok(1, "numpy"), _ok(40_002, "scipy")]),
    "an empty file": ({"bad.py": ""}, [], []),
    "CRLF line ends": (
        {"bad.py": b"import numpy\r\ntry:\r\n    import scipy\r\nexcept ImportError:\r\n    pass\r\n"},
        [],
        [_ok(1, "numpy"), _ok(3, "scipy")],
    ),
    "old Mac CR line ends": ({"bad.py": b"import numpy\rimport scipy\r"}, [], [_ok(1, "numpy"), _ok(2, "scipy")]),
    "a continuation at end of file": (
        {"bad.py": "import numpy\nx = 1 + \\\n"},
        _python3(2, "unexpected EOF while parsing"),
        [_fb(1, "numpy")],
    ),
    "an unterminated string": (
        {"bad.py": "import numpy\nx = '''never closed\nimport scipy\n"},
        _python3(2, "unterminated triple-quoted string literal (detected at line 3)"),
        [_fb(1, "numpy"), _fb(3, "scipy")],  # the fallback cannot tell it is inside the string
    ),
    "syntax newer than this Python": ({"bad.py": "type Vector = list[float]\nimport numpy\n"}, [], [_ok(2, "numpy")]),
    "nested too deep for Python": (
        {"bad.py": "import numpy\nx = " + "(" * 300 + "1" + ")" * 300 + "\n"},
        [Finding(PARSE, "svc/bad.py", 2, f"Python cannot parse this file: too many nested parentheses; libcst was not run on it, {READ}")],
        [_fb(1, "numpy")],
    ),
}

if sys.version_info >= (3, 12):
    del CASES["syntax newer than this Python"]  # valid syntax there: nothing to show


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_hostile_source_is_one_exact_finding_and_the_rest_is_reported(tmp_path: Path, name: str) -> None:
    files, findings, imports = CASES[name]
    assert _scan(tmp_path, files) == (findings, imports)


def test_file_names_with_spaces_quotes_newlines_and_non_ascii(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "with space.py": "import numpy\n",
        "quo'te\".py": "import scipy\n",
        "new\nline.py": "import yaml\n",
        "ünï.py": "import requests\n",
    }
    assert _scan(tmp_path, files) == (
        [],
        [
            ("svc/new\nline.py", 1, "yaml", False, None),
            ("svc/quo'te\".py", 1, "scipy", False, None),
            ("svc/with space.py", 1, "numpy", False, None),
            ("svc/ünï.py", 1, "requests", False, None),
        ],
    )


# Each of these made libcst's native parser overflow its stack (SIGSEGV) or run for minutes;
# Python's own parser refuses all of them first. Run as a real `depaudit scan` process, so that
# a regression is a failed test, not a crashed test run.
NESTED = {
    "parentheses": "x = " + "(" * 3000 + "1" + ")" * 3000,
    "unary minus": "x = " + "-" * 10_000 + "1",
    "attributes": "x = a" + ".b" * 100_000,
    "calls": "x = f" + "()" * 10_000,
    "subscripts": "x = a" + "[0]" * 10_000,
    "additions": "x = " + "+".join(["1"] * 100_000),
    "elifs": "if a:\n    pass\n" + "".join(f"elif a == {i}:\n    pass\n" for i in range(10_000)),
}


def test_sources_that_crash_libcst_are_findings_in_a_service_and_passed_over_in_a_wheel(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {f"deep_{n}.py": f"import numpy\n{text}\n" for n, text in enumerate(NESTED.values())}
    services, site_packages = _tree(tmp_path, files)
    # The same files in a wheel, each with a call the hint prefilter matches.
    make_dist(
        site_packages,
        "deepwheel",
        files={f"deepwheel/m{n}.py": f"import ctypes\nctypes.CDLL('libdeep.so.1')\n{text}\n" for n, text in enumerate(NESTED.values())},
        top_level=["deepwheel"],
    )
    (services / "svc" / "good.py").write_text("import goodlib\nimport deepwheel.m0\n")
    service = _depaudit(tmp_path, services, site_packages)
    parse = sorted((f["path"], f["line"], f["message"].split(";")[0]) for f in service["findings"] if f["kind"] == "parse_error")
    assert parse == [
        ("svc/deep_0.py", 2, "Python cannot parse this file: too many nested parentheses"),
        ("svc/deep_1.py", None, "Python cannot parse this file: it nests too deeply"),
        ("svc/deep_2.py", None, "Python cannot parse this file: it nests too deeply"),
        ("svc/deep_3.py", None, "Python cannot parse this file: it nests too deeply"),
        ("svc/deep_4.py", None, "Python cannot parse this file: it nests too deeply"),
        ("svc/deep_5.py", None, "Python cannot parse this file: it nests too deeply"),
        ("svc/deep_6.py", None, "Python cannot parse this file: it nests too deeply"),
    ]
    # Every deep file's import is still read, and the good file still reaches both wheels.
    modules = sorted((i["file"], i["module"], i["distribution"]) for i in service["imports"])
    assert modules == sorted(
        [(f"svc/deep_{n}.py", "numpy", None) for n in range(len(NESTED))]
        + [("svc/good.py", "goodlib", "goodlib"), ("svc/good.py", "deepwheel.m0", "deepwheel")]
    )
    # The wheel's deep files give no hint (passed over, as any file libcst cannot read there).
    assert not [n for n in service["needs"] if n["name"] == "libdeep.so.1"]


def test_a_fifo_a_huge_file_and_a_link_out_of_site_packages_are_never_read(tmp_path: Path) -> None:
    """A FIFO named like a source file would block a reader forever; a file past the size bound
    is not read; a wheel's .py that links out of site-packages is never opened."""
    outside = tmp_path / "outside.py"
    outside.write_text("import ctypes\nctypes.CDLL('liboutside.so.1')\n")
    services, site_packages = _tree(tmp_path, {"huge.py": b"import numpy\n" + b"#" * (32 << 20)})
    os.mkfifo(services / "svc" / "fifo.py")
    make_dist(site_packages, "linky", files={"linky/__init__.py": "import ctypes\nctypes.CDLL('libinside.so.1')\n"}, existing=["linky/out.py", "linky/pipe.py"], top_level=["linky"])
    (site_packages / "linky" / "out.py").symlink_to(outside)
    os.mkfifo(site_packages / "linky" / "pipe.py")
    (services / "svc" / "good.py").write_text("import goodlib\nimport linky\n")
    service = _depaudit(tmp_path, services, site_packages)
    unreadable = sorted((f["path"], f["message"]) for f in service["findings"] if f["kind"] == "unreadable_file")
    assert unreadable == [
        ("svc/fifo.py", "cannot read: not a regular file but a pipe, socket or device"),
        ("svc/huge.py", "cannot read: larger than 32 MiB, not read as a source file"),
    ]
    hinted = sorted(n["name"] for n in service["needs"] if n["name"].startswith("lib") and n["name"].endswith(".so.1"))
    assert hinted == ["libinside.so.1"]  # the wheel's own file is read; the link out of it is not
