"""Which package provides a soname or a program, and where each answer comes from."""

from __future__ import annotations

from dataclasses import dataclass

from depaudit.image.model import BaseImage
from depaudit.packages.classify import expand_cuda
from depaudit.packages.index import PackageIndex, policy_package_name
from depaudit.packages.rules import DistroRules


@dataclass(frozen=True)
class LookupAnswer:
    package: str
    source: str  # "rules: <what it was checked against>", "index: <files>", "guessed: ..."
    alternatives: tuple[str, ...] = ()


def lookup(
    name: str,
    rules: DistroRules,
    index: PackageIndex | None,
    *,
    guess: bool = False,
    cuda_version: str | None = None,
) -> list[LookupAnswer]:
    answers = []
    for rules_table, kind in ((rules.sonames, "soname"), (rules.executables, "program")):
        rule = rules_table.get(name)
        if rule is not None:
            package = expand_cuda(rule.package, cuda_version) or rule.package  # shows {cuda} when unknown
            answers.append(LookupAnswer(package, f"rules ({kind}): {rule.source}"))
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
