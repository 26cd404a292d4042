"""A real venv's site-packages (opencv-python, numpy, sounddevice, soundfile, cffi, pydub)."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.python.closure import requires_closure
from depaudit.python.environment import infer_target, load_environment
from depaudit.python.model import RequirementEdge as Edge
from depaudit.python.model import TargetPython

SCRATCH = Path("/tmp/scratch")
SITE = SCRATCH / "lib" / "python3.11" / "site-packages"

pytestmark = pytest.mark.skipif(
    not (SITE / "opencv_python-4.14.0.94.dist-info").is_dir(), reason=f"no real venv at {SITE}"
)


def test_real_wheels_map_to_their_distributions() -> None:
    env = load_environment([SITE])
    assert [d.label for d in env.providers("cv2")] == ["opencv-python 4.14.0.94"]
    assert [d.key for d in env.providers("soundfile")] == ["soundfile"]
    assert [d.key for d in env.providers("sounddevice")] == ["sounddevice"]
    assert [d.key for d in env.providers("_cffi_backend")] == ["cffi"]
    assert [d.key for d in env.providers("pydub.audio_segment")] == ["pydub"]
    assert [d.key for d in env.providers("numpy.linalg")] == ["numpy"]
    assert env.owner_of(SITE / "cv2" / "__init__.py") == "opencv-python"
    if (SCRATCH / "lib64").is_symlink():  # the venv's lib64 → lib: same files, other spelling
        assert env.owner_of(SCRATCH / "lib64" / "python3.11" / "site-packages" / "soundfile.py") == "soundfile"


def test_real_requires_closure_of_sounddevice() -> None:
    env = load_environment([SITE])
    target = infer_target([SITE])
    assert target == TargetPython(python_version="3.11", python_full_version="3.11.0")
    cffi = Edge("sounddevice", "cffi", "cffi")
    pycparser = Edge("cffi", "pycparser", 'pycparser; implementation_name != "PyPy"')
    assert requires_closure(env, ["sounddevice"], target) == {
        "sounddevice": (),
        "cffi": (cffi,),
        "pycparser": (cffi, pycparser),
    }
    # numpy only with the `numpy` extra.
    assert requires_closure(env, ["sounddevice[numpy]"], target)["numpy"] == (
        Edge("sounddevice", "numpy", 'numpy; extra == "numpy"'),
    )
