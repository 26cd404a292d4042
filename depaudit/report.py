"""The scan result that the emitters render: plain data, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass

from depaudit.collect.model import ImportRecord
from depaudit.findings import Finding
from depaudit.native.model import Tier
from depaudit.plan.model import FamilyPlan

# Statuses a need can end in; the packages stage refines the native stage's "system".
NEED_STATUSES = ("missing", "unmapped", "installed", "driver", "base-image", "libc", "other-wheel", "bundled")
FAILING_STATUSES = frozenset({"missing", "unmapped"})


@dataclass(frozen=True)
class ResolvedImport:
    record: ImportRecord
    distribution: str | None  # name of the distribution providing it; None when unresolved


@dataclass(frozen=True)
class Need:
    kind: str  # "soname" or "program"
    name: str
    status: str  # one of NEED_STATUSES
    package: str | None  # apt package on the target distro, where one applies
    tier: Tier
    chain: tuple[str, ...]  # evidence from the service's import to the package
    found_at: str | None = None  # the file it resolved to (environment-relative, or an image path)
    rule: str | None = None  # the loader rule that found it
    tried: tuple[str, ...] = ()  # where the loader looked, when nothing was found

    @property
    def fails(self) -> bool:
        """A required library the image lacks: the service dies at import."""
        return self.tier is Tier.REQUIRED and self.status in FAILING_STATUSES


@dataclass(frozen=True)
class ServiceReport:
    name: str
    imports: tuple[ResolvedImport, ...]
    needs: tuple[Need, ...]
    findings: tuple[Finding, ...]
    base_image: str | None = None  # what it was audited against: an image or a profiled reference
    families: tuple[str, ...] = ()  # family images its Dockerfile's FROM chain goes through


@dataclass(frozen=True)
class ScanReport:
    distro: str
    python_version: str
    distribution_count: int
    services: tuple[ServiceReport, ...]
    findings: tuple[Finding, ...]  # not tied to one service (the Python environment, discovery)
    base_image: str | None = None  # the image searched for system libraries, when one was given
    families: tuple[FamilyPlan, ...] = ()  # the apt diff per family Dockerfile

    @property
    def failing(self) -> bool:
        return any(need.fails for service in self.services for need in service.needs)
