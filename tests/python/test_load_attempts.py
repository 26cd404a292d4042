"""Builds a package loads by path, one of several: a gcc-built layout of torchcodec.

`buildslike` ships `libbuildscore{60,59,58}.so`, each linking another major of libavcodec, and
`libbuildsops{N}.so`, which needs `libbuildscore{N}.so` by name (the same pass loaded it first).
`load_core()` tries each major in turn with `ctypes.CDLL(_path(...))` and raises when none loads;
`Decoder.__init__` calls it, and the package `__init__` calls it once inside a try that survives.
`load_quiet()` tries the same builds but returns None when none loads. `load_heic()` loads a build
that links libheif. Each core build also needs `libtorchlike_core.so`, which only `torchlike`'s
extension module loads (from its own lib/): `_utils.py` imports torchlike first, as torchcodec's
module imports torch, so that library is already in the process when a build loads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.packages.model import Need
from helpers import build_so, elf_folder, make_dist, scan_source, verdict

EXT = ".abi3.so"

UTILS = """\
import torchlike
import ctypes
import importlib.machinery
from pathlib import Path


def _path(name):
    finder = importlib.machinery.FileFinder(str(Path(__file__).parent), (importlib.machinery.ExtensionFileLoader, [".so"]))
    return finder.find_spec(name).origin


def load_core():
    errors = []
    for major in (60, 59, 58):
        try:
            ctypes.CDLL(_path(f"libbuildscore{major}"))
            ctypes.CDLL(_path("libbuildsops%d" % major))
            return major
        except OSError as error:
            errors.append(error)
    raise RuntimeError(f"no build loads: {errors}")


def load_quiet():
    for major in (60, 59, 58):
        try:
            return ctypes.CDLL(_path(f"libbuildscore{major}"))
        except OSError:
            pass
    return None


def load_heic():
    ctypes.CDLL(_path("libbuildsheic"))
"""

INIT = """\
from buildslike._utils import load_core, load_heic, load_quiet

try:
    load_core()
    AVAILABLE = True
except Exception:
    AVAILABLE = False


class Decoder:
    def __init__(self, path):
        load_core()
        self.path = path
