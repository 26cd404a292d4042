"""Calls into library functions, on gcc-built layouts of torchaudio + torchcodec and pydub.

- `audiolike` re-exports `load` from `audiolike/_backend/utils.py`, whose body calls
  `load_with_codec`, whose body imports `codeclike.decoders` (in a try that raises again), as
  torchaudio 2.11 does with torchcodec: `codeclike`'s extension module links libavcodec.
- `seglike.Segment.from_file` (a classmethod, re-exported) starts `ffprobe`, as pydub does.
- `initlike.Reader(...)` runs `Reader.__init__`, which calls `self._open`, which loads a library.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.packages.model import Need
from helpers import build_so, elf_folder, make_dist, scan_source, verdict

EXT = ".abi3.so"


@pytest.fixture(scope="module")
def site_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = elf_folder(tmp_path_factory, "calls")
    sp, stubs = root / "site-packages", root / "stubs"
    avcodec = build_so(stubs / "libavcodec.so.59", soname="libavcodec.so.59")
    build_so(sp / f"codeclike/_core{EXT}", needed=[avcodec])
    make_dist(sp, "codeclike", files={
        "codeclike/__init__.py": "",
        "codeclike/decoders/__init__.py": "from codeclike._core import ops\n\n\nclass AudioDecoder:\n    pass\n",
    }, existing=[f"codeclike/_core{EXT}"])
    utils = (
        "def load(path):\n"
        "    return load_with_codec(path)\n"
        "\n"
        "\n"
        "def load_with_codec(path):\n"
        "    try:\n"
        "        from codeclike.decoders import AudioDecoder\n"
        "    except ImportError as error:\n"
        "        raise ImportError('codeclike is required') from error\n"
        "    return AudioDecoder(path)\n"
    )
    make_dist(sp, "audiolike", files={
        "audiolike/__init__.py": "from audiolike._backend.utils import load\n",
        "audiolike/_backend/__init__.py": "",
        "audiolike/_backend/utils.py": utils,
    })
    segment = (
        "import subprocess\n"
        "\n"
        "\n"
        "class Segment:\n"
        "    @classmethod\n"
        "    def from_file(cls, path):\n"
        "        return subprocess.check_output(['ffprobe', path])\n"
        "\n"
        "    def export(self, path):\n"
        "        return subprocess.check_call(['ffmpeg', '-i', path])\n"
        "\n"
        "\n"
        "def convert(path):\n"
        "    segment = Segment()\n"
        "    return segment.export(path)\n"
    )
    make_dist(sp, "seglike", files={"seglike/__init__.py": "from .segment import Segment\n", "seglike/segment.py": segment})
    reader = (
        "import ctypes\n"
        "\n"
        "\n"
        "class Reader:\n"
        "    def __init__(self, path):\n"
        "        self.lib = self._open()\n"
        "\n"
        "    def _open(self):\n"
        "        return ctypes.CDLL('libsndfile.so.1')\n"
    )
    make_dist(sp, "initlike", files={"initlike/__init__.py": "from initlike.reader import Reader\n", "initlike/reader.py": reader})
    # Shaped like openai-whisper: load_model() is annotated to return Whisper, whose transcribe is
    # a function of another module bound in the class body, which runs ffmpeg through an argv.
    make_dist(sp, "whisperlike", files={
        "whisperlike/__init__.py": "from .model import Whisper\n\n\ndef load_model(name) -> Whisper:\n    return Whisper()\n",
        "whisperlike/model.py": "from .transcribe import transcribe as transcribe_function\n\n\nclass Whisper:\n    transcribe = transcribe_function\n",
        "whisperlike/transcribe.py": (
            "from .audio import load_audio\n\n\ndef transcribe(model, audio):\n"
            "    if isinstance(audio, str):\n        audio = load_audio(audio)\n    return audio\n"
        ),
        "whisperlike/audio.py": (
            "from subprocess import CalledProcessError, run\n\n\ndef load_audio(file):\n"
            "    cmd = ['ffmpeg', '-nostdin', '-i', file]\n    try:\n"
            "        return run(cmd, capture_output=True, check=True).stdout\n"
            "    except CalledProcessError as error:\n        raise RuntimeError(str(error)) from error\n"
        ),
    })
    return sp


def _needs(tmp_path: Path, site_packages: Path, source: str) -> tuple[bool, dict[str, Need]]:
    report = scan_source(tmp_path, site_packages, source)
    return report.failing, {n.name: n for n in report.services[0].needs}


_verdict = verdict


@pytest.mark.parametrize(
    "source",
    [
        "import audiolike\n\naudiolike.load('x.wav')\n",
        "import audiolike\n\n\ndef handle(path):\n    return audiolike.load(path)\n",
        "from audiolike import load as read\n\nread('x.wav')\n",
    ],
)
def test_a_called_library_function_makes_its_lazy_import_required(tmp_path: Path, site_packages: Path, source: str) -> None:
    failing, needs = _needs(tmp_path, site_packages, source)
    avcodec = needs["libavcodec.so.59"]
    assert _verdict(avcodec) == ("missing", "required", "libavcodec59")
    line = source.splitlines().index(next(s for s in source.splitlines() if "load(" in s or "read(" in s)) + 1
    target = "audiolike.load"
    assert [str(step) for step in avcodec.chain[1:8]] == [
        f"svc/main.py:{line} calls {target}",
        "audiolike/_backend/utils.py:2 calls audiolike._backend.utils.load_with_codec",
        "audiolike/_backend/utils.py:7 from codeclike.decoders import AudioDecoder",
        "codeclike 1.0 (imported; no Requires-Dist declares it)",
        "codeclike/decoders/__init__.py:1 from codeclike._core import ops",
        f"codeclike/_core{EXT}",
        "libavcodec.so.59",
    ]
    assert failing is True


def test_an_import_alone_leaves_the_lazy_import_optional(tmp_path: Path, site_packages: Path) -> None:
    failing, needs = _needs(tmp_path, site_packages, "import audiolike\n")
    assert _verdict(needs["libavcodec.so.59"]) == ("missing", "optional", "libavcodec59")
    assert failing is False


@pytest.mark.parametrize(
    "source",
    [
        "import audiolike\n\ntry:\n    audiolike.load('x.wav')\nexcept ImportError:\n    pass\n",
        "import audiolike\n\ntry:\n    audiolike.load('x.wav')\nexcept Exception:\n    print('no decoder')\n",
        "try:\n    import audiolike\nexcept ImportError:\n    audiolike = None\n\naudiolike.load('x.wav')\n",
    ],
)
def test_a_guarded_call_or_a_guarded_import_keeps_it_optional(tmp_path: Path, site_packages: Path, source: str) -> None:
    failing, needs = _needs(tmp_path, site_packages, source)
    assert _verdict(needs["libavcodec.so.59"])[:2] == ("missing", "optional")
    assert failing is False


def test_a_handler_that_raises_again_does_not_guard_the_call(tmp_path: Path, site_packages: Path) -> None:
    source = "import audiolike\n\ntry:\n    audiolike.load('x.wav')\nexcept ImportError:\n    raise SystemExit('no decoder')\n"
    failing, needs = _needs(tmp_path, site_packages, source)
    assert _verdict(needs["libavcodec.so.59"])[:2] == ("missing", "required")
    assert failing is True


def test_a_class_method_re_exported_runs_its_program(tmp_path: Path, site_packages: Path) -> None:
    failing, needs = _needs(tmp_path, site_packages, "from seglike import Segment\n\nSegment.from_file('x.mp3')\n")
    ffprobe = needs["ffprobe"]
    assert _verdict(ffprobe) == ("missing", "required", "ffmpeg")
    assert "svc/main.py:3 calls seglike.Segment.from_file" in [str(step) for step in ffprobe.chain]
    assert failing is True
    (tmp_path / "import-only").mkdir()
    failing, needs = _needs(tmp_path / "import-only", site_packages, "from seglike import Segment\n")
    # Its function is not known to be called: kept, so that no --prune drops ffmpeg, but optional.
    assert needs["ffprobe"].tier.value == "optional"
    assert "inside a function not known to be called" in [str(step) for step in needs["ffprobe"].chain]
    assert failing is False


def test_instantiating_a_class_runs_its_init_and_the_methods_it_calls(tmp_path: Path, site_packages: Path) -> None:
    failing, needs = _needs(tmp_path, site_packages, "import initlike\n\nreader = initlike.Reader('x.wav')\n")
    sndfile = needs["libsndfile.so.1"]
    assert _verdict(sndfile) == ("missing", "required", "libsndfile1")
    assert "initlike/reader.py:6 calls initlike.reader.Reader._open" in [str(step) for step in sndfile.chain]


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("from seglike import Segment\n\nseg = Segment.from_file('x.mp3')\nseg.export('y.mp3')\n", 4),
        ("import seglike\n\n\ndef run(path):\n    seg = seglike.Segment()\n    seg.export(path)\n", 6),
    ],
)
def test_a_method_of_an_object_the_service_made_is_followed(tmp_path: Path, site_packages: Path, source: str, line: int) -> None:
    failing, needs = _needs(tmp_path, site_packages, source)
    ffmpeg = needs["ffmpeg"]
    assert _verdict(ffmpeg) == ("missing", "required", "ffmpeg")
    assert f"svc/main.py:{line} calls seglike.Segment.export" in [str(step) for step in ffmpeg.chain]
    assert failing is True


def test_a_method_of_an_object_a_library_function_made_is_followed(tmp_path: Path, site_packages: Path) -> None:
    failing, needs = _needs(tmp_path, site_packages, "import seglike.segment\n\nseglike.segment.convert('x.mp3')\n")
    ffmpeg = needs["ffmpeg"]
    assert _verdict(ffmpeg) == ("missing", "required", "ffmpeg")
    assert "seglike/segment.py:15 calls seglike.segment.Segment.export" in [str(step) for step in ffmpeg.chain]


def test_a_method_of_what_an_annotated_factory_returns_is_followed(tmp_path: Path, site_packages: Path) -> None:
    source = "import whisperlike\n\nmodel = whisperlike.load_model('base')\nprint(model.transcribe('a.mp3'))\n"
    failing, needs = _needs(tmp_path, site_packages, source)
    ffmpeg = needs["ffmpeg"]
    assert _verdict(ffmpeg) == ("missing", "required", "ffmpeg")
    assert [str(step) for step in ffmpeg.chain[3:7]] == [
        "svc/main.py:4 calls whisperlike.load_model.transcribe",
        "whisperlike/transcribe.py:6 calls whisperlike.audio.load_audio",
        "whisperlike/audio.py:7 run('ffmpeg')",
        "ffmpeg",
    ]
    assert failing is True
    (tmp_path / "import-only").mkdir()
    failing, needs = _needs(tmp_path / "import-only", site_packages, "import whisperlike\n")
    assert needs["ffmpeg"].tier.value == "optional"
    assert failing is False
