"""Module-level import statements outside any block are read from `ast`, the rest from libcst on
the cut (units.py): the answers must be those of libcst on the whole file, on real sources."""

from __future__ import annotations

import ast
import re
import sysconfig
import textwrap
import warnings
from pathlib import Path

import pytest

from depaudit.collect.call_sites import _bindings, _uses, call_sites
from depaudit.collect.hint_ast import Unsure
from depaudit.collect.import_ast import ast_imports
from depaudit.collect.imports import _IMPORT_LINE, _parse, _read
from depaudit.collect.model import FoundImport
from depaudit.collect.units import COUNTED, TooDeep, counted_nodes, dotted_name, import_cut, plain_imports, tree_of

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "pkg.sub"

# What the plain route must get right, each beside the context that is not plain.
EDGES: dict[str, bytes] = {
    "relative levels": b"from . import a\nfrom .. import b, c\nfrom ...x.y import z\nfrom .... import w\nfrom .m import *\n",
    "dotted and aliased": b"import a.b.c as d, e\nimport  f . g\nfrom h import (i,\n    j as k,  # note\n)\n",
    "star and future": b"from __future__ import annotations\nfrom os.path import *\n",
    "continued lines": b"import a, \\\n    b\nfrom c import \\\n    d\n",
    "semicolons": b"import a; import b\nx = __import__('c'); import d\nimport e;\n",
    "in every block": textwrap.dedent(
        """\
        import os
        try:
            import cv2
        except ImportError:
            cv2 = None
        import sys
        if TYPE_CHECKING:
            import numpy
        @decorate(__import__("deco"))
        def f():
            import torch
        import json
        class C:
            from yaml import load
        for x in y:
            import z
        with open(p) as handle:
            import w
        import last
        """
    ).encode(),
    "import_module under other names": textwrap.dedent(
        """\
        import importlib as il
        import json
        from importlib import import_module
        import yaml
        def load(name):
            il.import_module("plugins." + name)
            il.import_module("toml")
            return import_module(".rel", __package__)
        """
    ).encode(),
    "renamed import_module": b"import json\nfrom importlib import import_module as load\nload('yaml')\nimport toml\n",
    "dynamic at module level": b"import json\nmod = importlib.import_module('a')\nimport b\n__import__('c.d')\nimport e\n",
    "non-ASCII names and comments": (
        "import ﬁle\nimport café as c\nimport ok  # é\nimport fine\nx = 'é'\nimport after\n"
        "from x import (a,  # é\n    b)\nimport ok2 # é \\\n\nimport last\n"
    ).encode(),
    "a BOM and non-ASCII": "\ufeffimport a  # é\nimport b  # é\n".encode(),
    "latin-1 cookie": b"# -*- coding: latin-1 -*-\nimport a\nname = '\xe9'\nimport b\n",
    "a BOM": b"\xef\xbb\xbfimport a\nimport b\n",
    "CRLF": b"import a\r\ntry:\r\n    import b\r\nexcept ImportError:\r\n    pass\r\nimport c\r\n",
    "bare CR": b"import a\rtry:\r    import b\rexcept ImportError:\r    pass\rimport c\r",
    "form feeds": b"\x0cimport a\n\x0c\nimport b\n",
    "a body on its header's line": b"import a\ntry: import b\nexcept ImportError: pass\nimport c\n",
    "import in data beside": b"import numpy; DATA = [1, 2]; import scipy\nWORDS = ('import', 'x')\nimport cv2\n",
    "no imports": b"x = 1\n",
    "only plain": b"import a\nimport b\n",
    "empty": b"",
    "python 2": b"import a\nprint 'x'\n",
    "newer syntax": b"import a\ntype X = int\ntry:\n    import b\nexcept ImportError:\n    pass\n",
}


