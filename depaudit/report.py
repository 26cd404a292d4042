"""The scan result that the emitters render: plain data, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass

from depaudit.findings import Finding, FindingKind
from depaudit.packages.model import ServiceReport
from depaudit.plan.model import FamilyPlan
from depaudit.python.locate import EnvironmentChoice


@dataclass(frozen=True)
class Suppressed:
    """A result the fleet decided to live with: out of the verdict, listed with its reason."""

    code: str
    subject: str  # the result as the reports name it
    reason: str
    origin: str  # the rule: "depaudit.toml [[ignore]] 1", or the inline comment's file:line
    service: str | None = None
    family: str | None = None
    path: str | None = None  # the file it is at, as the report shows it
    line: int | None = None


@dataclass(frozen=True)
class ScanReport:
    distro: str
    python_version: str
    distribution_count: int
    services: tuple[ServiceReport, ...]
    findings: tuple[Finding, ...]  # not tied to one service (the Python environment, discovery)
    base_image: str | None = None  # the image searched for system libraries, when one was given
    families: tuple[FamilyPlan, ...] = ()  # the apt diff per family Dockerfile
    environments: tuple[EnvironmentChoice, ...] = ()  # the Python environments audited, and why those
    suppressed: tuple[Suppressed, ...] = ()  # results taken out by [[ignore]] or inline comments

    @property
    def failing(self) -> bool:
        return any(need.fails for service in self.services for need in service.needs) or bool(self.missing_modules)

    @property
    def missing_modules(self) -> tuple[tuple[str, Finding], ...]:
        """(service, finding) of each import nothing provides, at start-up and unguarded."""
        return tuple(
            (service.name, finding)
            for service in self.services
            for finding in service.findings
            if finding.kind is FindingKind.MISSING_MODULE
        )
