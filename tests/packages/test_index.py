"""The Contents-built index: provider choice, Depends, storage, lookup — on small real-format files."""

from __future__ import annotations

import gzip
import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import lz4.frame

from depaudit.packages.index import (
    IndexEntry,
    build_index,
    index_path,
    load_index,
    parse_depends,
    policy_package_name,
    save_index,
)
from depaudit.packages.lookup import LookupAnswer, lookup
from depaudit.packages.rules import load_rules

CONTENTS = """\
usr/lib/x86_64-linux-gnu/libfoo.so.1                    libs/libfoo1,libdevel/libfoo-dev
usr/lib/x86_64-linux-gnu/libfoo.so                      libdevel/libfoo-dev
usr/lib/x86_64-linux-gnu/libbar.so.2                    oldlibs/libbar2-compat,libs/libbar2
usr/lib/x86_64-linux-gnu/libsystemd.so.0               admin/libelogind0,libs/libsystemd0
usr/lib/x86_64-linux-gnu/blas/libblas.so.3              libs/libblas3
usr/lib/x86_64-linux-gnu/libstemmer.so.0d               libs/libstemmer0d
usr/lib/debug/.build-id/ab/cdef.debug                   debug/libfoo1-dbgsym
usr/bin/ffmpeg                                          video/ffmpeg
usr/share/doc/libfoo1/copyright                         libs/libfoo1
"""
PACKAGES = """\
Package: libbar2-compat
Section: oldlibs
Description: transitional package for libbar2

Package: libportaudio2
Depends: libasound2 (>= 1.0.16), libc6 (>= 2.34), libjack-jackd2-0 (>= 1.9.10+20150825) | libjack-0.125
Description: Portable audio I/O - shared library
 A multi-line description
 that goes on.

Package: ffmpeg
Installed-Size: 2215
Pre-Depends: dpkg (>= 1.17)
Depends: libavcodec59 (= 7:5.1.6-0+deb12u1), libc6:any
"""


def _files(tmp_path: Path) -> tuple[Path, Path]:
    contents, packages = tmp_path / "Contents-amd64.gz", tmp_path / "Packages.xz"
    contents.write_bytes(gzip.compress(CONTENTS.encode()))
    packages.write_bytes(lzma.compress(PACKAGES.encode()))
    return contents, packages


def test_provider_choice_and_depends(tmp_path: Path) -> None:
    index = build_index("debian-12", *_files(tmp_path))
    assert index.sonames == {
        "libfoo.so.1": IndexEntry("libfoo1", ("libfoo-dev",)),  # runtime over -dev
        "libbar.so.2": IndexEntry("libbar2", ("libbar2-compat",)),  # real over transitional
        "libsystemd.so.0": IndexEntry("libsystemd0", ("libelogind0",)),  # the name policy expects
        "libblas.so.3": IndexEntry("libblas3"),  # in a subfolder, still known
        "libstemmer.so.0d": IndexEntry("libstemmer0d"),
    }
    assert index.executables == {"ffmpeg": IndexEntry("ffmpeg")}
    assert index.depends == {
        "libbar2-compat": (),
        "libportaudio2": ("libasound2", "libc6", "libjack-jackd2-0"),
        "ffmpeg": ("dpkg", "libavcodec59", "libc6"),
    }
    # The sizes and Depends groups for the plan's megabytes, alternatives kept.
    assert index.sizes is not None and index.sizes.installed["ffmpeg"] == 2215
    assert index.sizes.depends["libportaudio2"][2] == ("libjack-jackd2-0", "libjack-0.125")


def test_storage_round_trip_and_other_versions(tmp_path: Path) -> None:
    index = build_index("debian-12", *_files(tmp_path))
    path = save_index(index, tmp_path / "cache")
    assert load_index("debian-12", tmp_path / "cache") == index
    path.write_bytes(gzip.compress(b'{"format": 999}'))
    assert load_index("debian-12", tmp_path / "cache") is None  # another depaudit's index is ignored
    assert load_index("ubuntu-24.04", tmp_path / "cache") is None


