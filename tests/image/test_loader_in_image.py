"""ld.so's search order against a real unpacked image: each need records the rule that found it."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.findings import Finding, FindingKind
from depaudit.image.open import open_rootfs
from depaudit.native.distribution import analyse_distribution
from depaudit.evidence import Tier
from depaudit.native.model import LibraryStatus, NativeNeed, NativeReport
from depaudit.python.environment import load_environment
from helpers import build_image_scene, have_gcc, opened_files

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")

EXT = ".cpython-311-x86_64-linux-gnu.so"
NATIVE = (f"app/_native{EXT}",)
DEFAULTS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib", "/lib64", "/usr/lib64")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_image_scene(tmp_path_factory.mktemp("image"))


def _analyse(scene: tuple[Path, Path], ld_library_path: tuple[str, ...] = ("/opt/ldpath",)) -> tuple[NativeReport, object]:
    rootfs, sp = scene
    image = open_rootfs(rootfs, {"LD_LIBRARY_PATH": ":".join(ld_library_path)})
    env = load_environment([sp])
    report = analyse_distribution(
        env.distributions["app"],
        owner_of=env.owner_of,
        search_roots=[sp],
        ld_library_path=image.ld_library_path,
        image=image,
    )
    return report, image


def _need(report: NativeReport, soname: str) -> NativeNeed:
    (need,) = [n for n in report.needs if n.soname == soname]
    return need


def test_default_directories_find_a_symlinked_soname_owned_by_dpkg(scene) -> None:
    report, image = _analyse(scene)
    need = _need(report, "libdefault.so.1")
    assert need == NativeNeed(
        "libdefault.so.1", LibraryStatus.IMAGE, Tier.REQUIRED, NATIVE, "/lib/x86_64-linux-gnu/libdefault.so.1", None,
        "default directories",
    )
    assert image.owner_of(need.found_at) == "libdefault1"
    assert image.dpkg.installed == {"libdefault1": "1.2.3-1"}


def test_ld_so_conf_include_globs_and_a_32_bit_candidate_skipped(scene) -> None:
    report, image = _analyse(scene)
    assert image.ld_so_conf == ("/opt/extra/lib", "/usr/local/cuda/lib64")
    # /opt/ldpath (LD_LIBRARY_PATH) comes first but holds a 32-bit libconf.so.1.
    assert (_need(report, "libconf.so.1").found_at, _need(report, "libconf.so.1").rule) == (
        "/opt/extra/lib/libconf.so.1",
        "ld.so.conf",
    )


def test_a_candidate_of_another_os_abi_is_skipped(scene) -> None:
    report, _ = _analyse(scene)
    need = _need(report, "libabi.so.1")
    assert (need.found_at, need.rule) == ("/opt/extra/lib/libabi.so.1", "ld.so.conf")


def test_ld_library_path_from_the_image_env(scene) -> None:
    report, _ = _analyse(scene)
    assert (_need(report, "libld.so.1").found_at, _need(report, "libld.so.1").rule) == (
        "/opt/ldpath/libld.so.1",
        "LD_LIBRARY_PATH",
    )


def test_rpath_comes_before_ld_library_path_and_runpath_after_it(scene) -> None:
    report, _ = _analyse(scene)
    found = {(n.chain, n.found_at, n.rule) for n in report.needs if n.soname == "libprec.so.1"}
    assert found == {
        ((f"app/_rpath{EXT}",), "rpathfirst/libprec.so.1", "DT_RPATH"),
        ((f"app/_runpath{EXT}",), "/opt/ldpath/libprec.so.1", "LD_LIBRARY_PATH"),
    }


def test_a_missing_library_lists_every_directory_tried(scene) -> None:
    report, _ = _analyse(scene)
    assert _need(report, "libmissing.so.1") == NativeNeed(
        "libmissing.so.1", LibraryStatus.SYSTEM, Tier.REQUIRED, NATIVE, None, None, None,
        ("/opt/ldpath", "/opt/extra/lib", "/usr/local/cuda/lib64", *DEFAULTS),
    )
    # A folder listed in a file that the include glob does not match is not searched.
    assert _need(report, "libhidden.so.1").status is LibraryStatus.SYSTEM


def test_hostile_links_resolve_inside_the_image_or_end_in_a_finding(scene) -> None:
    report, image = _analyse(scene)
    for soname in ("libabs.so.1", "libclimb.so.1", "libloop.so.1"):
        assert _need(report, soname).status is LibraryStatus.SYSTEM, soname  # this host's /etc/passwd is not the image's
    assert image.fs.findings == [
        Finding(
            FindingKind.SYMLINK_LOOP,
            "/usr/lib/x86_64-linux-gnu/libloop.so.1",
            None,
            "symbolic links loop: the loader cannot open it",
        )
    ]


def test_nothing_outside_the_image_and_the_environment_is_opened(scene, tmp_path: Path) -> None:
    rootfs, sp = scene
    with opened_files().watching() as opened:
        _analyse(scene)
    allowed = (str(rootfs), str(sp))
    outside = [p for p in opened if not p.startswith(allowed)]
    assert opened and outside == []


def test_the_images_own_site_packages_is_the_default_environment(scene, tmp_path: Path) -> None:
    import shutil

    from depaudit.scan import ScanOptions, run_scan

    rootfs, sp = scene
    image_root = tmp_path / "rootfs"
    shutil.copytree(rootfs, image_root, symlinks=True)
    shutil.copytree(sp, image_root / "usr/local/lib/python3.10/site-packages", symlinks=True)
    service = tmp_path / "svc"
    service.mkdir()
    (service / "main.py").write_text("import app\n")
    report = run_scan(ScanOptions((service,), rootfs=image_root, env={"LD_LIBRARY_PATH": "/opt/ldpath"}))
    assert (report.python_version, report.distribution_count) == ("3.10", 1)
    needs = {n.name: n for n in report.services[0].needs}
    assert (needs["libdefault.so.1"].status, needs["libdefault.so.1"].package) == ("base-image", "libdefault1")
    # The environment lives in the image: $ORIGIN-relative paths are resolved there too.
    assert needs["libprec.so.1"].found_at == "rpathfirst/libprec.so.1"


def test_lookup_answers_from_the_images_dpkg_database(scene) -> None:
    from depaudit.packages.lookup import LookupAnswer, lookup_in_image

    rootfs, _ = scene
    image = open_rootfs(rootfs, {"LD_LIBRARY_PATH": "/opt/ldpath"})
    assert lookup_in_image("libdefault.so.1", image) == [
        LookupAnswer("libdefault1", f"image {rootfs}: dpkg database, /lib/x86_64-linux-gnu/libdefault.so.1")
    ]
    assert lookup_in_image("libld.so.1", image) == [
        LookupAnswer("(no package)", f"image {rootfs}: /opt/ldpath/libld.so.1, which no dpkg package owns")
    ]
    assert lookup_in_image("libmissing.so.1", image) == []
