"""What checking an image's layer digests costs: a scan of one service against an image with one
~200 MB layer, with the check and without it, and sha256's own throughput here.

Run by hand, never by CI:

    .venv/bin/python benchmarks/digest_cost.py [MiB [RUNS]]

The check cannot be turned off from the command line; this benchmark turns it off in-process
(`depaudit.image.layers._CHECK_DIGESTS = False`), which exists for it alone. Three images are
built: an OCI layout with a plain layer (the blob's digest is hashed as stored), one with a gzip
layer (hashed compressed, as stored), and a legacy `docker save` with a gzip layer.tar (checked
against the config's diff_id: hashed as it decompresses). The scan is in-process (`run_scan`),
cache off, one worker; each figure is the best of five, checked and unchecked runs interleaved
(this machine's speed drifts), beside sha256 alone over the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from image_builders import docker_save, file, oci_members, tar_bytes, write_folder  # noqa: E402

from depaudit.image import layers  # noqa: E402
from depaudit.scan import ScanOptions, run_scan  # noqa: E402


def _layer(mebibytes: int) -> bytes:
    """`mebibytes` files of 1 MiB: half random, half text, as compressible as real layers (~2x)."""
    text = b"".join(b"usr/lib/python3/dist-packages/module_%06d.py: def f(): return 42\n" % n for n in range(8192))[: 512 * 1024]
    members = [file("etc/os-release", b'ID=debian\nVERSION_ID="12"\n')]
    members += [file(f"usr/share/data/blob-{n:04d}", os.urandom(512 * 1024) + text) for n in range(mebibytes)]
    return tar_bytes(members)


def _timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    mebibytes = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        plain = _layer(mebibytes)
        packed = gzip.compress(plain, compresslevel=1, mtime=0)
        # (image, the bytes its check hashes)
        images = {
            "OCI, plain layer": (write_folder(root / "plain.oci", oci_members([plain])), plain),
            "OCI, gzip layer": (write_folder(root / "gzip.oci", oci_members([packed])), packed),
            "docker save, gzip layer.tar (diff_id)": (docker_save(root / "legacy.tar", [packed]), plain),
        }
        service, site_packages = root / "svc", root / "site-packages"
        service.mkdir()
        site_packages.mkdir()
        (service / "main.py").write_text('import ctypes\nctypes.CDLL("libz.so.1")\n')
        print(f"layer: {len(plain) / 2**20:.0f} MiB uncompressed, {len(packed) / 2**20:.0f} MiB gzip; best of {runs}, "
              "checked and unchecked runs interleaved")
        print(f"{'image':<40} {'hashed':>8} {'sha256 alone':>13} {'checked':>9} {'unchecked':>10} {'difference':>11}")
        for name, (image, hashed) in images.items():
            alone = min(_timed(lambda: hashlib.sha256(hashed).hexdigest()) for _ in range(runs))
            options = ScanOptions((service,), (site_packages,), None, use_cache=False, processes=1, image=image)
            run_scan(options)  # untimed: imports, page cache
            figures: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(runs):
                for check in (True, False):
                    layers._CHECK_DIGESTS = check
                    try:
                        figures[check].append(_timed(lambda: run_scan(options)))
                    finally:
                        layers._CHECK_DIGESTS = True
            checked, unchecked = min(figures[True]), min(figures[False])
            print(f"{name:<40} {len(hashed) / 2**20:5.0f} MiB {alone:12.2f}s {checked:8.2f}s {unchecked:9.2f}s {checked - unchecked:10.2f}s")


if __name__ == "__main__":
    main()
