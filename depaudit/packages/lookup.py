"""Which package provides a soname or a program, and where each answer comes from."""

from __future__ import annotations

from dataclasses import dataclass

from depaudit.evidence import NeedKind
from depaudit.image.model import BaseImage
from depaudit.packages.classify import driver_file, expand_cuda
from depaudit.packages.index import PackageIndex, policy_package_name
from depaudit.packages.rules import DistroRules


# NVIDIA names its CUDA packages after the CUDA version (cuda-cudart-12-1). The soname's major does
# not give it: CUDA 12 ships libcufft.so.11 and libcurand.so.10, and CUDA 11 libcusolver.so.11 too.
CUDA_PLACEHOLDER = "<X>-<Y>"


@dataclass(frozen=True)
class LookupAnswer:
    package: str  # "" when nothing is to be installed: the NVIDIA driver's library
    source: str  # "rules: <what it was checked against>", "index: <files>", "guessed: ..."
    alternatives: tuple[str, ...] = ()
    driver: str | None = None  # mounted from the host by the NVIDIA container runtime: for this capability
    cuda_unknown: bool = False  # `package` holds CUDA_PLACEHOLDER: the CUDA version was not given
    cuda_only: str | None = None  # the CUDA major whose packages alone ship it, when the version given is not of it


def lookup(
    name: str,
    rules: DistroRules,
    index: PackageIndex | None,
    *,
    guess: bool = False,
    cuda_version: str | None = None,
) -> list[LookupAnswer]:
    driver = driver_file(rules, NeedKind.SONAME, name) or driver_file(rules, NeedKind.PROGRAM, name)
    if driver is not None:
        # The scan's rule (NeedStatus.DRIVER): whatever apt package ships it (jammy's
        # libnvidia-compute-* do), it comes from the host's driver, never from the image.
        return [LookupAnswer("", f"rules (driver): {driver.rule}", driver=driver.capability)]
    answers = []
    for rules_table, kind in ((rules.sonames, "soname"), (rules.executables, "program")):
        rule = rules_table.get(name)
        if rule is not None:
            package = expand_cuda(rule.package, cuda_version, only_major=rule.cuda)
            source = f"rules ({kind}): {rule.source}"
            if package is None and rule.cuda is not None:
                shown = rule.package.replace("{cuda}", f"{rule.cuda}-<Y>").replace("{cuda_major}", rule.cuda)
                answers.append(LookupAnswer(shown, source, cuda_only=rule.cuda))
            elif package is None:
                shown = rule.package.replace("{cuda}", CUDA_PLACEHOLDER).replace("{cuda_major}", "<X>")
                answers.append(LookupAnswer(shown, source, cuda_unknown=True))
            else:
                answers.append(LookupAnswer(package, source))
    if index is not None:
        for index_table, kind in ((index.sonames, "soname"), (index.executables, "program")):
            entry = index_table.get(name)
            if entry is not None:
                answers.append(LookupAnswer(entry.package, f"index ({kind}): {index.source}", entry.alternatives))
    if not answers and guess:
        guessed = policy_package_name(name)
        if guessed is not None:
            answers.append(LookupAnswer(guessed, "guessed: Debian's library package naming policy, not checked"))
    return answers


def lookup_in_image(name: str, image: BaseImage) -> list[LookupAnswer]:
    """Where the image itself has the soname or program, and which dpkg package owns that file."""
    path = image.find_library(name, image.ld_library_path) if ".so" in name else image.find_program(name)
    if path is None:
        return []
    owner = image.owner_of(path)
    if owner is None:
        return [LookupAnswer("(no package)", f"image {image.label}: {path}, which no dpkg package owns")]
    return [LookupAnswer(owner, f"image {image.label}: dpkg database, {path}")]


def render_answer(name: str, distro: str, answer: LookupAnswer) -> str:
    """One line of `depaudit lookup`."""
    if answer.driver is not None:
        thing = "library" if ".so" in name else "program"
        what = (
            f"driver ({answer.driver}): the NVIDIA driver's {thing}: the NVIDIA container runtime mounts it from "
            f"the host when NVIDIA_DRIVER_CAPABILITIES asks for {answer.driver}, never apt-install it in the image"
        )
        return f"{name}: {what}  [{answer.source}]"
    also = f" (also: {', '.join(answer.alternatives)})" if answer.alternatives else ""
    if answer.cuda_only is not None:
        also += f", CUDA {answer.cuda_only}'s alone: {answer.cuda_only}.Y being the image's CUDA version (no other CUDA major's package ships it)"
    if answer.cuda_unknown:
        also += ", X.Y being the image's CUDA version (give --cuda-version X.Y, or --base-image IMAGE, to name it exactly)"
    return f"{name} → {answer.package} on {distro}{also}  [{answer.source}]"
