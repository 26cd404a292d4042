"""Needs the ELF walk cannot see, on real audio wheels installed into a cached venv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from depaudit.native.hints import distributions_hints, runs_at_import
from depaudit.packages.python_rules import load_python_rules
from depaudit.python.environment import load_environment
from depaudit.scan import ScanOptions, run_scan
from depaudit.evidence import chain_text

pytestmark = pytest.mark.network

WHEELS = ["sounddevice==0.5.6", "soundfile==0.14.0", "pydub==0.25.1", "pyttsx3==2.99", "numpy==2.4.6", "cffi==2.1.1"]


@pytest.fixture(scope="module")
def audio_sp(wheel_env) -> Path:
    return wheel_env("audio", WHEELS)


def _service(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "voice"
    folder.mkdir()
    (folder / "main.py").write_text(source)
    return folder


def _scan(tmp_path: Path, site_packages: Path, source: str):
    return run_scan(ScanOptions((_service(tmp_path, source),), (site_packages,), "ubuntu-22.04")).services[0]


def _apt(service) -> list[tuple[str, str, str | None, str, str]]:
    return sorted(
        (n.kind, n.name, n.package, n.status, n.tier.value)
        for n in service.needs
        if n.status in ("missing", "unmapped") and n.tier.value != "hint"
    )


def test_sounddevice_needs_portaudio_from_its_find_library_line(tmp_path: Path, audio_sp: Path) -> None:
    service = _scan(tmp_path, audio_sp, "import sounddevice\n")
    assert _apt(service) == [("soname", "libportaudio.so.2", "libportaudio2", "missing", "required")]
    need = next(n for n in service.needs if n.name == "libportaudio.so.2")
    assert chain_text(need.chain) == (
        "voice",
        "voice/main.py:1 import sounddevice",
        "sounddevice 0.5.6",
        "sounddevice.py:69 find_library('portaudio')",
        "libportaudio.so.2",
        "libportaudio2 (ubuntu-22.04)",
    )


def test_soundfile_needs_no_apt_package(tmp_path: Path, audio_sp: Path) -> None:
    assert _apt(_scan(tmp_path, audio_sp, "import soundfile\n")) == []


def test_pydub_needs_the_ffmpeg_program(tmp_path: Path, audio_sp: Path) -> None:
    assert _apt(_scan(tmp_path, audio_sp, "from pydub import AudioSegment\n")) == [
        ("program", "ffmpeg", "ffmpeg", "missing", "required")
    ]


def test_pyttsx3_behind_a_guarded_lazy_import_is_optional(tmp_path: Path, audio_sp: Path) -> None:
    source = "def speak(text):\n    try:\n        import pyttsx3\n    except ImportError:\n        return\n    pyttsx3.init().say(text)\n"
    assert _apt(_scan(tmp_path, audio_sp, source)) == [
        ("soname", "libespeak-ng.so.1", "libespeak-ng1", "missing", "optional")
    ]


def test_depaudit_why_prints_the_chain(tmp_path: Path, audio_sp: Path) -> None:
    service = _service(tmp_path, "import sounddevice\n")
    result = subprocess.run(
        [sys.executable, "-m", "depaudit", "why", "libportaudio2", str(service), "--site-packages", str(audio_sp)],
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout) == (
        0,
        "[required, missing] voice → voice/main.py:1 import sounddevice → sounddevice 0.5.6 → "
        "sounddevice.py:69 find_library('portaudio') → libportaudio.so.2 → libportaudio2 (ubuntu-22.04)\n",
    )


def test_static_detection_and_rules_side_by_side(audio_sp: Path) -> None:
    """What reading the code finds, next to what rules/python/packages.toml says, per package."""
    env = load_environment([audio_sp])
    rules = load_python_rules()
    found = {}
    for key in ("sounddevice", "soundfile", "pydub", "pyttsx3"):
        static = [(h.where, h.hint.candidates[0], "import" if runs_at_import(h) else "lazy") for h in distributions_hints([env.distributions[key]])[0]]
        rule = rules[key]
        found[key] = (static, sorted(rule.needs), sorted(rule.ignore))
    assert found == {
        # Reading the code is enough: the rule only confirms it.
        "sounddevice": ([("sounddevice.py:69", "portaudio", "import")], [("soname", "libportaudio.so.2")], []),
        # The code finds libsndfile, but the wheel's bundled copy is loaded first: the rule says so.
        "soundfile": (
            [("soundfile.py:194", "sndfile", "import"), ("soundfile.py:218", "libsndfile.so", "import")],
            [],
            [("soname", "libsndfile.so.1")],
        ),
        # pydub's own which() probes avconv first: the rule names ffmpeg and silences the rest.
        # The argvs are headed by what get_encoder_name() and get_prober_name() return.
        "pydub": (
            [
                ("pydub/audio_segment.py:616", "()get_encoder_name", "lazy"),
                ("pydub/audio_segment.py:766", "()get_encoder_name", "lazy"),
                ("pydub/audio_segment.py:963", "()get_encoder_name", "lazy"),
                ("pydub/utils.py:164", "avconv", "lazy"),
                ("pydub/utils.py:166", "ffmpeg", "lazy"),
                ("pydub/utils.py:178", "avplay", "lazy"),
                ("pydub/utils.py:180", "ffplay", "lazy"),
                ("pydub/utils.py:192", "avprobe", "lazy"),
                ("pydub/utils.py:194", "ffprobe", "lazy"),
                ("pydub/utils.py:274", "()get_prober_name", "lazy"),
                ("pydub/utils.py:334", "()get_prober_name", "lazy"),
                ("pydub/utils.py:339", "()get_prober_name", "lazy"),
                ("pydub/utils.py:385", "()get_encoder_name", "lazy"),
            ],
            [("program", "ffmpeg")],
            [("program", "avconv"), ("program", "avplay"), ("program", "avprobe"), ("program", "ffplay"), ("program", "ffprobe")],
        ),
        # Found in the espeak driver, loaded only when an engine starts: the rule makes it a need.
        "pyttsx3": (
            [("pyttsx3/drivers/_espeak.py:51", "/opt/homebrew/lib/libespeak-ng.1.dylib", "lazy")],
            [("soname", "libespeak-ng.so.1")],
            [("soname", "libespeak.so.1")],
        ),
    }


@pytest.mark.parametrize("rules", ["with", "without"])
def test_pydub_from_file_needs_ffmpeg_with_or_without_its_rule(
    tmp_path: Path, audio_sp: Path, monkeypatch: pytest.MonkeyPatch, rules: str
) -> None:
    """`AudioSegment.from_file` runs `[cls.converter, …]`, where `converter = get_encoder_name()`
    returns "avconv" or "ffmpeg", and `[prober, …]`, `prober = get_prober_name()`: read from the
    code, the distro's packaged one of each is needed; the which() probes stay hints."""
    from depaudit import scan

    if rules == "without":
        monkeypatch.setattr(scan, "load_python_rules", lambda: {k: v for k, v in load_python_rules().items() if k != "pydub"})
    report = _scan(tmp_path, audio_sp, "from pydub import AudioSegment\n\nAudioSegment.from_file('a.mp3')\n")
    assert _apt(report)[:1] == [("program", "ffmpeg", "ffmpeg", "missing", "required")]
    required = sorted((n.name, n.package) for n in report.needs if n.tier.value == "required" and n.kind.value == "program")
    if rules == "with":
        assert required == [("ffmpeg", "ffmpeg")]
        return
    assert required == [("ffmpeg", "ffmpeg"), ("ffprobe", "ffmpeg")]  # one package, as the rule says
    ffmpeg = next(n for n in report.needs if n.name == "ffmpeg")
    assert str(ffmpeg.chain[-3]) == (
        "pydub/audio_segment.py:766 subprocess.Popen(get_encoder_name()): it returns 'avconv', 'ffmpeg';"
        " 'ffmpeg' is the first the distro packages"
    )
    assert {n.name: n.tier.value for n in report.needs if n.name in ("avconv", "avprobe")} == {"avconv": "hint", "avprobe": "hint"}
