"""`depaudit why NAME`: every chain of evidence in a scan that leads to NAME."""

from __future__ import annotations

from depaudit.report import Need, ScanReport


def chains_to(report: ScanReport, name: str) -> list[str]:
    lines = []
    for service in report.services:
        for need in service.needs:
            if _leads_to(need, name):
                lines.append(f"[{need.tier.value}, {need.status}] " + " → ".join(need.chain))
    return lines


def _leads_to(need: Need, name: str) -> bool:
    """NAME is the package, the library or program, a distribution on the way, or the import."""
    if name in (need.package, need.name):
        return True
    for step in need.chain:
        if step.split(" ", 1)[0] == name or step.endswith(f" import {name}"):
            return True  # "sounddevice 0.5.6" (a distribution) or "main.py:6 import sounddevice"
    return False
