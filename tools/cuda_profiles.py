"""Write rules/profiles/nvidia-cuda-*.toml from NVIDIA's CUDA image Dockerfiles and wheel sonames.

Run by hand after changing its inputs (all under tests/packages/data/cuda-dockerfiles/):

    .venv/bin/python tools/cuda_profiles.py

- sources.toml: each stored Dockerfile, the tag it builds and where it was copied from;
- debs.toml: the Ubuntu images' Env, what a CUDA package brings with it, the deb of each wheel;
- wheel-sonames.toml: the DT_SONAME of each library in the release's wheels
  (tools/cuda_wheel_sonames.py).

Each image is one profile extending the one it is built FROM (base ← runtime ← cudnn). Its Env and
packages are read with depaudit's own Dockerfile reader, for the amd64 build.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from depaudit.dockerfile.parse import BuildContext, apt_installs, instructions, read_image

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "packages" / "data" / "cuda-dockerfiles"
PROFILES = ROOT / "rules" / "profiles"
# BuildKit declares TARGETARCH before the first FROM of every build; the reader knows only
# declared ARGs, so the amd64 build is read with the declaration the builder would add.
AMD64 = "ARG TARGETARCH=amd64\n"
_DPKG_INSTALL = re.compile(r"dpkg -i (\S+?)_[^_\s]+_[^_\s]+\.deb")
_APT_REMOVE = re.compile(r"apt-get (?:purge|remove)\b([^&;|]*)")


@dataclass(frozen=True)
class Layer:
    image: str  # the tag it builds, e.g. nvidia/cuda:12.4.1-runtime-ubuntu22.04
    parent: str  # the image it is built FROM
    text: str  # the Dockerfile
    citation: str


def read_toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def layers(data: Path = DATA) -> dict[str, Layer]:
    found = {}
    for entry in read_toml(data / "sources.toml")["dockerfile"]:
        text = (data / entry["file"]).read_text(encoding="utf-8")
        citation = f"{entry['repository']}, {entry['path']} at {entry['commit']}"
        found[entry["image"]] = Layer(entry["image"], parent_of(text), text, citation)
    return found


def parent_of(text: str) -> str:
    """The image the first stage is built FROM; `${IMAGE_NAME}` is nvidia/cuda for these images."""
    first = next(i for i in instructions(text) if i.keyword == "FROM")
    return first.arguments.split()[0].replace("${IMAGE_NAME}", "nvidia/cuda")


def read_layer(text: str, inherited: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The image's whole Env, and the packages its own RUNs leave installed (apt, dpkg -i)."""
    amd64 = AMD64 + text
    image = read_image(amd64, inherited)
    assert image is not None
    installed: list[str] = []
    for install in apt_installs(amd64, BuildContext(inherited=inherited)):
        installed += [p.name for p in install.packages if p.name not in installed]
    for instruction in instructions(amd64):
        if instruction.keyword == "RUN":
            installed += [name for name in _DPKG_INSTALL.findall(instruction.arguments) if name not in installed]
            for removed in _APT_REMOVE.findall(instruction.arguments):
                installed = [name for name in installed if name not in removed.split()]
    return image.env, installed


def cuda_fields(env: dict[str, str]) -> dict[str, str]:
    major, minor = env["CUDA_VERSION"].split(".")[:2]
    return {"M": major, "m": minor}


def fill(template: str, env: dict[str, str]) -> str:
    # An unset variable names no package (the cuDNN package in an image without cuDNN).
    named = re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), template)
    return named.format(**cuda_fields(env))


def with_depends(packages: list[str], env: dict[str, str], depends: dict[str, list[str]]) -> list[str]:
    """The packages, then what they bring with them (debs.toml [depends]), each once."""
    result = list(packages)
    for package in result:  # grows while read: what a dependency brings comes too
        for template, brought in depends.items():
            if fill(template, env) == package:
                result += [name for name in (fill(b, env) for b in brought) if name not in result]
    return result


def _distance(other: str, release: str) -> tuple[int, ...]:
    """How far apart two CUDA releases are (X.Y.Z), for picking the nearest one's wheel."""
    a, b = (tuple(int(part) for part in text.split(".")) for text in (other, release))
    return tuple(abs(x - y) for x, y in zip(a, b))


def _stem(project: str) -> str:
    return re.sub(r"-cu\d+$", "", project.removeprefix("nvidia-"))


