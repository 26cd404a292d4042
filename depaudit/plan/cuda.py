"""The CUDA the wheels load against the CUDA the base image carries, per family image.

Read from the finished needs, not from a new walk: a CUDA library a service loads out of a wheel
(`other-wheel`, `bundled`) says which CUDA major the wheels bring; one the base answers
(`base-image`) is a base library in use. A family whose wheels bring another major than its base
needs a driver for that major (DA220) and carries the base's CUDA as dead weight (DA221); one
whose wheels bring the base's own major loads the wheels' copies first (RPATH), so the base's
copies of the same sonames are dead weight (DA222).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from depaudit.evidence import NeedStatus, chain_text
from depaudit.findings import Finding, FindingKind
from depaudit.fleet.layout import FamilySpec
from depaudit.packages.cuda import CudaRules, distribution_major, install_major, version_major
from depaudit.packages.image_cuda import ImageCuda
from depaudit.packages.model import ServiceReport
from depaudit.packages.profiles import BaseProfile

_FROM_WHEELS = (NeedStatus.OTHER_WHEEL, NeedStatus.BUNDLED)
# `12.1.1-runtime-ubuntu22.04`, `12.1.1-cudnn8-runtime-ubuntu22.04`: version, flavour, OS.
_TAG = re.compile(r"^(?P<repo>[^:]+):(?P<version>\d+(?:\.\d+)*)-(?P<flavour>.+)-(?P<os>[a-z]+[0-9.]+)$")


@dataclass(frozen=True)
class WheelCuda:
    """One CUDA library a service loads out of a wheel."""

    soname: str
    major: int
    distribution: str | None  # the wheel that ships it, as its METADATA names it
    chain: tuple[str, ...]  # how the service comes to load it
    by_soname: bool = True  # its soname says the major (else the wheel's name does)


@dataclass(frozen=True)
class ServiceCuda:
    """What one service loads of CUDA, and the base it runs on."""

    service: str
    families: tuple[str, ...]  # the family images of its FROM chain
    wheels: tuple[WheelCuda, ...]
    from_base: frozenset[str]  # sonames the base image answers for it
    base: str | None  # how reports name its base image
    cuda_version: str | None  # the base's CUDA_VERSION
    profile: BaseProfile | None
    image: ImageCuda | None = None  # the base image's own CUDA libraries, when the image is given
    distro: str | None = None  # the base image's distro, when the image is given

    @property
    def base_libraries(self) -> frozenset[str]:
        """The base's CUDA sonames: what the image holds when given, else what its profile says."""
        if self.image is not None:
            return self.image.sonames
        return frozenset(self.profile.sonames) if self.profile is not None else frozenset()

    @property
    def image_name(self) -> str:
        return self.base or "the base image"


def service_cuda(
    report: ServiceReport,
    owner: Callable[[str], str | None],
    rules: CudaRules,
    *,
    cuda_version: str | None,
    profile: BaseProfile | None,
    image: ImageCuda | None = None,
    distro: str | None = None,
) -> ServiceCuda:
    """`owner`: the distribution shipping an environment-relative file, if any."""
    wheels = []
    from_base = set()
    for need in report.needs:
        if need.status is NeedStatus.BASE_IMAGE:
            from_base.add(need.name)
        if need.status not in _FROM_WHEELS or need.found_at is None:
            continue
        distribution = owner(need.found_at)
        major = rules.soname_major(need.name)
        by_soname = major is not None
        if major is None and distribution is not None:
            major = distribution_major(distribution.lower())
        if major is None:
            major = install_major(need.found_at)
        if major is not None:
            wheels.append(WheelCuda(need.name, major, distribution, chain_text(need.chain), by_soname))
    # One soname is one object in a process: a library some wheel's walk finds only in the base
    # (nvidia-cufile's libcufile_rdma has no RPATH to its libcufile) is the wheel's copy once loaded.
    from_base -= {need.name for need in report.needs if need.status in _FROM_WHEELS}
    return ServiceCuda(
        report.name, report.families, tuple(wheels), frozenset(from_base), report.base_image, cuda_version, profile,
        image, distro,
    )


def cuda_findings(families: Mapping[str, FamilySpec], services: Sequence[ServiceCuda], rules: CudaRules) -> list[Finding]:
    """DA220-DA222 for each family built FROM the CUDA image itself, over every service built on it."""
    found: list[Finding] = []
    for family in families.values():
        if family.parent is not None:
            continue  # its root family carries the FROM that names the base image
        using = [service for service in services if family.name in service.families]
        if using:
            found += _family_findings(family, using, rules)
    return found


