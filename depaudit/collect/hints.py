"""Native hints: libraries loaded by name and programs started from Python code.

`ctypes.CDLL("libx.so.1")`, `ctypes.cdll.LoadLibrary`, `ctypes.util.find_library("x")`,
`ffi.dlopen(...)`, `subprocess.run(["prog", ...])` and friends, `os.system("prog ...")`,
`os.popen`, `os.exec*`, `shutil.which("prog")` (and any function named `which`). A name is
taken from a literal, a module-level constant, or a literal tuple/list that a `for` loop
walks (candidates tried in turn). A name computed at run time yields nothing: never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from depaudit.collect.hint_calls import PREFILTER, RESULT_OF, NativeHint, may_report
from depaudit.collect.hint_ast import Unsure, scan_tree
from depaudit.collect.units import Unit, hint_cut, hint_units, tree_of


def scan_hints(source: bytes) -> list[NativeHint]:
    """Hints of one file; raises what libcst raises on a file it cannot parse."""
    from depaudit.collect.hint_visitor import scan  # libcst: loaded only when a file is parsed

    return scan(source)


def file_hints(source: bytes) -> list[NativeHint]:
    """Hints of one file, parsing only the parts that can hold one (see units.py)."""
    if not may_have_hints(source):
        return []
    return _cut_hints(source, hint_units(source, PREFILTER, may_report))


def installed_file_hints(source: bytes) -> list[NativeHint]:
    """`file_hints` of an installed distribution's file, read on the stdlib's `ast` tree
    (hint_ast.py: the same hints, without libcst's parse). libcst still reads a file `ast`
    rejects (it raises there too, unless it knows syntax this Python does not) and one whose
    text the `ast` walk cannot settle (hint_ast.Unsure). Raises TooDeep, as `file_hints`."""
    if not may_have_hints(source):
        return []
    tree = tree_of(source)
    if tree is None:
        return scan_hints(source)
    try:
        return scan_tree(tree, source)
    except Unsure:
        return _cut_hints(source, hint_cut(source, tree, may_report))


def _cut_hints(source: bytes, unit: Unit | None) -> list[NativeHint]:
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
        if not name.startswith(RESULT_OF)  # what a call returns: read by the packages stage, or nothing
        and not name.lower().endswith((".dll", ".dylib", ".exe"))
        and "\\" not in name
        and ("/" not in name or name.startswith("/"))
    )


# The facts kind (consulted.note_facts) of a service file's hints, and their value: the report
# sorts them with every other file's, so their order within the file says nothing.
FACTS_KIND = "hints"


def hint_facts(hints: Sequence[NativeHint]) -> tuple[NativeHint, ...]:
    return tuple(sorted(hints))


def may_have_hints(source: bytes) -> bool:
    return PREFILTER.search(source) is not None

