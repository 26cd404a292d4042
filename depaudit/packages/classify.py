"""What a library the Python environment does not provide means on the target distro.

`index` is always the target distro's own (`load_index` returns no other)."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from depaudit.evidence import NeedKind, NeedStatus

from depaudit.packages.index import PackageIndex
from depaudit.packages.mounts import DriverMounts
from depaudit.packages.profiles import BaseProfile
from depaudit.packages.rules import DistroRules


@dataclass(frozen=True)
class PackageAnswer:
    status: NeedStatus  # libc, driver, capability, base-image, missing or unmapped
    package: str | None
    driver: DriverFile | None = None  # for the NVIDIA driver's file: its capability


@dataclass(frozen=True)
class DriverFile:
    """A library or program of the NVIDIA driver, mounted by the runtime for one capability."""

    capability: str
    rule: str  # what says so, for `depaudit lookup`


def driver_file(rules: DistroRules, kind: NeedKind, name: str) -> DriverFile | None:
    """The driver data's capability for the name; else, for a library the distro's `driver` patterns
    match (a newer driver's libnvidia-*), the data's `unlisted` capability."""
    files = rules.driver_files
    listed = files.match(kind, name) if files is not None else None
    if listed is not None:
        entry, capability = listed
        star = "*" if kind is NeedKind.SONAME else ""
        return DriverFile(capability, f"driver/nvidia.toml {entry}{star} → {capability}, the NVIDIA container toolkit's list")
    if kind is not NeedKind.SONAME:
        return None
    pattern = driver_pattern(rules, name)
    if pattern is None:
        return None
    unlisted = files.unlisted if files is not None else "compute"
    return DriverFile(unlisted, f"{rules.distro} driver pattern {pattern}, in no capability's list: {unlisted}")


def driver_answer(driver: DriverFile, mounts: DriverMounts | None) -> PackageAnswer:
    """The driver's file: mounted when the image asks for its capability (an image not known: always)."""
    status = NeedStatus.DRIVER if mounts is None or mounts.mounts(driver.capability) else NeedStatus.CAPABILITY
    return PackageAnswer(status, None, driver)


def driver_pattern(rules: DistroRules, soname: str) -> str | None:
    """The rules' pattern that makes `soname` the NVIDIA driver's (mounted by the container runtime)."""
    return next((pattern for pattern in rules.driver_patterns if fnmatchcase(soname, pattern)), None)


def classify_soname(
    rules: DistroRules,
    soname: str,
    *,
    image_given: bool = False,
    profile: BaseProfile | None = None,
    index: PackageIndex | None = None,
    cuda_version: str | None = None,
    mounts: DriverMounts | None = None,
    cuda_major: str | None = None,
) -> PackageAnswer:
    """A soname nothing scanned provides. Without a real image, the distro's base packages (and
    a base-image profile's) are assumed present; with one, its own files have already been
    searched and it lacks this. `mounts`: the driver files the image's capabilities mount."""
    driver = driver_file(rules, NeedKind.SONAME, soname)
    if driver is not None:
        return driver_answer(driver, mounts)
    if profile is not None and soname in profile.sonames:
        return PackageAnswer(NeedStatus.BASE_IMAGE, profile.sonames[soname])
    package = package_for_soname(rules, soname, index, cuda_version, cuda_major)
    if package is None:
        return PackageAnswer(NeedStatus.UNMAPPED, None)  # never guess a package name
    if package == rules.libc_package and not image_given:
        return PackageAnswer(NeedStatus.LIBC, package)
    present = rules.present | (profile.packages if profile else frozenset())
    if package in present and not image_given:
        return PackageAnswer(NeedStatus.BASE_IMAGE, package)
    return PackageAnswer(NeedStatus.MISSING, package)


def package_for_soname(
    rules: DistroRules,
    soname: str,
    index: PackageIndex | None,
    cuda_version: str | None = None,
    cuda_major: str | None = None,
) -> str | None:
    """The curated rules first (checked by hand), then the index built from the distro's Contents.

    A DT_NEEDED by file name (`libgomp.so.1.0.0`: linked without a soname) needs that very file.
    The index lists files, so it answers exactly; without one, the rules' package for the soname
    (`libgomp.so.1`) is the answer, the package whose real file that name is by Debian's naming
    (a different minor version there would still fail: only the index can tell)."""
    package = _rule_package(rules, soname, cuda_version, cuda_major)
    if package is not None:
        return package
    if index is not None:
        entry = index.sonames.get(soname)
        return entry.package if entry is not None else None
    forms = soname_forms(soname)[1:]
    return next(filter(None, (_rule_package(rules, form, cuda_version, cuda_major) for form in forms)), None)


def _rule_package(rules: DistroRules, soname: str, cuda_version: str | None, cuda_major: str | None) -> str | None:
    rule = rules.sonames.get(soname)
    return expand_cuda(rule.package, cuda_version, cuda_major, rule.cuda) if rule is not None else None


def soname_forms(name: str) -> list[str]:
    """`libgomp.so.1.0.0`, then `libgomp.so.1.0` and `libgomp.so.1`: the sonames a library file
    name may stand for, longest first."""
    forms = [name]
    head, dot, tail = name.rpartition(".so.")
    if not dot:
        return forms
    parts = tail.split(".")
    while len(parts) > 1 and parts[-1].isdigit():
        parts.pop()
        forms.append(f"{head}.so.{'.'.join(parts)}")
    return forms


def classify_image_file(
    rules: DistroRules, soname: str, owner: str | None, mounts: DriverMounts | None = None
) -> PackageAnswer:
    """A soname found in the base image, with the dpkg package owning that file. A driver file
    there (a stub, a copy) still comes from the host at run time: the runtime mounts it over."""
    driver = driver_file(rules, NeedKind.SONAME, soname)
    if driver is not None:
        return driver_answer(driver, mounts)
    if owner is not None and owner == rules.libc_package:
        return PackageAnswer(NeedStatus.LIBC, owner)
    return PackageAnswer(NeedStatus.BASE_IMAGE, owner)


def expand_cuda(package: str, cuda_version: str | None, cuda_major: str | None = None, only_major: str | None = None) -> str | None:
    """`cuda-cudart-{cuda}` with CUDA_VERSION 12.1.1 → `cuda-cudart-12-1`; None if the version is unknown.

    `{cuda_major}` (cuDNN's `libcudnn9-cuda-{cuda_major}`) is the CUDA major of the code that
    loads it, which may differ from the image's: `cuda_major` when the needing build's is known
    (rules/python/packages.toml `cuda`), else the image's. `only_major`: the soname is that CUDA
    major's alone, so `{cuda}` names nothing for an image of another major."""
    parts = (cuda_version or "").split(".")
    if only_major is not None and "{cuda}" in package and parts[0] != only_major:
        return None
    if "{cuda_major}" in package:
        major = cuda_major or (parts[0] if parts[0].isdigit() else None)
        if major is None:
            return None
        package = package.replace("{cuda_major}", major)
    if "{cuda}" not in package:
        return package
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        return None
    return package.replace("{cuda}", f"{parts[0]}-{parts[1]}")


def soname_for_library(name: str, rules: DistroRules, index: PackageIndex | None) -> str | None:
    """What a name given to dlopen or find_library means on Linux.

    `libx.so.1` (or a path to it) is that soname; `libx.so` and find_library's bare `x` are the
    one versioned soname the rules or the index know for libx — None when they know none or
    several (no guess).
    """
    base = name.rsplit("/", 1)[-1]
    if ".so." in base:
        return base
    stem = base[: -len(".so")] if base.endswith(".so") else (base if base.startswith("lib") else f"lib{base}")
    prefix = f"{stem}.so."
    for table in (rules.sonames, index.sonames if index is not None else {}):
        matches = sorted(soname for soname in table if soname.startswith(prefix))
        if len(matches) == 1:
            return matches[0]
    return None


def package_for_program(rules: DistroRules, program: str, index: PackageIndex | None) -> str | None:
    rule = rules.executables.get(program)
    if rule is not None:
        return rule.package
    entry = index.executables.get(program) if index is not None else None
    return entry.package if entry is not None else None
