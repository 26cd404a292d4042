"""Only the parts of a file that can hold a hint reach libcst, and nothing else changes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from depaudit.collect.hint_calls import PATTERN, PREFILTER, may_report
from depaudit.collect.hints import file_hints, scan_hints
from depaudit.collect.units import hint_units
from depaudit.native.hints import is_test_file

SOURCE = textwrap.dedent(
    '''\
    """A module: constants, platform blocks, classes; one method starts a program."""
    import subprocess
    import sys

    PROGRAM = "ffmpeg"

    if sys.version_info >= (3, 8):
        def unrelated(x):
            return x * 2
    else:
        def unrelated(x):
            return x


    class Recorder:
        codec = "mp3"

        def __init__(self):
            self.frames = []

        @staticmethod
        def export(path):
            return subprocess.run([PROGRAM, "-i", path])

        def close(self):
            pass


    class Other:
        def method(self):
            return 1


    def helper():
        return 2
    '''
)


def _kept(source: str) -> list[str]:
    unit = hint_units(source.encode(), PREFILTER, may_report)
    assert unit is not None
    return [line for line in unit.source.decode().split("\n") if line.strip()]


def test_only_calls_the_visitor_may_report_their_functions_and_bindings_are_kept() -> None:
    assert _kept(SOURCE) == [
        'PROGRAM = "ffmpeg"',  # a name bound to a literal: an argument may name it
        "if sys.version_info >= (3, 8):",
        "    pass",  # both branches' definitions dropped: a block may not be empty
        "else:",
        "    pass",
        "class Recorder:",
        '    codec = "mp3"',
        "    @staticmethod",
        "    def export(path):",
        '        return subprocess.run([PROGRAM, "-i", path])',
    ]


def test_hints_keep_their_original_lines() -> None:
    data = SOURCE.encode()
    assert [(h.line, h.candidates) for h in file_hints(data)] == [(23, ("ffmpeg",))]
    assert file_hints(data) == scan_hints(data)


def test_a_match_in_a_class_header_keeps_the_header_and_a_pass() -> None:
    source = "import ctypes\n\n@register(ctypes.CDLL('libx.so.1'))\nclass A:\n    def f(self):\n        return 1\n"
    assert _kept(source) == ["@register(ctypes.CDLL('libx.so.1'))", "class A:", "    pass"]
    assert file_hints(source.encode()) == scan_hints(source.encode())


def test_calls_through_aliases_and_renamed_modules_keep_their_statements() -> None:
    source = textwrap.dedent(
        """\
        from ctypes.util import find_library as _find
        import subprocess as sp
        from os import system
        NAMES = ("a", "b")
        OTHER = NAMES
        TABLE = {"x": 1}
        loop.run(main())
        _find("zbar")
        sp.run(["git", "status"])
        system("lsblk")
        ctypes.CDLL("libm.so.6")  # the file's prefilter match
        """
    )
    assert _kept(source) == [
        "from ctypes.util import find_library as _find",
        'NAMES = ("a", "b")',
        "OTHER = NAMES",
        '_find("zbar")',
        'sp.run(["git", "status"])',
        'system("lsblk")',
        'ctypes.CDLL("libm.so.6")  # the file\'s prefilter match',
    ]
    assert [(h.line, h.call) for h in file_hints(source.encode())] == [
        (8, "find_library"),
        (9, "sp.run"),
        (10, "system"),
        (11, "ctypes.CDLL"),
    ]
    assert file_hints(source.encode()) == scan_hints(source.encode())


def test_a_statement_sharing_a_line_with_a_kept_one_stays() -> None:
    source = 'import os; LIB = "libx.so.1"\ny = compute(); CDLL(LIB)\n'
    assert _kept(source) == ['import os; LIB = "libx.so.1"', "y = compute(); CDLL(LIB)"]
    assert [h.candidates for h in file_hints(source.encode())] == [("libx.so.1",)]


def test_no_match_means_nothing_to_parse_and_a_broken_file_falls_back_to_libcst() -> None:
    assert hint_units(b"import subprocess\n", PREFILTER, may_report) is None
    assert file_hints(b"import subprocess\n") == []
    with pytest.raises(Exception):
        file_hints(b"print 'python 2'\nsubprocess.run(['x'])\n")  # libcst reports it as before


def test_a_bom_and_a_coding_cookie_survive_the_cut() -> None:
    source = "\ufeff# -*- coding: utf-8 -*-\ndef f():\n    pass\n\ndef g():\n    CDLL('libé.so.1')\n".encode()
    unit = hint_units(source, PREFILTER, may_report)
    assert unit is not None and unit.source.startswith(b"\xef\xbb\xbf# -*- coding")
    assert [(h.line, h.candidates) for h in file_hints(source)] == [(6, ("libé.so.1",))]


@pytest.mark.network
def test_every_file_of_a_real_site_packages_gives_the_same_hints(fleet_site_packages: Path) -> None:
    compared = 0
    for path in sorted(fleet_site_packages.rglob("*.py")):
        if is_test_file(path.relative_to(fleet_site_packages).as_posix()):
            continue  # never scanned for hints
        data = path.read_bytes()
        assert bool(PREFILTER.search(data)) == bool(PATTERN.search(data)), path
        if not PREFILTER.search(data):
            continue
        try:
            whole = scan_hints(data)
        except Exception:
            continue  # libcst cannot read it: neither way gives hints
        assert file_hints(data) == whole, path
        compared += 1
    assert compared > 20  # the example fleet gives 32 on Python 3.11, 23 on 3.12 and 3.13 (other wheels)


IMPORTS = textwrap.dedent(
    '''\
    """Imports in every context that decides a tier."""
    from __future__ import annotations

    import os
    from typing import TYPE_CHECKING

    if TYPE_CHECKING:
        import numpy

    try:
        import cv2
    except ImportError:
        cv2 = None
        HAVE_CV2 = False
    else:
        HAVE_CV2 = True

    CONSTANT = 3


    class Model:
        size = 4

        def load(self):
            import torch
            return torch.load("x")

        def other(self):
            return 1


    def plugin(name):
        module = importlib.import_module("plugins." + name)
        return importlib.import_module("json")
    '''
)


def test_import_cut_keeps_the_blocks_that_decide_the_tier() -> None:
    from depaudit.collect.imports import _IMPORT_LINE, _parse, _parse_cut
    from depaudit.collect.units import import_units

    unit = import_units(IMPORTS.encode(), _IMPORT_LINE)
    assert unit is not None
    assert [line for line in unit.source.decode().split("\n") if line.strip()] == [
        "from __future__ import annotations",
        "import os",
        "from typing import TYPE_CHECKING",
        "if TYPE_CHECKING:",
        "    import numpy",
        "try:",
        "    import cv2",
        "except ImportError:",
        "    pass",
        "else:",
        "    pass",
        "class Model:",
        "    def load(self):",
        "        import torch",
        "def plugin(name):",
        '    module = importlib.import_module("plugins." + name)',
        '    return importlib.import_module("json")',
    ]
    assert _parse_cut(IMPORTS.encode(), "app") == _parse(IMPORTS.encode(), "app")
    assert [(f.line, f.module) for f in _parse_cut(IMPORTS.encode(), "app")][-2:] == [(25, "torch"), (34, "json")]


def test_a_statement_beside_an_import_on_its_line_becomes_pass() -> None:
    """`import x; DATA = [...]` in generated code: libcst would read the data at ~100 KB/s."""
    from depaudit.collect.imports import _IMPORT_LINE, _parse, _parse_cut
    from depaudit.collect.units import import_units

    data = "[" + "1, " * 50 + "]"
    source = (
        f"import numpy; DATA = {data}; import scipy\n"
        f"x = 1; y = {data}\n"
        f"mod = importlib.import_module('yaml'); z = {data}\n"
        f"name = 'é'; import cv2; w = {data}\n"
    ).encode()
    unit = import_units(source, _IMPORT_LINE)
    assert unit is not None
    assert unit.source.decode().split("\n") == [
        "import numpy; pass; import scipy",
        "pass; pass",  # no import on the line: nothing of it is needed
        "mod = importlib.import_module('yaml'); pass",
        f"name = 'é'; import cv2; w = {data}",  # not ASCII: ast's byte offsets are not this line's
        "",
    ]
    assert _parse_cut(source, "app") == _parse(source, "app")


def test_a_file_without_imports_is_never_parsed_but_a_broken_one_still_is() -> None:
    from depaudit.collect.imports import _IMPORT_LINE
    from depaudit.collect.units import import_units

    assert import_units(b"x = 1\n", _IMPORT_LINE) == import_units(b"", _IMPORT_LINE)
    assert import_units(b"print 'x'\n", _IMPORT_LINE) is None  # libcst reads it whole and says why


@pytest.mark.network
def test_every_file_of_a_real_site_packages_gives_the_same_imports(fleet_site_packages: Path) -> None:
    from depaudit.collect.imports import _parse, _parse_cut

    files = sorted(fleet_site_packages.rglob("*.py"))[::20]  # a spread of ~90 real files
    compared = 0
    for path in files:
        data = path.read_bytes()
        try:
            whole = _parse(data, "pkg.sub")
        except Exception:
            continue
        assert _parse_cut(data, "pkg.sub") == whole, path
        compared += 1
    assert compared > 45  # 68 on Python 3.11, 53 on 3.12, 49 on 3.13


def test_a_statement_whose_import_is_only_a_word_in_its_text_is_dropped() -> None:
    """pygments' keyword tables: one assignment of ~130 KB whose strings say "import". And a
    `raise` outside the handlers of a try around an import."""
    from depaudit.collect.imports import _IMPORT_LINE, _parse, _parse_cut
    from depaudit.collect.units import import_units

    table = ",\n".join(f"    'import{n}'" for n in range(200))
    source = (
        "import re\n"
        f"KEYWORDS = (\n{table},\n)\n"
        "loader = importlib.import_module(\n    'yaml'  # import\n)\n"
        "def check():\n"
        "    message = 'cannot import that'\n"
        "    raise ImportError(message)\n"
        "try:\n"
        "    import cv2\n"
        "except ImportError:\n"
        "    if strict:\n"
        "        raise\n"
    ).encode()
    unit = import_units(source, _IMPORT_LINE)
    assert unit is not None
    # The raise in `check` says nothing of an import; the one in the handler does.
    assert [line for line in unit.source.decode().split("\n") if line.strip()] == [
        "import re",
        "loader = importlib.import_module(",
        "    'yaml'  # import",
        ")",
        "def check():",  # its first line says "import" in a string: the def stays, the rest goes
        "    pass",
        "try:",
        "    import cv2",
        "except ImportError:",
        "    if strict:",
        "        raise",
    ]
    assert _parse_cut(source, "app") == _parse(source, "app")


@pytest.mark.parametrize(
    "text",
    [
        b"which (", b"x.which\t\n(", b"os.execvpe  (", b"os.exec(", b"os.execute", b"subprocess.call\n(",
        b"subprocess.caller(", b"xPopen(", b"Popen", b"Popen.x(", b"# which library? CDLL docs", b"CDLL",
        b"check_output)", b"load_library (", b"os.popen(", b"os.system\r(", b"", b"(", b"dlopen\v(",
        "os.exec_\u00e9(".encode(), b"find_libraryfind_library(", b"from subprocess import run", b"from subprocess  import",
        b"(which", b"which(which", b"os.execos.exec (", b"xos.execlpe(", "os.exec\u00e9(".encode(),
        b"PyDLL(", b"getoutput \f(", b"os.system", b"((( os.popen", b"Popen\n\n\t (",
    ],
)
def test_the_prefilter_finds_what_its_pattern_does(text: bytes) -> None:
    assert bool(PREFILTER.search(text)) == bool(PATTERN.search(text))


def test_the_prefilter_finds_what_its_pattern_does_on_real_sources() -> None:
    """The reversed search against the pattern, on every module of the stdlib and of the
    packages this test runs with (offline: no wheel is fetched)."""
    import site
    import sysconfig

    folders = [Path(sysconfig.get_paths()["stdlib"]), *map(Path, site.getsitepackages())]
    matched = compared = 0
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            expected = PATTERN.search(data) is not None
            assert (PREFILTER.search(data) is not None) == expected, path
            matched += expected
            compared += 1
    assert compared > 1000 and matched > 50, (compared, matched)
