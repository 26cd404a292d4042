"""The console report: one table of needs and one of findings per service."""

from __future__ import annotations

import io
from collections import Counter

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from depaudit.findings import Finding
from depaudit.native.model import Tier
from depaudit.plan.model import FamilyPlan
from depaudit.report import Need, ScanReport, ServiceReport

# Statuses that need no action are counted, not listed, so the table stays readable.
_QUIET_STATUSES = ("bundled", "libc", "base-image", "installed")
_STATUS_STYLE = {
    "missing": "bold red",
    "unmapped": "bold magenta",
    "driver": "cyan",
    "base-image": "green",
    "other-wheel": "blue",
}


def render_table(report: ScanReport, console: Console) -> None:
    console.print(
        f"depaudit scan: {len(report.services)} service(s), distro {report.distro}, "
        f"Python {report.python_version}, {report.distribution_count} installed distributions"
    )
    for service in report.services:
        console.print()
        _render_service(service, console)
    for family in report.families:
        console.print()
        _render_family(family, console)
    if report.findings:
        console.print()
        console.print(_findings_table("Scan findings", report.findings))
    console.print()
    console.print(_summary(report))


def _render_service(service: ServiceReport, console: Console) -> None:
    # Weak evidence (a program a library runs only for one feature) stays in the JSON report.
    shown = [n for n in service.needs if n.status not in _QUIET_STATUSES and n.tier is not Tier.HINT]
    quiet = Counter(n.status for n in service.needs if n.status in _QUIET_STATUSES)
    hints = sum(1 for n in service.needs if n.tier is Tier.HINT and n.status not in _QUIET_STATUSES)
    if hints:
        quiet["weak hints (JSON report)"] = hints
    title = f"{service.name}: {len(service.imports)} third-party import(s), {len(service.needs)} native need(s)"
    if service.base_image:
        title += f", on {' → '.join([*service.families, service.base_image])}"
    if shown:
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, expand=False)
        for column in ("status", "tier", "library", "package"):
            table.add_column(column, no_wrap=True)
        table.add_column("evidence", overflow="fold")
        for need in shown:
            table.add_row(
                Text(need.status, style=_STATUS_STYLE.get(need.status, "")),
                need.tier.value,
                need.name,
                need.package or "-",
                _evidence(need),
            )
        console.print(table)
    else:
        console.print(title)
    if quiet:
        parts = ", ".join(f"{count} {status}" for status, count in sorted(quiet.items()))
        console.print(f"  also: {parts} (no action needed)")
    if service.findings:
        console.print(_findings_table(f"{service.name}: findings", service.findings))


def _render_family(family: FamilyPlan, console: Console) -> None:
    rows = [("add", item) for item in family.add] + [
        (kind, item) for kind in ("redundant", "build_only", "unused") for item in getattr(family, kind)
    ]
    title = f"family {family.name} ({family.dockerfile}): {len(family.installs)} package(s) installed"
    if not rows:
        console.print(f"{title}: nothing to change")
        return
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("change", "package", "line", "because"):
        table.add_column(column, overflow="fold", no_wrap=column != "because")
    for kind, item in rows:
        style = "bold green" if kind == "add" else "yellow"
        table.add_row(Text(kind, style=style), item.package, str(item.line or "-"), item.because)
    console.print(table)


def _evidence(need: Need) -> str:
    """The import line, the distribution, and the object that needs the library.

    The full chain (every distribution and ELF object on the way) is in the JSON report.
    """
    # chain = service, import line, distributions..., ELF objects..., soname, package|file
    end = len(need.chain) - 1 - need.chain[::-1].index(need.name)
    steps = list(need.chain[1:end])
    if len(steps) > 3:
        steps = [steps[0], steps[1], "…", steps[-1].rsplit("/", 1)[-1]]
    return " → ".join(steps)


def _findings_table(title: str, findings: tuple[Finding, ...]) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("kind", "where", "message"):
        table.add_column(column, overflow="fold")
    for finding in findings:
        where = finding.path if finding.line is None else f"{finding.path}:{finding.line}"
        table.add_row(finding.kind.value, where, finding.message)
    return table


def _summary(report: ScanReport) -> Text:
    failing = [(s.name, n) for s in report.services for n in s.needs if n.fails]
    if not failing:
        return Text("No required library or program is missing from the image.", style="green")
    packages = sorted({n.package or n.name for _, n in failing})
    services = sorted({name for name, _ in failing})
    return Text(
        f"{len(services)} service(s) need what the image lacks: {', '.join(packages)}.",
        style="bold red",
    )


def render_plain_text(report: ScanReport, width: int = 120) -> str:
    """The table report as plain text of a fixed width, for files and committed reports."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False, no_color=True)
    render_table(report, console)
    return buffer.getvalue()
