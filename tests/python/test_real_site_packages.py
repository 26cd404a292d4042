"""A real venv's site-packages (opencv-python, numpy, sounddevice, soundfile, cffi, pydub): the example
fleet's pinned requirements, installed once into the suite's cache (conftest's fleet_site_packages)."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.python.closure import requires_closure
from depaudit.python.environment import infer_target, load_environment
from depaudit.python.model import RequirementEdge as Edge
from depaudit.python.model import TargetPython

pytestmark = pytest.mark.network


def test_real_wheels_map_to_their_distributions(fleet_site_packages: Path) -> None:
    site = fleet_site_packages
    env = load_environment([site])
    assert [d.label for d in env.providers("cv2")] == ["opencv-python 4.14.0.94"]
    assert [d.key for d in env.providers("soundfile")] == ["soundfile"]
    assert [d.key for d in env.providers("sounddevice")] == ["sounddevice"]
    assert [d.key for d in env.providers("_cffi_backend")] == ["cffi"]
    assert [d.key for d in env.providers("pydub.audio_segment")] == ["pydub"]
    assert [d.key for d in env.providers("numpy.linalg")] == ["numpy"]
    assert env.owner_of(site / "cv2" / "__init__.py") == "opencv-python"
    # `python -m venv` on 64-bit Linux links lib64 → lib: the same files by another spelling.
    venv, python_dir = site.parents[2], site.parent.name
    assert (venv / "lib64").is_symlink()
    assert env.owner_of(venv / "lib64" / python_dir / "site-packages" / "soundfile.py") == "soundfile"


def test_real_requires_closure_of_sounddevice(fleet_site_packages: Path) -> None:
    site = fleet_site_packages
    env = load_environment([site])
    target = infer_target([site])
    version = site.parent.name.removeprefix("python")  # the venv's lib/pythonX.Y, as pip made it
    assert target == TargetPython(python_version=version, python_full_version=f"{version}.0")
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
