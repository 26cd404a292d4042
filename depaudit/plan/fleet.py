"""The plan stage as a whole: each family's apt diff, then each service's final verdicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from depaudit.dockerfile.edit import prune_leaves
from depaudit.dockerfile.model import Dockerfile
from depaudit.findings import Finding, FindingKind
from depaudit.fleet.layout import FamilySpec
from depaudit.packages.index import PackageIndex
from depaudit.packages.model import ServiceReport
from depaudit.packages.rules import DistroRules
from depaudit.plan.model import BaseProvides, FamilyPlan, FleetPlan
from depaudit.plan.planner import plan_families
from depaudit.plan.sizes import with_sizes
from depaudit.packages.sizes import PackageSizes
from depaudit.plan.verdicts import installed_by_families


def plan_fleet(
    families: Mapping[str, FamilySpec],
    services: Sequence[ServiceReport],
    rules: DistroRules,
    index: PackageIndex | None = None,
    *,
    hoist: bool = False,
    cpu_families: frozenset[str] = frozenset(),
    provided: Mapping[str, BaseProvides] | None = None,
    sizes: PackageSizes | None = None,
    service_dockerfiles: Sequence[tuple[str, Dockerfile]] = (),
) -> FleetPlan:
    """Families are planned from what the services need as the packages stage answered it; only
    then does a need the family already installs become `installed`."""
    plans = plan_families(
        families, services, rules, index, hoist=hoist, cpu_families=cpu_families, provided=provided, sizes=sizes,
        service_dockerfiles=service_dockerfiles,
    )
    base = {name: found.packages for name, found in (provided or {}).items()}
    plans = tuple(with_sizes(plans, sizes, base))
    return FleetPlan(plans, tuple(installed_by_families(service, plans, rules, index, sizes) for service in services))


def prune_findings(plans: Sequence[FamilyPlan]) -> list[Finding]:
    """What `--prune` would leave in place of what the plan removes, and why: it never skips silently."""
    found = []
    for plan in plans:
        source = plan.source
        remove = [item.package for item in (*plan.unused, *plan.redundant)]
        if source is not None and source.text is not None and remove:
            add = [item.package for item in plan.add]
            leaves = prune_leaves(source.text, remove, add, source.context)
            found += [Finding(FindingKind.DOCKERFILE, plan.dockerfile, line, message) for line, message in leaves]
    return found
