"""The import statements of one third-party Python source file, read fast and never run.

Following imports through installed wheels means reading thousands of files (torch alone ships
~2,300), and `ast.parse` spends most of that time on code that holds no import. This reads the
text with compiled regexes instead, ~13x faster. Only triple-quoted strings are blanked (a
docstring line can look like code; a comment or a one-line string cannot start a line); a rare
`;`, `:` or call match is checked against the comments and strings of its own line. Context comes
from indentation, and only where an import is nested: the nearest line above with less indent is
the header of its block, found by a regex searching backwards; header contexts are remembered.
`ast` is the reference, and reads any file this fails on.
"""

from __future__ import annotations

import ast
import bisect
import functools
import re
import warnings
from dataclasses import dataclass
from enum import Enum
from typing import Any


class ImportContext(str, Enum):
    MODULE = "module"  # runs when the module is imported
    GUARDED = "guarded"  # in a try that catches ImportError-ish, or in a fallback branch of a try
    LAZY = "lazy"  # in a function body: runs only if it is called


@dataclass(frozen=True)
class ModuleImport:
    line: int  # 1-based line of the statement
    module: str  # dotted, without leading dots ("" for `from . import x`)
    level: int  # leading dots
    names: tuple[str, ...]  # `from M import a, b as c` → ("a", "b"); () for `import M`
    context: ImportContext
    dynamic: bool = False  # importlib.import_module("literal") / __import__("literal")


@dataclass(frozen=True)
class FileImports:
    imports: tuple[ModuleImport, ...]  # in line order
    computed: tuple[int, ...]  # lines of import_module(...) / __import__(...) without a literal


_STRINGS = r"""|'[^'\\\n]*(?:\\.[^'\\\n]*)*'|"[^"\\\n]*(?:\\.[^"\\\n]*)*\""""  # one-line strings
# A comment or a string (a prefix stays in the code, a harmless name). The engine tests each
# character against all openings, ~10x slower than a search for one literal: this only ever reads
# a line up to a point, never a whole file.
_TOKEN = re.compile(
    r"#[^\n]*" r"|'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''" r'|"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"""' + _STRINGS, re.S
)
_OPENING = re.compile(r"[#'\"]")
# An import starting a line; one after `;` or after the colon of a one-line compound statement; a
# call of import_module / __import__. One regex each, each starting with a literal: the engine
# then jumps between occurrences of it (an alternation, `^` or a lookbehind first makes it test
# every offset: 3-8x slower). `*+` never retries a keyword at a shorter indent.
_LINE_IMPORT = re.compile(r"\n *+(import|from)\b")
_AFTER_SEMICOLON = re.compile(r";[ \f]*+(import|from)\b")
_AFTER_COLON = re.compile(r":[ \f]*+(import|from)\b")
_CALL = re.compile(r"_(?:_import__|module) *+\(")  # from its `_`: see _call_start
_IMPORTLIB = re.compile(r"importlib *\. *import$")
_HEADER = re.compile(r" *(async +def|def|class|if|elif|else|try|except|finally|with|for|while|async|match|case)\b")
_HEADER_PART = re.compile(r"[()\[\]{}\n]|:(?!=)|#[^\n]*" + _STRINGS)  # what ends a header; strings skipped
_INDENT = re.compile(r" *")
_TYPE_CHECKING = re.compile(r"(?:el)?if +(?:\w+ *\. *)*TYPE_CHECKING *:")
_RAISE_AFTER_COLON = re.compile(r"[ \t]*raise\b")
_BODY_INDENT = re.compile(r"\n( +)[^ \n#]")
_CATCHES = re.compile(r"except\s*\*?\s*$|.*\b(?:ImportError|ModuleNotFoundError|Exception|BaseException)\b", re.S)
# One import statement: to the end of its logical line or a `;`, through one parenthesised list.
_STATEMENT = re.compile(r"[^\n;\\(#]*(?:\\\n[^\n;\\(#]*)*(?:\((?:[^)#]|#[^\n]*)*\))?")
_COMMENT = re.compile(r"#[^\n]*")
_FROM = re.compile(r"from\s*([.\s]*)(.*?)\s*\bimport\b(.*)", re.S)
# A first argument made only of str literals: plain, else (escapes, concatenated) by literal_eval.
_PLAIN_LITERAL = re.compile(r"\s*[rRuU]?(['\"])([^'\"\\\n]*)\1\s*[,)]")
_LITERAL = re.compile(r"\s*((?:[rRuU]?(?:" + _STRINGS[1:] + r")\s*)+)[,)]")