def test_naming_policy_and_depends_parsing() -> None:
    assert [policy_package_name(s) for s in ("libxcb.so.1", "libgtk-3.so.0", "libstdc++.so.6", "notalib")] == [
        "libxcb1",
        "libgtk-3-0",
        "libstdc++6",
        None,
    ]
    assert parse_depends("a (>= 1) | b, c:any, d [amd64]") == ("a", "c", "d")


def test_lookup_says_where_each_answer_comes_from(tmp_path: Path) -> None:
    rules = load_rules("debian-12")
    index = build_index("debian-12", *_files(tmp_path))
    assert lookup("libstemmer.so.0d", rules, index) == [
        LookupAnswer("libstemmer0d", "index (soname): Contents-amd64.gz + Packages.xz")
    ]
    assert [a.source.split(":")[0] for a in lookup("libGL.so.1", rules, index)] == ["rules (soname)"]
    assert [(a.package, a.source.split(":")[0]) for a in lookup("ffmpeg", rules, index)] == [
        ("ffmpeg", "rules (program)"),
        ("ffmpeg", "index (program)"),
    ]
    assert lookup("libnothing.so.4", rules, index) == []
    assert lookup("libnothing.so.4", rules, index, guess=True) == [
        LookupAnswer("libnothing4", "guessed: Debian's library package naming policy, not checked")
    ]


def test_index_and_lookup_commands(tmp_path: Path) -> None:
    contents, packages = _files(tmp_path)
    cache = tmp_path / "cache"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "depaudit", *args], capture_output=True, text=True)

    built = run("index", "--distro", "debian-12", "--contents", str(contents), "--packages", str(packages), "--cache-dir", str(cache))
    assert built.returncode == 0, built.stderr
    assert built.stdout.startswith("debian-12: 5 sonames, 1 programs, 3 packages with Depends")
    found = run("lookup", "libfoo.so.1", "--distro", "debian-12", "--cache-dir", str(cache))
    assert (found.returncode, found.stdout) == (
        0,
        "libfoo.so.1 → libfoo1 on debian-12 (also: libfoo-dev)  [index (soname): Contents-amd64.gz + Packages.xz]\n",
    )
    missing = run("lookup", "libnothing.so.4", "--distro", "debian-12", "--cache-dir", str(cache))
    assert missing.returncode == 1
    assert run("index", "--distro", "debian-12", "--contents", str(tmp_path / "nope")).returncode == 2


JAMMY_SLICE = Path(__file__).parent / "data" / "jammy-Contents-amd64.slice"  # 16 real lines of jammy's Contents


def _depaudit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "depaudit", *args], capture_output=True, text=True)


def _saved(cache: Path, distro: str = "ubuntu-22.04") -> dict[str, object]:
    with gzip.open(index_path(distro, cache), "rt", encoding="utf-8") as stream:
        return json.load(stream)


def test_index_reads_gzip_xz_and_lz4_twins_into_identical_indexes(tmp_path: Path) -> None:
    data = JAMMY_SLICE.read_bytes()
    saved = {}
    for kind, compress in (("gzip", gzip.compress), ("xz", lzma.compress), ("lz4", lz4.frame.compress)):
        contents = tmp_path / kind / "Contents-amd64"  # one name for all: the bytes tell the format
        contents.parent.mkdir()
        contents.write_bytes(compress(data))
        cache = tmp_path / kind / "cache"
        built = _depaudit("index", "--distro", "ubuntu-22.04", "--contents", str(contents), "--cache-dir", str(cache))
        assert (built.returncode, built.stdout, built.stderr) == (
            0,
            f"ubuntu-22.04: 8 sonames, 6 programs, 0 packages with Depends, from Contents-amd64 → {index_path('ubuntu-22.04', cache)}\n",
            "",
        )
        saved[kind] = _saved(cache)
    assert saved["gzip"] == saved["xz"] == saved["lz4"]
    assert saved["lz4"]["sonames"]["libportaudio.so.2"] == ["libportaudio2"]
    assert saved["lz4"]["executables"]["tesseract"] == ["tesseract-ocr"]


