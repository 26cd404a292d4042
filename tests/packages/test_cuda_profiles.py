"""The nvidia/cuda profiles against NVIDIA's own Dockerfiles: each profile's Env and packages are
what its cited Dockerfile (and those it is built FROM) sets and installs, read here with
depaudit's own Dockerfile reader, and each soname is one the release's wheels really carry."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from depaudit.cli import main
from depaudit.dockerfile.parse import BuildContext, apt_installs, instructions, read_image
from depaudit.packages.profiles import _read, known_profiles, load_profile, profiles_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "cuda-dockerfiles"
SOURCES = tomllib.loads((DATA / "sources.toml").read_text(encoding="utf-8"))["dockerfile"]
DEBS = tomllib.loads((DATA / "debs.toml").read_text(encoding="utf-8"))
WHEELS = tomllib.loads((DATA / "wheel-sonames.toml").read_text(encoding="utf-8"))["wheel"]
BY_IMAGE = {entry["image"]: entry for entry in SOURCES}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cuda_profiles", ROOT / "tools" / "cuda_profiles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _parent(text: str) -> str:
    first = next(i for i in instructions(text) if i.keyword == "FROM")
    return first.arguments.split()[0].replace("${IMAGE_NAME}", "nvidia/cuda")


def _chain(image: str) -> list[dict[str, Any]]:
    """The cited Dockerfiles from the Ubuntu image up to `image`."""
    chain = []
    while image in BY_IMAGE:
        chain.insert(0, BY_IMAGE[image])
        image = _parent((DATA / BY_IMAGE[image]["file"]).read_text(encoding="utf-8"))
    assert image in DEBS["from_env"], image
    return chain


def _read_layer(entry: dict[str, Any], inherited: dict[str, str]) -> tuple[dict[str, str], set[str]]:
    # The amd64 build: BuildKit declares TARGETARCH before the first FROM.
    text = "ARG TARGETARCH=amd64\n" + (DATA / entry["file"]).read_text(encoding="utf-8")
    image = read_image(text, inherited)
    assert image is not None and not image.unresolved
    packages = {p.name for i in apt_installs(text, BuildContext(inherited=inherited)) for p in i.packages}
    runs = " ".join(i.arguments for i in instructions(text) if i.keyword == "RUN")
    packages |= set(re.findall(r"dpkg -i (\S+?)_\S+\.deb", runs))  # the keyring .deb NVIDIA fetches
    purged = {word for words in re.findall(r"apt-get purge --autoremove -y ([^&;|]*)", runs) for word in words.split()}
    return image.env, packages - purged


def _expected(image: str) -> tuple[dict[str, str], set[str]]:
    """The image's whole Env, and the packages its own Dockerfile installs (not its parents')."""
    chain = _chain(image)
    env = dict(DEBS["from_env"][_parent((DATA / chain[0]["file"]).read_text(encoding="utf-8"))])
    packages: set[str] = set()
    for entry in chain:
        env, packages = _read_layer(entry, env)
    return env, packages


def _brought(packages: set[str], env: dict[str, str]) -> set[str]:
    """What the packages bring with them (debs.toml [depends]), transitively."""
    major, minor = env["CUDA_VERSION"].split(".")[:2]
    depends = {key.format(M=major, m=minor): [v.format(M=major, m=minor) for v in value] for key, value in DEBS["depends"].items()}
    result, todo = set(packages), list(packages)
    while todo:
        for name in depends.get(todo.pop(), []):
            if name not in result:
                result.add(name)
                todo.append(name)
    return result


def test_every_stored_dockerfile_is_cited_and_every_citation_stored() -> None:
    stored = {str(path.relative_to(DATA)) for path in DATA.rglob("Dockerfile")}
    assert stored == {entry["file"] for entry in SOURCES}
    for entry in SOURCES:
        assert re.fullmatch(r"[0-9a-f]{40}", entry["commit"]) and entry["path"].startswith("dist/")
        assert entry["path"].removeprefix("dist/") == entry["file"]


@pytest.mark.parametrize("image", sorted(BY_IMAGE))
def test_profile_env_and_packages_match_the_cited_dockerfiles(image: str) -> None:
    env, installed = _expected(image)
    profile = load_profile(image)
    assert dict(profile.env) == env
    assert profile.env["CUDA_VERSION"] == image.split(":")[1].split("-")[0]
    own = set(_read(known_profiles()[image])["packages"])
    assert own == _brought(installed, env)
    assert BY_IMAGE[image]["commit"] in profile.sources[0]
    assert profile.distro == "ubuntu-" + image.rsplit("-ubuntu", 1)[1]
    # Every soname names a package the image has, and is one the release's wheels carry (or, for a
    # library with no wheel of that release, a wheel of the same CUDA major: cuFile before 12.6).
    release = env["CUDA_VERSION"]
    own_release = {w["project"] for w in WHEELS if w["release"] == release}
    carried = {
        s for w in WHEELS
        if w["release"] == release or (w["release"].split(".")[0] == release.split(".")[0] and w["project"] not in own_release)
        for s in w["sonames"].values()
    }
    for soname, package in profile.sonames.items():
        assert package in profile.packages, (soname, package)
        assert soname in carried, soname


def test_the_layers_name_what_they_install() -> None:
    # Spot checks a reader bug could hide: expanded `${NV_...}` packages, pins, the purged curl.
    _, base = _expected("nvidia/cuda:12.4.1-base-ubuntu22.04")
    assert base == {"gnupg2", "ca-certificates", "cuda-keyring", "cuda-cudart-12-4", "cuda-compat-12-4"}
    _, runtime = _expected("nvidia/cuda:12.6.3-runtime-ubuntu24.04")
    assert runtime == {"cuda-libraries-12-6", "libnpp-12-6", "cuda-nvtx-12-6", "libcusparse-12-6", "libcublas-12-6", "libnccl2"}
    env, cudnn = _expected("nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04")
    assert cudnn == {"libcudnn8"} and env["NV_CUDNN_PACKAGE"] == "libcudnn8=8.9.0.131-1+cuda12.1"
    profile = load_profile("nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04")
    assert profile.sonames["libcudnn.so.9"] == "libcudnn9-cuda-12"
    assert profile.sonames["libcublasLt.so.12"] == "libcublas-12-4" and profile.sonames["libcufft.so.11"] == "libcufft-12-4"
    assert profile.env["PATH"] == "/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert load_profile("nvidia/cuda:12.8.1-runtime-ubuntu24.04").env["LD_LIBRARY_PATH"] == "/usr/local/cuda/lib64"


def test_the_generator_output_is_committed() -> None:
    generator = _generator()
    for profile in generator.build():
        path = profiles_dir() / generator.file_name(profile.image)
        assert path.read_text(encoding="utf-8") == generator.render(profile), f"run tools/cuda_profiles.py: {path.name}"


@pytest.mark.parametrize("image", sorted(known_profiles()))
def test_scan_against_each_profile(image: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    service, site = tmp_path / "svc", tmp_path / "site-packages"
    service.mkdir()
    site.mkdir()
    (service / "main.py").write_text("import json\n")
    distro = load_profile(image).distro
    code = main(["scan", str(service), "--site-packages", str(site), "--base-image", image, "--distro", distro, "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert (code, report["base_image"], report["distro"], report["failing"]) == (0, image, distro, False)


def _braces(word: str) -> set[str]:
    match = re.search(r"\{([^{}]*)\}", word)
    if match is None:
        return {word}
    return {w for choice in match.group(1).split(",") for w in _braces(word[: match.start()] + choice + word[match.end():])}


def test_the_readme_lists_every_profile() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    bullet = readme[readme.index("- `--base-image NAME`"):readme.index("- `--env LD_LIBRARY_PATH")]
    listed = {tag for word in re.findall(r"`(\d[^`]*)`", bullet) for tag in _braces(word)}
    assert {"nvidia/cuda:" + tag for tag in listed} == set(known_profiles())
