"""Module-level reach inside wheels, on gcc-built layouts of PyQt5, numba and opencv.

- `qtlike` ships one extension module per Qt module, as PyQt5 does: `from qtlike import QtGui`
  imports QtGui only, so what QtDBus links is not needed.
- `numlike` imports its TBB thread pool only inside a function, in a try with an OpenMP
  fallback, as numba does: libtbb is optional.
- `cvlike` loads its one extension module through importlib after changing sys.path, as cv2 does:
  no import statement shows it, so module reach says nothing and it stays required.
- `mplike` declares `sdlike` in Requires-Dist, as mediapipe declares sounddevice, but imports it
  only in its audio module, inside a try: sdlike's `find_library('portaudio')` is optional.
- `pluglike` imports `sdlike` at module level without declaring it: the import is the edge.
- `calllike` imports `sdlike` (undeclared) only inside a function: sdlike is optional.
- `stublike` imports its submodules on attribute access, as librosa's lazy_loader does: no
  reached module imports numlike, so even its module-level extension is optional.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from depaudit.packages.model import Need
from helpers import build_so, elf_folder, make_dist, scan_source, verdict

EXT = ".abi3.so"


@pytest.fixture(scope="module")
def site_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = elf_folder(tmp_path_factory, "modules")
    sp, stubs = root / "site-packages", root / "stubs"
    gl, dbus, tbb, gomp = (
        build_so(stubs / name, soname=name) for name in ("libGL.so.1", "libdbus-1.so.3", "libtbb.so.12", "libgomp.so.1")
    )
    for module, needed in (("QtCore", []), ("QtGui", [gl]), ("QtDBus", [dbus])):
        build_so(sp / f"qtlike/{module}{EXT}", needed=needed)
    make_dist(sp, "qtlike", files={"qtlike/__init__.py": '"""Qt."""\n'},
              existing=[f"qtlike/{m}{EXT}" for m in ("QtCore", "QtGui", "QtDBus")])

    for module, needed in (("_helper", []), ("tbbpool", [tbb]), ("omppool", [gomp])):
        build_so(sp / f"numlike/{module}{EXT}", needed=needed)
    parallel = (
        "def launch():\n"
        "    try:\n"
        "        from numlike import tbbpool as pool\n"
        "    except ImportError:\n"
        "        from numlike import omppool as pool\n"
        "    return pool\n"
    )
    make_dist(sp, "numlike", files={
        "numlike/__init__.py": "from numlike import _helper\nfrom numlike.parallel import launch\n",
        "numlike/parallel.py": parallel,
    }, existing=[f"numlike/{m}{EXT}" for m in ("_helper", "tbbpool", "omppool")])

    portaudio = (
        "import ctypes.util\n"
        "_lib = ctypes.util.find_library('portaudio')\n"
        "if _lib is None:\n"
        "    raise OSError('PortAudio library not found')\n"
    )
    make_dist(sp, "sdlike", files={"sdlike.py": portaudio})
    make_dist(sp, "mplike", requires=["sdlike"], files={
        "mplike/__init__.py": "from mplike import tasks\n",
        "mplike/tasks.py": "VERSION = 1\n",
        "mplike/audio.py": "try:\n    import sdlike\nexcept ImportError:\n    sdlike = None\n",
    })
    make_dist(sp, "pluglike", files={"pluglike/__init__.py": "import sdlike\n"})
    make_dist(sp, "calllike", files={"calllike/__init__.py": "def record():\n    import sdlike\n    return sdlike\n"})
    stub = "import importlib\n\ndef __getattr__(name):\n    return importlib.import_module(f'{__name__}.{name}')\n"
    make_dist(sp, "stublike", requires=["numlike"], files={"stublike/__init__.py": stub, "stublike/beat.py": "import numlike\n"})

    build_so(sp / f"cvlike/cvlike{EXT}", needed=[gl])
    loader = "import importlib, os, sys\nsys.path.insert(0, os.path.dirname(__file__))\nnative = importlib.import_module('cvlike')\n"
    make_dist(sp, "cvlike", files={"cvlike/__init__.py": loader}, existing=[f"cvlike/cvlike{EXT}"])
    return sp


def _needs(tmp_path: Path, site_packages: Path, source: str, module_reach: bool = True) -> tuple[bool, dict[str, Need]]:
    report = scan_source(tmp_path, site_packages, source, module_reach=module_reach)
    return report.failing, {n.name: n for n in report.services[0].needs}


_verdict = verdict


def _steps(need: Need, start: int, end: int) -> list[str]:
    return [str(step) for step in need.chain[start:end]]


def test_only_the_imported_extension_modules_count(tmp_path: Path, site_packages: Path) -> None:
    failing, needs = _needs(tmp_path, site_packages, "from qtlike import QtGui\n")
    assert (needs["libGL.so.1"].status.value, needs["libGL.so.1"].tier.value) == ("missing", "required")
    dbus = needs["libdbus-1.so.3"]
    assert (dbus.status.value, dbus.tier.value, dbus.package) == ("missing", "optional", "libdbus-1-3")
    assert [str(step) for step in dbus.chain] == [
        "svc",
        "svc/main.py:1 import qtlike",
        "qtlike 1.0",
        "no module the service reaches imports qtlike.QtDBus: not reached",
        f"qtlike/QtDBus{EXT}",
        "libdbus-1.so.3",
        "libdbus-1-3 (debian-12)",
    ]
    assert failing is True  # libGL, which QtGui links, is missing


def test_an_extension_imported_in_a_function_behind_a_fallback_is_optional(tmp_path: Path, site_packages: Path) -> None:
    failing, needs = _needs(tmp_path, site_packages, "import numlike\n")
    tbb = needs["libtbb.so.12"]
    assert (tbb.status.value, tbb.tier.value, tbb.package) == ("missing", "optional", "libtbb12")
    assert [str(step) for step in tbb.chain[3:6]] == [
        "numlike/__init__.py:2 from numlike.parallel import launch",
        "numlike/parallel.py:3 from numlike import tbbpool, inside a function not known to be called",
        f"numlike/tbbpool{EXT}",
    ]
    assert needs["libgomp.so.1"].tier.value == "optional"
    assert failing is False


def test_extension_modules_no_import_statement_shows_stay_as_they_were(tmp_path: Path, site_packages: Path) -> None:
    failing, needs = _needs(tmp_path, site_packages, "import cvlike\n")
    gl = needs["libGL.so.1"]
    assert (gl.status.value, gl.tier.value) == ("missing", "required")
    assert [str(step) for step in gl.chain[1:4]] == ["svc/main.py:1 import cvlike", "cvlike 1.0", f"cvlike/cvlike{EXT}"]
    assert failing is True


def test_a_guarded_import_of_the_service_keeps_its_extension_optional(tmp_path: Path, site_packages: Path) -> None:
    failing, needs = _needs(tmp_path, site_packages, "try:\n    from qtlike import QtGui\nexcept ImportError:\n    QtGui = None\n")
    assert needs["libGL.so.1"].tier.value == "optional"
    assert failing is False


def test_a_declared_dependency_no_reached_module_imports_is_optional(tmp_path: Path, site_packages: Path) -> None:
    failing, needs = _needs(tmp_path, site_packages, "import mplike\n")
    assert _verdict(needs["libportaudio.so.2"]) == ("missing", "optional", "libportaudio2")
    assert _steps(needs["libportaudio.so.2"], 1, 6) == [
        "svc/main.py:1 import mplike",
        "mplike 1.0",
        "sdlike 1.0 (Requires-Dist: sdlike)",
        "no module the service reaches imports sdlike 1.0",
        "sdlike.py:2 ctypes.util.find_library('portaudio')",
    ]
    assert failing is False


def test_without_module_reach_the_declared_dependency_is_required(tmp_path: Path, site_packages: Path) -> None:
    failing, needs = _needs(tmp_path, site_packages, "import mplike\n", module_reach=False)
    assert needs["libportaudio.so.2"].tier.value == "required"
    assert failing is True


def test_a_guarded_import_inside_the_wheel_keeps_its_hints_optional(tmp_path: Path, site_packages: Path) -> None:
    failing, needs = _needs(tmp_path, site_packages, "import mplike.audio\n")
    portaudio = needs["libportaudio.so.2"]
    assert portaudio.tier.value == "optional"
    assert [str(step) for step in portaudio.chain[3:5]] == [
        "sdlike 1.0 (Requires-Dist: sdlike)",
        "mplike/audio.py:2 import sdlike, inside a try that survives its failure",
    ]
    assert failing is False


@pytest.mark.parametrize(
    ("host", "statement", "tier"),
    [
        ("pluglike", "pluglike/__init__.py:1 import sdlike", "required"),
        ("calllike", "calllike/__init__.py:2 import sdlike, inside a function not known to be called", "optional"),
    ],
)
def test_an_undeclared_import_of_an_installed_distribution_is_an_edge(
    tmp_path: Path, site_packages: Path, host: str, statement: str, tier: str
) -> None:
    failing, needs = _needs(tmp_path, site_packages, f"import {host}\n")
    portaudio = needs["libportaudio.so.2"]
    assert (portaudio.status.value, portaudio.tier.value) == ("missing", tier)
    assert [str(step) for step in portaudio.chain[1:5]] == [
        f"svc/main.py:1 import {host}",
        statement,
        "sdlike 1.0 (imported; no Requires-Dist declares it)",
        "sdlike.py:2 ctypes.util.find_library('portaudio')",
    ]
    assert failing is (tier == "required")


def test_the_extension_modules_of_a_distribution_no_reached_module_imports_are_optional(
    tmp_path: Path, site_packages: Path
) -> None:
    failing, needs = _needs(tmp_path, site_packages, "import stublike\n")
    tbb = needs["libtbb.so.12"]
    assert (tbb.status.value, tbb.tier.value) == ("missing", "optional")
    assert [str(step) for step in tbb.chain[3:6]] == [
        "numlike 1.0 (Requires-Dist: numlike)",
        "no module the service reaches imports numlike 1.0",
        f"numlike/tbbpool{EXT}",
    ]
    assert failing is False
    (tmp_path / "coarse").mkdir()
    failing, needs = _needs(tmp_path / "coarse", site_packages, "import stublike\n", module_reach=False)
    assert needs["libtbb.so.12"].tier.value == "required"


def test_the_command_line_turns_module_reach_off(tmp_path: Path, site_packages: Path) -> None:
    service = tmp_path / "svc"
    service.mkdir()
    (service / "main.py").write_text("import stublike\n")
    base = [sys.executable, "-m", "depaudit", "scan", str(service), "--site-packages", str(site_packages),
            "--distro", "debian-12", "--no-cache"]
    assert subprocess.run(base, capture_output=True, text=True).returncode == 0
    coarse = subprocess.run([*base, "--no-module-reach"], capture_output=True, text=True)
    assert coarse.returncode == 1
    assert coarse.stdout.endswith("1 service(s) need what the image lacks: libgomp1, libtbb12.\n")