def test_index_rejects_random_bytes_naming_the_file(tmp_path: Path) -> None:
    contents = tmp_path / "Contents-amd64.lz4"
    contents.write_bytes(b"\x8f\x00" + os.urandom(1 << 16))
    shown = contents.read_bytes()[:16].hex(" ")
    cache = tmp_path / "cache"
    built = _depaudit("index", "--distro", "ubuntu-22.04", "--contents", str(contents), "--cache-dir", str(cache))
    assert (built.returncode, built.stdout, built.stderr) == (
        2,
        "",
        f"depaudit: error: cannot build the index: {contents}: neither text nor gzip, xz, lz4, zstd or bzip2 data"
        f" (its first bytes: {shown})\n",
    )
    assert not index_path("ubuntu-22.04", cache).exists()


def test_index_rejects_text_that_is_not_a_contents_file(tmp_path: Path) -> None:
    contents = tmp_path / "Contents-amd64"
    contents.write_text(PACKAGES)  # text, but a Packages file given as --contents
    cache = tmp_path / "cache"
    built = _depaudit("index", "--distro", "debian-12", "--contents", str(contents), "--cache-dir", str(cache))
    assert (built.returncode, built.stderr) == (
        2,
        f"depaudit: error: cannot build the index: {contents}: lists no library and no program: not a Contents file\n",
    )
    assert not index_path("debian-12", cache).exists()


def test_index_rejects_a_packages_file_that_names_no_package(tmp_path: Path) -> None:
    contents, packages = tmp_path / "Contents-amd64", tmp_path / "Packages.xz"
    contents.write_bytes(JAMMY_SLICE.read_bytes())
    packages.write_bytes(lzma.compress(JAMMY_SLICE.read_bytes()))  # a Contents file given as Packages
    cache = tmp_path / "cache"
    built = _depaudit(
        "index", "--distro", "ubuntu-22.04", "--contents", str(contents), "--packages", str(packages), "--cache-dir", str(cache)
    )
    assert (built.returncode, built.stderr) == (
        2,
        f"depaudit: error: cannot build the index: {packages}: names no package: not a Packages or dpkg status file\n",
    )
    assert not index_path("ubuntu-22.04", cache).exists()


