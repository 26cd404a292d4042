"""The plan's last word on each service: a need a family Dockerfile on its FROM chain already
installs is not missing from the image the service runs in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from depaudit.evidence import EvidenceStep, NeedStatus, StepKind
from depaudit.packages.depends import pulled_in
from depaudit.packages.index import PackageIndex
from depaudit.packages.model import ServiceReport, strongest_needs
from depaudit.packages.rules import DistroRules
from depaudit.packages.sizes import PackageSizes
from depaudit.plan.model import FamilyPlan


def installed_by_families(
    service: ServiceReport,
    plans: Sequence[FamilyPlan],
    rules: DistroRules,
    index: PackageIndex | None,
    sizes: PackageSizes | None = None,
) -> ServiceReport:
    """A package a family Dockerfile on the service's FROM chain installs, or one such a package
    depends on, is not missing from the image the service runs in: only what the plan would
    add stays `missing`."""
    installs = {plan.name: plan.installs for plan in plans}
    by: dict[str, str] = {}
    for family in service.families:  # nearest first
        for package in installs.get(family, ()):
            by.setdefault(package, family)
    for package, root in pulled_in(list(by), rules, index, sizes).items():
        by.setdefault(package, f"{by[root]} (a dependency of {root})")
    needs = tuple(
        replace(
            need,
            status=NeedStatus.INSTALLED,
            chain=(*need.chain, EvidenceStep(StepKind.INSTALLED_BY, f"installed by {by[need.package]}")),
            tried=(),
        )
        if need.status is NeedStatus.MISSING and need.package in by
        else need
        for need in service.needs
    )
    return replace(service, needs=strongest_needs(needs))
