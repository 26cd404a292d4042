"""What a package costs an image: apt's resolution of an install over Installed-Size data.

The embedded data (rules/sizes/) is checked against the real archives; DEPAUDIT_UPDATE_SIZES=1
rewrites it from them. On a Debian 12 machine, depaudit's figure for three package sets equals
what `apt-get -s install --no-install-recommends` says it would add, summed over the machine's
own Packages lists.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import shutil
import subprocess
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from depaudit.packages.compressed import text_lines
from depaudit.packages.index import read_control
from depaudit.packages.profiles import known_profiles, load_profile
from depaudit.packages.rules import load_rules
from depaudit.packages.sizes import PackageSizes, load_sizes, megabytes, read_sizes, sizes_dir
from helpers import debian_archive_file, ubuntu_archive_files

PACKAGES = """\
Package: app
Installed-Size: 100
Depends: libc6 (>= 2.34), libsound2 | libsound2t64, mail-transport-agent, libcycle1

Package: libc6
Installed-Size: 1000

Package: libsound2t64
Installed-Size: 30
Provides: libsound2 (= 1.0)

Package: postfix
Installed-Size: 500
Provides: mail-transport-agent

Package: exim4
Installed-Size: 400
Provides: mail-transport-agent

Package: libcycle1
Installed-Size: 7
Pre-Depends: libcycle2

Package: libcycle2
Installed-Size: 9
Depends: libcycle1
"""


def _sizes(text: str = PACKAGES) -> PackageSizes:
    return read_sizes(read_control(text.splitlines(keepends=True)))


def test_an_install_adds_the_first_real_alternative_a_provider_and_a_cycle_once() -> None:
    sizes = _sizes()
    assert sizes.added(["app"], []) == {"app", "libc6", "libsound2t64", "postfix", "libcycle1", "libcycle2"}
    assert sizes.kib(sizes.added(["app"], [])) == 100 + 1000 + 30 + 500 + 7 + 9


def test_what_is_there_already_meets_a_dependency_and_is_not_added() -> None:
    sizes = _sizes()
    # exim4 provides the mail agent, libc6 is there: neither postfix nor libc6 is added.
    assert sizes.added(["app"], ["libc6", "exim4"]) == {"app", "libsound2t64", "libcycle1", "libcycle2"}
    assert sizes.added(["app", "libc6"], ["app"]) == {"libc6"}  # what it asks for is added, not what app depends on


def test_a_virtual_package_asked_for_is_its_first_provider_unless_one_is_there() -> None:
    sizes = _sizes()
    assert sizes.added(["mail-transport-agent"], []) == {"postfix"}
    assert sizes.added(["mail-transport-agent"], ["exim4"]) == set()
    assert sizes.providers("mail-transport-agent") == ("postfix", "exim4") and sizes.providers("postfix") == ()


def test_megabytes_as_people_read_them() -> None:
    assert [megabytes(k) for k in (0, 200, 9000, 215_821)] == ["0 MB", "0.2 MB", "9.2 MB", "221 MB"]


def test_restricted_keeps_what_resolving_the_roots_can_reach_and_round_trips() -> None:
    sizes = _sizes()
    small = sizes.restricted(["libcycle1"])
    assert small.installed == {"libcycle1": 7, "libcycle2": 9}
    assert PackageSizes.from_json(json.loads(json.dumps(sizes.to_json()))) == sizes
    assert sizes.restricted(["app"]).added(["app"], []) == sizes.added(["app"], [])


# The archive each distro's embedded data comes from: newer pockets first, as apt prefers them.
UBUNTU = {"ubuntu-22.04": "jammy", "ubuntu-24.04": "noble"}
COMPONENTS = ("main", "restricted", "universe", "multiverse")


def _archive(distro: str) -> PackageSizes:
    if distro == "debian-12":
        files = [debian_archive_file("dists/bookworm/main/binary-amd64/Packages.xz")]
    else:
        names = tuple(f"{c}/binary-amd64/Packages.xz" for c in COMPONENTS)
        codename = UBUNTU[distro]
        files = [f for suite in (f"{codename}-updates", codename) for f in ubuntu_archive_files(suite, names).values()]

    def paragraphs():  # type: ignore[no-untyped-def]
        for path in files:
            yield from read_control(text_lines(path))

    return read_sizes(paragraphs())


def _roots(distro: str, archive: PackageSizes) -> set[str]:
    """Every package the rules and profiles of the distro name, and the interpreter's."""
    rules = load_rules(distro)
    roots = {rule.package for rule in (*rules.sonames.values(), *rules.executables.values())}
    roots |= set(rules.depends) | {p for found in rules.depends.values() for p in found} | set(rules.present)
    roots |= {p for p in archive.installed if not p.endswith("-dev") and any(fnmatchcase(p, g) for g in rules.python_runtime)}
    for reference in known_profiles():
        profile = load_profile(reference)
        if profile.distro == distro:
            roots |= set(profile.packages)
    return {root for root in roots if archive.knows(root) or root in archive.provides}


