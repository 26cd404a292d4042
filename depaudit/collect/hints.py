"""Native hints: libraries loaded by name and programs started from Python code.

`ctypes.CDLL("libx.so.1")`, `ctypes.cdll.LoadLibrary`, `ctypes.util.find_library("x")`,
`ffi.dlopen(...)`, `subprocess.run(["prog", ...])` and friends, `os.system("prog ...")`,
`os.popen`, `os.exec*`, `shutil.which("prog")` (and any function named `which`). A name is
taken from a literal, a module-level constant, or a literal tuple/list that a `for` loop
walks (candidates tried in turn). A name computed at run time yields nothing: never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper, PositionProvider

from depaudit.collect.lines import NodeCounter, lines
from depaudit.collect.units import hint_units

# A cheap text test before parsing: third-party packages hold thousands of files.
# The call patterns themselves, not just the words, so that an `import subprocess` alone or a
# docstring does not send a file to the parser.
PREFILTER = re.compile(
    rb"(?:find_library|LoadLibrary|CDLL|PyDLL|dlopen|which|check_output|check_call|Popen|getoutput"
    rb"|subprocess\.(?:run|call)|os\.(?:system|popen|exec\w*))\s*\("
)
_LIBRARY_CALLS = ("CDLL", "PyDLL", "LoadLibrary", "find_library", "dlopen")
_PROGRAM_CALLS = ("run", "call", "check_call", "check_output", "Popen", "system", "popen", "which", "getoutput", "getstatusoutput")
_EXEC = re.compile(r"^exec[lv]p?e?$")
_SUBPROCESS_CALLS = ("run", "call", "check_call", "check_output", "Popen")


def may_report(full: str) -> bool:
    """Whether the visitor reads the arguments of a call to `full` (its name after aliases).
    The cut (units.py) keeps every such call, so both must use this one test."""
    last = full.rsplit(".", 1)[-1]
    if last in _LIBRARY_CALLS:
        return True
    if last in _SUBPROCESS_CALLS:  # subprocess's, not loop.run(...) or asyncio.run(...)
        return full.startswith(("subprocess", "sp.")) or "subprocess" in full or full in _SUBPROCESS_CALLS
    return last in _PROGRAM_CALLS or _EXEC.match(last) is not None


@dataclass(frozen=True, order=True)
class NativeHint:
    line: int
    kind: str  # "library" (a soname or a find_library name) or "program"
    candidates: tuple[str, ...]  # tried in turn; the first that exists on Linux is used
    call: str  # the call as written, e.g. "find_library" or "subprocess.run"
    lazy: bool  # inside a function: runs when called, not at import


class _HintVisitor(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.counter = NodeCounter()
        self.hints: list[NativeHint] = []
        self._constants: dict[str, tuple[str, ...]] = {}  # module-level names bound to literals
        self._sequences: set[str] = set()  # names bound to a literal list/tuple (an argv, or candidates)
        self._loops: list[dict[str, tuple[str, ...]]] = [{}]  # loop variables over literal sequences
        self._locals: list[dict[str, tuple[str, ...]]] = []
        self._functions = 0
        self._aliases: dict[str, str] = {}  # `from ctypes.util import find_library as _find_library`

    def visit_Import(self, node: cst.Import) -> None:
        self.counter.meet()

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.counter.meet()
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                original = get_full_name_for_node(alias.name)
                if original:
                    self._aliases[alias.asname.name.value] = original

    def visit_If(self, node: cst.If) -> bool:
        # `if sys.platform == "darwin":` / `platform.system() == "Windows"`: not this image's code.
        if _other_platform(node.test):
            self.counter.skip(node.test)
            self.counter.skip(node.body)
            if node.orelse is not None:
                node.orelse.visit(self)
            return False
        return True

    # Scopes -------------------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions += 1
        self._locals.append({})

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._functions -= 1
        self._locals.pop()

    def visit_Assign(self, node: cst.Assign) -> None:
        values = _strings(node.value, self._lookup)
        if values is None:
            return
        for target in node.targets:
            if isinstance(target.target, cst.Name):
                scope = self._locals[-1] if self._locals else self._constants
                scope[target.target.value] = values
                if isinstance(node.value, (cst.List, cst.Tuple)):
                    self._sequences.add(target.target.value)

    def visit_For(self, node: cst.For) -> None:
        values = _strings(node.iter, self._lookup)
        frame = {node.target.value: values} if values is not None and isinstance(node.target, cst.Name) else {}
        self._loops.append(frame)

    def leave_For(self, original_node: cst.For) -> None:
        self._loops.pop()

    def _is_loop_variable(self, name: str) -> bool:
        return any(name in frame for frame in self._loops)

    def _lookup(self, name: str) -> tuple[str, ...] | None:
        for frame in reversed(self._loops):
            if name in frame:
                return frame[name]
        if self._locals and name in self._locals[-1]:
            return self._locals[-1][name]
        return self._constants.get(name)

    # Calls --------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        self.counter.meet()
        full = get_full_name_for_node(node.func) or ""
        full = self._aliases.get(full, full)
        if not node.args or not may_report(full):
            return
        first = node.args[0].value
        if full.rsplit(".", 1)[-1] in _LIBRARY_CALLS:
            names = _strings(first, self._lookup)
            if names:
                self._add(node, "library", names, full)
            return
        if isinstance(first, cst.Name) and first.value in self._sequences and not self._is_loop_variable(first.value):
            bound = self._lookup(first.value)
            programs: tuple[str, ...] | None = (_program(bound[0]),) if bound and bound[0].strip() else None
        else:
            programs = _program_names(first, self._lookup)
        if programs:
            self._add(node, "program", programs, full)

    def _add(self, node: cst.CSTNode, kind: str, names: tuple[str, ...], call: str) -> None:
        self.hints.append(NativeHint(self._line(node), kind, names, call, self._functions > 0))

    def _line(self, node: cst.CSTNode) -> int:
        return self.counter.report(node)  # an ordinal until `scan_hints` puts the line in its place


class _PositionedHintVisitor(_HintVisitor):
    """The same walk, lines from libcst itself: for a file `ast` reads otherwise (see lines.py)."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line


