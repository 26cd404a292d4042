"""`depaudit why NAME`: every chain of evidence in a scan that leads to NAME."""

from __future__ import annotations

from depaudit.packages.model import Need
from depaudit.report import ScanReport


def chains_to(report: ScanReport, name: str) -> list[str]:
    lines = []
    for service in report.services:
        for need in service.needs:
            if _leads_to(need, name):
                lines.append(f"[{need.tier.value}, {need.status.value}] " + " → ".join(map(str, need.chain)))
    return lines


def _leads_to(need: Need, name: str) -> bool:
    """NAME is the package, the library or program, the service, an import, a distribution or
    an ELF object on the way."""
    return name in (need.package, need.name) or any(step.name == name for step in need.chain)
