"""bindep.txt per family: the packages it should install, as OpenStack's bindep reads them."""

from __future__ import annotations

from depaudit.plan.model import FamilyPlan


def render_bindep(family: FamilyPlan) -> str:
    lines = [f"# {family.name} ({family.dockerfile}): written by depaudit for {family.distro}"]
    lines += [f"{package} [platform:dpkg]" for package in sorted(family.packages_after)]
    return "\n".join(lines) + "\n"
