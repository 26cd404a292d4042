"""Packages another chosen package already pulls in, from the committed rules data alone."""

from __future__ import annotations

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
