"""Native hints: libraries loaded by name and programs started from Python code.

`ctypes.CDLL("libx.so.1")`, `ctypes.cdll.LoadLibrary`, `ctypes.util.find_library("x")`,
`ffi.dlopen(...)`, `subprocess.run(["prog", ...])` and friends, `os.system("prog ...")`,
`os.popen`, `os.exec*`, `shutil.which("prog")` (and any function named `which`). A name is
taken from a literal, a module-level constant, or a literal tuple/list that a `for` loop
walks (candidates tried in turn). A name computed at run time yields nothing: never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from depaudit.collect.units import hint_units

# A cheap text test before parsing: third-party packages hold thousands of files.
# The call patterns themselves, not just the words, so that an `import subprocess` alone or a
# docstring does not send a file to the parser.
PREFILTER = re.compile(
    rb"(?:find_library|LoadLibrary|CDLL|PyDLL|dlopen|which|check_output|check_call|Popen|getoutput"
    rb"|subprocess\.(?:run|call)|os\.(?:system|popen|exec\w*))\s*\("
)
LIBRARY_CALLS = ("CDLL", "PyDLL", "LoadLibrary", "find_library", "dlopen")
_PROGRAM_CALLS = ("run", "call", "check_call", "check_output", "Popen", "system", "popen", "which", "getoutput", "getstatusoutput")
_EXEC = re.compile(r"^exec[lv]p?e?$")
_SUBPROCESS_CALLS = ("run", "call", "check_call", "check_output", "Popen")


def may_report(full: str) -> bool:
    """Whether the visitor reads the arguments of a call to `full` (its name after aliases).
    The cut (units.py) keeps every such call, so both must use this one test."""
    last = full.rsplit(".", 1)[-1]
    if last in LIBRARY_CALLS:
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


def scan_hints(source: bytes) -> list[NativeHint]:
    """Hints of one file; raises what libcst raises on a file it cannot parse."""
    from depaudit.collect.hint_visitor import scan  # libcst: loaded only when a file is parsed

    return scan(source)


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