def _sources() -> list[tuple[str, bytes]]:
    """Edge cases, the example fleet's services and a spread of this repo's own modules, the
    hostile source corpus, and 200 real modules of the running interpreter. libcst on the whole
    file is the slow side of the comparison (~60 KB/s): files are kept under 30 KB (the
    interpreter's under 15 KB), and the
    hostile 2 MB file is cut to the same shape at 2,000 lines."""
    from hostile.test_source_corpus import BIG, CASES, NESTED

    found = [(f"edge: {name}", source) for name, source in EDGES.items()]
    found += [(str(path.relative_to(REPO)), path.read_bytes()) for path in sorted((REPO / "examples").rglob("*.py"))]
    own = [path for folder in ("depaudit", "tests", "tools", "benchmarks") for path in sorted((REPO / folder).rglob("*.py"))]
    found += [(str(path.relative_to(REPO)), path.read_bytes()) for path in own[::3] if path.stat().st_size < 30_000]
    for name, (files, _, _) in sorted(CASES.items()):
        for content in files.values():
            if content == BIG:
                content = "\n".join([*BIG.split("\n")[:2000], "import scipy\n"])
            found.append((f"hostile: {name}", content if isinstance(content, bytes) else content.encode()))
    found += [(f"nested: {name}", f"import numpy\n{text}\n".encode()) for name, text in NESTED.items()]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    modules = [p for p in sorted(stdlib.rglob("*.py")) if "site-packages" not in p.parts and p.stat().st_size < 15_000]
    step = max(1, len(modules) // 200)
    found += [(str(path), path.read_bytes()) for path in modules[::step][:200]]
    return found


def _ast(source: bytes) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escapes in real modules
        return ast.parse(source)


def _outcome(read: object) -> object:
    try:
        return read()  # type: ignore[operator]
    except Exception as error:  # the same error either way: the file's finding says it
        return type(error).__name__


def test_the_plain_route_gives_what_libcst_on_the_whole_file_gives() -> None:
    sources = _sources()
    assert len(sources) > 300
    shapes = {"plain and cut": 0, "plain only": 0, "cut only": 0}
    for name, source in sources:
        try:
            tree = tree_of(source)
        except TooDeep:
            continue  # libcst must not see it, either way
        whole = _outcome(lambda: _parse(source, PACKAGE))
        found, calls = _read(source, PACKAGE) if not isinstance(whole, str) else (_outcome(lambda: _read(source, PACKAGE)[0]), [])
        assert found == whole, name
        assert calls == (call_sites(_ast(source), source, "pkg") if tree is not None else []), name
        if tree is not None:
            plain = plain_imports(source, tree)
            unit = import_cut(source, _IMPORT_LINE, tree, plain)
            if unit is not None:
                shapes["plain and cut" if plain and unit.source else "plain only" if plain else "cut only"] += 1
    assert all(count > 20 for count in shapes.values()), shapes


def _kinds(nodes: list[ast.AST]) -> list[tuple[str, int]]:
    """Each node's kind (a call's with the name libcst gives its function) and line."""
    assert all(isinstance(node, COUNTED) for node in nodes)
    return [
        (f"call {dotted_name(node.func)}" if isinstance(node, ast.Call) else type(node).__name__, node.lineno)  # type: ignore[attr-defined]
        for node in nodes
    ]


def test_the_cut_knows_its_own_calls_and_imports_without_parsing_it_again() -> None:
    """`counted_nodes` with the cut's removed statements gives what `ast` gives on the cut's
    text, with lines in the file: the cut is not parsed a second time."""
    compared = 0
    for name, source in _sources():
        try:
            tree = tree_of(source)
        except TooDeep:
            continue
        if tree is None:
            continue
        for plain in ([], plain_imports(source, tree)):
            unit = import_cut(source, _IMPORT_LINE, tree, plain)
            if unit is None or not unit.source:
                continue  # nothing for libcst: it is not run
            try:
                cut = _ast(unit.source)
            except SyntaxError:
                continue  # a body on its header's line: libcst reads the whole file instead
            expected = [(kind, unit.original(line)) for kind, line in _kinds(counted_nodes(cut))]
            assert _kinds(counted_nodes(tree, unit.removed)) == expected, name
            compared += 1
    assert compared > 350  # 420 on Python 3.11


def test_module_level_imports_come_from_ast_and_the_blocks_from_libcst() -> None:
    source = EDGES["in every block"]
    tree = tree_of(source)
    assert tree is not None
    assert [node.lineno for node in plain_imports(source, tree)] == [1, 6, 12, 19]
    unit = import_cut(source, _IMPORT_LINE, tree, plain_imports(source, tree))
    assert unit is not None
    assert [line for line in unit.source.decode().split("\n") if line.strip()] == [
        "try:",
        "    import cv2",
        "except ImportError:",
        "    pass",
        "if TYPE_CHECKING:",
        "    import numpy",
        '@decorate(__import__("deco"))',
        "def f():",
        "    import torch",
        "class C:",
        "    from yaml import load",
        "for x in y:",
        "    import z",
        "with open(p) as handle:",
        "    import w",
    ]
    found, _ = _read(source, PACKAGE)
    assert [(f.line, f.module, f.guarded, f.lazy, f.dynamic, f.type_checking) for f in found] == [
        (1, "os", False, False, False, False),
        (3, "cv2", True, False, False, False),
        (6, "sys", False, False, False, False),
        (8, "numpy", False, False, False, True),
        (9, "deco", False, False, True, False),
        (11, "torch", False, True, False, False),
        (12, "json", False, False, False, False),
        (14, "yaml", False, False, False, False),
        (16, "z", False, False, False, False),
        (18, "w", False, False, False, False),
        (19, "last", False, False, False, False),
    ]


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        ("import_module under other names", [2, 4]),  # `import importlib as il` and `from importlib import import_module` stay
        # `ﬁle` is `file` to ast; `café` is not ASCII, nor a comment inside the statement's brackets
        ("non-ASCII names and comments", [3, 4, 6, 9, 11]),
        ("a BOM and non-ASCII", [2]),  # ast's columns on line 1 do not count the BOM
        ("latin-1 cookie", []),
        ("bare CR", []),
        ("semicolons", [3]),  # `import e;` alone on its line
        ("relative levels", [1, 2, 3, 4, 5]),
    ],
)
def test_what_stays_with_libcst(name: str, plain: list[int]) -> None:
    source = EDGES[name]
    tree = tree_of(source)
    assert tree is not None
    assert [node.lineno for node in plain_imports(source, tree)] == plain