"""


@pytest.fixture(scope="module")
def site_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = elf_folder(tmp_path_factory, "attempts")
    sp, stubs = root / "site-packages", root / "stubs"
    torch_core = build_so(sp / "torchlike/lib/libtorchlike_core.so", soname="libtorchlike_core.so")
    build_so(sp / f"torchlike/_C{EXT}", needed=[torch_core], rpath="$ORIGIN/lib")
    make_dist(sp, "torchlike", files={"torchlike/__init__.py": "from torchlike._C import ops\n"},
              existing=[f"torchlike/_C{EXT}", "torchlike/lib/libtorchlike_core.so"])
    shipped = []
    for major in (60, 59, 58):
        avcodec = build_so(stubs / f"libavcodec.so.{major}", soname=f"libavcodec.so.{major}")
        core = build_so(
            sp / f"buildslike/libbuildscore{major}.so", soname=f"libbuildscore{major}.so", needed=[avcodec, torch_core]
        )
        build_so(sp / f"buildslike/libbuildsops{major}.so", needed=[core])
        shipped += [f"buildslike/libbuildscore{major}.so", f"buildslike/libbuildsops{major}.so"]
    heif = build_so(stubs / "libheif.so.1", soname="libheif.so.1")
    build_so(sp / "buildslike/libbuildsheic.so", needed=[heif])
    shipped.append("buildslike/libbuildsheic.so")
    make_dist(sp, "buildslike", files={"buildslike/__init__.py": INIT, "buildslike/_utils.py": UTILS}, existing=shipped)
    return sp


def _scan(tmp_path: Path, site_packages: Path, source: str, distro: str = "debian-12") -> tuple[bool, dict[str, Need]]:
    """Whether the scan fails, and each need by name (of one name: the surest, then the one to act on)."""
    report = scan_source(tmp_path, site_packages, source, distro)
    needs = sorted(report.services[0].needs, key=lambda n: (n.tier.rank, n.status.rank))
    return report.failing, {n.name: n for n in reversed(needs)}


_verdict = verdict


@pytest.mark.parametrize(
    ("distro", "chosen", "package"),
    [("debian-12", 59, "libavcodec59"), ("ubuntu-22.04", 58, "libavcodec58")],
)
def test_the_build_the_distro_can_be_given_is_required_when_the_load_runs(
    tmp_path: Path, site_packages: Path, distro: str, chosen: int, package: str
) -> None:
    failing, needs = _scan(tmp_path, site_packages, "import buildslike\n\nbuildslike.Decoder('x.mp4')\n", distro)
    need = needs[f"libavcodec.so.{chosen}"]
    assert _verdict(need) == ("missing", "required", package)
    assert [str(step) for step in need.chain[1:]] == [
        "svc/main.py:1 import buildslike",
        "buildslike 1.0",
        "svc/main.py:3 calls buildslike.Decoder",
        "buildslike/__init__.py:12 calls buildslike._utils.load_core",
        "buildslike/_utils.py:16 ctypes.CDLL loads the first of libbuildscore60, libbuildscore59, libbuildscore58"
        f" that loads, and raises if none does: libbuildscore{chosen} is the first this image can be given packages for",
        f"buildslike/libbuildscore{chosen}.so",
        f"libavcodec.so.{chosen}",
        f"{package} ({distro})",
    ]
    # The other builds stay what the walk of the wheel's files says: optional.
    others = {f"libavcodec.so.{m}": needs[f"libavcodec.so.{m}"].tier.value for m in (60, 59, 58) if m != chosen}
    assert set(others.values()) == {"optional"}
    loaded = needs["libtorchlike_core.so"]
    assert (loaded.status.value, loaded.tier.value) == ("loaded", "required")
    assert str(loaded.chain[-1]) == (
        "buildslike/_utils.py:1 import torchlike: torchlike 1.0 has loaded torchlike/lib/libtorchlike_core.so first"
    )
    # libbuildsops{N} needs libbuildscore{N}.so by name, which the same pass loaded first.
    assert not any(n.tier.value == "required" and n.name.startswith("libbuildscore") for n in needs.values())
    assert failing is True


@pytest.mark.parametrize(
    "source",
    [
        "import buildslike\n",  # the __init__'s own load is inside a try that survives
        "import buildslike._utils\n\nbuildslike._utils.load_quiet()\n",  # returns None when none loads
        "import buildslike\n\ntry:\n    buildslike.Decoder('x')\nexcept Exception:\n    pass\n",
    ],
)
def test_a_load_whose_failure_is_survived_leaves_the_builds_optional(tmp_path: Path, site_packages: Path, source: str) -> None:
    failing, needs = _scan(tmp_path, site_packages, source)
    assert _verdict(needs["libavcodec.so.59"])[:2] == ("missing", "optional")
    assert failing is False


def test_one_shipped_file_loaded_by_path_is_as_sure_as_the_call(tmp_path: Path, site_packages: Path) -> None:
    failing, needs = _scan(tmp_path, site_packages, "import buildslike\n\nbuildslike.load_heic()\n")
    heif = needs["libheif.so.1"]
    assert (heif.status.value, heif.tier.value) == ("unmapped", "required")
    assert [str(step) for step in heif.chain[3:7]] == [
        "svc/main.py:3 calls buildslike.load_heic",
        "buildslike/_utils.py:34 ctypes.CDLL('libbuildsheic')",
        "buildslike/libbuildsheic.so",
        "libheif.so.1",
    ]
    assert failing is True
    _, imported = _scan(tmp_path / "alone", site_packages, "import buildslike\n")
    assert imported["libheif.so.1"].tier.value == "optional"
