"""A wheel laid out as pip installs it, holding only what the stages read, kept by its sha256."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from depaudit.cache import code_version
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
    assert first.folder == again.folder == tmp_path / "wheel-trees" / code_version() / digest[:2] / digest
    assert again.cached and again.bytes_read == first.bytes_read > 0
    assert first.bytes_touched < first.wheel_bytes / 2  # the 6 MiB data members are never read
    site = assemble([first], "3.11", tmp_path)
    assert site.parts[-3:] == ("lib", "python3.11", "site-packages")
    assert os.path.samefile(site / "demo/__init__.py", first.folder / "demo/__init__.py")


def test_a_member_past_every_readers_cap_keeps_its_size_and_only_the_start_a_reader_reads(tmp_path: Path) -> None:
    from depaudit.reading import MAX_SOURCE_BYTES, read_regular
    from lock_wheels import write_wheel

    huge = b"#" * (70 << 20)  # a 70 MiB comment: deflated to kilobytes
    wheel = write_wheel(
        tmp_path / "huge-1.0-py3-none-any.whl",
        {"huge/__init__.py": (huge, zipfile.ZIP_DEFLATED)},
        "huge-1.0.dist-info",
        "Metadata-Version: 2.1\nName: huge\nVersion: 1.0\n",
    )
    tree = wheel_tree(wheel, sha256_of(wheel), tmp_path / "cache", read_by_the_scan)
    laid = tree.folder / "huge/__init__.py"
    assert laid.stat().st_size == 70 << 20
    with open(laid, "rb") as stream:
        assert stream.read(MAX_SOURCE_BYTES + 1) == huge[: MAX_SOURCE_BYTES + 1]
    with pytest.raises(OSError, match="larger than 32 MiB"):
        read_regular(laid)  # as for the installed file: the stage reports it, it is not read


def test_a_tree_whose_record_is_unreadable_is_laid_out_again(wheels: Wheels, tmp_path: Path) -> None:
    digest = sha256_of(wheels.demo)
    first = wheel_tree(wheels.demo, digest, tmp_path, read_by_the_scan)
    (first.folder / ".depaudit-tree.json").write_text("{not json")
    again = wheel_tree(wheels.demo, digest, tmp_path, read_by_the_scan)
    assert not again.cached and again.bytes_touched == first.bytes_touched
    assert (again.folder / "demo/__init__.py").read_bytes() == b"from demo import _ext\n"


def test_trees_another_depaudit_laid_out_are_removed_not_read(wheels: Wheels, tmp_path: Path) -> None:
    digest = sha256_of(wheels.demo)
    stale = tmp_path / "wheel-trees" / "0.0.1-abcdef" / digest[:2] / digest
    stale.mkdir(parents=True)
    (stale / ".depaudit-tree.json").write_text('{"wheel_bytes": 1, "bytes_read": 0, "bytes_touched": 0, "findings": []}')
    tree = wheel_tree(wheels.demo, digest, tmp_path, read_by_the_scan)
    assert not tree.cached and tree.folder.parts[-3] == code_version()
    assert sorted(p.name for p in (tmp_path / "wheel-trees").iterdir()) == [code_version()]
