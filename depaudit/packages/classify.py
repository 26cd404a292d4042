"""What a library the Python environment does not provide means on the target distro."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from fnmatch import fnmatchcase

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


def classify_soname(rules: DistroRules, soname: str) -> PackageAnswer:
    if any(fnmatchcase(soname, pattern) for pattern in rules.driver_patterns):
        return PackageAnswer(SystemStatus.DRIVER, None)
    rule = rules.sonames.get(soname)
    if rule is None:
        return PackageAnswer(SystemStatus.UNMAPPED, None)  # never guess a package name
    if rule.package == rules.libc_package:
        return PackageAnswer(SystemStatus.LIBC, rule.package)
    if rule.package in rules.present:
        return PackageAnswer(SystemStatus.BASE_IMAGE, rule.package)
    return PackageAnswer(SystemStatus.MISSING, rule.package)
