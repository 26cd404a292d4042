"""The fast reader of a file's imports: exact readings of small sources for every rule, then
agreement with `ast` over every file of a few real installed packages."""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depaudit.python import module_imports as reader
from depaudit.python.module_imports import FileImports, ImportContext, ModuleImport, module_imports

M, G, L = ImportContext.MODULE, ImportContext.GUARDED, ImportContext.LAZY
Row = tuple[int, str, int, tuple[str, ...], ImportContext]


def rows(source: str | bytes) -> list[Row]:
    """(line, module, level, names, context) of each static import."""
    found = module_imports(source.encode() if isinstance(source, str) else source)
    assert all(not item.dynamic for item in found.imports)
    return [(i.line, i.module, i.level, i.names, i.context) for i in found.imports]


def dynamic(source: str) -> tuple[list[tuple[int, str, int, ImportContext]], tuple[int, ...]]:
    """(line, module, level, context) of each dynamic import, and the computed lines."""
    found = module_imports(source.encode())
    assert all(item.dynamic and item.names == () for item in found.imports)
    return [(i.line, i.module, i.level, i.context) for i in found.imports], found.computed


# Statements ---------------------------------------------------------------------------------------
def test_import_names_each_module_and_drops_aliases() -> None:
    assert module_imports(b"import a.b, c as d\n") == FileImports(
        (ModuleImport(1, "a.b", 0, (), M), ModuleImport(1, "c", 0, (), M)), ()
    )
    assert rows("import a . b as c ,d\n") == [(1, "a.b", 0, (), M), (1, "d", 0, (), M)]


def test_from_import_keeps_names_not_aliases_and_star() -> None:
    assert rows("from x.y import a, b as c\nfrom z import *\n") == [
        (1, "x.y", 0, ("a", "b"), M),
        (2, "z", 0, ("*",), M),
    ]


def test_parenthesised_names_across_lines_with_comments() -> None:
    source = "from x.y import (a,\n    b,  # why (not) c; import nope\n    c as d,\n)\nimport e\n"
    assert rows(source) == [(1, "x.y", 0, ("a", "b", "c"), M), (5, "e", 0, (), M)]


def test_backslash_continuations() -> None:
    source = "import a, \\\n    b\nfrom x \\\n    import y, \\\n    z as w\n"
    assert rows(source) == [(1, "a", 0, (), M), (1, "b", 0, (), M), (3, "x", 0, ("y", "z"), M)]


def test_relative_imports() -> None:
    source = "from . import x\nfrom ..a import b\nfrom .a.b import (c)\nfrom.d import e\nfrom ... import f\n"
    assert rows(source) == [
        (1, "", 1, ("x",), M),
        (2, "a", 2, ("b",), M),
        (3, "a.b", 1, ("c",), M),
        (4, "d", 1, ("e",), M),
        (5, "", 3, ("f",), M),
    ]


def test_semicolons_and_one_line_compound_statements() -> None:
    source = (
        "import os; import sys\n"
        "x = 1; from a import b\n"
        "if x: import y\n"
        "try: import z\n"
        "except ImportError: z = None\n"
        "def f(): import w; import v\n"
        "class C: import u\n"
        "else_ = 1; import t\n"
    )
    assert rows(source) == [
        (1, "os", 0, (), M),
        (1, "sys", 0, (), M),
        (2, "a", 0, ("b",), M),
        (3, "y", 0, (), M),
        (4, "z", 0, (), G),
        (6, "w", 0, (), L),
        (6, "v", 0, (), L),
        (7, "u", 0, (), M),
        (8, "t", 0, (), M),
    ]


# Strings and comments -----------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", ["", "r", "b", "f", "u", "R", "rb", "Rb", "bR", "BR", "fr", "Rf"])
@pytest.mark.parametrize("quotes", ['"""', "'''"])
def test_nothing_in_a_triple_quoted_string_is_an_import(prefix: str, quotes: str) -> None:
    source = (
        f"x = {prefix}{quotes}\nimport nope\nfrom nope import x\n{quotes}\n"
        f"def f():\n    {prefix}{quotes}Example:\n\n    from nope import y; import nope\n    {quotes}\n    import yes\n"
    )
    assert rows(source) == [(10, "yes", 0, (), L)]


