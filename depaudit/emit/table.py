"""The console report: one table of needs and one of findings per service."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from depaudit.codes import PLAN_CODES, finding_code, need_code
from depaudit.emit.grid import Cell, grid, wrap_title
from depaudit.evidence import NeedStatus, Tier
from depaudit.findings import Finding
from depaudit.packages.sizes import change_size, megabytes
from depaudit.plan.model import FamilyPlan
from depaudit.packages.model import Need, ServiceReport
from depaudit.report import ScanReport

# Statuses that need no action are counted, not listed, so the table stays readable.
_QUIET_STATUSES = (NeedStatus.BUNDLED, NeedStatus.LIBC, NeedStatus.BASE_IMAGE, NeedStatus.INSTALLED, NeedStatus.LOADED)
_STATUS_STYLE = {
    NeedStatus.MISSING: "bold red",
    NeedStatus.UNMAPPED: "bold magenta",
    NeedStatus.DRIVER: "cyan",
    NeedStatus.BASE_IMAGE: "green",
    NeedStatus.OTHER_WHEEL: "blue",
}


def render_table(report: ScanReport, console: Console) -> None:
    width = console.width
    out = _Out(console)
    out.line(
        f"depaudit scan: {len(report.services)} service(s), distro {report.distro}, "
        f"Python {report.python_version}, {report.distribution_count} installed distributions"
    )
    for line in environment_lines(report):
        out.line(line)
    for service in report.services:
        out.line()
        _render_service(service, out, width)
    for family in report.families:
        out.line()
        _render_family(family, out, width)
    if report.findings:
        out.line()
        _findings_table("Scan findings", report.findings, out, width)
    if report.suppressed:
        out.line()
        out.line(f"Suppressed ({len(report.suppressed)}): out of the verdict, by the fleet's decision", "bold")
        for item in report.suppressed:
            out.line(f"  {item.code} {item.subject} — {item.reason} [{item.origin}]", "dim")
    out.line()
    text, style = _summary(report)
    out.line(text, style)


def environment_lines(report: ScanReport) -> list[str]:
    """Which Python environment was audited, and why that one: a gate must say what it read."""
    return [
        f"Python environment: {', '.join(choice.names)} ({choice.source})"
        for choice in report.environments
    ]


def render_verdict(report: ScanReport, console: Console) -> None:
    """The table's last line alone: what `depaudit scan -q` prints."""
    text, style = _summary(report)
    _Out(console).line(text, style)


class _Out:
    """Lines for the console: plain, or coloured where a style is given."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def line(self, text: str = "", style: str = "") -> None:
        self.console.print(Text(text, style=style), soft_wrap=True)

    def table(self, title: str, headers: Sequence[str], rows: Sequence[Sequence[Cell]], width: int) -> None:
        for part in wrap_title(title, width):
            self.line(part)
        styled = grid(headers, rows, width)
        text = Text("\n".join(styled.lines))
        for start, end, style in styled.spans:
            text.stylize(style, start, end)
        self.console.print(text, soft_wrap=True)


def _render_service(service: ServiceReport, out: _Out, width: int) -> None:
    # Weak evidence (a program a library runs only for one feature) stays in the JSON report.
    shown = [n for n in service.needs if n.status not in _QUIET_STATUSES and n.tier is not Tier.HINT]
    quiet = Counter(n.status.value for n in service.needs if n.status in _QUIET_STATUSES)
    hints = sum(1 for n in service.needs if n.tier is Tier.HINT and n.status not in _QUIET_STATUSES)
    if hints:
        quiet["weak hints (JSON report)"] = hints
    title = f"{service.name}: {len(service.imports)} third-party import(s), {len(service.needs)} native need(s)"
    if service.base_image:
        title += f", on {' → '.join([*service.families, service.base_image])}"
    if shown:
        rows = [
            [
                Cell(need_code(n) or "-"), Cell(n.status.value, _STATUS_STYLE.get(n.status, "")), Cell(n.tier.value),
                Cell(n.name), Cell(n.package or "-"), Cell(_evidence(n)),
            ]
            for n in shown
        ]
        out.table(title, ("code", "status", "tier", "library", "package", "evidence"), rows, width)
    else:
        for part in wrap_title(title, width):
            out.line(part)
    if quiet:
        parts = ", ".join(f"{count} {status}" for status, count in sorted(quiet.items()))
        out.line(f"  also: {parts} (no action needed)")
    if service.findings:
        _findings_table(f"{service.name}: findings", service.findings, out, width)


def _render_family(family: FamilyPlan, out: _Out, width: int) -> None:
    rows = [("add", item) for item in family.add] + [
        (kind, item) for kind in ("redundant", "build_only", "unused") for item in getattr(family, kind)
    ]
    title = f"family {family.name} ({family.dockerfile}): {len(family.installs)} package(s) installed"
    if not rows:
        out.line(f"{title}: nothing to change")
        return
    if family.adds_kib or family.frees_kib:
        title += f"; the plan adds {megabytes(family.adds_kib)} and frees {megabytes(family.frees_kib)}"
    cells = [
        [
            Cell(PLAN_CODES[kind]), Cell(kind, "bold green" if kind == "add" else "yellow"), Cell(item.package),
            Cell(str(item.line or "-")),
            Cell(change_size(item.kib, kind) or "-"), Cell(item.because),
        ]
        for kind, item in rows
    ]
    out.table(title, ("code", "change", "package", "line", "size", "because"), cells, width)


def _evidence(need: Need) -> str:
    """The import line, the distribution, and the object that needs the library.

    The full chain (every distribution and ELF object on the way) is in the JSON report.
    """
    steps = [str(step) for step in need.path]
    if len(steps) > 3:
        steps = [steps[0], steps[1], "…", steps[-1].rsplit("/", 1)[-1]]
    if need.fix is not None:  # no package to install: the ENV line to change is the action
        steps.append(need.fix)
    return " → ".join(steps)


def _findings_table(title: str, findings: tuple[Finding, ...], out: _Out, width: int) -> None:
    rows = [
        [Cell(finding_code(f.kind)), Cell(f.kind.value), Cell(f.path if f.line is None else f"{f.path}:{f.line}"), Cell(f.message)]
        for f in findings
    ]
    out.table(title, ("code", "kind", "where", "message"), rows, width)


def _summary(report: ScanReport) -> tuple[str, str]:
    failing = [(s.name, n) for s in report.services for n in s.needs if n.fails]
    modules = _missing_modules(report)
    if not failing:
        if modules:
            return modules, "bold red"
        return "No required library or program is missing from the image.", "green"
    packages = sorted({n.package or n.name for _, n in failing})
    services = sorted({name for name, _ in failing})
    text = f"{len(services)} service(s) need what the image lacks: {', '.join(packages)}."
    return (f"{text} {modules}" if modules else text), "bold red"


def _missing_modules(report: ScanReport) -> str:
    """What the services import at start-up and nothing provides: each one kills its service."""
    if not report.missing_modules:
        return ""
    services = sorted({name for name, _ in report.missing_modules})
    where = ", ".join(f"{f.path}:{f.line}" for _, f in report.missing_modules)
    return f"{len(services)} service(s) import what no installed distribution provides ({where})."


def render_plain_text(report: ScanReport, width: int = 120) -> str:
    """The table report as plain text of a fixed width, for files and committed reports."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False, no_color=True)
    render_table(report, console)
    return buffer.getvalue()
