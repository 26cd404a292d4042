"""The plan stage as a whole: each family's apt diff, then each service's final verdicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from depaudit.fleet.layout import FamilySpec
from depaudit.packages.index import PackageIndex
from depaudit.packages.model import ServiceReport
from depaudit.packages.rules import DistroRules
from depaudit.plan.model import FleetPlan
from depaudit.plan.planner import plan_families
from depaudit.plan.verdicts import installed_by_families


def plan_fleet(
    families: Mapping[str, FamilySpec],
    services: Sequence[ServiceReport],
    rules: DistroRules,
    index: PackageIndex | None = None,
    *,
    hoist: bool = False,
    cpu_families: frozenset[str] = frozenset(),
) -> FleetPlan:
    """Families are planned from what the services need as the packages stage answered it; only
    then does a need the family already installs become `installed`."""
    plans = tuple(plan_families(families, services, rules, index, hoist=hoist, cpu_families=cpu_families))
    return FleetPlan(plans, tuple(installed_by_families(service, plans, rules, index) for service in services))