_OTHER_PLATFORMS = ("darwin", "win32", "windows", "cygwin", "msys", "macos", "freebsd")


def _other_platform(test: cst.BaseExpression) -> bool:
    """A comparison of a platform value with == (or `in`) against another OS's name."""
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    operator = test.comparisons[0].operator
    if not isinstance(operator, (cst.Equal, cst.In)):
        return False
    subject = cst.Module([]).code_for_node(test.left).lower()
    if "platform" not in subject and "os.name" not in subject:
        return False
    literal = test.comparisons[0].comparator
    values = _strings(literal, lambda _name: None) or ()
    return bool(values) and all(v.lower() in _OTHER_PLATFORMS or v == "nt" for v in values)


def _strings(node: cst.BaseExpression, lookup) -> tuple[str, ...] | None:  # type: ignore[no-untyped-def]
    """A literal string, a literal tuple/list of strings, or a name bound to one."""
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return (value,) if isinstance(value, str) else None
    if isinstance(node, (cst.Tuple, cst.List)):
        values = []
        for element in node.elements:
            if not isinstance(element.value, cst.SimpleString):
                return None
            value = element.value.evaluated_value
            if not isinstance(value, str):
                return None
            values.append(value)
        return tuple(values)
    if isinstance(node, cst.Name):
        return lookup(node.value)
    return None


def _program_names(node: cst.BaseExpression, lookup) -> tuple[str, ...] | None:  # type: ignore[no-untyped-def]
    """argv[0] of a literal list, or the first word of a literal command string."""
    if isinstance(node, (cst.List, cst.Tuple)):
        if not node.elements:
            return None
        head = _strings(node.elements[0].value, lookup)  # a literal, or a constant naming the program
        return (_program(head[0]),) if head and len(head) == 1 and head[0].strip() else None
    values = _strings(node, lookup)
    if not values:
        return None
    return tuple(_program(v) for v in values if v.strip())


def _program(command: str) -> str:
    return command.strip().split()[0].rsplit("/", 1)[-1]


def scan_hints(source: bytes) -> list[NativeHint]:
    """Hints of one file; raises what libcst raises on a file it cannot parse."""
    module = cst.parse_module(source)
    visitor = _HintVisitor()
    module.visit(visitor)
    found = lines(source, visitor.counter)
    if found is not None:
        return sorted(replace(hint, line=found[hint.line]) for hint in visitor.hints)
    positioned = _PositionedHintVisitor()
    MetadataWrapper(module, unsafe_skip_copy=True).visit(positioned)
    return sorted(positioned.hints)


def file_hints(source: bytes) -> list[NativeHint]:
    """Hints of one file, parsing only the parts that can hold one (see units.py)."""
    if not may_have_hints(source):
        return []
    unit = hint_units(source, PREFILTER, may_report)
    if unit is not None:
        try:
            return sorted(replace(hint, line=unit.original(hint.line)) for hint in scan_hints(unit.source))
        except Exception:
            pass  # a cut that libcst rejects (a body on its header's line): read the whole file
    return scan_hints(source)


def linux_candidates(hint: NativeHint) -> tuple[str, ...]:
    """Candidates that can matter on Linux: not Windows DLLs or macOS dylibs, and not paths
    relative to the process's working directory (unknowable without running it)."""
    return tuple(
        name
        for name in hint.candidates
        if not name.lower().endswith((".dll", ".dylib", ".exe"))
        and "\\" not in name
        and ("/" not in name or name.startswith("/"))
    )


def may_have_hints(source: bytes) -> bool:
    return PREFILTER.search(source) is not None


def hint_files(paths: Iterable[str]) -> list[str]:
    return [p for p in paths if p.endswith(".py")]