def test_relative_levels_and_stars_read_from_ast() -> None:
    found, _ = _read(EDGES["relative levels"], PACKAGE)
    assert found == [
        FoundImport(1, "pkg.sub", ("a",), True),
        FoundImport(2, "pkg", ("b", "c"), True),
        FoundImport(3, "...x.y", ("z",), True),  # climbs out of the package: kept as written
        FoundImport(4, "....", ("w",), True),
        FoundImport(5, "pkg.sub.m", (), True),
    ]


def _searched(source: bytes, names: set[bytes]) -> list[int]:
    """The reference: one search per name (quadratic in the names, as call_sites once was)."""
    return sorted(
        match.start()
        for name in names
        for match in re.finditer(re.escape(name) + rb"\s*[.(]", source)
        if match.start() == 0 or not re.match(rb"[\w.]", source[match.start() - 1 : match.start()])
    )


def test_one_pass_over_the_words_finds_what_a_search_per_name_finds() -> None:
    odd = "x.f(\néx.g(\n.x.h(\n x (\nyx.i(\nx\t.j\néé(\n(x).k()\nx\n".encode()
    names = {b"x", "é".encode()}
    assert _uses(odd, names) == _searched(odd, names) == [0, 7, 19, 29, 36]  # not `.x`, `(x)` or `yx`
    compared = 0
    for _, source in [("odd", odd), *_sources()]:
        try:
            tree = tree_of(source)
        except TooDeep:
            continue
        if tree is None:
            continue
        names = {name.encode() for name in _bindings(tree)[0]} | {b"self", b"os", b"x", b"re", b"ast"}
        assert _uses(source, names) == _searched(source, names)
        compared += 1
    assert compared > 300


