"""ELF files a service ships in its own folder: bundled there, and never looked up outside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from depaudit.native.distribution import analyse_folder
from depaudit.evidence import Tier
from depaudit.native.model import LibraryStatus, NativeNeed, NativeReport
from helpers import build_so, elf_folder


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = elf_folder(tmp_path_factory, "service")
    stubs, folder = root / "stubs", root / "services" / "detector"
    gl = build_so(stubs / "libGL.so.1", soname="libGL.so.1")
    escape = build_so(stubs / "libescape.so.1", soname="libescape.so.1")
    vendored = build_so(folder / "vendor/libsvc.so.1", soname="libsvc.so.1", needed=[gl, escape])
    # A symlink inside the folder whose target is outside it: not the folder's file.
    os.symlink(escape, folder / "vendor/libescape.so.1")
    build_so(folder / "native/_svc.so", needed=[vendored], rpath="$ORIGIN/../vendor")
    return folder


def test_a_vendored_library_and_its_system_needs(service: Path) -> None:
    report = analyse_folder("detector", [service / "native/_svc.so", service / "vendor/libsvc.so.1"], service)
    chain = ("native/_svc.so", "vendor/libsvc.so.1")
    assert report == NativeReport(
        "detector",
        (
            NativeNeed("libGL.so.1", LibraryStatus.SYSTEM, Tier.REQUIRED, chain, None, None, None, ("vendor",)),
            NativeNeed("libc.so.6", LibraryStatus.SYSTEM, Tier.REQUIRED, ("native/_svc.so",), None, None, None, ("vendor",)),
            # vendor/libescape.so.1 exists, but resolves outside the folder: never read.
            NativeNeed("libescape.so.1", LibraryStatus.SYSTEM, Tier.REQUIRED, chain, None, None, None, ("vendor",)),
            NativeNeed(
                "libsvc.so.1",
                LibraryStatus.BUNDLED,
                Tier.REQUIRED,
                ("native/_svc.so",),
                "vendor/libsvc.so.1",
                None,
                "DT_RPATH",
            ),
        ),
        (),
    )