@pytest.mark.network
@pytest.mark.parametrize("distro", ["debian-12", "ubuntu-22.04", "ubuntu-24.04"])
def test_the_embedded_sizes_are_the_archives(distro: str) -> None:
    archive = _archive(distro)
    expected = archive.restricted(_roots(distro, archive))
    path = sizes_dir() / f"{distro}.json.gz"
    if os.environ.get("DEPAUDIT_UPDATE_SIZES"):
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(expected.to_json(), separators=(",", ":"))
        path.write_bytes(gzip.compress(text.encode(), mtime=0))  # the same bytes for the same data
    embedded = load_sizes(distro)
    hint = f"rewrite with DEPAUDIT_UPDATE_SIZES=1: {path}"
    # The -updates pocket moves under a snapshot: a security update changes a size by a few KiB.
    # A size is an estimate, so it holds within 5 %; which packages are there, and their Depends,
    # hold exactly.
    assert set(embedded.installed) == set(expected.installed), hint
    drifted = {
        name: (size, expected.installed[name])
        for name, size in embedded.installed.items()
        if abs(size - expected.installed[name]) > max(16, expected.installed[name] // 20)
    }
    assert drifted == {}, hint
    assert embedded.depends == expected.depends, hint
    assert embedded.provides == expected.provides, hint


def _apt_lists() -> list[str]:
    return sorted(glob.glob("/var/lib/apt/lists/*_Packages*"))


@pytest.mark.network
@pytest.mark.skipif(
    shutil.which("apt-get") is None or not Path("/usr/lib/apt/apt-helper").exists() or not _apt_lists(),
    reason="needs apt with its package lists (run apt-get update)",
)
@pytest.mark.parametrize("packages", [["ffmpeg"], ["libportaudio2", "libsndfile1", "tini"], ["espeak-ng", "sox", "libgtk-3-0"]])
def test_our_figure_is_what_apt_would_add_on_this_machine(packages: list[str]) -> None:
    lists = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", *_apt_lists()], capture_output=True, text=True, check=True)
    sizes = read_sizes(read_control(lists.stdout.splitlines(keepends=True)))
    status = Path("/var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
    present = {f["Package"] for f in read_control(status.splitlines(keepends=True)) if f.get("Status", "").endswith(" installed")}
    simulated = subprocess.run(["apt-get", "-s", "install", "--no-install-recommends", *packages], capture_output=True, text=True)
    if simulated.returncode != 0:
        pytest.skip(f"apt-get cannot plan this install here: {simulated.stderr.strip()[:200]}")
    # `Inst name (version ...)` is a new package; `Inst name [old] (new ...)` an upgrade, which adds none.
    new = {line.split()[1] for line in simulated.stdout.splitlines() if line.startswith("Inst ") and not line.split()[2].startswith("[")}
    assert new, "nothing to add: choose packages this machine lacks"
    ours = sizes.added(packages, present)
    assert ours == new
    assert sizes.kib(ours) == sum(sizes.installed[p] for p in new)