def test_comments_and_one_line_strings_are_no_imports() -> None:
    source = (
        "# import nope\n"
        "    # from nope import x\n"
        "x = 1  # then; import nope\n"
        "y = 'a; import nope; from nope import x: import nope'\n"
        'z = "b: import nope"  # note: from nope import x\n'
        "w = \"'''\"  # a triple quote in a string opens nothing\n"
        "import a\n"
        "v = '\"\"\"'\n"
        "# '''\n"
        "import b\n"
    )
    assert rows(source) == [(7, "a", 0, (), M), (10, "b", 0, (), M)]


def test_comment_ending_in_a_backslash_continues_nothing() -> None:
    assert rows("x = 1  # a comment \\\nimport a\n") == [(2, "a", 0, (), M)]


# Contexts -----------------------------------------------------------------------------------------
def test_transparent_blocks_keep_module_context() -> None:
    source = (
        "class A:\n"
        "    import a\n"
        "    with x:\n"
        "        if y:\n"
        "            import b\n"
        "        elif z:\n"
        "            import c\n"
        "for i in y:\n"
        "    while z:\n"
        "        import d\n"
        "match x:\n"
        "    case 1:\n"
        "        import e\n"
    )
    assert rows(source) == [(2, "a", 0, (), M), (5, "b", 0, (), M), (7, "c", 0, (), M), (10, "d", 0, (), M), (13, "e", 0, (), M)]


def test_a_def_above_makes_an_import_lazy_whatever_else_is_above() -> None:
    source = (
        "def f():\n"
        "    import a\n"
        "class C:\n"
        "    def m(self):\n"
        "        try:\n"
        "            import b\n"
        "        except ImportError:\n"
        "            pass\n"
        "try:\n"
        "    async def g():\n"
        "        async with x:\n"
        "            import c\n"
        "except ImportError:\n"
        "    def h(\n"
        "        a: int,\n"
        ") -> None:\n"
        "        import d\n"
        "    import e\n"
    )
    assert rows(source) == [(2, "a", 0, (), L), (6, "b", 0, (), L), (12, "c", 0, (), L), (17, "d", 0, (), L), (18, "e", 0, (), G)]


@pytest.mark.parametrize(
    "clause",
    [
        "except ImportError:",
        "except ModuleNotFoundError as error:",
        "except Exception:",
        "except BaseException:",
        "except:",
        "except (KeyError, ImportError) as error:",
        "except (\n    KeyError,\n    ModuleNotFoundError,\n):",
        "except builtins.ImportError:",
        "except* ImportError:",
    ],
)
def test_try_catching_import_errors_guards_its_body(clause: str) -> None:
    source = f"try:\n    if x:\n        import a\n{clause}\n    a = None\nimport b\n"
    assert rows(source) == [(3, "a", 0, (), G), (len(source.splitlines()), "b", 0, (), M)]


def test_try_catching_something_else_is_transparent_but_its_fallbacks_are_guarded() -> None:
    source = (
        "try:\n"
        "    import a\n"
        "except KeyError:\n"
        "    import b\n"
        "except (ValueError, ImportErrorish):\n"
        "    pass\n"
        "else:\n"
        "    import c\n"
        "finally:\n"
        "    import d\n"
    )
    assert rows(source) == [(2, "a", 0, (), M), (4, "b", 0, (), G), (8, "c", 0, (), G), (10, "d", 0, (), G)]


def test_a_later_clause_of_the_same_try_decides() -> None:
    source = "try:\n    import a\nexcept KeyError:\n    pass\nexcept ImportError:\n    pass\n"
    assert rows(source) == [(2, "a", 0, (), G)]


def test_an_except_of_another_try_decides_nothing() -> None:
    source = (
        "try:\n"
        "    import a\n"
        "    try:\n"
        "        pass\n"
        "    except ImportError:\n"
        "        pass\n"
        "except KeyError:\n"
        "    pass\n"
    )
    assert rows(source) == [(2, "a", 0, (), M)]


def test_else_belongs_to_the_construct_at_its_indent() -> None:
    source = (
        "if x:\n"
        "    import a\n"
        "else:\n"
        "    import b\n"
        "for i in y:\n"
        "    pass\n"
        "else:\n"
        "    import c\n"
        "while z:\n"
        "    pass\n"
        "# else: a comment at the same indent\n"
        "else:\n"
        "    import d\n"
        "try:\n"
        "    pass\n"
        "except KeyError:\n"
        "    pass\n"
        "else:\n"
        "    if x:\n"
        "        pass\n"
        "    else:\n"
        "        import e\n"
    )
    assert rows(source) == [(2, "a", 0, (), M), (4, "b", 0, (), M), (8, "c", 0, (), M), (13, "d", 0, (), M), (22, "e", 0, (), G)]


