"""Libraries the process has already loaded: torchvision's layout, built with gcc.

`core` ships `core/lib/libc10.so` and an extension module that finds it through its RPATH, as
torch does. `vision` and `plugin` have extension modules that need `libc10.so` with no search
path to it. `vision`'s `__init__` imports core first (as torchvision's does); `plugin`'s loads
its own extension before it imports core.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.packages.model import Need
from depaudit.python.environment import load_environment
from depaudit.python.first_imports import FirstImport, FirstImports
from depaudit.scan import ScanOptions, run_scan
from helpers import build_so, elf_folder, make_dist

EXT = ".cpython-311-x86_64-linux-gnu.so"
CUDA_BASE = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"


@pytest.fixture(scope="module")
def site_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sp = elf_folder(tmp_path_factory, "loaded") / "site-packages"
    c10 = build_so(sp / "core/lib/libc10.so", soname="libc10.so")
    build_so(sp / f"core/_C{EXT}", needed=[c10], rpath="$ORIGIN/lib")
    make_dist(sp, "core", "2.0", files={"core/__init__.py": "from core._C import *\n"},
              existing=["core/lib/libc10.so", f"core/_C{EXT}"])
    build_so(sp / f"vision/_C{EXT}", needed=[c10])  # no RPATH: nothing leads to core/lib
    vision_init = '"""Vision."""\nimport os\nimport core\n\nfrom . import _C\n'
    make_dist(sp, "vision", "1.0", files={"vision/__init__.py": vision_init}, existing=[f"vision/_C{EXT}"], requires=["core"])
    build_so(sp / f"plugin/_ext{EXT}", needed=[c10])
    plugin_init = "from plugin import _ext\nimport core\n"
    make_dist(sp, "plugin", "1.0", files={"plugin/__init__.py": plugin_init}, existing=[f"plugin/_ext{EXT}"], requires=["core"])
    build_so(sp / f"app/_C{EXT}", needed=[c10])  # core arrives through vision's __init__
    make_dist(sp, "app", "1.0", files={"app/__init__.py": "import vision\nfrom app import _C\n"},
              existing=[f"app/_C{EXT}"], requires=["vision"])
    return sp


def _scan(tmp_path: Path, site_packages: Path, source: str) -> tuple[bool, dict[str, Need]]:
    service = tmp_path / "svc"
    service.mkdir()
    (service / "main.py").write_text(source)
    report = run_scan(ScanOptions((service,), (site_packages,), base_image=CUDA_BASE, use_cache=False))
    return report.failing, {n.name: n for n in report.services[0].needs if n.status.value != "bundled"}


def test_a_library_the_dependency_loaded_first_is_loaded(tmp_path: Path, site_packages: Path) -> None:
    failing, needs = _scan(tmp_path, site_packages, "import vision\n")
    c10 = needs["libc10.so"]
    assert (c10.status.value, c10.tier.value, c10.package, c10.found_at, c10.rule) == (
        "loaded", "required", None, "core/lib/libc10.so", "already loaded by core",
    )
    assert [str(step) for step in c10.chain] == [
        "svc",
        "svc/main.py:1 import vision",
        "vision 1.0",
        "vision/__init__.py:5 from . import _C",
        f"vision/_C{EXT}",
        "libc10.so",
        "vision/__init__.py:3 import core: core 2.0 has loaded core/lib/libc10.so first",
    ]
    assert failing is False


@pytest.mark.parametrize(
    ("source", "rule", "last_step"),
    [
        (  # app/__init__ imports vision, whose __init__ imports core first
            "import app\n",
            "already loaded by core",
            "app/__init__.py:1 import vision, which imports core first: core 2.0 has loaded core/lib/libc10.so first",
        ),
        (  # plugin loads its extension before it imports core: only the service's order saves it
            "import core\nimport plugin\n",
            "already loaded by core (the service's import order)",
            "svc/main.py:1 import core: core 2.0 has loaded core/lib/libc10.so first; "
            "only because the service imports it before plugin",
        ),
    ],
)
def test_a_library_loaded_before_the_need_is_loaded(
    tmp_path: Path, site_packages: Path, source: str, rule: str, last_step: str
) -> None:
    failing, needs = _scan(tmp_path, site_packages, source)
    c10 = needs["libc10.so"]
    assert (c10.status.value, c10.rule) == ("loaded", rule)
    assert str(c10.chain[-1]) == last_step
    assert failing is False


@pytest.mark.parametrize(
    "source",
    [
        "import plugin\n",  # plugin's __init__ loads its extension before it imports core
        "import plugin\nimport core\n",  # and the service imports core too late
    ],
)
def test_an_extension_loaded_before_its_library_still_fails(tmp_path: Path, site_packages: Path, source: str) -> None:
    failing, needs = _scan(tmp_path, site_packages, source)
    assert (needs["libc10.so"].status.value, needs["libc10.so"].tier.value) == ("unmapped", "required")
    assert failing is True


def test_first_imports_stop_at_the_packages_own_import(tmp_path: Path) -> None:
    sp = tmp_path / "site-packages"
    make_dist(sp, "core", files={"core/__init__.py": ""})
    make_dist(sp, "extra", files={"extra/__init__.py": ""})
    init = (
        "import sys\n"
        "try:\n    import extra\nexcept ImportError:\n    extra = None\n"  # guarded: not known to run
        "if sys.platform == 'linux':\n    import core.ops as ops\n"  # conditional: not known to run
        "import core\n"
        "if True:\n    from . import _impl\n"  # the package's own code may run here
        "import extra\n"
    )
    make_dist(sp, "user", files={"user/__init__.py": init}, requires=["core", "extra"])
    make_dist(sp, "broken", files={"broken/__init__.py": "import core\ndef (:\n"})
    firsts = FirstImports(load_environment((sp,)))
    assert firsts.of("user") == {"core": FirstImport("user/__init__.py", 8, "core")}
    assert firsts.of("broken") == {}  # unparsable: says nothing
    assert firsts.of("absent") == {}


def test_a_package_the_loaded_library_would_come_from_is_never_unused(tmp_path: Path, tmp_path_factory) -> None:
    """The loaded object wins over the image's; but the image may still load the family's copy
    if the order ever changes: the package stays, and nothing adds it."""
    sp = elf_folder(tmp_path_factory, "gomp") / "site-packages"
    gomp = build_so(sp / "core/lib/libgomp.so.1", soname="libgomp.so.1")
    build_so(sp / f"core/_C{EXT}", needed=[gomp], rpath="$ORIGIN/lib")
    make_dist(sp, "core", files={"core/__init__.py": ""}, existing=["core/lib/libgomp.so.1", f"core/_C{EXT}"])
    build_so(sp / f"vision/_C{EXT}", needed=[gomp])
    make_dist(sp, "vision", files={"vision/__init__.py": "import core\nfrom . import _C\n"}, existing=[f"vision/_C{EXT}"],
              requires=["core"])
    fleet = tmp_path / "fleet"
    (fleet / "docker/family-vision").mkdir(parents=True)
    (fleet / "docker/family-vision/Dockerfile").write_text(
        "FROM ubuntu:22.04\nRUN apt-get update && apt-get install -y --no-install-recommends libgomp1 libsm6\n"
    )
    (fleet / "services/cam").mkdir(parents=True)
    (fleet / "services/cam/main.py").write_text("import vision\n")
    (fleet / "services/cam/Dockerfile").write_text("FROM family-vision\n")

    report = run_scan(ScanOptions((fleet / "services",), (sp,), "ubuntu-22.04", use_cache=False))
    gomp_need = next(n for n in report.services[0].needs if n.name == "libgomp.so.1" and n.status.value != "bundled")
    assert (gomp_need.status.value, gomp_need.package, gomp_need.found_at) == ("loaded", "libgomp1", "core/lib/libgomp.so.1")
    family = report.families[0]
    assert [item.package for item in family.unused] == ["libsm6"]
    assert family.add == ()
