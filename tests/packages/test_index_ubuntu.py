"""Against the real Ubuntu archive: rules/ubuntu-22.04.toml against jammy, rules/ubuntu-24.04.toml against noble.

Each distro's index is built with our own `build_index` from the release and -updates pockets together
(Contents-amd64, and the Packages of every component; -updates first, so its Depends win), once per
session; the built index is kept next to the downloads, keyed by those files and by index.py, so a
warm run only loads it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

import depaudit.packages.index as index_module
from depaudit.packages.depends import pulled_in
from depaudit.packages.index import PackageIndex, build_index, load_index, save_index
from depaudit.packages.profiles import known_profiles, load_profile
from depaudit.packages.rules import DistroRules, SonameRule, load_rules
from helpers import ubuntu_archive_files

pytestmark = pytest.mark.network

CODENAMES = {"ubuntu-22.04": "jammy", "ubuntu-24.04": "noble"}
COMPONENTS = ("main", "restricted", "universe", "multiverse")
CONTENTS = "Contents-amd64.gz"
PACKAGES = tuple(f"{component}/binary-amd64/Packages.xz" for component in COMPONENTS)
NVIDIA = "NVIDIA CUDA repository package naming"  # the source of entries for NVIDIA's own apt repository
CUDA_SONAME = re.compile(r"^lib(cu|nv|npp|nccl)")


@pytest.fixture(scope="session", params=sorted(CODENAMES))
def archive(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[DistroRules, PackageIndex]:
    distro = request.param
    return load_rules(distro), _ubuntu_index(distro, tmp_path_factory.mktemp(distro))


def _ubuntu_index(distro: str, scratch: Path) -> PackageIndex:
    codename = CODENAMES[distro]
    pockets = [ubuntu_archive_files(suite, (CONTENTS, *PACKAGES)) for suite in (f"{codename}-updates", codename)]
    contents = [files[CONTENTS] for files in pockets]
    packages = [files[name] for files in pockets for name in PACKAGES]
    built = contents[0].parents[1] / "built" / _key([*contents, *packages])
    cached = load_index(distro, built)
    if cached is not None:
        return cached
    # build_index reads one Contents and one Packages file: gzip and xz streams concatenate.
    index = build_index(distro, _concatenate(contents, scratch / CONTENTS), _concatenate(packages, scratch / "Packages.xz"))
    save_index(index, built)
    return index


def _key(inputs: Sequence[Path]) -> str:
    digest = hashlib.sha256(Path(index_module.__file__).read_bytes())
    for path in inputs:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:16]


def _concatenate(parts: Sequence[Path], target: Path) -> Path:
    with open(target, "wb") as out:
        for part in parts:
            with open(part, "rb") as stream:
                shutil.copyfileobj(stream, out, 1 << 20)
    return target


def _checked(entries: dict[str, SonameRule]) -> Iterator[tuple[str, SonameRule]]:
    """The entries the Ubuntu archive can check: all but those naming NVIDIA's repository's packages."""
    return ((name, rule) for name, rule in entries.items() if not rule.source.startswith(NVIDIA))


def _disagreements(rules: DistroRules, entries: dict[str, SonameRule], found: PackageIndex, programs: bool) -> dict[str, object]:
    """An entry names the archive's pick, or a package also shipping the file whose own source names the pick."""
    table = found.executables if programs else found.sonames
    wrong: dict[str, object] = {}
    for name, rule in _checked(entries):
        entry = table.get(name)
        providers = (entry.package, *entry.alternatives) if entry else ()
        explained = rule.source != rules.source and bool(providers) and providers[0] in rule.source
        if not providers or not (rule.package == providers[0] or (rule.package in providers and explained)):
            wrong[name] = (rule.package, providers)
    return wrong


def test_every_soname_rule_is_the_archive_package(archive: tuple[DistroRules, PackageIndex]) -> None:
    rules, found = archive
    assert _disagreements(rules, dict(rules.sonames), found, programs=False) == {}


def test_every_program_rule_is_the_archive_package(archive: tuple[DistroRules, PackageIndex]) -> None:
    rules, found = archive
    assert _disagreements(rules, dict(rules.executables), found, programs=True) == {}


def test_every_package_the_rules_name_exists(archive: tuple[DistroRules, PackageIndex]) -> None:
    rules, found = archive
    globs = {name for name in rules.python_runtime if "*" in name}
    named = {rules.libc_package, *rules.present, *(rules.python_runtime - globs), *rules.depends}
    named |= {package for needed in rules.depends.values() for package in needed}
    assert sorted(name for name in named if name not in found.depends) == []
    # Each spelling pattern of the interpreter names real packages of the release.
    assert sorted(g for g in globs if not any(fnmatchcase(package, g) for package in found.depends)) == []


def test_depends_are_the_archive_depends(archive: tuple[DistroRules, PackageIndex]) -> None:
    rules, found = archive
    assert dict(rules.depends) == {package: found.depends[package] for package in rules.depends}
    named = {rule.package for _, rule in _checked(dict(rules.sonames))}
    named |= {rule.package for _, rule in _checked(dict(rules.executables))}
    assert sorted(named - set(rules.depends)) == []  # every package the rules name has its Depends listed


def test_only_cuda_libraries_are_left_to_nvidia(archive: tuple[DistroRules, PackageIndex]) -> None:
    rules, _ = archive
    unchecked = {name: rule for name, rule in rules.sonames.items() if rule.source.startswith(NVIDIA)}
    assert 22 <= len(unchecked) <= 27  # CUDA 12 and 13 sonames (7 of them CUDA 13's alone), cuDNN, NCCL
    assert all(CUDA_SONAME.match(name) and "unchecked" in rule.source for name, rule in unchecked.items())
    assert all(rule.source.startswith(NVIDIA) for rule in rules.sonames.values() if "{cuda}" in rule.package)
    assert not any(rule.source.startswith(NVIDIA) for rule in rules.executables.values())


def test_libportaudio2_pulls_in_the_alsa_library(archive: tuple[DistroRules, PackageIndex]) -> None:
    rules, found = archive
    alsa = rules.sonames["libasound.so.2"].package  # libasound2 on jammy, libasound2t64 on noble
    assert alsa in found.depends["libportaudio2"]
    assert pulled_in(["libportaudio2", alsa], rules)[alsa] == "libportaudio2"  # from the committed data alone


def test_profile_packages_exist_or_come_from_nvidia(archive: tuple[DistroRules, PackageIndex]) -> None:
    rules, found = archive
    profiles = [load_profile(image) for image in known_profiles()]
    profiles = [profile for profile in profiles if profile.distro == rules.distro]
    if not profiles:
        pytest.skip(f"no profile on {rules.distro}")
    packages = {package for profile in profiles for package in profile.packages}
    from_ubuntu = {package for package in packages if package in found.depends}
    assert from_ubuntu >= {"ca-certificates", "gnupg2"}
    # The rest is NVIDIA's repository's (unreachable here): CUDA's own naming, never Ubuntu's.
    # cuDNN 9 names its package for the CUDA major it is built for: libcudnn9-cuda-12.
    nvidia = re.compile(r"^(cuda-[a-z0-9-]+|lib[a-z]+-\d+-\d+|libnccl2|libcudnn\d(-cuda-\d+)?)$")
    assert sorted(package for package in packages - from_ubuntu if not nvidia.match(package)) == []