@dataclass(frozen=True)
class Profile:
    image: str
    extends: str | None
    distro: str
    source: str
    packages: list[str]
    env: dict[str, str]  # only what this layer sets or changes
    sonames: dict[str, str]


def build(data: Path = DATA) -> list[Profile]:
    debs = read_toml(data / "debs.toml")
    wheels = read_toml(data / "wheel-sonames.toml")["wheel"]
    known = layers(data)
    profiles = []
    full_env: dict[str, dict[str, str]] = {}
    for image in sorted(known, key=lambda name: _depth(name, known)):
        layer = known[image]
        root = layer.parent
        while root in known:
            root = known[root].parent
        inherited = full_env[layer.parent] if layer.parent in known else dict(debs["from_env"][root])
        env, installed = read_layer(layer.text, inherited)
        full_env[image] = env
        release = env["CUDA_VERSION"]
        packages = with_depends(installed, env, debs["depends"])
        sonames: dict[str, str] = {}
        read: list[str] = []
        for wheel in (w for w in wheels if w["release"] == release):
            package = fill(debs["wheel_package"][_stem(wheel["project"])], env)
            if package in packages:
                sonames.update({soname: package for soname in sorted(set(wheel["sonames"].values()))})
                read.append(f"{wheel['project']}=={wheel['version']}")
        # A library the image installs whose release has no wheel (cuFile before 12.4's
        # cuda-toolkit named one): the sonames of the same project in the nearest release of the
        # same CUDA major, which keep their numbers within a major.
        borrowed: list[str] = []
        for wheel in sorted(wheels, key=lambda w: _distance(w["release"], release)):
            if wheel["release"].split(".")[0] != release.split(".")[0]:
                continue
            package = fill(debs["wheel_package"][_stem(wheel["project"])], env)
            names = set(wheel["sonames"].values())
            if package in packages and package not in sonames.values() and not names & set(sonames):
                sonames.update({soname: package for soname in sorted(names)})
                borrowed.append(f"{wheel['project']}=={wheel['version']} (of {wheel['release']})")
        source = (
            f"NVIDIA's Dockerfile for {image} (gitlab.com/nvidia/container-images/cuda), as mirrored in "
            f"{layer.citation}; stored and re-read by tests/packages/data/cuda-dockerfiles/. Env and packages "
            "are the amd64 build's, its ARG/ENV expanded; packages add what debs.toml says they bring, and "
            "names from NVIDIA's repository are unchecked against it. "
            + (f"Sonames: DT_SONAME of the libraries in the PyPI wheels {', '.join(read)} (wheel-sonames.toml). " if read else "")
            + (f"No wheel of this release for some of its libraries: sonames of {', '.join(borrowed)}. " if borrowed else "")
            + "Written by tools/cuda_profiles.py."
        )
        own_env = {key: value for key, value in env.items() if inherited.get(key) != value}
        profiles.append(
            Profile(
                image=image,
                extends=layer.parent if layer.parent in known else None,
                distro="ubuntu-" + root.removeprefix("ubuntu:"),
                source=source,
                packages=packages,
                env=own_env if layer.parent in known else env,
                sonames=sonames,
            )
        )
    return profiles


def _depth(image: str, known: dict[str, Layer]) -> int:
    depth = 0
    while known[image].parent in known:
        image, depth = known[image].parent, depth + 1
    return depth


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(profile: Profile) -> str:
    lines = [
        f"# What {profile.image} provides, for scans without the image. Generated by tools/cuda_profiles.py:",
        "# edit its inputs (tests/packages/data/cuda-dockerfiles/) and run it again, not this file.",
        f"image = {_quote(profile.image)}",
    ]
    if profile.extends:
        lines.append(f"extends = {_quote(profile.extends)}")
    lines += [f"distro = {_quote(profile.distro)}", f"source = {_quote(profile.source)}", "packages = ["]
    lines += [f"    {_quote(name)}," for name in profile.packages]
    lines += ["]", "", "[env]"]
    lines += [f"{key} = {_quote(value)}" for key, value in profile.env.items()]
    lines += ["", "[sonames]"]
    lines += [f"{_quote(soname)} = {_quote(package)}" for soname, package in sorted(profile.sonames.items())]
    return "\n".join(lines) + "\n"


def file_name(image: str) -> str:
    return image.replace("nvidia/cuda:", "nvidia-cuda-") + ".toml"


def main() -> int:
    for profile in build():
        (PROFILES / file_name(profile.image)).write_text(render(profile), encoding="utf-8")
        print(file_name(profile.image))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
