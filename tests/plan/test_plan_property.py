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
from depaudit.packages.model import Need, ServiceReport
from depaudit.packages.rules import DistroRules
from depaudit.packages.sizes import PackageSizes
from depaudit.plan.model import BaseProvides, FamilyPlan
from depaudit.plan.planner import plan_families

NAMES = [f"lib{letter}1" for letter in "abcdefghijk"] + ["python3"]
EXAMPLES = int(os.environ.get("DEPAUDIT_PROPERTY_EXAMPLES", "200"))


VIRTUALS = ["virt-mta", "virt-audio"]
Fleet = tuple[DistroRules, PackageSizes, dict[str, FamilySpec], list[ServiceReport], frozenset[str]]


@st.composite
def fleets(draw: st.DrawFn) -> Fleet:
    """Depends as the curated rules give them (one name a dependency), or as a Packages file does
    (groups of alternatives, virtual packages and their providers): the planner reads the first
    from `rules`, the second from the Packages data."""
    archive = draw(st.booleans())
    names = NAMES + VIRTUALS if archive else NAMES
    groups = {
        name: tuple(
            tuple(dict.fromkeys(g for g in group if g != name))
            for group in draw(st.lists(st.lists(st.sampled_from(names), min_size=1, max_size=2 if archive else 1), max_size=3))
        )
        for name in NAMES
    }
    groups = {name: tuple(g for g in found if g) for name, found in groups.items()}
    provides = {v: tuple(draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True))) for v in VIRTUALS} if archive else {}
    sizes = PackageSizes({name: draw(st.integers(1, 5000)) for name in NAMES}, groups, provides)
    depends = {} if archive else {name: tuple(g[0] for g in found) for name, found in groups.items()}
    base = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=3))
    # dpkg keeps an image whole: what it has, it has the Depends of.
    present = frozenset(base) | frozenset(sizes.closure(base))
    rules = _rules(depends, present)
    count = draw(st.integers(1, 3))
    families: dict[str, FamilySpec] = {}
    for number in range(count):
        name = f"family-{number}"
        parent = None if number == 0 else draw(st.sampled_from(sorted(families)))
        packages = draw(st.lists(st.sampled_from(names), unique=True, max_size=6))
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
    return rules, sizes, families, services, present


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


def _image(family: str, families: dict[str, FamilySpec], sizes: PackageSizes, present: frozenset[str]) -> set[str]:
    """What apt installs for a family image: its base, then each Dockerfile's lists top down."""
    chain = [family, *_ancestors(family, families)]
    image = set(present)
    for name in reversed(chain):
        listed = [p.name for install in families[name].source.apt_installs for p in install.packages]
        image |= sizes.added(listed, image)
    return image


def _unmet(services: list[ServiceReport], families: dict[str, FamilySpec], sizes: PackageSizes, present: frozenset[str]) -> set[tuple[str, str, Tier]]:
    """The needs apt's result for each service's family image does not meet."""
    return {
        (service.name, need.name, need.tier)
        for service in services
        for need in service.needs
        if need.package not in _image(service.families[0], families, sizes, present)
    }


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(fleets())
def test_applying_the_plan_with_prune_leaves_nothing_missing_and_nothing_to_change(fleet: Fleet) -> None:
    rules, sizes, families, services, present = fleet
    provided = {name: BaseProvides("the base", present) for name in families}
    plans = plan_families(families, services, rules, None, provided=provided, sizes=sizes)
    applied = _applied(families, plans)
    again = plan_families(applied, services, rules, None, provided=provided, sizes=sizes)

    # Judged by apt's own resolution of the images: no need surely met before (whatever apt picks
    # of a group of alternatives) is unmet after, and every required need is met. A need met only
    # through apt's pick among alternatives is not promised: a package the plan adds may meet the
    # group instead (see the closing note of issue 18).
    sure = PackageSizes(sizes.installed, {p: tuple(g for g in found if len(g) == 1 and g[0] in sizes.installed)
                                          for p, found in sizes.depends.items()}, {})
    before, after = _unmet(services, families, sure, present), _unmet(services, applied, sizes, present)
    assert after <= before
    assert not [m for m in after if m[2] is Tier.REQUIRED]
    for plan in again:
        what = applied[plan.name].source
        left = {p.name for i in what.apt_installs for p in i.packages}
        # Nothing left to change, but what --prune had to leave (a list emptied in a RUN that does more).
        assert plan.add == ()
        leftovers = {i.package for i in (*plan.unused, *plan.redundant)}
        assert leftovers <= left
        # Each is one --prune said it leaves, and why.
        original = families[plan.name].source
        before_plan = next(p for p in plans if p.name == plan.name)
        said = prune_leaves(original.text or "", [i.package for i in (*before_plan.unused, *before_plan.redundant)],
                            [i.package for i in before_plan.add])
        assert leftovers <= {word for _, message in said for word in message.split(":")[0].split()[2:]}
        # The bindep export is the Dockerfile's list, once the leftovers are gone.
        bindep = {line.split()[0] for line in render_bindep(plan).splitlines()[1:]}
        assert bindep == left - leftovers


def _ancestors(name: str, families: dict[str, FamilySpec]) -> list[str]:
    chain, current = [], families[name].parent
    while current is not None:
        chain.append(current)
        current = families[current].parent
    return chain
