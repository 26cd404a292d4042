"""What the plan stage hands to the emitters."""

from __future__ import annotations

from dataclasses import dataclass, field

from depaudit.dockerfile.model import Dockerfile
from depaudit.evidence import Tier
from depaudit.packages.model import ServiceReport


@dataclass(frozen=True)
class BaseProvides:
    """What a family's base image installs already: no Dockerfile line needs to."""

    image: str  # how reports name it
    packages: frozenset[str]


@dataclass(frozen=True, order=True)
class PlanItem:
    package: str
    tier: Tier
    because: str  # one sentence of evidence a user can act on
    line: int | None = None  # where the family's Dockerfile names it (for unused/redundant/build-only)
    # What it adds to the image (add) or frees (unused, redundant): it and the Depends only it
    # brings, in KiB of Installed-Size; None where the distro's Packages data does not know it.
    kib: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class FamilyPlan:
    name: str
    dockerfile: str  # posix, relative to the folder above the services
    parent: str | None  # the family it is built FROM, if any
    distro: str
    installs: tuple[str, ...]  # its own apt-get install packages, in file order
    services: tuple[str, ...]  # the services whose nearest family it is
    add: tuple[PlanItem, ...]
    unused: tuple[PlanItem, ...]
    redundant: tuple[PlanItem, ...]
    build_only: tuple[PlanItem, ...]
    apt_line: int | None = None  # the line of the RUN an addition goes into (None: a new RUN)
    # The family image once the plan is applied with --prune, against as it is: KiB of
    # Installed-Size it gains and frees (None: no Packages data for the distro).
    adds_kib: int | None = None
    frees_kib: int | None = None
    source: Dockerfile | None = field(default=None, compare=False, repr=False)  # its Dockerfile as the scan read it

    @property
    def packages_after(self) -> tuple[str, ...]:
        """What the family should install once the plan is applied (pruned)."""
        dropped = {item.package for item in (*self.unused, *self.redundant, *self.build_only)}
        kept = [p for p in self.installs if p not in dropped]
        return tuple(dict.fromkeys([*kept, *(item.package for item in self.add)]))


@dataclass(frozen=True)
class FleetPlan:
    """The plan of every family, and each service's needs with the plan's verdict on them."""

    families: tuple[FamilyPlan, ...]
    services: tuple[ServiceReport, ...]
