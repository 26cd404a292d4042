"""What reading a CUDA image's own libraries costs (DA221/DA222 with --image): wall time and the
bytes copied out of the layers, on a docker save whose one gzip layer holds CUDA 12.1's largest
libraries at their real sizes (rules/cuda/cuda.toml [sizes."12.1"]), as gcc-built stand-ins padded
with zeros.

Run by hand, never by CI (needs gcc and ~1.1 GB of temporary disk):

    .venv/bin/python benchmarks/image_cuda.py
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from depaudit.image.open import open_image
from depaudit.packages.cuda import load_cuda_rules
from depaudit.packages.image_cuda import image_cuda

LIB = "usr/local/cuda-12.1/targets/x86_64-linux/lib"
LIBRARIES = ["libcublasLt.so.12", "libcublas.so.12", "libcufft.so.11", "libcusparse.so.12", "libcurand.so.10", "libcudart.so.12"]


def _library(folder: Path, soname: str, kib: int, linked: bool) -> str:
    """The library as NVIDIA's packages lay it out (libx.so.12.0.0 and its soname link), or, not
    `linked`, a file of that name alone (read for its DT_SONAME). Returns the file's name."""
    source = folder / f"{soname}.c"
    source.write_text("int depaudit_stand_in(void) { return 0; }\n")
    name = f"{soname}.0.0" if linked else soname
    target = folder / name
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(target), str(source), f"-Wl,-soname,{soname}"], check=True)
    source.unlink()
    with target.open("r+b") as handle:
        handle.truncate(kib * 1024)
    if linked:
        (folder / soname).symlink_to(name)
    return name


def _image(root: Path, linked: bool) -> tuple[Path, int]:
    rules = load_cuda_rules()
    rootfs = root / "rootfs"
    (rootfs / LIB).mkdir(parents=True)
    total = 0
    listed = []
    for soname in LIBRARIES:
        kib = rules.kib("12.1.1", soname) or 0
        name = _library(rootfs / LIB, soname, kib, linked)
        total += kib * 1024
        listed += sorted({f"/{LIB}/{name}", f"/{LIB}/{soname}"})
    (rootfs / "var/lib/dpkg/info").mkdir(parents=True)
    (rootfs / "var/lib/dpkg/status").write_text("Package: libcublas-12-1\nStatus: install ok installed\nVersion: 1\n")
    (rootfs / "var/lib/dpkg/info/libcublas-12-1.list").write_text("".join(f"{p}\n" for p in listed))
    layer = root / "layer.tar.gz"
    with gzip.open(layer, "wb", compresslevel=1) as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        for path in sorted(rootfs.rglob("*")):
            tar.add(path, arcname=path.relative_to(rootfs).as_posix(), recursive=False)
    image = root / "cuda.tar"
    with tarfile.open(image, "w") as tar:
        members = [
            ("manifest.json", json.dumps([{"Config": "config.json", "Layers": ["l1/layer.tar"]}]).encode()),
            ("config.json", json.dumps({"config": {"Env": ["CUDA_VERSION=12.1.1"]}}).encode()),
        ]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.add(layer, arcname="l1/layer.tar")
    return image, total


def _copied(folder: Path) -> int:
    """Bytes really written under `folder` (sparse copies count only their blocks)."""
    return sum(os.stat(path).st_blocks * 512 for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def main() -> None:
    for linked in (True, False):
        print("with soname links (as NVIDIA's packages ship them):" if linked else "without them (each DT_SONAME read):")
        _measure(linked)


def _measure(linked: bool) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        image_path, total = _image(Path(temporary), linked)
        opened_at = time.perf_counter()
        image = open_image(image_path)
        read_at = time.perf_counter()
        held = image_cuda(image, load_cuda_rules())
        done = time.perf_counter()
        print(f"  libraries: {len(held.libraries)} ({', '.join(sorted(held.libraries))}), {total / 2**20:,.0f} MiB in one gzip layer")
        print(f"  open_image (layer index): {read_at - opened_at:.2f} s")
        print(f"  image_cuda (sonames and sizes): {done - read_at:.2f} s")
        print(f"  copied out of the layer: {_copied(image.fs.root) / 2**10:,.0f} KiB")


if __name__ == "__main__":
    sys.exit(main())
