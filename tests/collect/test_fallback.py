"""The line-level reader used for files libcst cannot parse."""

from __future__ import annotations

from depaudit.collect.fallback import FallbackImport, fallback_imports


def test_statements_it_reads() -> None:
    text = (
        "import a, b.c as d,  e . f\n"
        "from . import x\n"
        "from .import y\n"
        "from.m import z\n"
        "from ..pkg.m import (p, q as r,\n"
        "    s)\n"
        "from __future__ import print_function\n"
        "  import os; import sys as s ;x=1\n"
        "from star import *\n"
        "    from a.b import c  # a comment\n"
        "\tfrom tab import t\n"
    )
    assert fallback_imports(text) == [
        FallbackImport(1, "a", (), 0),
        FallbackImport(1, "b.c", (), 0),
        FallbackImport(1, "e.f", (), 0),
        FallbackImport(2, "", ("x",), 1),
        FallbackImport(3, "", ("y",), 1),
        FallbackImport(4, "m", ("z",), 1),
        FallbackImport(5, "pkg.m", ("p", "q"), 2),  # names on later lines are not seen
        FallbackImport(7, "__future__", ("print_function",), 0),
        FallbackImport(8, "os", (), 0),
        FallbackImport(8, "sys", (), 0),
        FallbackImport(9, "star", (), 0),
        FallbackImport(10, "a.b", ("c",), 0),
        FallbackImport(11, "tab", ("t",), 0),
    ]


def test_lines_that_are_not_imports() -> None:
    text = (
        "important = 1\n"
        "import_module('x')\n"
        "fromage import x\n"
        "from import x\n"
        "print 'import os'\n"
        "# import commented\n"
        "x = y  # from a import b\n"
        "import 3d\n"
    )
    assert fallback_imports(text) == []


def test_what_it_cannot_tell_apart() -> None:
    # An import line inside a string is taken for an import: the documented price of reading lines.
    assert fallback_imports('"""\nimport inside_docstring\n"""\n') == [FallbackImport(2, "inside_docstring", (), 0)]
