"""The owner of a library, read from an image's dpkg database, is what `dpkg -S` says."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from depaudit.image.open import open_rootfs

MULTIARCH = "/usr/lib/x86_64-linux-gnu"


@pytest.mark.skipif(shutil.which("dpkg") is None or not Path("/var/lib/dpkg/status").exists(), reason="no dpkg database here")
def test_this_machines_root_read_as_an_image_agrees_with_dpkg_s() -> None:
    image = open_rootfs(Path("/"))
    sonames = sorted(p.name for p in Path(MULTIARCH).glob("lib*.so.*") if p.is_file())
    assert len(sonames) > 100
    paths = [f"{MULTIARCH}/{name}" for name in sonames]
    # dpkg -S answers for the real file; ask for both the link and its target, like a user would.
    query = sorted({*paths, *(str(Path(p).resolve()) for p in paths)})
    output = subprocess.run(["dpkg", "-S", *query], capture_output=True, text=True).stdout
    dpkg_says: dict[str, str] = {}
    for line in output.splitlines():
        packages, _, path = line.partition(": ")
        dpkg_says[path] = packages.split(",")[0].split(":")[0].strip()

    compared = 0
    for path in paths:
        expected = dpkg_says.get(path) or dpkg_says.get(str(Path(path).resolve()))
        if expected is None:
            continue  # made by ldconfig or a maintainer script: dpkg owns no such file
        assert image.owner_of(path) == expected, path
        compared += 1
    assert compared > 100, f"only {compared} libraries were compared"