_Context = tuple[bool, bool, bool]  # (never runs: under `if TYPE_CHECKING`, lazy, guarded)
_TOP: _Context = (False, False, False)
_NO_HEADER: _Context = (True, True, True)  # remembered for a line that only looks like a header


def module_imports(source: bytes) -> FileImports:
    original = source.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if "\r" in original:  # Python ends a line at \r\n, \n or a lone \r
        original = original.replace("\r\n", "\n").replace("\r", "\n")
    # Python indents a tab to the next multiple of 8; no other column matters here.
    text = original.expandtabs(8) if "\t" in original else original
    try:
        return _Reader("\n" + text).read()  # "\n": every line, the first too, follows a newline
    except Exception:  # odd input must never break a scan: ast decides then
        return _from_ast(original)


CACHE_KIND = "module-imports"  # content key of a file → its imports


def import_statement(imported: ModuleImport) -> str:
    """The import as evidence prints it, with the context that weakens it."""
    dots = "." * imported.level
    if imported.names:
        statement = f"from {dots}{imported.module} import {', '.join(imported.names)}"
    else:
        statement = f"import {dots}{imported.module}"
    if imported.context is ImportContext.GUARDED:
        statement += ", inside a try that survives its failure"
    elif imported.context is ImportContext.LAZY:
        statement += ", inside a function not known to be called"
    return statement


def imports_to_row(read: FileImports) -> list[Any]:
    """A cache row: JSON-able lists."""
    return [[import_to_row(i) for i in read.imports], list(read.computed)]


def imports_from_row(row: list[Any]) -> FileImports:
    rows, computed = row
    return FileImports(tuple(import_from_row(i) for i in rows), tuple(computed))


def import_to_row(i: ModuleImport) -> list[Any]:
    return [i.line, i.module, i.level, list(i.names), i.context.value, i.dynamic]


def import_from_row(row: list[Any]) -> ModuleImport:
    line, module, level, names, context, dynamic = row
    return ModuleImport(line, module, level, tuple(names), ImportContext(context), dynamic)


@functools.cache
def _shallower(indent: int) -> re.Pattern[str]:
    """The last line (not blank, not a comment) indented less than `indent`: the greedy `.*` is
    given back one newline at a time, in C."""
    return re.compile(rf"(?s:.*)\n(?= {{0,{indent - 1}}}[^ \n#])")


