"""Only the parts of a file that can hold a hint reach libcst, and nothing else changes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from depaudit.collect.hints import PREFILTER, file_hints, scan_hints
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
    unit = hint_units(source.encode(), PREFILTER)
    assert unit is not None
    return [line for line in unit.source.decode().split("\n") if line.strip()]


def test_only_definitions_with_a_match_are_kept_and_module_statements_stay() -> None:
    assert _kept(SOURCE) == [
        '"""A module: constants, platform blocks, classes; one method starts a program."""',
        "import subprocess",
        "import sys",
        'PROGRAM = "ffmpeg"',
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
    assert _kept(source) == ["import ctypes", "@register(ctypes.CDLL('libx.so.1'))", "class A:", "    pass"]
    assert file_hints(source.encode()) == scan_hints(source.encode())


def test_no_match_means_nothing_to_parse_and_a_broken_file_falls_back_to_libcst() -> None:
    assert hint_units(b"import subprocess\n", PREFILTER) is None
    assert file_hints(b"import subprocess\n") == []
    with pytest.raises(Exception):
        file_hints(b"print 'python 2'\nsubprocess.run(['x'])\n")  # libcst reports it as before


def test_a_bom_and_a_coding_cookie_survive_the_cut() -> None:
    source = "\ufeff# -*- coding: utf-8 -*-\ndef f():\n    pass\n\ndef g():\n    CDLL('libé.so.1')\n".encode()
    unit = hint_units(source, PREFILTER)
    assert unit is not None and unit.source.startswith(b"\xef\xbb\xbf# -*- coding")
    assert [(h.line, h.candidates) for h in file_hints(source)] == [(6, ("libé.so.1",))]


@pytest.mark.network
def test_every_file_of_a_real_site_packages_gives_the_same_hints(fleet_site_packages: Path) -> None:
    compared = 0
    for path in sorted(fleet_site_packages.rglob("*.py")):
        if is_test_file(path.relative_to(fleet_site_packages).as_posix()):
            continue  # never scanned for hints
        data = path.read_bytes()
        if not PREFILTER.search(data):
            continue
        try:
            whole = scan_hints(data)
        except Exception:
            continue  # libcst cannot read it: neither way gives hints
        assert file_hints(data) == whole, path
        compared += 1
    assert compared > 25
