"""Libraries loaded by name and programs started, read from source without running it."""

from __future__ import annotations

import textwrap

from depaudit.collect.hint_calls import NativeHint
from depaudit.collect.hints import file_hints, linux_candidates, may_have_hints, scan_hints


def _hints(source: str) -> list[tuple[int, str, tuple[str, ...], str, bool]]:
    data = textwrap.dedent(source).encode()
    whole = scan_hints(data)
    assert file_hints(data) == whole  # parsing only the units that can hold a hint changes nothing
    return [(h.line, h.kind, h.candidates, h.call, h.lazy) for h in whole]


def test_libraries_by_literal_constant_alias_and_candidates() -> None:
    assert _hints(
        """\
        import ctypes
        import ctypes.util
        from ctypes import cdll, CDLL
        from ctypes.util import find_library as _find
        from cffi import FFI

        LIBNAME = "libmagic.so.1"
        ctypes.CDLL("libportaudio.so.2")
        cdll.LoadLibrary(LIBNAME)
        _find("zbar")
        FFI().dlopen("libsndfile.so.1")
        for name in ("libespeak-ng.so.1", "libespeak.so.1"):
            try:
                CDLL(name)
                break
            except OSError:
                continue

        def lazy():
            paths = ("/usr/local/lib/libx.so.3", "libx.so.3")
            for path in paths:
                ctypes.util.find_library(path)
        """
    ) == [
        (8, "library", ("libportaudio.so.2",), "ctypes.CDLL", False),
        (9, "library", ("libmagic.so.1",), "cdll.LoadLibrary", False),
        (10, "library", ("zbar",), "find_library", False),  # the alias, by its real name
        (11, "library", ("libsndfile.so.1",), "FFI.dlopen", False),
        (14, "library", ("libespeak-ng.so.1", "libespeak.so.1"), "CDLL", False),
        (22, "library", ("/usr/local/lib/libx.so.3", "libx.so.3"), "ctypes.util.find_library", True),
    ]


def test_programs_and_what_yields_nothing() -> None:
    assert _hints(
        """\
        import os, shutil, subprocess, asyncio
        FFMPEG = "ffmpeg"
        subprocess.run(["ffprobe", "-v", "quiet"])
        subprocess.check_output("tesseract --version", shell=True)
        subprocess.Popen([FFMPEG, "-i", "x"])
        os.system("sox in.wav out.mp3")
        os.popen("pdftoppm -png a.pdf")
        os.execvp("espeak-ng", ["espeak-ng", "hi"])
        for tool in ("git", "curl"):
            shutil.which(tool)
        ARGV = ["lame", "--preset", "standard"]
        subprocess.call(ARGV)
        cmd = build_command()
        subprocess.run(cmd)
        subprocess.run([program_from_config, "-x"])
        asyncio.run(main())
        loop.run("nothing")
        """
    ) == [
        (3, "program", ("ffprobe",), "subprocess.run", False),
        (4, "program", ("tesseract",), "subprocess.check_output", False),
        (5, "program", ("ffmpeg",), "subprocess.Popen", False),  # argv[0] a module-level constant
        (6, "program", ("sox",), "os.system", False),
        (7, "program", ("pdftoppm",), "os.popen", False),
        (8, "program", ("espeak-ng",), "os.execvp", False),
        (10, "program", ("git", "curl"), "shutil.which", False),
        (12, "program", ("lame",), "subprocess.call", False),
    ]
    # lines 14-15: argv from a variable, or a computed argv[0]: reported as nothing, never guessed


def test_other_platforms_are_passed_over() -> None:
    assert _hints(
        """\
        import sys, platform, ctypes
        if sys.platform == "darwin":
            ctypes.CDLL("libportaudio.dylib")
        elif platform.system() == "Windows":
            ctypes.CDLL("portaudio.dll")
        else:
            ctypes.CDLL("libportaudio.so.2")
        if sys.platform in ("win32", "cygwin"):
            import winreg
            subprocess.run(["where.exe"])
        if sys.platform == "darwin" and platform.machine() == "arm64":
            ctypes.CDLL("/opt/homebrew/lib/libsndfile.dylib")
        """
    ) == [(7, "library", ("libportaudio.so.2",), "ctypes.CDLL", False)]


def test_linux_candidates_and_prefilter() -> None:
    hint = NativeHint(1, "library", ("bin\\\\x.dll", "lib/x.dylib", "./libx.so", "/opt/libx.so.1", "x"), "CDLL", False)
    assert linux_candidates(hint) == ("/opt/libx.so.1", "x")
    assert may_have_hints(b"subprocess.run(['x'])")
    assert not may_have_hints(b"import subprocess\n# which library? CDLL docs\n")


def test_a_try_that_survives_the_failure_guards_the_call() -> None:
    source = textwrap.dedent(
        """\
        import ctypes, subprocess

        def gpu():
            try:
                out = subprocess.check_output(["nvidia-smi"])
            except (FileNotFoundError, subprocess.CalledProcessError):
                return None
            return out

        def must():
            try:
                subprocess.check_output(["nvidia-smi"])
            except FileNotFoundError:
                raise RuntimeError("needs nvidia-smi")

        try:
            lib = ctypes.CDLL("libfoo.so.1")
        except OSError:
            lib = None

        for name in ("libbar.so.1", "libbar.so.0"):
            try:
                ctypes.CDLL(name)
                break
            except OSError:
                continue
        else:
            raise SystemExit(1)

        try:
            subprocess.run(["ffmpeg"])
        except subprocess.CalledProcessError:
            pass
        try:
            ctypes.util.find_library("x")
        except:
            pass
        try:
            def later():
                ctypes.CDLL("libbaz.so.2")
        except OSError:
            pass
        try:
            pass
        except OSError:
            ctypes.CDLL("libqux.so.1")
        """
    ).encode()
    whole = scan_hints(source)
    assert file_hints(source) == whole  # the cut keeps the `raise` and `continue` that decide
    assert [(h.line, h.candidates[0], h.guarded) for h in whole] == [
        (5, "nvidia-smi", True),  # the handler catches what a missing program raises, and returns
        (12, "nvidia-smi", False),  # the handler raises again: the service still fails
        (17, "libfoo.so.1", True),
        (23, "libbar.so.1", False),  # the next candidate, and the loop's end raises
        (31, "ffmpeg", False),  # CalledProcessError is not what an absent program raises
        (35, "x", False),  # find_library returns None: there is no failure to catch
        (40, "libbaz.so.2", False),  # a try around a `def` guards nothing in its body
        (46, "libqux.so.1", False),  # a handler is not protected by its own try
    ]


