"""A wheel laid out as pip installs it, holding only what the stages read, kept by its sha256."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from depaudit.lock.tree import assemble, wheel_tree
from depaudit.native.elf import read_elf
from depaudit.native.reads import read_by_the_scan
from depaudit.python.environment import load_environment
from lock_wheels import EXT, Wheels, sha256_of

_PIP_OWN = {"INSTALLER", "REQUESTED", "direct_url.json"}  # what pip adds to a dist-info on install


@pytest.fixture(scope="module")
def pip_installed(wheels: Wheels, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same wheel installed by pip (offline: the file itself), the twin a lock audit matches."""
    target = tmp_path_factory.mktemp("pip-target")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile", "--target", str(target), str(wheels.demo)],
        check=True, capture_output=True,
    )
    return target


def test_a_wheel_is_laid_out_where_pip_installs_its_files(wheels: Wheels, tmp_path: Path, pip_installed: Path) -> None:
    tree = wheel_tree(wheels.demo, sha256_of(wheels.demo), tmp_path, read_by_the_scan)
    laid = {p.relative_to(tree.folder).as_posix() for p in tree.folder.rglob("*") if p.is_file()}
    assert laid == {
        "demo/__init__.py",
        f"demo/_ext{EXT}",
        "demo.libs/libdemo-ab12cd34.so.1",
        "demo_extra.py",  # .data/purelib lands in site-packages
        "demo-1.0.dist-info/METADATA",
        "demo-1.0.dist-info/WHEEL",
        "demo-1.0.dist-info/RECORD",
        ".depaudit-tree.json",
    }  # no data files (demo/data/*.bin: nothing reads them), no scripts (installed outside)
    assert (tree.folder / "demo_extra.py").read_bytes() == (pip_installed / "demo_extra.py").read_bytes()
    assert tree.findings == () and not tree.cached
    with open(tree.folder / "demo-1.0.dist-info/RECORD", newline="") as stream:
        paths = [row[0] for row in csv.reader(stream)]
    assert "demo_extra.py" in paths and "../../../scripts/demo-tool" in paths
    assert not any(".data/" in path for path in paths)


def test_the_laid_out_wheel_reads_as_pip_installed_it(wheels: Wheels, tmp_path: Path, pip_installed: Path) -> None:
    tree = wheel_tree(wheels.demo, sha256_of(wheels.demo), tmp_path, read_by_the_scan)
    site = assemble([tree], "3.11", tmp_path)
    from_lock, from_pip = load_environment([site]), load_environment([pip_installed])
    assert from_lock.findings == from_pip.findings == ()
    (lock_dist,), (pip_dist,) = from_lock.distributions.values(), from_pip.distributions.values()
    pip_files = tuple(f for f in pip_dist.files if f.rpartition("/")[2] not in _PIP_OWN)
    assert replace(lock_dist, site_packages=pip_installed, dist_info=pip_dist.dist_info) == replace(pip_dist, files=pip_files)
    for relative in (f"demo/_ext{EXT}", "demo.libs/libdemo-ab12cd34.so.1"):
        sparse, whole = site / relative, pip_installed / relative
        assert sparse.stat().st_size == whole.stat().st_size
        assert replace(read_elf(sparse), path=whole) == read_elf(whole)
    assert read_elf(site / f"demo/_ext{EXT}").needed == ("libdemo-ab12cd34.so.1", "libsystemonly.so.1", "libc.so.6")


def test_a_tree_is_kept_under_the_wheels_digest_and_linked_not_copied(wheels: Wheels, tmp_path: Path) -> None:
    digest = sha256_of(wheels.demo)
    first = wheel_tree(wheels.demo, digest, tmp_path, read_by_the_scan)
    again = wheel_tree(wheels.demo, digest, tmp_path, read_by_the_scan)
    assert first.folder == again.folder == tmp_path / "wheel-trees" / digest[:2] / digest
    assert again.cached and again.bytes_read == first.bytes_read > 0
    assert first.bytes_touched < first.wheel_bytes / 2  # the 6 MiB data members are never read
    site = assemble([first], "3.11", tmp_path)
    assert site.parts[-3:] == ("lib", "python3.11", "site-packages")
    assert os.path.samefile(site / "demo/__init__.py", first.folder / "demo/__init__.py")
