"""Measure the unpacked size of the CUDA libraries inside NVIDIA's PyPI wheels, for rules/cuda.toml.

NVIDIA's apt packages (libcublas-12-1, ...) are not in the distro's Packages data, so
rules/sizes/ has no Installed-Size for them. The same library files ship in NVIDIA's wheels of
the same CUDA version (nvidia-cublas-cu12 12.1.3.1 is CUDA 12.1.1's cuBLAS): their unpacked size
is a fair estimate of what the image's copies take. Only the wheels' zip directories are read;
nothing is unpacked or run.

    python tools/cuda_library_sizes.py WHEEL...   # wheels fetched with `pip download --no-deps`

prints one TOML line per shared object: "soname" = KiB (rounded up).
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

_SHARED = re.compile(r"/(lib[^/]*\.so(\.[0-9.]+)?)$")


def library_sizes(wheel: Path) -> dict[str, int]:
    """Shared object file name → KiB, of one wheel."""
    sizes = {}
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            found = _SHARED.search(member.filename)
            if found is not None:
                sizes[found.group(1)] = -(-member.file_size // 1024)
    return sizes


def main(argv: list[str]) -> int:
    for name in argv:
        wheel = Path(name)
        print(f"# {wheel.name}")
        for soname, kib in sorted(library_sizes(wheel).items()):
            print(f'"{soname}" = {kib}')
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
