"""Record the DT_SONAME of every shared library in NVIDIA's CUDA wheels on PyPI, per CUDA release.

Run by hand (it downloads a few GB, one wheel at a time, each deleted once read):

    .venv/bin/python tools/cuda_wheel_sonames.py tests/packages/data/cuda-dockerfiles/wheel-sonames.toml

For each CUDA release, NVIDIA's `cuda-toolkit==X.Y.Z` meta-package on PyPI pins the wheel of each
component of that release; those pins choose the wheels read here, so the sonames are the
release's own. cuDNN and NCCL are not in the meta-package: their versions come from the CUDA image
Dockerfiles (NV_CUDNN_VERSION, NCCL_VERSION), given below. Sonames are read with depaudit's own
ELF reader (PT_DYNAMIC, as the loader does): nothing is run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from depaudit.native.elf import ElfError, read_elf

# The runtime libraries an image's `cuda-libraries-X-Y`, cuda-nvtx and base layers carry: the
# projects of cuda-toolkit's pins read here (headers-only and compiler wheels are not).
COMPONENTS = (
    "cuda-runtime", "cuda-nvrtc", "cuda-opencl", "cublas", "cufft", "cufile", "curand", "cusolver",
    "cusparse", "npp", "nvjitlink", "nvjpeg", "nvtx", "nvfatbin",
)
# CUDA release → the components read for it (13.0.0: only its base image is cited, so only cudart).
RELEASES: dict[str, tuple[str, ...]] = {
    "12.1.1": COMPONENTS, "12.4.1": COMPONENTS, "12.6.3": COMPONENTS, "12.8.1": COMPONENTS,
    "13.0.0": ("cuda-runtime",),
}


def pins(release: str, workdir: Path) -> dict[str, tuple[str, str]]:
    """Component stem → (PyPI project, version) pinned by cuda-toolkit==release."""
    wheel = _download("cuda-toolkit", release, workdir)
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    wheel.unlink()
    found: dict[str, tuple[str, str]] = {}
    for line in metadata.splitlines():
        match = re.match(r"Requires-Dist: (nvidia-([a-z0-9-]+?)(?:-cu\d+)?)==([0-9.]+?)(?:\.\*)?(?:;|\s|$)", line)
        if match:
            found.setdefault(match.group(2), (match.group(1), match.group(3)))
    return found


def sonames(wheel: Path, workdir: Path) -> dict[str, str]:
    """Member path → DT_SONAME, for each shared library in the wheel."""
    found = {}
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if not re.search(r"/lib[^/]*\.so(\.|$)", member):
                continue
            target = workdir / "member"
            with archive.open(member) as source, target.open("wb") as sink:
                while chunk := source.read(1 << 24):
                    sink.write(chunk)
            try:
                info = read_elf(target)
            except ElfError as error:
                print(f"  {member}: {error}", file=sys.stderr)
                continue
            finally:
                target.unlink()
            if info.soname:
                found[member] = info.soname
    return found


def _download(project: str, version: str, workdir: Path) -> Path:
    before = set(workdir.glob("*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
         f"{project}=={version}", "-d", str(workdir)],
        check=True,
    )
    (wheel,) = set(workdir.glob("*.whl")) - before
    return wheel


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--release", action="append", help="only these CUDA releases (default: all)")
    parser.add_argument("--extra", action="append", default=[], metavar="RELEASE:PROJECT==VERSION",
                        help="also read this wheel for that release (cuDNN, NCCL)")
    parser.add_argument("--extra-only", action="store_true", help="read only the --extra wheels")
    args = parser.parse_args(argv)
    lines = [
        "# DT_SONAME of each shared library in NVIDIA's CUDA wheels on PyPI, written by",
        "# tools/cuda_wheel_sonames.py (read with depaudit's ELF reader, never run).",
        'source = "PyPI: cuda-toolkit==<release> pins each component wheel; cuDNN/NCCL wheels as the image Dockerfiles pin them"',
        "",
    ]
    extras: dict[str, list[tuple[str, str]]] = {}
    for spec in args.extra:
        release, _, pin = spec.partition(":")
        project, _, version = pin.partition("==")
        extras.setdefault(release, []).append((project, version))
    with tempfile.TemporaryDirectory() as name:
        workdir = Path(name)
        for release in args.release or list(RELEASES):
            wanted = []
            if not args.extra_only:
                pinned = pins(release, workdir)
                wanted = [pinned[stem] for stem in RELEASES.get(release, COMPONENTS) if stem in pinned]
            for project, version in [*wanted, *extras.get(release, [])]:
                print(f"{release}: {project}=={version}", file=sys.stderr)
                wheel = _download(project, version, workdir)
                found = sonames(wheel, workdir)
                lines.append(f'[[wheel]]\nrelease = "{release}"\nproject = "{project}"\nversion = "{version}"')
                lines.append(f"file = {_toml(wheel.name)}")
                lines.append("sonames = {" + ", ".join(f"{_toml(m)} = {_toml(s)}" for m, s in sorted(found.items())) + "}")
                lines.append("")
                wheel.unlink()
    args.output.write_text("\n".join(lines), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