def test_type_checking_imports_never_run() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import a\n"
        "    if x:\n"
        "        import b\n"
        "else:\n"
        "    import c\n"
        "if typing.TYPE_CHECKING: import d\n"
        "if not TYPE_CHECKING:\n"
        "    import e\n"
        "def f():\n"
        "    if TYPE_CHECKING:\n"
        "        import g\n"
        "    import h\n"
    )
    assert rows(source) == [(1, "typing", 0, ("TYPE_CHECKING",), M), (7, "c", 0, (), M), (10, "e", 0, (), M), (14, "h", 0, (), L)]


def test_tabs_indent_to_the_next_multiple_of_eight() -> None:
    source = (
        "try:\n"
        "\tif x:\n"
        "\t\timport a\n"  # 16 columns
        "        \tdef f():\n"  # 8 spaces then a tab: 16 columns, inside the if
        "\t\t\timport b\n"  # 24 columns
        "except ImportError:\n"
        "\tpass\n"
    )
    assert rows(source) == [(3, "a", 0, (), G), (5, "b", 0, (), L)]


def test_statements_over_lines_do_not_open_blocks() -> None:
    source = (
        "def f(a,\n"
        "      b):\n"
        "    x = [a\n"
        "for a in b\n"  # a comprehension's `for`, dedented: no header
        "if a]\n"
        "    import a\n"
        "if (x and\n"
        "        y):\n"
        "    import b\n"
    )
    assert rows(source) == [(6, "a", 0, (), L), (9, "b", 0, (), M)]


def test_one_line_bodies_of_headers_over_lines() -> None:
    source = (
        "class C:\n"
        "    async def g(a,\n"
        "b): import a; import b\n"  # dedented below the def: still its one-line body
        "if (x and\n"
        "        y): from c import d\n"
    )
    assert rows(source) == [(3, "a", 0, (), L), (3, "b", 0, (), L), (5, "c", 0, ("d",), M)]


def test_statements_on_the_line_a_docstring_closes() -> None:
    source = (
        "def f():\n"
        "    pass\n"
        "x = '''\n"
        "    text\n"
        "    '''; import a\n"
        "y = f('''\n"
        "''', importlib.import_module('b'))\n"
    )
    found = module_imports(source.encode())
    assert [(i.line, i.module, i.context, i.dynamic) for i in found.imports] == [(5, "a", M, False), (7, "b", M, True)]


# Dynamic imports ----------------------------------------------------------------------------------
def test_dynamic_imports_of_a_literal_and_computed_ones() -> None:
    source = (
        "import importlib\n"
        "from importlib import import_module\n"
        "m = importlib.import_module('a.b')\n"
        "n = importlib.import_module(name)\n"
        '__import__("c", fromlist=["x"])\n'
        "o = import_module('.d', package='pkg')\n"
        "p = importlib.import_module(f'e.{x}')\n"
        "q = import_module('f' + suffix)\n"
        "r = importlib.import_module('g' 'h')\n"
        "s = __import__(r'i\\x')\n"
        "x.import_module('no')\n"
        "def import_module(name): pass\n"
        "my_import_module('no')\n"
    )
    found = module_imports(source.encode())
    assert [(i.line, i.module, i.dynamic) for i in found.imports[:2]] == [(1, "importlib", False), (2, "importlib", False)]
    assert dynamic(source.split("m = ", 1)[1]) == (
        [(1, "a.b", 0, M), (3, "c", 0, M), (4, "d", 1, M), (7, "gh", 0, M), (8, "i\\x", 0, M)],
        (2, 5, 6),
    )


def test_dynamic_imports_take_the_context_of_their_statement() -> None:
    source = (
        "def f(\n"
        "    a,\n"
        ") -> None:\n"
        "    x = foo(\n"
        "        importlib.import_module('a'),\n"
        "    )\n"
        "try:\n"
        "    m = __import__('b')\n"
        "except ImportError:\n"
        "    m = None\n"
        "if importlib.import_module('c'):\n"
        "    pass\n"
        "if x: importlib.import_module('d')\n"
        "if TYPE_CHECKING:\n"
        "    importlib.import_module('e')\n"
        "    importlib.import_module(name)\n"
        "# importlib.import_module('f')\n"
        "'''importlib.import_module(g)'''\n"
        "h = lambda: importlib.import_module('h')\n"  # ast sees no def: read like any statement
    )
    assert dynamic(source) == ([(5, "a", 0, L), (8, "b", 0, G), (11, "c", 0, M), (13, "d", 0, M), (19, "h", 0, M)], ())