@functools.cache
def _not_deeper(indent: int) -> re.Pattern[str]:
    """The next line (not blank, not a comment) indented `indent` or less."""
    return re.compile(rf"\n(?= {{0,{indent}}}[^ \n#])")


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.code, self.strings = _blank_long_strings(text)  # same offsets as text
        self.bodies: dict[int, _Context] = {}  # line start → context of the body of its header
        self.scans: dict[int, tuple[int, int]] = {}  # indent → (from, found) of its latest scan
        self.depths = (0, 0, 0, 0)  # forward bracket count: (from, up to, depth there, last depth-0 line)

    def read(self) -> FileImports:
        code = self.code
        items = list(_LINE_IMPORT.finditer(code))
        # `import_module(` and `__import__(` both hold "import_": most files do not, and the search
        # for that word is ~10x cheaper than _CALL's (whose `_` starts at every underscore).
        rarer = (_AFTER_SEMICOLON, _AFTER_COLON, _CALL) if "import_" in code else (_AFTER_SEMICOLON, _AFTER_COLON)
        if rare := [m for regex in rarer for m in regex.finditer(code)]:
            items = sorted(items + rare, key=re.Match.start)
        imports: list[ModuleImport] = []
        computed: list[int] = []
        line = counted = last = clear = 0  # last: where the item before's statement starts; clear: no string there
        for match in items:
            pos = match.start()
            start = pos + 1 if match.re is _LINE_IMPORT else code.rfind("\n", 0, pos) + 1
            line += code.count("\n", counted, start)
            counted = start
            indent = _INDENT.match(code, start).end() - start
            if match.re is _LINE_IMPORT:
                if code[start - 2] == "\\" and _covering(code, code.rfind("\n", 0, start - 1) + 1, start - 2) == start - 2:
                    continue  # continues the line above: `from x \` then `import y`
                context = self._within(start, indent)
                last = start
            elif clear > pos or (clear := _covering(code, max(start, clear), pos)) > pos:
                continue  # in a comment or a one-line string (the one the item before was in?)
            elif match.re is _CALL and (pos := _call_start(code, pos)) < 0:
                continue  # a method, a longer name, a def
            else:
                start = last = self._statement_start(start, indent, pos, last)
                if (body := self._body(start)) and _header_colon(code, start) <= pos:
                    context = body  # after its colon: `if x: import y`
                else:  # in a statement, or in a header: in the block around it
                    context = self._within(start, _INDENT.match(code, start).end() - start)
            dropped, lazy, guarded = context
            if dropped:
                continue  # under `if TYPE_CHECKING:`: never runs
            kind = ImportContext.LAZY if lazy else ImportContext.GUARDED if guarded else ImportContext.MODULE
            if match.re is not _CALL:
                for module, level, names in _parse(_STATEMENT.match(code, match.start(1)).group()):
                    imports.append(ModuleImport(line, module, level, names, kind))
            elif (module := _literal(self.text, match.end())) is not None:
                bare = module.lstrip(".")
                imports.append(ModuleImport(line, bare, len(module) - len(bare), (), kind, True))
            else:
                computed.append(line)
        return FileImports(tuple(imports), tuple(computed))

    def _statement_start(self, start: int, indent: int, pos: int, known: int) -> int:
        """The first line of the statement holding `pos` (a `;`, a colon, a call), whose physical
        line at `start` may continue it: `b): import c` ending `def f(a,`, `x = f(` then `g())`.
        Brackets are counted on from a line at depth 0 (the nearest header above, or the statement
        of the item before), resuming the count of the item before: a long body or one statement
        of many calls (a registry) is counted once. The answer: the last line starting at depth 0,
        neither after a backslash nor in a string."""
        code, anchor = self.code, 0
        while indent > 0 and (start := self._nearest(start, indent)) >= 0:
            if self._body(start) is not None:
                anchor = start
                break
        anchor = max(anchor, known)
        origin, scanned, depth, last = self.depths
        if not origin <= anchor <= scanned <= pos:
            origin = scanned = last = anchor
            depth = 0
        for part in _HEADER_PART.finditer(code, scanned, pos):
            char = part.group()[0]
            if char in "([{)]}":
                depth += 1 if char in "([{" else -1
            elif char == "\n" and depth <= 0 and code[part.start() - 1] != "\\" and not self._in_string(part.start()):
                last = part.end()
        self.depths = (origin, pos, depth, last)
        return max(anchor, last)

    def _nearest(self, pos: int, indent: int) -> int:
        """The start of the last line before `pos` (not blank, not a comment) indented less than
        `indent`, or -1. A scan for the same indent from further on stops where the one before
        started, and falls back to what it found: imports along a long body scan it once."""
        since, before = self.scans.get(indent, (0, -1))
        if since > pos:  # a header above, on the way up from a later line: leave the memo be
            return found.end() if (found := _shallower(indent).match(self.code, 0, pos)) else -1
        found = _shallower(indent).match(self.code, max(since - 1, 0), pos)
        self.scans[indent] = (pos, start := found.end() if found else before)
        return start

    def _in_string(self, pos: int) -> bool:
        """Whether `pos` is in a blanked triple-quoted string."""
        index = bisect.bisect(self.strings, (pos,)) - 1
        return index >= 0 and self.strings[index][1] > pos

    def _within(self, pos: int, indent: int) -> _Context:
        """The context of the statement starting the line at `pos`: that of the body of the nearest
        header above with less indent. A line between that is no header continues a statement
        (dedented: `) -> None:`), skipped."""
        while indent > 0 and (pos := self._nearest(pos, indent)) >= 0:
            if context := self._body(pos):
                return context
        return _TOP

    def _body(self, start: int) -> _Context | None:
        """The context of the body of the header at `start`; None if the line is no header."""
        if (known := self.bodies.get(start)) is not None:
            return None if known is _NO_HEADER else known
        header = _HEADER.match(self.code, start)
        if header is None or _header_colon(self.code, header.end()) < 0:
            self.bodies[start] = _NO_HEADER
            return None
        word, indent = header.group(1), header.start(1) - start
        dropped, lazy, guarded = self._within(start, indent)
        if word.startswith(("def", "async")) and word != "async":
            lazy = True
        elif word in ("if", "elif"):
            dropped = dropped or bool(_TYPE_CHECKING.match(self.code, header.start(1)))
        elif word == "try":
            guarded = guarded or self._catches(start, indent)
        elif word in ("except", "finally") or (word == "else" and self._after_try(start, indent)):
            guarded = True
        self.bodies[start] = context = (dropped, lazy, guarded)
        return context

    def _catches(self, start: int, indent: int) -> bool:
        """Whether an except clause of the try at `start` catches ImportError-ish."""
        code, pos = self.code, self.code.find("\n", start)
        while pos >= 0 and (clause := _not_deeper(indent).search(code, pos)) is not None:
            pos = clause.end()
            if code[pos] in ")]}":
                continue  # a closing bracket, dedented, of a statement in the try body
            header = _HEADER.match(code, pos)
            if header is None or header.group(1) != "except":
                return False
            end = code.find(":", pos)
            if _CATCHES.match(code, header.start(1), end if end >= 0 else len(code)) and not self._escapes(end, indent):
                return True
        return False

    def _escapes(self, colon: int, indent: int) -> bool:
        """Whether the handler whose header ends at `colon` raises again at its own level (Pillow's
        `except ImportError: ...; raise`): the import it guards is then not survived."""
        code = self.code
        if colon < 0:
            return False
        line_end = code.find("\n", colon)
        line_end = len(code) if line_end < 0 else line_end
        if _RAISE_AFTER_COLON.match(code, colon + 1, line_end):
            return True  # a one-line handler: `except ImportError: raise`
        after = _not_deeper(indent).search(code, line_end)
        body = code[line_end : after.start() if after else len(code)]
        first = _BODY_INDENT.search(body)
        return first is not None and re.search(rf"\n{first.group(1)}raise\b", body) is not None

    def _after_try(self, start: int, indent: int) -> bool:
        """Whether the else at `start` is a try's (after its except), not an if's, for's, while's."""
        while (start := self._nearest(start, indent + 1)) >= 0:
            if header := _HEADER.match(self.code, start):
                return header.group(1) in ("try", "except")
        return False


