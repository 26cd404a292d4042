"""The wheel tags an image's interpreter accepts, worked out for the image, never this machine.

`packaging.tags` knows the order CPython prefers; the platform comes from the image's glibc (a
manylinux_2_X wheel needs glibc ≥ 2.X), which the distro decides."""

from __future__ import annotations

from packaging import tags

from depaudit.lock.model import WheelTarget
from depaudit.python.model import TargetPython

# glibc of each distro depaudit carries rules for, and the python3 its apt installs: the target
# when the config names no Python version.
DISTRO_GLIBC = {"ubuntu-22.04": (2, 35), "ubuntu-24.04": (2, 39), "debian-12": (2, 36)}
DISTRO_PYTHON = {"ubuntu-22.04": "3.10", "ubuntu-24.04": "3.12", "debian-12": "3.11"}
_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def platforms(glibc: tuple[int, int], arch: str = "x86_64") -> list[str]:
    """manylinux_2_X down to 2_5 (with the legacy aliases), then plain linux, newest first."""
    found = []
    for minor in range(glibc[1], 4, -1):
        found.append(f"manylinux_2_{minor}_{arch}")
        legacy = _LEGACY.get((2, minor))
        if legacy:
            found.append(f"{legacy}_{arch}")
    found.append(f"linux_{arch}")
    return found


def wheel_target(python_version: str, distro: str) -> WheelTarget:
    major, minor = (int(part) for part in python_version.split(".")[:2])
    glibc = DISTRO_GLIBC.get(distro, DISTRO_GLIBC["ubuntu-22.04"])
    names = platforms(glibc)
    accepted = [*tags.cpython_tags((major, minor), platforms=names), *tags.compatible_tags((major, minor), f"cp{major}{minor}", names)]
    python = TargetPython(python_version=f"{major}.{minor}", python_full_version=f"{major}.{minor}.0")
    return WheelTarget(python=python, tags=tuple(str(tag) for tag in accepted), platform=names[0])