# Odd input ---------------------------------------------------------------------------------------
def test_bytes_that_are_not_utf8_are_read_with_replacement() -> None:
    source = b"# caf\xe9\nx = '\xff\xfe'\ndef f():\n    import a\nimport b\n"
    assert rows(source) == [(4, "a", 0, (), L), (5, "b", 0, (), M)]


def test_crlf_lone_cr_and_bom() -> None:
    assert rows(b"\xef\xbb\xbfimport a\r\nif x:\r\n    import b\rdef f():\r    import c\n") == [
        (1, "a", 0, (), M),
        (3, "b", 0, (), M),
        (5, "c", 0, (), L),
    ]


def test_what_the_fast_reader_cannot_follow_is_read_with_ast(monkeypatch: pytest.MonkeyPatch) -> None:
    # The second line starts inside a one-line string continued by a backslash: read from that
    # line, `"""` looks like an opening that never closes.
    source = "x = 'abc\\\n\"\"\"'\ntry:\n    import a\nexcept ImportError:\n    pass\n"
    calls: list[str] = []
    real = reader._from_ast
    monkeypatch.setattr(reader, "_from_ast", lambda text: calls.append(text) or real(text))
    assert rows(source) == [(4, "a", 0, (), G)]
    assert len(calls) == 1


@pytest.mark.parametrize(
    "source",
    [b"", b"\x00\x01\x02", b"'''never closed\nimport a\n", b"(" * 5000, b"def f(:\n  import", b"\\\n" * 50, b"\xff" * 100],
)
def test_odd_input_never_raises(source: bytes) -> None:
    assert isinstance(module_imports(source), FileImports)


FRAGMENTS = ["import a", "from . import b", "try:", "except ImportError:", "else:", "def f():", "if TYPE_CHECKING:", "x"]
FRAGMENTS += ["'''", '"', "#", "\\", "(", ")", ";", ":", "\t", "    ", "\n", "\r", "import_module(", "\xe9"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40))
def test_any_mix_of_fragments_never_raises(fragments: list[str]) -> None:
    assert isinstance(module_imports("".join(fragments).encode()), FileImports)


# Agreement with ast ------------------------------------------------------------------------------
def reference(source: bytes) -> FileImports:
    """The same reading from `ast`, written apart from the reader: each import's context from the
    (parent, field) path down to it."""
    tree = ast.parse(source)
    found: list[tuple[int, int, ModuleImport]] = []
    computed: list[int] = []
    for node, path in _walk(tree, ()):
        context = _context(path)
        if context is None:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, node.col_offset, ModuleImport(node.lineno, a.name, 0, (), context)) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names)
            found.append((node.lineno, node.col_offset, ModuleImport(node.lineno, node.module or "", node.level, names, context)))
        elif isinstance(node, ast.Call) and _imports(node.func):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                level = len(first.value) - len(first.value.lstrip("."))
                item = ModuleImport(node.lineno, first.value[level:], level, (), context, True)
                found.append((node.lineno, node.col_offset, item))
            else:
                computed.append(node.lineno)
    found.sort(key=lambda entry: entry[:2])
    return FileImports(tuple(item for _, _, item in found), tuple(sorted(computed)))


Path_ = tuple[tuple[ast.AST, str], ...]


def _walk(node: ast.AST, path: Path_) -> Iterator[tuple[ast.AST, Path_]]:
    yield node, path
    for field, value in ast.iter_fields(node):
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, ast.AST):
                yield from _walk(child, (*path, (node, field)))


def _context(path: Path_) -> ImportContext | None:
    """None under `if TYPE_CHECKING:` (never runs)."""
    lazy = guarded = False
    for parent, field in path:
        if isinstance(parent, ast.If) and field == "body" and _named(parent.test, {"TYPE_CHECKING"}):
            return None
        lazy |= isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)) and field == "body"
        if isinstance(parent, (ast.Try, ast.TryStar)):
            survives = any(_caught(h.type) and not any(isinstance(b, ast.Raise) for b in h.body) for h in parent.handlers)
            guarded |= field in ("orelse", "finalbody") or (field == "body" and survives)
        guarded |= isinstance(parent, ast.ExceptHandler) and field == "body"
    return L if lazy else G if guarded else M