# Every ASCII character but the newline, as a space: what a blanked string is made of. Other
# characters stay (no keyword, bracket or quote is made of them), and str.translate keeps
# positions: ~3x faster than building the blank line by line.
_BLANK = {code: " " for code in range(128) if code != 10}


def _blank_long_strings(text: str) -> tuple[str, list[tuple[int, int]]]:
    """`text` with each triple-quoted string blanked, newlines kept, and their spans. Openings are
    found with str.find (fast); each is checked by reading its line up to it (in a comment?)."""
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    done = clear = 0  # the end of the last string blanked; of what is known to be no string
    double, single = text.find('"""'), text.find("'''")
    while double >= 0 or single >= 0:
        opening = double if single < 0 or 0 <= double < single else single
        end = _covering(text, max(text.rfind("\n", 0, opening) + 1, clear), opening)
        if end == opening:
            end = _closing(text, opening)
            pieces += [text[done:opening], text[opening:end].translate(_BLANK)]
            done = end
            spans.append((opening, end))
        clear = end
        if 0 <= double < end:
            double = text.find('"""', end)
        if 0 <= single < end:
            single = text.find("'''", end)
    pieces.append(text[done:])
    return "".join(pieces), spans


def _closing(text: str, opening: int) -> int:
    """The end of the triple-quoted string opening at `opening`: past the first closing quotes no
    backslash escapes, as _TOKEN reads it (str.find, ~3x faster than the regex on docstrings)."""
    quotes, start = text[opening : opening + 3], opening + 3
    at = start
    while (at := text.find(quotes, at)) >= 0:
        before = at
        while before > start and text[before - 1] == "\\":
            before -= 1
        if (at - before) % 2 == 0:
            return at + 3
        at += 1  # its first quote is escaped: the string goes on from the next one
    raise ValueError("a triple-quoted string never closes")


def _covering(text: str, scan: int, pos: int) -> int:
    """The end of the comment or string opening in text[scan:pos] that covers `pos`, else `pos`:
    either way, where a later scan on the same line may start (a long line is read once)."""
    while (opening := _OPENING.search(text, scan, pos)) is not None:
        token = _TOKEN.match(text, opening.start())
        if token is None or token.end() > pos:
            return pos + 1 if token is None else token.end()
        scan = token.end()
    return pos


def _header_colon(code: str, pos: int) -> int:
    """Where the header from `pos` ends: its colon outside brackets; -1 if its line ends first or
    a bracket closes that it did not open (the `for` or `if` of a comprehension, dedented)."""
    depth = 0
    for part in _HEADER_PART.finditer(code, pos):
        char = part.group()[0]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth < 0:
                return -1
        elif char == ":" and depth == 0:
            return part.start()
        elif char == "\n" and depth == 0 and code[part.start() - 1] != "\\":
            return -1
    return -1


