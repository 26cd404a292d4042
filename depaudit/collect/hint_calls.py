"""What a native hint is, and which calls make one: shared by the text prefilter, the cut of a
file to its relevant statements and the libcst visitor that reads the arguments."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A cheap text test before parsing: third-party packages hold thousands of files.
# The call patterns themselves, not just the words, so that an `import subprocess` alone or a
# docstring does not send a file to the parser. PATTERN says what matches; Prefilter finds the
# same on the reversed text, where every match starts with the literal `(`: the engine then
# jumps between parentheses (~2.5x faster than one bytes.find per word, ~10x faster than PATTERN,
# whose alternation has no common head).
PATTERN = re.compile(
    rb"(?:find_library|LoadLibrary|load_library|CDLL|PyDLL|dlopen|which|check_output|check_call|Popen|getoutput"
    rb"|subprocess\.(?:run|call)|os\.(?:system|popen|exec\w*))\s*\("
    rb"|from subprocess import"  # then `run(cmd)` / `call(cmd)` by their bare names (whisper's audio.py)
)
_CALLED = (
    b"find_library", b"LoadLibrary", b"load_library", b"CDLL", b"PyDLL", b"dlopen", b"which", b"check_output",
    b"check_call", b"Popen", b"getoutput", b"subprocess.run", b"subprocess.call", b"os.system", b"os.popen",
)  # fmt: skip
# PATTERN's calls, reversed: `(`, spaces, the name backwards (`os.exec` with any word after it).
_REVERSED = re.compile(rb"\(\s*(?:" + b"|".join(re.escape(word[::-1]) for word in _CALLED) + rb"|\w*cexe\.so)")


class Prefilter:
    """`search(source)`: whether PATTERN matches anywhere (True), else None, as re's search."""

    @staticmethod
    def search(source: bytes) -> bool | None:
        if b"from subprocess import" in source or _REVERSED.search(source[::-1]) is not None:
            return True
        return None


PREFILTER = Prefilter()
LIBRARY_CALLS = ("CDLL", "PyDLL", "LoadLibrary", "find_library", "dlopen", "load_library")
PROGRAM_CALLS = ("run", "call", "check_call", "check_output", "Popen", "system", "popen", "which", "getoutput", "getstatusoutput")
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
    return last in PROGRAM_CALLS or _EXEC.match(last) is not None


# A program candidate that is what a call returns: RESULT_OF + the callee as the file names it
# (`()get_encoder_name`). The packages stage reads the callee's literal returns; never a program.
RESULT_OF = "()"


@dataclass(frozen=True, order=True)
class NativeHint:
    line: int
    kind: str  # "library" (a soname or a find_library name) or "program"
    candidates: tuple[str, ...]  # tried in turn; the first that exists on Linux is used
    call: str  # the call as written, e.g. "find_library" or "subprocess.run"
    lazy: bool  # inside a function: runs when called, not at import
    guarded: bool = False  # inside a try whose handlers catch the failure its absence raises
    # Non-zero: the hint is inside a loop that tries its candidates in turn and raises when none
    # loads (`for v in (9, 8, 7): try: load(f"libx{v}") ... except: ...` then `raise`). Hints of
    # one file with the same `loop` are one attempt per candidate: one of the attempts must work.
    loop: int = 0
    # The candidates are paths a helper builds (`load(_extension_path("libx7"))`,
    # `CDLL(os.path.join(here, "libx.so"))`): a file the distribution ships, not a name the
    # loader searches for.
    by_path: bool = False


# What a call raises when the library or program it names is absent, by the call's last name;
# calls not listed raise nothing (find_library and which return None, a shell returns 127).
_ABSENCE_RAISES = {
    **{name: "OSError" for name in LIBRARY_CALLS if name != "find_library"},
    **{name: "FileNotFoundError" for name in _SUBPROCESS_CALLS},
}
# The handlers that catch each failure: the class, its aliases and bases, and a bare `except:`.
_CATCHING_OS_ERROR = frozenset({"OSError", "EnvironmentError", "IOError", "Exception", "BaseException"})
_CATCHING = {"OSError": _CATCHING_OS_ERROR, "FileNotFoundError": _CATCHING_OS_ERROR | {"FileNotFoundError"}}
# What a failed call into a library raises when what it needs is absent: a missing module
# (ImportError), library (OSError, ImportError) or program (FileNotFoundError, CalledProcessError).
# A try catching one of these survives the call.
CALL_FAILURES = frozenset(
    {
        "ImportError", "ModuleNotFoundError", "OSError", "EnvironmentError", "IOError", "FileNotFoundError",
        "PermissionError", "CalledProcessError", "SubprocessError", "Exception", "BaseException",
    }
)  # fmt: skip
BARE_EXCEPT = "*"  # what a bare `except:` catches (here, not in handlers.py: this module loads no libcst)


def absence_caught(full: str, caught: frozenset[str]) -> bool:
    """Whether handlers catching `caught` (exception names; BARE_EXCEPT for a bare `except:`)
    catch what a call to `full` raises when what it names is absent."""
    last = full.rsplit(".", 1)[-1]
    raised = "FileNotFoundError" if _EXEC.match(last) else _ABSENCE_RAISES.get(last)
    if raised is None or not caught:
        return False
    return BARE_EXCEPT in caught or not caught.isdisjoint(_CATCHING[raised])