def test_lookup_says_a_driver_library_is_the_drivers_even_when_the_index_names_packages(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    save_index(build_index("ubuntu-22.04", JAMMY_SLICE), cache)  # jammy's libnvidia-compute-* ship libcuda.so.1
    found = _depaudit("lookup", "libcuda.so.1", "--cache-dir", str(cache))
    assert (found.returncode, found.stdout, found.stderr) == (
        0,
        "libcuda.so.1: driver (compute): the NVIDIA driver's library: the NVIDIA container runtime mounts it from "
        "the host when NVIDIA_DRIVER_CAPABILITIES asks for compute, never apt-install it in the image  "
        "[rules (driver): driver/nvidia.toml libcuda.so* → compute, the NVIDIA container toolkit's list]\n",
        "",
    )
    ml = _depaudit("lookup", "libnvidia-ml.so.1", "--distro", "debian-12")
    assert (ml.returncode, ml.stdout) == (
        0,
        "libnvidia-ml.so.1: driver (utility): the NVIDIA driver's library: the NVIDIA container runtime mounts it "
        "from the host when NVIDIA_DRIVER_CAPABILITIES asks for utility, never apt-install it in the image  "
        "[rules (driver): driver/nvidia.toml libnvidia-ml.so* → utility, the NVIDIA container toolkit's list]\n",
    )
    smi = _depaudit("lookup", "nvidia-smi")
    assert (smi.returncode, smi.stdout) == (
        0,
        "nvidia-smi: driver (utility): the NVIDIA driver's program: the NVIDIA container runtime mounts it from "
        "the host when NVIDIA_DRIVER_CAPABILITIES asks for utility, never apt-install it in the image  "
        "[rules (driver): driver/nvidia.toml nvidia-smi → utility, the NVIDIA container toolkit's list]\n",
    )
    # A newer driver's library no list names: the distro's pattern, and the data's `unlisted` capability.
    newer = _depaudit("lookup", "libnvidia-future.so.1", "--distro", "debian-12")
    assert newer.stdout.startswith("libnvidia-future.so.1: driver (compute): ")
    assert newer.stdout.endswith("[rules (driver): debian-12 driver pattern libnvidia-*.so*, in no capability's list: compute]\n")


def test_lookup_never_prints_an_unfilled_cuda_package_template() -> None:
    source = "rules (soname): NVIDIA CUDA repository package naming: unchecked against NVIDIA's repository"
    unknown = _depaudit("lookup", "libcudart.so.12")
    assert (unknown.returncode, unknown.stdout) == (
        0,
        "libcudart.so.12 → cuda-cudart-<X>-<Y> on ubuntu-22.04, X.Y being the image's CUDA version "
        f"(give --cuda-version X.Y, or --base-image IMAGE, to name it exactly)  [{source}]\n",
    )
    given = _depaudit("lookup", "libcudart.so.12", "--cuda-version", "12.1")
    assert (given.returncode, given.stdout) == (0, f"libcudart.so.12 → cuda-cudart-12-1 on ubuntu-22.04  [{source}]\n")
    profiled = _depaudit("lookup", "libcudart.so.12", "--base-image", "nvidia/cuda:12.1.1-runtime-ubuntu22.04")
    assert (profiled.returncode, profiled.stdout) == (0, given.stdout)  # its CUDA_VERSION is 12.1.1
    assert not any("{" in run.stdout + run.stderr for run in (unknown, given, profiled))
    wrong = _depaudit("lookup", "libcudart.so.12", "--cuda-version", "12")
    assert (wrong.returncode, wrong.stderr) == (2, "depaudit: error: --cuda-version takes X.Y, e.g. 12.1, not '12'\n")


def test_lookup_of_cuda_13s_cufft_names_a_cuda_13_package_only() -> None:
    """libcufft.so.12 is CUDA 13's cuFFT (CUDA 12's is .so.11): a CUDA 12 version names no package of it."""
    source = (
        "rules (soname): NVIDIA CUDA repository package naming: unchecked against NVIDIA's repository; CUDA 13's "
        "soname (rules/cuda/cuda.toml [sonames] source: NVIDIA's CUDA 13.0 wheels ship it), so only a CUDA 13 "
        "image's version names its package"
    )
    thirteen = _depaudit("lookup", "libcufft.so.12", "--cuda-version", "13.0", "--distro", "ubuntu-24.04")
    assert (thirteen.returncode, thirteen.stdout) == (0, f"libcufft.so.12 → libcufft-13-0 on ubuntu-24.04  [{source}]\n")
    twelve = _depaudit("lookup", "libcufft.so.12", "--cuda-version", "12.1")
    assert (twelve.returncode, twelve.stdout) == (
        0,
        "libcufft.so.12 → libcufft-13-<Y> on ubuntu-22.04, CUDA 13's alone: 13.Y being the image's CUDA version "
        f"(no other CUDA major's package ships it)  [{source}]\n",
    )
    eleven = _depaudit("lookup", "libcufft.so.11", "--cuda-version", "12.1")
    assert eleven.stdout.startswith("libcufft.so.11 → libcufft-12-1 on ubuntu-22.04  [")