def _literal(text: str, pos: int) -> str | None:
    """The first argument of the call whose `(` ends at `pos`, if made only of str literals."""
    if plain := _PLAIN_LITERAL.match(text, pos):
        return plain.group(2)
    literal = _LITERAL.match(text, pos)
    return None if literal is None else ast.literal_eval(f"({literal.group(1)})")


def _call_start(code: str, pos: int) -> int:
    """Where the call found from the `_` of `__import__(` or `import_module(` starts; -1 for a
    method or a longer name (no import call to ast), or a def of it."""
    if code[pos + 1] == "m":
        if not code.endswith("import", 0, pos):
            return -1
        pos -= 6
        if prefix := _IMPORTLIB.search(code, max(0, pos - 40), pos + 6):
            pos = prefix.start()
    before = code[pos - 1]
    return -1 if before.isalnum() or before in "_." or code.endswith("def ", 0, pos) else pos


def _parse(statement: str) -> list[tuple[str, int, tuple[str, ...]]]:
    """(module, level, names) of each module one import statement names."""
    if "#" in statement:
        statement = _COMMENT.sub("", statement)
    statement = statement.replace("\\\n", " ")
    if statement.startswith("import"):
        found = []
        for words in map(str.split, statement[6:].split(",")):
            if len(words) >= 3 and words[-2] == "as":
                words = words[:-2]
            found += [("".join(words), 0, ())] if words else []
        return found
    if (parts := _FROM.match(statement)) is None:
        return []
    names = tuple(words[0] for words in map(str.split, parts.group(3).replace("(", " ").replace(")", " ").split(",")) if words)
    return [("".join(parts.group(2).split()), parts.group(1).count("."), names)]


def _from_ast(text: str) -> FileImports:
    """The same reading through `ast`, for a file the fast reader could not follow."""
    found: list[tuple[int, int, ModuleImport]] = []
    computed: list[int] = []

    def visit(node: ast.AST, context: ImportContext) -> None:
        guarded = ImportContext.GUARDED if context is ImportContext.MODULE else context  # lazy stays
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            header = [*node.decorator_list, node.args, *([node.returns] if node.returns else [])]
            parts = [(header, context), (node.body, ImportContext.LAZY)]
        elif isinstance(node, ast.If) and _name(node.test) == "TYPE_CHECKING":
            parts = [([node.test, *node.orelse], context)]  # the body never runs
        elif isinstance(node, (ast.Try, ast.TryStar)):
            # A handler that raises again at its own level does not survive the failure.
            catches = any(
                _catches(handler.type) and not any(isinstance(s, ast.Raise) for s in handler.body)
                for handler in node.handlers
            )
            fallbacks = [*(s for h in node.handlers for s in h.body), *node.orelse, *node.finalbody]
            kinds = [h.type for h in node.handlers if h.type]
            parts = [(node.body, guarded if catches else context), (kinds, context), (fallbacks, guarded)]
        else:
            where = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
            if isinstance(node, ast.Import):
                found.extend((*where, ModuleImport(where[0], alias.name, 0, (), context)) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                names = tuple(alias.name for alias in node.names)
                found.append((*where, ModuleImport(where[0], node.module or "", node.level, names, context)))
            elif isinstance(node, ast.Call) and _is_import_call(node.func):
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    bare = first.value.lstrip(".")
                    found.append((*where, ModuleImport(where[0], bare, len(first.value) - len(bare), (), context, True)))
                else:
                    computed.append(where[0])
            parts = [(list(ast.iter_child_nodes(node)), context)]
        for nodes, inner in parts:
            for child in nodes:
                visit(child, inner)

    try:
        with warnings.catch_warnings():  # a wheel's invalid escapes are not ours to report
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
        visit(tree, ImportContext.MODULE)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return FileImports((), ())
    found.sort(key=lambda item: item[:2])
    return FileImports(tuple(item for _, _, item in found), tuple(sorted(computed)))


def _name(node: ast.expr | None) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _catches(kind: ast.expr | None) -> bool:
    if isinstance(kind, ast.Tuple):
        return any(_catches(element) for element in kind.elts)
    return kind is None or _name(kind) in ("ImportError", "ModuleNotFoundError", "Exception", "BaseException")


def _is_import_call(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module" and isinstance(func.value, ast.Name) and func.value.id == "importlib"
    return _name(func) in ("import_module", "__import__")