def test_the_visitor_meets_the_imports_of_a_line_as_libcsts_own_walk_does() -> None:
    """The import visitor reads a line's import statements itself (libcst's walk rebuilds what it
    enters): what it finds and counts is what the walk into each line gives."""
    import libcst as cst

    from depaudit.collect.import_visitor import _ImportVisitor

    class Walked(_ImportVisitor):
        def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
            return True

    compared = 0
    sources = _sources()
    for name, source in sources[: len(EDGES)] + sources[len(EDGES) :: 3]:  # libcst's walk is slow: a third
        try:
            if tree_of(source) is None:
                continue
            module = cst.parse_module(source)
        except Exception:
            continue  # TooDeep, or libcst cannot read it: no walk either way
        mine, walked = _ImportVisitor(PACKAGE), Walked(PACKAGE)
        module.visit(mine)
        module.visit(walked)
        assert (mine.found, mine.counter) == (walked.found, walked.counter), name
        compared += 1
    assert compared > 100


# The `ast` twin of the import visitor (import_ast.py) -------------------------------------------
TWIN_CASES: dict[str, bytes] = {
    # A decorator runs before the class body's import names import_module anew; `ast` lists it last.
    "class decorator before its body": b"@il.import_module('x')\nclass C:\n    import importlib as il\n    il.import_module('y')\n",
    "lambda body lazy, defaults not": b"f = lambda m=__import__('a'): __import__('b')\n",
    "nested calls, outer first": b"__import__('a').b(__import__('c'))\nimportlib.import_module(__import__('d').x)\n",
    "type checking and elif": b"if x:\n    import a\nelif TYPE_CHECKING:\n    import b\nelse:\n    import c\n",
    "handler that raises inside a block": b"try:\n    import a\nexcept ImportError:\n    if x:\n        raise\n",
    "handler that raises only in a def": b"try:\n    import a\nexcept ImportError:\n    def f():\n        raise\n",
    "except star": b"try:\n    import a\nexcept* ImportError:\n    pass\n",
    "anchors": b"import importlib\nimportlib.import_module('.x', __package__)\nimportlib.import_module('..y', 'p.q')\n"
    b"importlib.import_module(package='p', name='.z')\n__import__('.w')\n",
    "computed names": b"import importlib\nimportlib.import_module(name)\nimportlib.import_module('...')\nimportlib.import_module(b'x')\n"
    b"importlib.import_module(f'x')\nimportlib.import_module('a' 'b')\n",
    "f-string call": b"x = f\"{__import__('a')}\"\n",
    # Neither word in the text: no call is walked, and a fullwidth `__ｉmport__` (Python's
    # `__import__`) is what libcst makes of it, no import.
    "no call to report": "import a\n__\uff49mport__('x')\ntry:\n    import b\nexcept ImportError:\n    pass\n".encode(),
    "non-ASCII away from imports": "import a\nx = '\u00e9'  # \u00e9\ntry:\n    import b\nexcept ImportError:\n    pass\n".encode(),
}


@pytest.mark.parametrize("name", sorted(TWIN_CASES))
def test_the_ast_twin_gives_what_libcst_gives(name: str) -> None:
    source = TWIN_CASES[name]
    tree = tree_of(source)
    assert tree is not None
    assert ast_imports(tree, source, PACKAGE) == _parse(source, PACKAGE)


def test_the_twin_reads_a_class_decorator_before_the_body() -> None:
    source = TWIN_CASES["class decorator before its body"]
    tree = tree_of(source)
    assert tree is not None
    assert [(f.line, f.module, f.dynamic) for f in ast_imports(tree, source, PACKAGE)] == [(3, "importlib", False), (4, "y", True)]


@pytest.mark.parametrize(
    "source",
    [
        "import \ufb01le\n".encode(),  # `ﬁle` is `file` to ast, `ﬁle` to libcst
        "from x import (a,  # \u00e9\n    b)\n".encode(),
        "import_module = 1\n__\uff49mport__('x')\n".encode(),  # a fullwidth i: `__import__` to ast only
        "if \uff34YPE_CHECKING:\n    import a\n".encode(),
        "try:\n    import a\nexcept \uff29mportError:\n    pass\n".encode(),
    ],
)
def test_text_the_trees_may_read_differently_is_left_to_libcst(source: bytes) -> None:
    tree = tree_of(source)
    assert tree is not None
    with pytest.raises(Unsure):
        ast_imports(tree, source, PACKAGE)
    assert _read(source, PACKAGE)[0] == _parse(source, PACKAGE)
