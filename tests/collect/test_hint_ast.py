"""The `ast` route of a wheel's file (hint_ast.py) gives the hints libcst's gives, exactly: over
the running interpreter's stdlib, the sources of this repository's tests and examples (with the
snippets they write), the example fleet's installed wheels, and hand-written cases of each
construct the hint visitor reads."""

from __future__ import annotations

import ast
import sysconfig
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from depaudit.collect.hint_ast import Unsure, scan_tree
from depaudit.collect.hint_calls import NativeHint
from depaudit.collect.hints import file_hints, installed_file_hints, may_have_hints, scan_hints
from depaudit.collect.units import TooDeep, tree_of
from helpers import EXAMPLE_FLEET, REPO

Row = tuple[int, str, tuple[str, ...], str, bool, bool, int, bool]


def _rows(hints: list[NativeHint]) -> list[Row]:
    return [(h.line, h.kind, h.candidates, h.call, h.lazy, h.guarded, h.loop, h.by_path) for h in hints]


def _twin(data: bytes) -> list[NativeHint]:
    tree = tree_of(data)
    assert tree is not None
    return scan_tree(tree, data)


# name → (source, the hints both routes give)
CASES: dict[str, tuple[str, list[Row]]] = {
    "aliases": (
        """\
from ctypes.util import find_library as _find
from ctypes import CDLL as Lib, cdll
import subprocess as sp
import shutil as sh
from cffi import FFI
from os import system as shell
lib = Lib(_find("sndfile"))
_find("portaudio")
Lib("libx.so.1")
cdll.LoadLibrary("liby.so.2")
sp.check_output(["ffmpeg", "-version"])
sh.which("sox")
FFI().dlopen("libz.so.1")
shell("convert in.png out.jpg")
        """,
        [
            (7, 'library', ('sndfile',), 'find_library', False, False, 0, False),
            (8, 'library', ('portaudio',), 'find_library', False, False, 0, False),
            (9, 'library', ('libx.so.1',), 'CDLL', False, False, 0, False),
            (10, 'library', ('liby.so.2',), 'cdll.LoadLibrary', False, False, 0, False),
            (11, 'program', ('ffmpeg',), 'sp.check_output', False, False, 0, False),
            (12, 'program', ('sox',), 'sh.which', False, False, 0, False),
            (13, 'library', ('libz.so.1',), 'FFI.dlopen', False, False, 0, False),
            (14, 'program', ('convert',), 'system', False, False, 0, False),
        ],
    ),
    "nested_functions": (
        """\
import ctypes, subprocess
def outer():
    def inner():
        return ctypes.CDLL("libinner.so")
    subprocess.run(["outer-tool"])
    return inner
class Holder:
    def method(self):
        def deeper():
            subprocess.call("deep-tool --x", shell=True)
        ctypes.cdll.LoadLibrary("libmethod.so.3")
if not outer():
    raise SystemExit
        """,
        [
            (4, 'library', ('libinner.so',), 'ctypes.CDLL', False, False, 0, False),
            (5, 'program', ('outer-tool',), 'subprocess.run', False, False, 0, False),
            (10, 'program', ('deep-tool',), 'subprocess.call', True, False, 0, False),
            (11, 'library', ('libmethod.so.3',), 'ctypes.cdll.LoadLibrary', True, False, 0, False),
        ],
    ),
    "loops_over_tuples": (
        """\
import ctypes
NAMES = ("libcudnn.so.9", "libcudnn.so.8")
VERSIONS = (12, 11)
for name in NAMES:
    try:
        ctypes.CDLL(name)
        break
    except OSError:
        continue
else:
    raise ImportError("no cudnn")
def load():
    for v in VERSIONS:
        try:
            return ctypes.CDLL(f"libcublas.so.{v}")
        except OSError:
            pass
    raise OSError("no cublas")
for tool in ["ffmpeg", "avconv"]:
    ctypes.util.find_library(tool)
        """,
        [
            (6, 'library', ('libcudnn.so.9', 'libcudnn.so.8'), 'ctypes.CDLL', False, False, 1, False),
            (15, 'library', ('libcublas.so.12', 'libcublas.so.11'), 'ctypes.CDLL', True, False, 2, False),
            (20, 'library', ('ffmpeg', 'avconv'), 'ctypes.util.find_library', False, False, 0, False),
        ],
    ),
    "f_strings": (
        """\
import ctypes, subprocess
MAJOR = "12"
ctypes.CDLL(f"libcudart.so.{MAJOR}")
ctypes.CDLL(f"lib{MAJOR!r}.so")
ctypes.CDLL(f"libnvrtc.so.{MAJOR:>3}")
ctypes.CDLL("libcufft.so.%s" % MAJOR)
ctypes.CDLL("libcurand.so.{}".format(MAJOR))
ctypes.CDLL("libcusparse" + ".so." + MAJOR)
subprocess.run(f"{'nvidia-smi'} -L", shell=True)
ctypes.CDLL(f"lib" f"x.so")
ctypes.CDLL("lib" "y.so")
ctypes.CDLL(("libz"
             ".so.1"))
        """,
        [
            (3, 'library', ('libcudart.so.12',), 'ctypes.CDLL', False, False, 0, False),
            (6, 'library', ('libcufft.so.12',), 'ctypes.CDLL', False, False, 0, False),
            (7, 'library', ('libcurand.so.12',), 'ctypes.CDLL', False, False, 0, False),
            (8, 'library', ('libcusparse.so.12',), 'ctypes.CDLL', False, False, 0, False),
            (9, 'program', ('nvidia-smi',), 'subprocess.run', False, False, 0, False),
            (10, 'library', ('libx.so',), 'ctypes.CDLL', False, False, 0, False),
            (11, 'library', ('liby.so',), 'ctypes.CDLL', False, False, 0, False),
            (12, 'library', ('libz.so.1',), 'ctypes.CDLL', False, False, 0, False),
        ],
    ),
    "star_import": (
        """\
from ctypes import *
from subprocess import *
CDLL("libstar.so.1")
cdll.LoadLibrary("libstar2.so")
check_output(["git", "rev-parse", "HEAD"])
run(["make"])
call("ls -l", shell=True)
Popen(["top"])
        """,
        [
            (3, 'library', ('libstar.so.1',), 'CDLL', False, False, 0, False),
            (4, 'library', ('libstar2.so',), 'cdll.LoadLibrary', False, False, 0, False),
            (5, 'program', ('git',), 'check_output', False, False, 0, False),
            (6, 'program', ('make',), 'run', False, False, 0, False),
            (7, 'program', ('ls',), 'call', False, False, 0, False),
            (8, 'program', ('top',), 'Popen', False, False, 0, False),
        ],
    ),
    "decorators_lambdas": (
        """\
import ctypes, functools, subprocess
@functools.lru_cache(maxsize=ctypes.CDLL("libdecorated.so") and 1)
def cached(x=subprocess.run(["default-arg"])):
    return x
LOADER = lambda: ctypes.CDLL("liblambda.so.1")
@(lambda f: f)
class Decorated(base=subprocess.check_call(["class-kw"])):
    pass
        """,
        [
            (2, 'library', ('libdecorated.so',), 'ctypes.CDLL', False, False, 0, False),
            (3, 'program', ('default-arg',), 'subprocess.run', False, False, 0, False),
            (5, 'library', ('liblambda.so.1',), 'ctypes.CDLL', False, False, 0, False),
            (7, 'program', ('class-kw',), 'subprocess.check_call', False, False, 0, False),
        ],
    ),
    "try_guards": (
        """\
import ctypes, subprocess
try:
    ctypes.CDLL("libguarded.so.1")
except OSError:
    pass
try:
    subprocess.run(["maybe"])
except (FileNotFoundError, subprocess.CalledProcessError):
    pass
try:
    ctypes.CDLL("libreraise.so")
except OSError:
    raise RuntimeError("needed")
try:
    ctypes.CDLL("libbare.so")
except:
    def later():
        raise
try:
    ctypes.CDLL("libwrong.so")
except ImportError:
    pass
finally:
    ctypes.CDLL("libfinally.so")
try:
    pass
except* OSError:
    ctypes.CDLL("libhandler.so")
else:
    ctypes.CDLL("libelse.so")
        """,
        [
            (3, 'library', ('libguarded.so.1',), 'ctypes.CDLL', False, True, 0, False),
            (7, 'program', ('maybe',), 'subprocess.run', False, True, 0, False),
            (11, 'library', ('libreraise.so',), 'ctypes.CDLL', False, False, 0, False),
            (15, 'library', ('libbare.so',), 'ctypes.CDLL', False, True, 0, False),
            (20, 'library', ('libwrong.so',), 'ctypes.CDLL', False, False, 0, False),
            (24, 'library', ('libfinally.so',), 'ctypes.CDLL', False, False, 0, False),
            (28, 'library', ('libhandler.so',), 'ctypes.CDLL', False, False, 0, False),
            (30, 'library', ('libelse.so',), 'ctypes.CDLL', False, False, 0, False),
        ],
    ),
    "class_bodies": (
        """\
import subprocess
class Encoder:
    converter = get_encoder_name()
    TOOL = "lame"
    def encode(self):
        subprocess.run([self.converter, "-i", "x"])
        subprocess.run([TOOL, "--preset"])
def get_encoder_name():
    return "ffmpeg"
        """,
        [
            (7, 'program', ('lame',), 'subprocess.run', True, False, 0, False),
        ],
    ),
    "walrus_match": (
        """\
import ctypes, subprocess, sys
if (lib := ctypes.CDLL("libwalrus.so")) is None:
    pass
match sys.argv:
    case ["x", *_] if subprocess.run(["guard-tool"]).returncode:
        ctypes.CDLL("libcase.so.1")
    case _:
        subprocess.run(["fallback-tool"])
        """,
        [
            (2, 'library', ('libwalrus.so',), 'ctypes.CDLL', False, False, 0, False),
            (5, 'program', ('guard-tool',), 'subprocess.run', False, False, 0, False),
            (6, 'library', ('libcase.so.1',), 'ctypes.CDLL', False, False, 0, False),
            (8, 'program', ('fallback-tool',), 'subprocess.run', False, False, 0, False),
        ],
    ),
    "type_comments": (
        """\
import subprocess
def f(a,  # type: int
      ):
    # type: (...) -> None
    subprocess.run(["typed"])  # type: ignore
x = []  # type: list[str]
        """,
        [
            (5, 'program', ('typed',), 'subprocess.run', True, False, 0, False),
        ],
    ),
    "argv_steps": (
        """\
import subprocess, shutil
TOOL = "tesseract"
def ocr(nice):
    cmd = []
    if nice:
        cmd += ("nice", "-n", "5")
    cmd += [TOOL, "in.png"]
    subprocess.run(cmd)
def probe():
    prober = get_prober_name()
    command = [prober, "-v"]
    command.append("x")
    subprocess.check_output(command)
def one_line(flag):
    cmd = []
    if flag: cmd += ["first"]
    cmd.extend(["second"])
    subprocess.run(cmd)
ARGV = ["git", "status"]
subprocess.run(ARGV)
shutil.which(TOOL)
        """,
        [
            (8, 'program', ('tesseract',), 'subprocess.run', True, False, 0, False),
            (13, 'program', ('()get_prober_name',), 'subprocess.check_output', True, False, 0, False),
            (18, 'program', ('second',), 'subprocess.run', True, False, 0, False),
            (20, 'program', ('git',), 'subprocess.run', False, False, 0, False),
            (21, 'program', ('tesseract',), 'shutil.which', False, False, 0, False),
        ],
    ),
    "platform_checks": (
        """\
import ctypes, os, platform, sys
if sys.platform == "win32":
    ctypes.CDLL("kernel32.dll")
elif sys.platform == "darwin":
    ctypes.CDLL("libSystem.dylib")
else:
    ctypes.CDLL("libc.so.6")
if os.name == "nt" and True:
    os.system("dir")
if platform.system() in ("Windows", "Darwin"):
    ctypes.CDLL("other.so")
if sys.platform == "linux":
    ctypes.CDLL("liblinux.so")
        """,
        [
            (7, 'library', ('libc.so.6',), 'ctypes.CDLL', False, False, 0, False),
            (13, 'library', ('liblinux.so',), 'ctypes.CDLL', False, False, 0, False),
        ],
    ),
    "one_line_suites": (
        """\
import ctypes, subprocess
for v in (2, 1):
    try: ctypes.CDLL(f"libone.so.{v}"); break
    except OSError: continue
else: raise OSError("none")
if True: subprocess.run(["inline"])
def f(): return ctypes.CDLL("libinline.so")
class K: X = subprocess.run(["class-inline"])
        """,
        [
            (3, 'library', ('libone.so.2', 'libone.so.1'), 'ctypes.CDLL', False, False, 1, False),
            (6, 'program', ('inline',), 'subprocess.run', False, False, 0, False),
            (7, 'library', ('libinline.so',), 'ctypes.CDLL', True, False, 0, False),
            (8, 'program', ('class-inline',), 'subprocess.run', False, False, 0, False),
        ],
    ),
    "keywords_and_stars": (
        """\
import os, subprocess
os.popen(cmd="exit 0", mode="w")
subprocess.run(args=["kwtool", "-x"])
subprocess.run(*[["startool"]])
subprocess.Popen(**{"args": ["dicttool"]})
        """,
        [
            (2, 'program', ('exit',), 'os.popen', False, False, 0, False),
            (3, 'program', ('kwtool',), 'subprocess.run', False, False, 0, False),
            (4, 'program', ('startool',), 'subprocess.run', False, False, 0, False),
        ],
    ),
    "paths_and_helpers": (
        """\
import ctypes, os, numpy
here = os.path.dirname(__file__)
ctypes.CDLL(os.path.join(here, "libbundled.so"))
def _extension_path(name):
    return name
def load():
    path = _extension_path("libhelper7")
    ctypes.CDLL(path)
numpy.ctypeslib.load_library("libnp", here)
torch.ops.load_library("custom_ops.so")
        """,
        [
            (3, 'library', ('libbundled.so',), 'ctypes.CDLL', False, False, 0, True),
            (8, 'library', ('libhelper7',), 'ctypes.CDLL', True, False, 0, True),
            (9, 'library', ('libnp',), 'numpy.ctypeslib.load_library', False, False, 0, True),
            (10, 'library', ('custom_ops.so',), 'torch.ops.load_library', False, False, 0, True),
        ],
    ),
    "empty_and_odd": (
        """\
import ctypes, subprocess
NOTHING = ()
ctypes.CDLL("lib" + NOTHING)
subprocess.run("   ")
subprocess.run([])
subprocess.run(["  "])
ctypes.CDLL(b"libbytes.so")
ctypes.CDLL(name)
subprocess.run(["/usr/bin/env", "python3"])
os.execvp("exec-tool", ["exec-tool"])
os.execl("/bin/sh", "sh")
(lambda: 1)().which("lambda-which")
"text".which("str-which")
        """,
        [
            (9, 'program', ('env',), 'subprocess.run', False, False, 0, False),
            (10, 'program', ('exec-tool',), 'os.execvp', False, False, 0, False),
            (11, 'program', ('sh',), 'os.execl', False, False, 0, False),
            (12, 'program', ('lambda-which',), 'None.which', False, False, 0, False),
            (13, 'program', ('str-which',), 'None.which', False, False, 0, False),
        ],
    ),
    "rebinding": (
        """\
import subprocess
def run(args, isolate):
    if isolate:
        args = ["-c"]
        args = args[1:]
    else:
        return subprocess.run(args)
TOOL = "ls"
TOOL = compute()
subprocess.run([TOOL])
subprocess.run(["echo", TOOL])
        """,
        [
            (11, 'program', ('echo',), 'subprocess.run', False, False, 0, False),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_written_cases_give_the_same_hints_on_both_routes(name: str) -> None:
    source, expected = CASES[name]
    data = source.encode()
    assert _rows(scan_hints(data)) == expected  # libcst on the whole file
    assert _rows(file_hints(data)) == expected  # libcst on the cut: a service's route
    assert _rows(_twin(data)) == expected  # `ast`: a wheel's route
    assert installed_file_hints(data) == _twin(data)


_LOAD = 'import ctypes, subprocess\nctypes.CDLL("libx.so.1")\nif True:\n    subprocess.run(["tool"])\n'
_EXPECTED_LOAD = [
    (2, "library", ("libx.so.1",), "ctypes.CDLL", False, False, 0, False),
    (4, "program", ("tool",), "subprocess.run", False, False, 0, False),
]


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf" + _LOAD.encode(),  # a UTF-8 BOM
        _LOAD.replace("\n", "\r\n").encode(),  # CRLF line ends
        _LOAD.replace("\n", "\r").encode(),  # old Mac line ends
        _LOAD.replace("if True:\n    ", "if True:\n\x0c    ").encode(),  # a form feed before the indent
        _LOAD.replace("\n    ", "\n\t").encode(),  # a tab indent
        ("# -*- coding: latin-1 -*-\n# caf\xe9\n" + _LOAD).encode("latin-1"),  # a coding cookie, non-UTF-8 bytes
    ],
    ids=["bom", "crlf", "cr", "form-feed", "tab", "latin-1"],
)
def test_encodings_and_line_ends_give_the_same_hints_and_lines(data: bytes) -> None:
    shift = 2 if data.startswith(b"# -*-") else 0
    expected = [(line + shift, *rest) for line, *rest in _EXPECTED_LOAD]
    assert _rows(scan_hints(data)) == expected
    assert _rows(_twin(data)) == expected


def test_a_text_part_libcst_keeps_raw_sends_the_file_to_libcst() -> None:
    """libcst keeps an f-string's text as written (`\\x2e` stays four characters, `{{` two) and
    reads `{v=}` as no conversion: `ast` cannot say what it says, so libcst is asked."""
    for source in ('V = "7"\nctypes.CDLL(f"libx\\x2e{V}")\n', 'V = "7"\nctypes.CDLL(f"lib{{x}}{V}")\n', 'V = "7"\nctypes.CDLL(f"{V=}")\n'):
        data = ("import ctypes\n" + source).encode()
        with pytest.raises(Unsure):
            _twin(data)
        assert installed_file_hints(data) == file_hints(data) == scan_hints(data)
    assert _rows(installed_file_hints(b'import ctypes\nV = "7"\nctypes.CDLL(f"libx\\x2e{V}")\n')) == [
        (3, "library", ("libx\\x2e7",), "ctypes.CDLL", False, False, 0, False)  # libcst's answer, as before
    ]


def test_a_file_only_libcst_reads_is_read_by_libcst() -> None:
    """A NUL byte in a comment: Python refuses the file, libcst reads it. The `ast` route has no
    tree, and gives libcst's answer, as before."""
    data = b'import ctypes\nctypes.CDLL("libx.so.1")\n# \x00\n'
    assert tree_of(data) is None
    assert _rows(installed_file_hints(data)) == [(2, "library", ("libx.so.1",), "ctypes.CDLL", False, False, 0, False)]
    assert installed_file_hints(data) == scan_hints(data)


def test_a_file_only_ast_reads_gives_its_hints() -> None:
    """500 strings implicitly concatenated: libcst's parser recurses once per string and fails,
    so the libcst route passed the file over (no hints). Python reads it, and so does the `ast`
    route: a wheel's file that its Python runs says what it loads. The one place the routes
    part, on purpose."""
    data = b'import ctypes\nctypes.CDLL("libx.so.1")\nDOC = (\n' + b'    "x"\n' * 500 + b")\n"
    with pytest.raises(RecursionError):
        file_hints(data)
    assert _rows(installed_file_hints(data)) == [(2, "library", ("libx.so.1",), "ctypes.CDLL", False, False, 0, False)]


def test_a_file_nested_past_what_python_parses_raises_too_deep_on_both_routes() -> None:
    data = b'import ctypes\nctypes.CDLL("libx.so.1")\nx = ' + b"+".join([b"1"] * 3000) + b"\n"
    with pytest.raises(TooDeep):
        installed_file_hints(data)
    with pytest.raises(TooDeep):
        file_hints(data)


# Corpora -------------------------------------------------------------------------------------
def _compare(sources: Iterator[tuple[str, bytes]]) -> tuple[int, int]:
    """Each source that passes the prefilter and that both parsers read: the `ast` route's hints
    are libcst's (the route a wheel's file took before). Returns how many were compared, and
    how many of those the `ast` walk sent to libcst (Unsure)."""
    compared = unsure = 0
    for name, data in sources:
        if not may_have_hints(data):
            continue
        try:
            tree = tree_of(data)
        except TooDeep:
            continue
        if tree is None:
            continue  # libcst reads it on both routes
        try:
            expected = file_hints(data)
        except Exception:
            continue  # libcst cannot read it: see test_a_file_only_ast_reads_gives_its_hints
        compared += 1
        try:
            found = scan_tree(tree, data)
        except Unsure:
            unsure += 1
            found = installed_file_hints(data)
        assert found == expected, name
    return compared, unsure


def _files(root: Path, skip: tuple[str, ...] = ()) -> Iterator[tuple[str, bytes]]:
    for path in sorted(root.rglob("*.py")):
        if not any(part in skip for part in path.relative_to(root).parts) and path.is_file():
            yield str(path), path.read_bytes()


def test_every_stdlib_file_gives_the_same_hints_on_both_routes() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    compared, unsure = _compare(_files(stdlib, skip=("site-packages", "dist-packages")))
    assert compared > 120  # 145 on Python 3.11
    assert unsure <= compared // 50  # the `ast` walk answers nearly all by itself


def _snippets(path: Path) -> Iterator[tuple[str, bytes]]:
    """A test module, and every string or bytes literal in it (dedented): the sources it writes."""
    data = path.read_bytes()
    yield str(path), data
    for node in ast.walk(ast.parse(data)):
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            value = node.value if isinstance(node.value, bytes) else textwrap.dedent(node.value).encode("utf-8", "surrogatepass")
            yield f"{path}:{node.lineno}", value


def test_the_sources_of_the_tests_and_examples_give_the_same_hints_on_both_routes() -> None:
    paths = sorted(path for path in [*(REPO / "tests").rglob("*.py"), *EXAMPLE_FLEET.rglob("*.py")] if path != Path(__file__))
    sources = (item for path in paths for item in _snippets(path))  # this module's cases: tested above
    compared, unsure = _compare(sources)
    assert compared > 90  # 108 today
    assert unsure <= compared // 50


@pytest.mark.network
def test_every_file_of_a_real_site_packages_gives_the_same_hints_on_both_routes(fleet_site_packages: Path) -> None:
    compared, unsure = _compare(_files(fleet_site_packages))
    assert compared > 40
    assert unsure <= compared // 50
