"""Turn what the image lacks into package answers, with the evidence for each.

One `PackageResolver` per base a service is audited against: it owns the distro's rules and
package index, the base image or its profile, and the image's environment, so that every soname
and program is answered the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from depaudit.collect.hints import linux_candidates
from depaudit.evidence import EvidenceStep, NeedKind, NeedStatus, StepKind, Tier
from depaudit.image.model import BaseImage
from depaudit.native.hints import FileHint
from depaudit.native.model import LibraryStatus, NativeNeed
from depaudit.packages.classify import (
    PackageAnswer,
    classify_image_file,
    classify_soname,
    driver_answer,
    driver_file,
    package_for_program,
    soname_for_library,
)
from depaudit.packages.index import PackageIndex
from depaudit.packages.loaded import EarlierLoad
from depaudit.packages.model import Need
from depaudit.packages.mounts import DriverMounts
from depaudit.packages.profiles import BaseProfile
from depaudit.packages.rules import DistroRules


@dataclass(frozen=True)
class PackageResolver:
    rules: DistroRules
    index: PackageIndex | None = None  # the distro's own (load_index returns no other)
    image: BaseImage | None = None  # the base image read as files, when one is given
    profile: BaseProfile | None = None  # else a profile of the base image, when one is known
    cuda_version: str | None = None  # the image's CUDA_VERSION: names NVIDIA's CUDA packages
    ld_library_path: tuple[str, ...] = field(default=())
    # The driver files the image's NVIDIA_DRIVER_CAPABILITIES mounts; None: not known, all of them.
    mounts: DriverMounts | None = None
    cuda_major: str | None = None  # the CUDA major of the build whose needs these are, when data says

    def native_need(
        self, need: NativeNeed, tier: Tier, prefix: tuple[EvidenceStep, ...], earlier: EarlierLoad | None = None
    ) -> Need:
        """A DT_NEEDED (or dlopen) the native stage resolved, or could not, as a package answer.
        `earlier`: an object of that name an earlier import has loaded into the process."""
        chain = [*prefix, *(_object(path) for path in need.chain), _need_step(need.soname)]
        if need.status in (LibraryStatus.SYSTEM, LibraryStatus.IMAGE):
            if need.status is LibraryStatus.IMAGE and self.image is not None and need.found_at:
                answer = classify_image_file(self.rules, need.soname, self.image.owner_of(need.found_at), self.mounts)
                chain.append(_found(need.found_at))
            else:
                answer = self._soname_answer(need.soname)
            if earlier is not None and answer.status.fails:
                # glibc takes the loaded object before it searches: the image need not have it.
                # The package that would provide it stays named, so that no plan prunes it.
                return Need(
                    NeedKind.SONAME, need.soname, NeedStatus.LOADED, answer.package, tier, (*chain, earlier.step),
                    earlier.found_at, earlier.rule,
                )
            status, package = answer.status, answer.package
            if package is not None:
                chain.append(self._package_step(package))
            chain.extend(self._driver_steps(answer))
        else:
            status, package = _SHIPPED[need.status], None
            if need.found_at is not None:
                chain.append(_found(need.found_at))
        # Where the loader looked explains an absence; for a library the base provides it is noise.
        tried = need.tried if status.fails and status is not NeedStatus.CAPABILITY else ()
        return Need(NeedKind.SONAME, need.soname, status, package, tier, tuple(chain), need.found_at, need.rule, tried)

    def hint_needs(self, hint: FileHint, tier: Tier, prefix: tuple[EvidenceStep, ...]) -> list[Need]:
        """What a call that loads a library or starts a program needs."""
        call = hint.hint
        candidates = linux_candidates(call)
        if call.kind == "program":  # each program started is needed
            return [self.named_need(NeedKind.PROGRAM, name, tier, (*prefix, _call(hint, name))) for name in candidates]
        # Libraries are tried in turn: the first one that means a known soname stands for the need.
        for candidate in candidates:
            soname = soname_for_library(candidate, self.rules, self.index)
            if soname is not None:
                return [self.named_need(NeedKind.SONAME, soname, tier, (*prefix, _call(hint, candidate)))]
        if not candidates:
            return []
        first = candidates[0].rsplit("/", 1)[-1]
        return [self.named_need(NeedKind.SONAME, first, tier, (*prefix, _call(hint, candidates[0])))]

    def named_need(self, kind: NeedKind, name: str, tier: Tier, prefix: tuple[EvidenceStep, ...]) -> Need:
        """A library or program needed by name (not through DT_NEEDED): what provides it?"""
        found_at = None
        if self.image is not None:
            found_at = (
                self.image.find_library(name, self.ld_library_path)
                if kind is NeedKind.SONAME
                else self.image.find_program(name)
            )
        driver = driver_file(self.rules, kind, name)
        if driver is not None:  # the runtime mounts it over whatever the image has
            answer = driver_answer(driver, self.mounts)
        elif found_at is not None and self.image is not None:
            answer = classify_image_file(self.rules, name, self.image.owner_of(found_at))
        elif kind is NeedKind.SONAME:
            answer = self._soname_answer(name)
        else:
            answer = self._program_answer(name)
        chain = [*prefix, _need_step(name)]
        if found_at is not None:
            chain.append(_found(found_at))
        if answer.package is not None:
            chain.append(self._package_step(answer.package))
        chain.extend(self._driver_steps(answer))
        return Need(kind, name, answer.status, answer.package, tier, tuple(chain), found_at)

    def wheel_need(self, name: str, tier: Tier, prefix: tuple[EvidenceStep, ...], found_at: str, owner: str) -> Need:
        """A library loaded by name that another installed distribution ships, as curated data
        says it is found there (onnxruntime's preload_dlls, or an earlier import that loads it)."""
        chain = (*prefix, _need_step(name), EvidenceStep(StepKind.FOUND, f"{found_at} (shipped by {owner})", name=found_at))
        return Need(NeedKind.SONAME, name, NeedStatus.OTHER_WHEEL, None, tier, chain, found_at)

    def _soname_answer(self, soname: str) -> PackageAnswer:
        return classify_soname(
            self.rules,
            soname,
            image_given=self.image is not None,
            profile=self.profile,
            index=self.index,
            cuda_version=self.cuda_version,
            mounts=self.mounts,
            cuda_major=self.cuda_major,
        )

    def _driver_steps(self, answer: PackageAnswer) -> list[EvidenceStep]:
        """For the driver's file: whether the image's capabilities mount it, and if not, the line to change."""
        driver = answer.driver
        if driver is None:
            return []
        capability = driver.capability
        if self.mounts is None:
            label = f"NVIDIA driver ({capability}): the NVIDIA container runtime mounts it from the host driver"
        elif answer.status is NeedStatus.CAPABILITY:
            label = f"NVIDIA driver ({capability}): {self.mounts.missing(capability)}"
        else:
            label = f"NVIDIA driver ({capability}): {self.mounts.mounted_text(capability)}"
        return [EvidenceStep(StepKind.DRIVER, label, name=capability)]

    def _program_answer(self, program: str) -> PackageAnswer:
        package = package_for_program(self.rules, program, self.index)
        if package is None:
            return PackageAnswer(NeedStatus.UNMAPPED, None)
        present = self.rules.present | (self.profile.packages if self.profile else frozenset())
        if package in present and self.image is None:
            return PackageAnswer(NeedStatus.BASE_IMAGE, package)
        return PackageAnswer(NeedStatus.MISSING, package)

    def _package_step(self, package: str) -> EvidenceStep:
        return EvidenceStep(StepKind.PACKAGE, f"{package} ({self.rules.distro})", name=package)


# Found inside the Python environment: no package is needed.
_SHIPPED = {LibraryStatus.BUNDLED: NeedStatus.BUNDLED, LibraryStatus.OTHER_WHEEL: NeedStatus.OTHER_WHEEL}


def _object(path: str) -> EvidenceStep:
    return EvidenceStep(StepKind.OBJECT, path, name=path)


def _need_step(name: str) -> EvidenceStep:
    return EvidenceStep(StepKind.NEED, name, name=name)


def _found(path: str) -> EvidenceStep:
    return EvidenceStep(StepKind.FOUND, path, name=path)


def _call(hint: FileHint, name: str) -> EvidenceStep:
    guard = " inside a try that catches its failure" if hint.hint.guarded else ""
    return EvidenceStep(StepKind.CALL, f"{hint.hint.call}({name!r}){guard}", hint.file, hint.hint.line)