def _attempts(source: str) -> list[tuple[int, tuple[str, ...], bool, int, bool]]:
    data = textwrap.dedent(source).encode()
    whole = scan_hints(data)
    assert file_hints(data) == whole
    return [(h.line, h.candidates, h.guarded, h.loop, h.by_path) for h in whole]


def test_builds_tried_in_turn_are_one_attempt_per_candidate() -> None:
    # torchcodec's shape: names built from a loop over numbers, paths a helper finds, a handler
    # that records the error, and a raise once every build failed.
    assert _attempts(
        """\
        import ctypes, os, torch

        VERSIONS = (9, 8, 7)

        def load_core():
            errors = []
            for major in VERSIONS:
                core = f"libcore{major}"
                try:
                    path = _extension_path(core)
                    torch.ops.load_library(path)
                    ctypes.CDLL(_extension_path("libops%d" % major))
                    return major
                except Exception as error:
                    errors.append(error)
            message = "none"
            raise RuntimeError(message)

        def quiet():
            for name in ("libx.so.2", "libx.so.1"):
                try:
                    return ctypes.CDLL(name)
                except OSError:
                    pass
            return None

        def heic():
            torch.ops.load_library(os.path.join(os.path.dirname(__file__), "lib" + "heic.so"))

        def unknown(where):
            ctypes.CDLL(_extension_path(where))
        """
    ) == [
        (11, ("libcore9", "libcore8", "libcore7"), False, 1, True),
        (12, ("libops9", "libops8", "libops7"), False, 1, True),
        (22, ("libx.so.2", "libx.so.1"), True, 0, False),  # no raise after the loop: a guard
        (28, ("libheic.so",), False, 0, True),
    ]
    # line 31: a path from a parameter yields nothing


def test_text_built_from_constants_names_a_program() -> None:
    assert _hints(
        """\
        import subprocess
        TOOL = "ffmpeg"
        subprocess.run(f"{TOOL} -version", shell=True)
        subprocess.run("{} -i x".format(TOOL), shell=True)
        subprocess.run(f"{unknown} -i x", shell=True)
        """
    ) == [
        (3, "program", ("ffmpeg",), "subprocess.run", False),
        (4, "program", ("ffmpeg",), "subprocess.run", False),
    ]


def test_an_argument_list_built_in_steps_names_its_program() -> None:
    assert _hints(
        """\
        import subprocess
        tesseract_cmd = 'tesseract'
        FFMPEG = "ffmpeg"

        def run_tesseract(nice=0):
            cmd_args = []
            if nice != 0:
                cmd_args += ('nice', '-n', str(nice))
            cmd_args += (tesseract_cmd, "in", "out")
            cmd_args.append("txt")
            return subprocess.Popen(cmd_args)

        def convert(path):
            cmd = [FFMPEG, "-i", path] + ["-f", "wav"]
            cmd.extend(["-y"])
            subprocess.run(cmd, check=True)

        def maybe(flag):
            cmd = []
            if flag:
                cmd.append("sox")
            subprocess.run(cmd)

        def unknown(binary, tool):
            cmd = [binary, "-x"]
            subprocess.run(cmd)
            other = []
            other.append(tool)
            subprocess.run(other)
        """
    ) == [
        # The wrapper a branch may put first (`nice`) is not the program: tesseract always runs.
        (11, "program", ("tesseract",), "subprocess.Popen", True),
        (16, "program", ("ffmpeg",), "subprocess.run", True),
        (22, "program", ("sox",), "subprocess.run", True),  # only ever added in a branch: still named
    ]
    # lines 26 and 29: a first item from a parameter yields nothing


def test_a_function_the_module_calls_at_import_runs_its_hints_at_import() -> None:
    # pyttsx3's _espeak.py: `if not load_library(): raise RuntimeError(...)` at module level.
    assert _attempts(
        """\
        import ctypes, subprocess

        def load_library():
            for path in ("libespeak-ng.so.1", "libespeak.so.1"):
                try:
                    return ctypes.cdll.LoadLibrary(path)
                except OSError:
                    continue
            return None

        def probe():
            return subprocess.run(["nvidia-smi"])

        def later():
            return subprocess.run(["sox"])

        if not load_library():
            raise RuntimeError("no espeak")
        try:
            probe()
        except OSError:
            pass
        """
    ) == [
        (6, ("libespeak-ng.so.1", "libespeak.so.1"), False, 0, False),
        (12, ("nvidia-smi",), True, 0, False),  # its call at import is inside a try that survives
        (15, ("sox",), False, 0, False),
    ]
    lazy = {h.line: h.lazy for h in scan_hints(textwrap.dedent(
        """\
        import subprocess
        def run_it():
            subprocess.run(["sox"])
        def later():
            subprocess.run(["ffmpeg"])
        run_it()
        """
    ).encode())}
    assert lazy == {3: False, 5: True}
