"""The Markdown report: a CI step summary a person reads in the pull request.

GitHub renders it as CommonMark with GFM tables and raw HTML (`<details>`), so every value taken
from the scan (paths, sonames, package names, messages) is escaped: `__init__.py` must not turn
bold, `<file>` must not vanish as a tag, and `|` must not split a table cell.
"""

from __future__ import annotations

import html
import re
from collections import Counter

from depaudit.codes import finding_code, need_code
from depaudit.evidence import Tier
from depaudit.findings import Finding
from depaudit.packages.model import Need
from depaudit.packages.sizes import change_size, megabytes
from depaudit.plan.model import FamilyPlan
from depaudit.report import ScanReport

# Evidence chains with more steps than this are folded to "import → distribution → … → object".
_FOLD_AFTER = 4

# Characters that start emphasis, code, links, HTML, entities, strikethrough or table cells.
_BACKSLASHED = re.compile(r"([\\`*_\[\]|~#])")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _text(text: str) -> str:
    """Plain text as inline Markdown that renders as the same characters, in a paragraph or a table cell."""
    escaped = _BACKSLASHED.sub(r"\\\1", re.sub(r"\s+", " ", text))
    return re.sub(r"[&<>]", lambda m: _ENTITIES[m.group()], escaped)


def _code(text: str, *, in_table: bool = False) -> str:
    """A code span holding `text` verbatim, whatever backticks or pipes it contains."""
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return ""
    if in_table:
        text = text.replace("|", "\\|")  # GFM splits cells before it reads code spans
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[0] == "`" or text[-1] == "`" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _message(text: str, *, in_table: bool = False) -> str:
    """A finding's message: plain text whose `quoted` parts become code spans."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: nothing is quoted
        return _text(text)
    return "".join(_code(part, in_table=in_table) if i % 2 else _text(part) for i, part in enumerate(parts))


def render_markdown(report: ScanReport) -> str:
    out = ["# depaudit report", ""]
    failing = sorted({n.package or n.name for s in report.services for n in s.needs if n.fails})
    if failing:
        verdict = f"**{len(failing)} required package(s) missing:** {', '.join(_code(p) for p in failing)}"
    elif not report.missing_modules:
        verdict = "**Nothing required is missing.**"
    else:
        verdict = ""
    if report.missing_modules:
        where = ", ".join(_code(f"{f.path}:{f.line}") for _, f in report.missing_modules)
        verdict = f"{verdict} **Imports no installed distribution provides:** {where}".strip()
    out += [*_megabytes(report.families)]
    out += [
        f"{verdict} — {len(report.services)} service(s), distro {_code(report.distro)}, Python {_text(report.python_version)}.",
        "",
    ]
    for choice in report.environments:
        folders = ", ".join(_code(name) for name in choice.names)
        out += [f"Python environment: {folders} ({_text(choice.source)}).", ""]
    if report.families:
        out += [
            "## Family Dockerfiles", "",
            "| family | Dockerfile | add (DA301) | unused (DA302) | redundant (DA303) | build-only (DA304) | image size |",
            "|---|---|---|---|---|---|---|",
        ]
        for family in report.families:
            out.append(
                f"| {_code(family.name, in_table=True)} | {_code(family.dockerfile, in_table=True)} | {_packages(family, 'add')} "
                f"| {_packages(family, 'unused')} | {_packages(family, 'redundant')} | {_packages(family, 'build_only')} "
                f"| {_image_size(family)} |"
            )
        out.append("")
    out += ["## Services", ""]
    if not report.services:
        out += ["No service was scanned.", ""]
    for service in report.services:
        shown = [n for n in service.needs if n.status.fails and n.tier is not Tier.HINT]
        base = f" on {_code(service.base_image)}" if service.base_image else ""
        out.append(f"### {_text(service.name)}{base}")
        out.append("")
        if shown:
            out += ["| code | need | status | tier | package | evidence |", "|---|---|---|---|---|---|"]
            for need in shown:
                package = _code(need.package, in_table=True) if need.package else "—"
                out.append(
                    f"| {need_code(need)} | {_code(need.name, in_table=True)} | {need.status.value} | {need.tier.value} "
                    f"| {package} | {_evidence(need)} |"
                )
        else:
            out.append("Nothing the image lacks.")
        if service.findings:
            out += ["", *_findings(service.findings, "")]
        out.append("")
    if report.findings:
        out += ["## Scan findings", "", *_findings(report.findings, " not tied to one service"), ""]
    if report.suppressed:
        out += ["## Suppressed", "", "| code | result | reason | by |", "|---|---|---|---|"]
        out += [
            f"| {item.code} | {_text(item.subject).replace('|', '&#124;')} | {_text(item.reason).replace('|', '&#124;')} "
            f"| {_code(item.origin, in_table=True)} |"
            for item in report.suppressed
        ]
        out.append("")
    return "\n".join(out)


def _evidence(need: Need) -> str:
    """The chain from the import to the object that needs the library, folded when it is long.

    The library and its package end the chain; their own columns show them already.
    """
    steps = [str(step) for step in need.path]
    if need.fix is not None:  # no package to install: the ENV line to change is the action
        steps.append(need.fix)
    full = " → ".join(_text(step) for step in steps)
    if len(steps) <= _FOLD_AFTER:
        return full
    short = " → ".join([_text(steps[0]), _text(steps[1]), "…", _text(steps[-1].rsplit("/", 1)[-1])])
    return f"<details><summary>{short}</summary>{full}</details>"


def _findings(findings: tuple[Finding, ...], scope: str) -> list[str]:
    """A folded list; its summary counts the findings by kind, so what matters shows unfolded."""
    counts = sorted(Counter(f.kind.value for f in findings).items())
    kinds = ", ".join(kind if count == 1 else f"{kind} ×{count}" for kind, count in counts)
    summary = html.escape(f"{len(findings)} finding(s){scope}: {kinds}")
    lines = [f"<details><summary>{summary}</summary>", ""]
    for finding in findings:
        where = finding.path if finding.line is None else f"{finding.path}:{finding.line}"
        lines.append(f"- {finding_code(finding.kind)} {_code(finding.kind.value)} {_text(where)} — {_message(finding.message)}")
    return [*lines, "", "</details>"]


def _packages(family: FamilyPlan, kind: str) -> str:
    items = getattr(family, kind)
    return ", ".join(_code(i.package, in_table=True) + _size(i.kib, kind) for i in items) if items else "—"


def _size(kib: int | None, kind: str) -> str:
    shown = change_size(kib, kind)
    return f" ({shown})" if shown else ""


def _image_size(family: FamilyPlan) -> str:
    if family.adds_kib is None or family.frees_kib is None:
        return "—"
    return f"+{megabytes(family.adds_kib)} / −{megabytes(family.frees_kib)}"


def _megabytes(families: tuple[FamilyPlan, ...]) -> list[str]:
    """The lead of a pull request's summary: what pruning frees and what the additions cost, for
    the family image they change most (a child image also holds its parent's change)."""
    sized = [f for f in families if f.adds_kib is not None and f.frees_kib is not None]
    freeing = max(sized, key=lambda f: (f.frees_kib or 0, f.name), default=None)
    adding = max(sized, key=lambda f: (f.adds_kib or 0, f.name), default=None)
    parts = []
    if freeing is not None and freeing.frees_kib:
        shrink = sum(1 for f in sized if f.frees_kib)
        parts.append(
            f"**Pruning frees up to {megabytes(freeing.frees_kib)}** an image ({_code(freeing.name)}); "
            f"{shrink} of {len(sized)} family image(s) shrink."
        )
    if adding is not None and adding.adds_kib:
        parts.append(f"The additions cost up to {megabytes(adding.adds_kib)} ({_code(adding.name)}).")
    return [" ".join(parts) + " (Installed-Size, with `--write --prune`.)", ""] if parts else []