def _family_findings(family: FamilySpec, services: list[ServiceCuda], rules: CudaRules) -> list[Finding]:
    first = services[0]
    base_major = version_major(first.cuda_version)
    wheels = [wheel for service in services for wheel in service.wheels]
    if base_major is None or not wheels:
        return []
    image = family.source.image()
    where = (family.display, image.line if image is not None and image.line else None)
    from_base = frozenset().union(*(service.from_base for service in services))
    base_libraries = first.base_libraries
    other = sorted({wheel.major for wheel in wheels} - {base_major})
    found = [Finding(FindingKind.CUDA_MAJOR_MISMATCH, *where, _mismatch(first, base_major, major, wheels, rules)) for major in other]
    if other and base_libraries - from_base:
        found.append(Finding(FindingKind.UNUSED_BASE_CUDA, *where, _unused(first, family.name, base_libraries, from_base, rules)))
    duplicated = {w.soname: w for w in wheels if w.major == base_major and w.soname in base_libraries - from_base}
    if duplicated:
        found.append(Finding(FindingKind.DUPLICATE_CUDA, *where, _duplicates(first, base_major, duplicated, rules)))
    return found


def _mismatch(base: ServiceCuda, base_major: int, major: int, wheels: list[WheelCuda], rules: CudaRules) -> str:
    bringing = [wheel for wheel in wheels if wheel.major == major]
    names = sorted({f"{w.distribution or 'a wheel'} ({w.soname})" for w in bringing})
    # The soname's own major is the plainest evidence (libcudart.so.13); then the shortest chain.
    example = min(bringing, key=lambda w: (not w.by_soname, len(w.chain), w.chain))
    return (
        f"the wheels load CUDA {major}, {_described(base)} has CUDA {base.cuda_version}: "
        f"the host driver must run CUDA {major} ({_driver(rules, major)}; CUDA {base_major} needs "
        f"{_driver(rules, base_major)}); CUDA {major} comes from {', '.join(names)}; e.g. {' → '.join(example.chain)}"
    )


def _described(base: ServiceCuda) -> str:
    return f"the base image {base.base}" if base.base else "the base image"


def _driver(rules: CudaRules, major: int) -> str:
    minimum = rules.driver(major)
    return f"Linux driver >= {minimum}" if minimum is not None else "a driver depaudit knows no minimum of"


def _unused(base: ServiceCuda, family: str, libraries: frozenset[str], from_base: frozenset[str], rules: CudaRules) -> str:
    unused = sorted(libraries - from_base)
    lighter = _lighter_base(base, from_base & libraries, rules)
    text = (
        f"no service built on {family} loads these CUDA {base.cuda_version} libraries of {base.image_name}: "
        f"{', '.join(unused)} ({_size(base, unused, rules)})"
    )
    return f"{text}; {lighter}" if lighter else text


def _duplicates(base: ServiceCuda, major: int, duplicated: Mapping[str, WheelCuda], rules: CudaRules) -> str:
    names = [f"{soname} ({duplicated[soname].distribution or 'a wheel'})" for soname in sorted(duplicated)]
    return (
        f"the wheels ship CUDA {major} libraries that {base.image_name} also has, and theirs are loaded "
        f"first (RPATH): {', '.join(names)}; the image's copies are dead weight ({_size(base, sorted(duplicated), rules)})"
    )


def _size(base: ServiceCuda, sonames: list[str], rules: CudaRules) -> str:
    if base.image is not None:
        return _image_size(base.image, sonames)
    version = base.cuda_version or ""
    sizes = {soname: rules.kib(version, soname) for soname in sonames}
    known = [kib for kib in sizes.values() if kib is not None]
    unknown = [soname for soname, kib in sizes.items() if kib is None]
    minor = ".".join(version.split(".")[:2])
    text = f"{sum(known):,} KiB, estimated from NVIDIA's CUDA {minor} wheels" if known else "size unknown"
    if known and unknown:
        text += f"; no size known for {', '.join(unknown)}"
    return text


def _image_size(image: ImageCuda, sonames: list[str]) -> str:
    """What the image's own copies take: their files' sizes, or their packages' Installed-Size
    (a package whose file list is gone, counted only when none of its libraries stays)."""
    size = image.size(sonames)
    files = f"{size.file_kib:,} KiB as the image's files" if size.by_file else ""
    installed = f"{size.package_kib:,} KiB as dpkg's Installed-Size of {', '.join(size.packages)}" if size.packages else ""
    if not files and not installed:
        return "size unknown"
    text = f"{size.file_kib + size.package_kib:,} KiB: {files}, {installed}" if files and installed else files or installed
    if size.unknown:
        text += f"; no size known for {', '.join(size.unknown)}"
    return text


def _lighter_base(base: ServiceCuda, used: frozenset[str], rules: CudaRules) -> str | None:
    """The lighter image that would serve: the plain distro when no base CUDA library is
    loaded, the `-base-` variant when only what it keeps is."""
    profile = base.profile
    major = version_major(base.cuda_version)
    distro = profile.distro if profile is not None else base.distro
    if major is None or distro is None:
        return None
    if not used:
        distro = distro.replace("-", ":", 1)
        return (
            f"the wheels bring their own CUDA: {distro} would serve "
            "(with ENV NVIDIA_VISIBLE_DEVICES and NVIDIA_DRIVER_CAPABILITIES, which the container runtime reads)"
        )
    tag = _TAG.match(profile.image) if profile is not None else None
    if tag is not None and tag["flavour"] != "base" and used <= rules.base_sonames(major):
        return f"only {', '.join(sorted(used))} is loaded from it: {tag['repo']}:{tag['version']}-base-{tag['os']} would serve"
    return None
