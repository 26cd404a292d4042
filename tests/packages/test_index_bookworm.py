"""Against the real bookworm archive and this machine's dpkg database (Debian 12)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from depaudit.packages.index import PackageIndex, build_index
from depaudit.packages.rules import load_rules
from helpers import debian_archive_file

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def bookworm() -> PackageIndex:
    contents = debian_archive_file("dists/bookworm/main/Contents-amd64.gz")
    packages = debian_archive_file("dists/bookworm/main/binary-amd64/Packages.xz")
    return build_index("debian-12", contents, packages)


def _is_bookworm() -> bool:
    try:
        return "VERSION_CODENAME=bookworm" in Path("/etc/os-release").read_text()
    except OSError:
        return False


@pytest.mark.skipif(shutil.which("dpkg") is None or not _is_bookworm(), reason="needs a Debian 12 machine with dpkg")
def test_index_agrees_with_dpkg_for_the_libraries_of_this_machine(bookworm: PackageIndex) -> None:
    files = sorted(p for p in Path("/usr/lib/x86_64-linux-gnu").glob("*.so.*") if p.name.startswith(("lib", "ld-")))
    query = sorted({str(p) for p in files} | {str(p.resolve()) for p in files})
    owner = {}
    for line in subprocess.run(["dpkg", "-S", *query], capture_output=True, text=True).stdout.splitlines():
        packages, _, path = line.partition(": ")
        owner[path] = packages.split(",")[0].split(":")[0].strip()
    compared = agreed = 0
    disagreements = []
    for path in files:
        expected = owner.get(str(path)) or owner.get(str(path.resolve()))
        if expected is None:
            continue  # made by ldconfig or a maintainer script: no package owns it
        compared += 1
        entry = bookworm.sonames.get(path.name)
        if entry is not None and entry.package == expected:
            agreed += 1
        else:
            disagreements.append((path.name, expected, entry))
    print(f"\nindex vs dpkg -S: {agreed}/{compared} = {100 * agreed / compared:.2f}% agree")
    assert compared > 300
    assert agreed / compared >= 0.99, disagreements[:20]


def test_every_debian12_rule_names_a_package_that_ships_the_soname(bookworm: PackageIndex) -> None:
    rules = load_rules("debian-12")
    wrong = {}
    for soname, rule in rules.sonames.items():
        entry = bookworm.sonames.get(soname)
        providers = (entry.package, *entry.alternatives) if entry else ()
        if rule.package not in providers:
            wrong[soname] = (rule.package, providers)
    assert wrong == {}


def test_libportaudio2_pulls_in_libasound2(bookworm: PackageIndex) -> None:
    assert "libasound2" in bookworm.depends["libportaudio2"]


def test_debian12_programs_and_depends_match_the_archive(bookworm: PackageIndex) -> None:
    rules = load_rules("debian-12")
    programs = {name: rule.package for name, rule in rules.executables.items()}
    assert programs == {name: bookworm.executables[name].package for name in programs}
    assert dict(rules.depends) == {package: bookworm.depends[package] for package in rules.depends}
    named = {r.package for r in rules.sonames.values()} | set(programs.values())
    assert named <= set(rules.depends)  # every package the rules name has its Depends listed
