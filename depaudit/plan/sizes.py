"""The megabytes of a plan: what each line adds to or frees from its family's image, and the totals.

An image is its base's packages (closed under Depends, as dpkg keeps it) plus what each family
Dockerfile on its chain installs, with the Depends apt brings along. The plan's image is the
same with every family's list as the plan leaves it (`--prune` applied)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from depaudit.packages.sizes import PackageSizes
from depaudit.plan.model import FamilyPlan, PlanItem


def with_sizes(
    plans: Sequence[FamilyPlan], sizes: PackageSizes | None, base: Mapping[str, frozenset[str]]
) -> list[FamilyPlan]:
    """The plans with the KiB of every line and of each family image; as they were where the
    distro has no Packages data."""
    if sizes is None or not sizes.installed:
        return list(plans)
    by_name = {plan.name: plan for plan in plans}
    before: dict[str, set[str]] = {}
    after: dict[str, set[str]] = {}

    def images(name: str) -> tuple[set[str], set[str]]:
        if name not in before:
            plan = by_name[name]
            if plan.parent in by_name and plan.parent != name:
                above_before, above_after = images(plan.parent)
            else:
                present = set(base.get(name, frozenset()))
                above_before = above_after = present | sizes.closure(present)
            before[name] = above_before | sizes.added(plan.installs, above_before)
            after[name] = above_after | sizes.added(_pruned(plan), above_after)
        return before[name], after[name]

    result = []
    for plan in plans:
        image_before, image_after = images(plan.name)

        def costed(items: tuple[PlanItem, ...], against: set[str]) -> tuple[PlanItem, ...]:
            return tuple(
                replace(item, kib=sizes.kib(sizes.added([item.package], against)) if sizes.knows(item.package) else None)
                for item in items
            )

        result.append(replace(
            plan,
            add=costed(plan.add, image_before),
            unused=costed(plan.unused, image_after),
            redundant=costed(plan.redundant, image_after),
            adds_kib=sizes.kib(image_after - image_before),
            frees_kib=sizes.kib(image_before - image_after),
        ))
    return result


def _pruned(plan: FamilyPlan) -> list[str]:
    """The family's list as `--write --prune` leaves it: build-only packages stay (a person decides)."""
    dropped = {item.package for item in (*plan.unused, *plan.redundant)}
    return [*(p for p in plan.installs if p not in dropped), *(item.package for item in plan.add)]
