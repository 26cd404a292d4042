"""What a library the Python environment does not provide means on the target distro."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from fnmatch import fnmatchcase

from depaudit.packages.profiles import BaseProfile
from depaudit.packages.rules import DistroRules


class SystemStatus(str, Enum):
    LIBC = "libc"
    DRIVER = "driver"
    BASE_IMAGE = "base-image"
    MISSING = "missing"
    UNMAPPED = "unmapped"


@dataclass(frozen=True)
class PackageAnswer:
    status: SystemStatus
    package: str | None


def is_driver(rules: DistroRules, soname: str) -> bool:
    return any(fnmatchcase(soname, pattern) for pattern in rules.driver_patterns)


def classify_soname(
    rules: DistroRules, soname: str, *, image_given: bool = False, profile: BaseProfile | None = None
) -> PackageAnswer:
    """A soname nothing scanned provides. Without a real image, the distro's base packages (and
    a base-image profile's) are assumed present; with one, its own files have already been
    searched and it lacks this."""
    if is_driver(rules, soname):
        return PackageAnswer(SystemStatus.DRIVER, None)
    if profile is not None and soname in profile.sonames:
        return PackageAnswer(SystemStatus.BASE_IMAGE, profile.sonames[soname])
    rule = rules.sonames.get(soname)
    if rule is None:
        return PackageAnswer(SystemStatus.UNMAPPED, None)  # never guess a package name
    if rule.package == rules.libc_package and not image_given:
        return PackageAnswer(SystemStatus.LIBC, rule.package)
    present = rules.present | (profile.packages if profile else frozenset())
    if rule.package in present and not image_given:
        return PackageAnswer(SystemStatus.BASE_IMAGE, rule.package)
    return PackageAnswer(SystemStatus.MISSING, rule.package)


def classify_image_file(rules: DistroRules, soname: str, owner: str | None) -> PackageAnswer:
    """A soname found in the base image, with the dpkg package owning that file."""
    if is_driver(rules, soname):
        return PackageAnswer(SystemStatus.DRIVER, None)
    if owner is not None and owner == rules.libc_package:
        return PackageAnswer(SystemStatus.LIBC, owner)
    return PackageAnswer(SystemStatus.BASE_IMAGE, owner)
