"""Sparse copies out of an image read as the files do: real system libraries and the extension
modules of this interpreter's own site-packages, put in a layer, copied out with only the bytes
the native stage reads, then read by the store's reader from both places."""

from __future__ import annotations

import sysconfig
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from depaudit.image.layers import LayeredImage
from depaudit.native.reads import read_by_the_scan
from depaudit.native.elf import ElfError, is_extension_module, read_elf_then
from depaudit.native.store import _evidence
from helpers import build_probing_so, have_gcc

SYSTEM = Path("/usr/lib/x86_64-linux-gnu")


def _real_objects(scratch: Path) -> list[Path]:
    """System libraries, this interpreter's extension modules, and (gcc permitting) one module
    and one library with dlopen evidence of both kinds: soname strings are read of the module."""
    libraries = sorted(p for p in SYSTEM.glob("lib*.so.*") if p.is_file() and not p.is_symlink())
    modules = sorted(Path(sysconfig.get_paths()["platlib"]).glob("*/*.cpython-*.so"))
    small = [p for p in libraries if p.stat().st_size < 8 << 20][:120]
    built = []
    if have_gcc():
        built = [build_probing_so(scratch, "_probe.cpython-311-x86_64-linux-gnu.so", 4 << 20), build_probing_so(scratch, "libprobe.so.1", 4 << 20)]
    return small + modules[:40] + built


def _read(path: Path) -> tuple:
    try:
        info, evidence = read_elf_then(path, _evidence(is_extension_module(path.name)))
    except ElfError as error:
        return ("error", error.kind, error.message)
    fields = (info.elf_class, info.machine, info.soname, info.needed, info.rpath, info.runpath, info.osabi)
    return ("elf", fields, evidence)


@pytest.fixture(scope="module")
def copied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Path], Path]]:
    objects = _real_objects(tmp_path_factory.mktemp("built"))
    if len(objects) < 20:
        pytest.skip(f"too few real shared objects under {SYSTEM} and in this interpreter's site-packages")
    layer = tmp_path_factory.mktemp("layer") / "layer.tar"
    with tarfile.open(layer, "w") as tar:
        for number, path in enumerate(objects):
            tar.add(path, arcname=f"sp/{number}/{path.name}")
    image = LayeredImage("real objects", [lambda: open(layer, "rb")])
    host = image.python_environment("/sp", read_by_the_scan)
    assert host is not None and image.findings == []
    yield objects, host  # while the image lives: its copies go with it


def test_every_object_reads_the_same_from_its_sparse_copy(copied: tuple[list[Path], Path]) -> None:
    objects, host = copied
    differ = [path for number, path in enumerate(objects) if _read(host / str(number) / path.name) != _read(path)]
    assert differ == []
    probed = [p for p in objects if p.name == "_probe.cpython-311-x86_64-linux-gnu.so"]
    if probed:  # the strings were copied out: they are found in the copy too
        assert [e.soname for e in _read(probed[0])[2]] == ["libavutil.so.57", "libavutil.so.58", "libbar.so.2"]


def test_the_copies_of_libraries_hold_little_of_their_bytes(copied: tuple[list[Path], Path]) -> None:
    objects, host = copied
    libraries = [(number, p) for number, p in enumerate(objects) if not is_extension_module(p.name)]
    size = sum(p.stat().st_size for _, p in libraries)
    held = sum((host / str(number) / p.name).stat().st_blocks * 512 for number, p in libraries)
    assert all((host / str(n) / p.name).stat().st_size == p.stat().st_size for n, p in libraries)
    assert held < size / 10, f"{held:,} of {size:,} bytes written"
