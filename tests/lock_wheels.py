"""Real wheels for the lock tests (tests/lock/): zip files in the wheel format (PEP 427) holding gcc-built
shared objects, which pip installs as it would any wheel (the installed twin is pip's doing)."""

from __future__ import annotations

import base64
import hashlib
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

from helpers import build_so

EXT = ".cpython-311-x86_64-linux-gnu.so"
DEMO_WHEEL = "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
USER_WHEEL = "demo_user-2.0-py3-none-any.whl"


@dataclass(frozen=True)
class Wheels:
    folder: Path  # a --find-links folder holding both wheels
    demo: Path
    user: Path  # requires demo
    blob: bytes  # demo/data/blob.bin's content: 6 MiB, deflated


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}\n"


def write_wheel(path: Path, members: dict[str, tuple[bytes, int]], dist_info: str, metadata: str) -> Path:
    """A wheel with these (content, compression) members, its METADATA, WHEEL and RECORD."""
    members = {
        **members,
        f"{dist_info}/METADATA": (metadata.encode(), zipfile.ZIP_DEFLATED),
        f"{dist_info}/WHEEL": (b"Wheel-Version: 1.0\nGenerator: depaudit-tests\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_17_x86_64\n", zipfile.ZIP_DEFLATED),
    }
    record = "".join(record_line(name, data) for name, (data, _) in members.items()) + f"{dist_info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for name, (data, compression) in members.items():
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data, compress_type=compression)
        archive.writestr(f"{dist_info}/RECORD", record, compress_type=zipfile.ZIP_DEFLATED)
    return path


def build_wheels(root: Path) -> Wheels:
    build = root / "build"
    lib = build_so(build / "demo.libs" / "libdemo-ab12cd34.so.1", soname="libdemo-ab12cd34.so.1")
    system = build_so(build / "stubs" / "libsystemonly.so.1", soname="libsystemonly.so.1")
    ext = build_so(build / "demo" / f"_ext{EXT}", needed=[lib, system], rpath="$ORIGIN/../demo.libs")
    # Half random, half repeated: a deflated member of several MiB whose inflate is not trivial.
    rng = random.Random(23)
    blob = b"".join(rng.randbytes(4096) + b"depaudit " * 455 for _ in range(800))[: 6 << 20]
    folder = root / "wheels"
    folder.mkdir()
    demo = write_wheel(
        folder / DEMO_WHEEL,
        {
            "demo/__init__.py": (b"from demo import _ext\n", zipfile.ZIP_DEFLATED),
            f"demo/_ext{EXT}": (ext.read_bytes(), zipfile.ZIP_DEFLATED),
            "demo.libs/libdemo-ab12cd34.so.1": (lib.read_bytes(), zipfile.ZIP_STORED),
            "demo/data/blob.bin": (blob, zipfile.ZIP_DEFLATED),
            "demo/data/stored.bin": (blob, zipfile.ZIP_STORED),
            "demo-1.0.data/purelib/demo_extra.py": (b"import ctypes\nctypes.CDLL('libfoo.so.3')\n", zipfile.ZIP_DEFLATED),
            "demo-1.0.data/scripts/demo-tool": (b"#!/bin/sh\nexit 0\n", zipfile.ZIP_DEFLATED),
        },
        "demo-1.0.dist-info",
        "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
    )
    user = write_wheel(
        folder / USER_WHEEL,
        {"demo_user/__init__.py": (b"import demo\n", zipfile.ZIP_DEFLATED)},
        "demo_user-2.0.dist-info",
        "Metadata-Version: 2.1\nName: demo-user\nVersion: 2.0\nRequires-Dist: demo==1.0\nRequires-Dist: colorama; sys_platform == 'win32'\n",
    )
    return Wheels(folder, demo, user, blob)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def members_of(path: Path) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: info for info in archive.infolist()}


def unzip(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)

