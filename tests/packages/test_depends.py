"""Packages another chosen package already pulls in, from the committed rules data alone."""

from __future__ import annotations

from dataclasses import replace

from depaudit.packages.depends import depends_of, pulled_in
from depaudit.packages.rules import load_rules


def test_libportaudio2_pulls_in_libasound2_on_debian12() -> None:
    rules = load_rules("debian-12")
    assert depends_of("libportaudio2", rules) == ("libasound2", "libc6", "libjack-jackd2-0")
    via = pulled_in(["libportaudio2", "libasound2"], rules)
    assert via["libasound2"] == "libportaudio2"  # listing both is redundant
    assert via["libc6"] in ("libasound2", "libportaudio2")
    assert "libportaudio2" not in via  # nothing chosen pulls it in


def test_a_chain_through_packages_not_chosen() -> None:
    rules = load_rules("debian-12")
    via = pulled_in(["libgl1"], rules)
    assert via["libglx0"] == "libgl1"  # libgl1 → libglx0 → libx11-6, named in the rules' Depends
    assert via["libx11-6"] == "libgl1"


def test_libportaudio2_pulls_in_the_alsa_library_on_ubuntu() -> None:
    # jammy's libportaudio2 depends on libasound2; noble's on its time_t rename libasound2t64.
    for distro, alsa in (("ubuntu-22.04", "libasound2"), ("ubuntu-24.04", "libasound2t64")):
        rules = load_rules(distro)
        assert depends_of("libportaudio2", rules) == (alsa, "libc6", "libjack-jackd2-0")
        via = pulled_in(["libportaudio2", alsa], rules)
        assert via[alsa] == "libportaudio2", distro
        assert via["libasound2-data"] in (alsa, "libportaudio2")  # through the ALSA library's own Depends


def test_the_nearest_chosen_package_is_named() -> None:
    rules = replace(load_rules("debian-12"), depends={"aa": ("ab",), "ab": ("x",), "zz": ("x",)})
    assert pulled_in(["aa", "zz"], rules) == {"ab": "aa", "x": "zz"}  # zz pulls x in one step, aa in two


def test_of_chosen_packages_that_pull_each_other_in_one_stays() -> None:
    rules = load_rules("debian-12")
    assert rules.depends["libc6"] == ("libgcc-s1",) and "libc6" in rules.depends["libgcc-s1"]
    via = pulled_in(["libc6", "libgcc-s1"], rules)
    assert via["libgcc-s1"] == "libc6"
    assert "libc6" not in via  # were both redundant, a prune would remove both
