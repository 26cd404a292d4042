"""Turn what the image lacks into package answers, with the evidence for each.

One `PackageResolver` per base a service is audited against: it owns the distro's rules and
package index, the base image or its profile, and the image's environment, so that every soname
and program is answered the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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

    # What the resolver has answered, by what it was asked: the answers depend on the base alone,
    # and every service of a scan on that base asks them again (one resolver per base per scan).
    _natives: dict[NativeNeed, _NativeAnswer] = field(default_factory=dict, init=False, compare=False, repr=False)
    _named: dict[tuple[NeedKind, str], _NamedAnswer] = field(default_factory=dict, init=False, compare=False, repr=False)
    _sonames: dict[str, str | None] = field(default_factory=dict, init=False, compare=False, repr=False)
    _hints: dict[FileHint, tuple[tuple[NeedKind, str, EvidenceStep], ...]] = field(default_factory=dict, init=False, compare=False, repr=False)
    _majors: dict[str, PackageResolver] = field(default_factory=dict, init=False, compare=False, repr=False)

    def for_cuda_major(self, major: str) -> PackageResolver:
        """This resolver for the needs of a build for CUDA `major` (its cuDNN packages), made
        once: its answers are kept for the next service too."""
        if major not in self._majors:
            self._majors[major] = replace(self, cuda_major=major)
        return self._majors[major]

    def native_need(
        self, need: NativeNeed, tier: Tier, prefix: tuple[EvidenceStep, ...], earlier: EarlierLoad | None = None
    ) -> Need:
        """A DT_NEEDED (or dlopen) the native stage resolved, or could not, as a package answer.
        `earlier`: an object of that name an earlier import has loaded into the process."""
        known = self._natives.get(need)
        if known is None:
            known = self._natives[need] = self._native_answer(need)
        if earlier is not None and known.loadable:
            # glibc takes the loaded object before it searches: the image need not have it.
            # The package that would provide it stays named, so that no plan prunes it.
            return Need(
                NeedKind.SONAME, need.soname, NeedStatus.LOADED, known.package, tier, (*prefix, *known.head, earlier.step),
                earlier.found_at, earlier.rule,
            )
        return Need(
            NeedKind.SONAME, need.soname, known.status, known.package, tier, (*prefix, *known.head, *known.tail),
            need.found_at, need.rule, known.tried,
        )

    def _native_answer(self, need: NativeNeed) -> _NativeAnswer:
        head = [*(_object(path) for path in need.chain), _need_step(need.soname)]
        tail: list[EvidenceStep] = []
        loadable = False
        if need.status in (LibraryStatus.SYSTEM, LibraryStatus.IMAGE):
            if need.status is LibraryStatus.IMAGE and self.image is not None and need.found_at:
                answer = classify_image_file(self.rules, need.soname, self.image.owner_of(need.found_at), self.mounts)
                head.append(_found(need.found_at))
            else:
                answer = self._soname_answer(need.soname)
            loadable = answer.status.fails
            status, package = answer.status, answer.package
            if package is not None:
                tail.append(self._package_step(package))
            tail.extend(self._driver_steps(answer))
        else:
            status, package = _SHIPPED[need.status], None
            if need.found_at is not None:
                head.append(_found(need.found_at))
        # Where the loader looked explains an absence; for a library the base provides it is noise.
        tried = need.tried if status.fails and status is not NeedStatus.CAPABILITY else ()
        return _NativeAnswer(status, package, tuple(head), tuple(tail), tried, loadable)

    def hint_needs(self, hint: FileHint, tier: Tier, prefix: tuple[EvidenceStep, ...]) -> list[Need]:
        """What a call that loads a library or starts a program needs."""
        named = self._hints.get(hint)
        if named is None:
            named = self._hints[hint] = self._hint_names(hint)
        return [self.named_need(kind, name, tier, (*prefix, call)) for kind, name, call in named]

    def _hint_names(self, hint: FileHint) -> tuple[tuple[NeedKind, str, EvidenceStep], ...]:
        """What the call needs by name, each with the step that names the call."""
        call = hint.hint
        candidates = linux_candidates(call)
        if call.kind == "program":  # each program started is needed
            return tuple((NeedKind.PROGRAM, name, _call(hint, name)) for name in candidates)
        # Libraries are tried in turn: the first one that means a known soname stands for the need.
        for candidate in candidates:
            soname = self._soname_for(candidate)
            if soname is not None:
                return ((NeedKind.SONAME, soname, _call(hint, candidate)),)
        if not candidates:
            return ()
        first = candidates[0].rsplit("/", 1)[-1]
        return ((NeedKind.SONAME, first, _call(hint, candidates[0])),)

    def named_need(self, kind: NeedKind, name: str, tier: Tier, prefix: tuple[EvidenceStep, ...]) -> Need:
        """A library or program needed by name (not through DT_NEEDED): what provides it?"""
        known = self._named.get((kind, name))
        if known is None:
            known = self._named[kind, name] = self._named_answer(kind, name)
        return Need(kind, name, known.status, known.package, tier, (*prefix, *known.steps), known.found_at)

    def _named_answer(self, kind: NeedKind, name: str) -> _NamedAnswer:
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
        steps = [_need_step(name)]
        if found_at is not None:
            steps.append(_found(found_at))
        if answer.package is not None:
            steps.append(self._package_step(answer.package))
        steps.extend(self._driver_steps(answer))
        return _NamedAnswer(answer.status, answer.package, tuple(steps), found_at)

    def wheel_need(self, name: str, tier: Tier, prefix: tuple[EvidenceStep, ...], found_at: str, owner: str) -> Need:
        """A library loaded by name that another installed distribution ships, as curated data
        says it is found there (onnxruntime's preload_dlls, or an earlier import that loads it)."""
        chain = (*prefix, _need_step(name), EvidenceStep(StepKind.FOUND, f"{found_at} (shipped by {owner})", name=found_at))
        return Need(NeedKind.SONAME, name, NeedStatus.OTHER_WHEEL, None, tier, chain, found_at)

    def _soname_for(self, library: str) -> str | None:
        """The known soname a library name given to a loader stands for, if any."""
        if library not in self._sonames:
            self._sonames[library] = soname_for_library(library, self.rules, self.index)
        return self._sonames[library]

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


@dataclass(frozen=True)
class _NativeAnswer:
    """What a walk record means on one base, less the service's own evidence and tier."""

    status: NeedStatus
    package: str | None
    head: tuple[EvidenceStep, ...]  # the objects, the need, where the image has it
    tail: tuple[EvidenceStep, ...]  # the package and driver steps (left out when an earlier load answers)
    tried: tuple[str, ...]
    loadable: bool  # the base lacks it: an object an earlier import loaded would answer instead


@dataclass(frozen=True)
class _NamedAnswer:
    """What a library or program named in code means on one base, less the chain before it."""

    status: NeedStatus
    package: str | None
    steps: tuple[EvidenceStep, ...]
    found_at: str | None


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