def _named(node: ast.AST | None, names: set[str]) -> bool:
    return (isinstance(node, ast.Name) and node.id in names) or (isinstance(node, ast.Attribute) and node.attr in names)


def _caught(kind: ast.expr | None) -> bool:
    errors = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
    return kind is None or _named(kind, errors) or (isinstance(kind, ast.Tuple) and any(_caught(e) for e in kind.elts))


def _imports(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module" and isinstance(func.value, ast.Name) and func.value.id == "importlib"
    return isinstance(func, ast.Name) and func.id in ("import_module", "__import__")


def test_the_reference_reads_the_rules_as_the_reader_does() -> None:
    source = (
        b"import a\ntry:\n    import b\nexcept ImportError:\n    import c\nif TYPE_CHECKING:\n    import d\n"
        b"def f():\n    try:\n        import e\n    except KeyError:\n        importlib.import_module(name)\n"
    )
    assert reference(source) == module_imports(source) == FileImports(
        (ModuleImport(1, "a", 0, (), M), ModuleImport(3, "b", 0, (), G), ModuleImport(5, "c", 0, (), G), ModuleImport(10, "e", 0, (), L)),
        (12,),
    )


def test_agrees_with_ast_on_real_packages() -> None:
    files: list[Path] = []
    for package in ("libcst", "rich", "packaging", "elftools"):
        spec = importlib.util.find_spec(package)  # finds the folder; imports none of its files
        assert spec is not None and spec.submodule_search_locations
        for folder in spec.submodule_search_locations:
            files += sorted(Path(folder).rglob("*.py"))
    compared = 0
    disagreeing: list[str] = []
    for path in files:
        source = path.read_bytes()
        try:
            expected = reference(source)
        except (SyntaxError, ValueError):
            continue  # not Python ast can read: nothing to compare
        compared += 1
        if module_imports(source) != expected:
            disagreeing.append(str(path))
    assert compared > 300
    assert len(disagreeing) <= compared // 100, "disagreeing files:\n" + "\n".join(disagreeing)


def test_a_handler_that_raises_again_at_its_level_guards_nothing() -> None:
    """Pillow's Image.py: `from . import _imaging` in a try whose ImportError handler explains,
    then raises: the import is not survived. A raise nested in an `if` of the handler may not
    run, and a one-line `except ImportError: raise` is caught too."""
    source = (
        b"try:\n    from . import _imaging as core\nexcept ImportError as v:\n    core = None\n"
        b"    if v:\n        pass\n    raise\n"
        b"try:\n    import b\nexcept ImportError: raise\n"
        b"try:\n    import c\nexcept KeyError:\n    pass\nexcept ImportError:\n    if x:\n        raise\n"
    )
    expected = FileImports(
        (ModuleImport(2, "", 1, ("_imaging",), M), ModuleImport(9, "b", 0, (), M), ModuleImport(12, "c", 0, (), G)),
        (),
    )
    assert module_imports(source) == expected
    assert reference(source) == expected
    assert reader._from_ast(source.decode()) == expected


def test_a_triple_quoted_string_ends_where_the_token_regex_ends_it() -> None:
    """`_closing` (str.find and a count of the backslashes before each candidate) against _TOKEN,
    on strings made of quotes, backslashes and newlines, the characters that decide the end."""
    import random

    from depaudit.python.module_imports import _TOKEN, _closing

    pieces = ['"', "'", "\\", "a", "\n", '"""', "'''", "\\\\"]
    generator = random.Random(22)
    closed = 0
    for _ in range(20_000):
        quotes = generator.choice(['"""', "'''"])
        body = "".join(generator.choice(pieces) for _ in range(generator.randint(0, 12)))
        text = "x" + quotes + body + generator.choice(["", quotes, '"', "'"]) + "y"
        token = _TOKEN.match(text, 1)
        expected = None if token is None or token.end() - 1 < 6 else token.end()
        try:
            found: int | None = _closing(text, 1)
        except ValueError:
            found = None
        assert found == expected, text
        closed += expected is not None
    assert 5_000 < closed < 15_000
