"""The plan is safe to apply blind, as a property over generated fleets: Depends graphs (cycles
included), family chains, apt lists laid out as people write them, services needing packages at
either tier, a base image providing some. Applying the plan with --prune and planning again gives
nothing missing that was there before, nothing left to change, and a bindep file that is the
Dockerfile's list.

DEPAUDIT_PROPERTY_EXAMPLES raises the example count for a long run by hand."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depaudit.dockerfile.edit import patch_dockerfile, prune_leaves
from depaudit.dockerfile.model import Dockerfile
from depaudit.emit.bindep import render_bindep
from depaudit.evidence import NeedKind, NeedStatus, Tier
from depaudit.fleet.layout import FamilySpec
from depaudit.packages.depends import pulled_in
from depaudit.packages.model import Need, ServiceReport
from depaudit.packages.rules import DistroRules
from depaudit.plan.model import BaseProvides, FamilyPlan
from depaudit.plan.planner import plan_families
from depaudit.plan.verdicts import installed_by_families

NAMES = [f"lib{letter}1" for letter in "abcdefghijk"] + ["python3"]
EXAMPLES = int(os.environ.get("DEPAUDIT_PROPERTY_EXAMPLES", "200"))


@st.composite
def fleets(draw: st.DrawFn) -> tuple[DistroRules, dict[str, FamilySpec], list[ServiceReport], frozenset[str]]:
    depends = {name: tuple(draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=3))) for name in NAMES}
    depends = {name: tuple(d for d in found if d != name) for name, found in depends.items()}
    base = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=3))
    # dpkg keeps an image whole: what it has, it has the Depends of.
    present = frozenset(base) | frozenset(pulled_in(base, _rules(depends, frozenset())))
    rules = _rules(depends, present)
    count = draw(st.integers(1, 3))
    families: dict[str, FamilySpec] = {}
    for number in range(count):
        name = f"family-{number}"
        parent = None if number == 0 else draw(st.sampled_from(sorted(families)))
        packages = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=6))
        text = f"FROM {parent or 'nvidia/cuda:12.1.1-runtime-ubuntu22.04'}\n" + draw(_install(packages))
        families[name] = FamilySpec(name, Dockerfile(Path(name), name, text), parent)
    services = []
    for number in range(draw(st.integers(1, 4))):
        family = draw(st.sampled_from(sorted(families)))
        chain = [family]
        while families[chain[-1]].parent is not None:
            chain.append(families[chain[-1]].parent)  # type: ignore[arg-type]
        wanted = draw(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from([Tier.REQUIRED, Tier.OPTIONAL])), max_size=4))
        needs = tuple(
            Need(NeedKind.SONAME, f"{package}.so", NeedStatus.BASE_IMAGE if package in present else NeedStatus.MISSING,
                 package, tier, ())
            for package, tier in wanted
        )
        services.append(ServiceReport(f"svc-{number}", (), needs, (), None, tuple(chain)))
    return rules, families, services, present


def _rules(depends: dict[str, tuple[str, ...]], present: frozenset[str]) -> DistroRules:
    return DistroRules(
        distro="ubuntu-22.04", codename="jammy", source="generated", libc_package="libc6", present=present,
        driver_patterns=(), sonames={}, depends=depends, python_runtime=frozenset({"python3"}),
    )


@st.composite
def _install(draw: st.DrawFn, packages: list[str]) -> str:
    if not packages:
        return draw(st.sampled_from(["", "RUN echo no apt here\n"]))
    update = "apt-get update && "
    cleanup = draw(st.sampled_from([" && rm -rf /var/lib/apt/lists/*", ""]))
    layout = draw(st.sampled_from(["inline", "column", "split", "mixed"]))
    if layout == "inline":
        return f"RUN {update}apt-get install -y --no-install-recommends {' '.join(packages)}{cleanup}\n"
    if layout == "column":
        lines = "".join(f"    {p} \\\n" for p in packages)
        return f"RUN {update}apt-get install -y --no-install-recommends \\\n{lines}    && rm -rf /var/lib/apt/lists/*\n"
    if layout == "mixed":  # a RUN that does more than install
        return f"RUN {update}apt-get install -y --no-install-recommends {' '.join(packages)} && mkdir -p /app\n"
    half = len(packages) // 2
    first, second = packages[:half] or packages, packages[half:] if half else []
    runs = f"RUN {update}apt-get install -y --no-install-recommends {' '.join(first)}{cleanup}\n"
    if second:
        runs += f"RUN {update}apt-get install -y --no-install-recommends {' '.join(second)}{cleanup}\n"
    return runs


def _applied(families: dict[str, FamilySpec], plans: list[FamilyPlan]) -> dict[str, FamilySpec]:
    """Every family's Dockerfile with its plan applied, --prune included."""
    result = {}
    for plan in plans:
        spec = families[plan.name]
        text = spec.source.text or ""
        remove = [item.package for item in (*plan.unused, *plan.redundant)]
        new = patch_dockerfile(text, [item.package for item in plan.add], remove)
        result[plan.name] = FamilySpec(spec.name, Dockerfile(spec.dockerfile, spec.display, new), spec.parent)
    return result


def _missing(services: list[ServiceReport], plans: list[FamilyPlan], rules: DistroRules) -> set[tuple[str, str, Tier]]:
    return {
        (service.name, need.name, need.tier)
        for service in services
        for need in installed_by_families(service, plans, rules, None).needs
        if need.status is NeedStatus.MISSING
    }


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(fleets())
def test_applying_the_plan_with_prune_leaves_nothing_missing_and_nothing_to_change(fleet) -> None:  # type: ignore[no-untyped-def]
    rules, families, services, present = fleet
    provided = {name: BaseProvides("the base", present) for name in families}
    plans = plan_families(families, services, rules, None, provided=provided)
    applied = _applied(families, plans)
    again = plan_families(applied, services, rules, None, provided=provided)

    # No need the audit found satisfied before is missing after, and no required one is missing at all.
    before, after = _missing(services, plans, rules), _missing(services, again, rules)
    assert after <= before
    assert not [m for m in after if m[2] is Tier.REQUIRED]
    for plan in again:
        what = applied[plan.name].source
        left = {p.name for i in what.apt_installs for p in i.packages}
        # Nothing left to change, but what --prune had to leave (a list emptied in a RUN that does more).
        assert plan.add == ()
        assert {i.package for i in (*plan.unused, *plan.redundant)} <= left
        leftovers = {i.package for i in (*plan.unused, *plan.redundant)}
        # Each is one --prune said it leaves, and why.
        original = families[plan.name].source
        before_plan = next(p for p in plans if p.name == plan.name)
        said = prune_leaves(original.text or "", [i.package for i in (*before_plan.unused, *before_plan.redundant)],
                            [i.package for i in before_plan.add])
        assert leftovers <= {word for _, message in said for word in message.split(":")[0].split()[2:]}
        # The bindep export is the Dockerfile's list, once the leftovers are gone.
        bindep = {line.split()[0] for line in render_bindep(plan).splitlines()[1:]}
        assert bindep == left - leftovers
    # No package the plan calls unused is one the kept packages pull in (it would be redundant).
    for plan in plans:
        chain = [plan.name, *_ancestors(plan.name, families)]
        kept = {p for name in chain for p in next(q for q in plans if q.name == name).packages_after}
        assert not {item.package for item in plan.unused} & set(pulled_in(kept, rules))


def _ancestors(name: str, families: dict[str, FamilySpec]) -> list[str]:
    chain, current = [], families[name].parent
    while current is not None:
        chain.append(current)
        current = families[current].parent
    return chain
