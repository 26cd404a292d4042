"""The Markdown report: a CI step summary a person reads in the pull request."""

from __future__ import annotations

from depaudit.native.model import Tier
from depaudit.plan.model import FamilyPlan
from depaudit.report import ScanReport


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: ScanReport) -> str:
    out = ["# depaudit report", ""]
    failing = sorted({n.package or n.name for s in report.services for n in s.needs if n.fails})
    verdict = f"**{len(failing)} package(s) missing:** {', '.join(f'`{p}`' for p in failing)}" if failing else "**Nothing required is missing.**"
    out += [
        f"{verdict} — {len(report.services)} service(s), distro `{report.distro}`, Python {report.python_version}.",
        "",
    ]
    if report.families:
        out += ["## Family Dockerfiles", "", "| family | Dockerfile | add | unused | redundant | build-only |", "|---|---|---|---|---|---|"]
        for family in report.families:
            out.append(
                f"| `{family.name}` | `{family.dockerfile}` | {_packages(family, 'add')} | {_packages(family, 'unused')} "
                f"| {_packages(family, 'redundant')} | {_packages(family, 'build_only')} |"
            )
        out.append("")
    out += ["## Services", ""]
    for service in report.services:
        shown = [n for n in service.needs if n.status in ("missing", "unmapped") and n.tier is not Tier.HINT]
        base = f" on `{service.base_image}`" if service.base_image else ""
        out.append(f"### {service.name}{base}")
        out.append("")
        if shown:
            out += ["| need | status | tier | package | evidence |", "|---|---|---|---|---|"]
            for need in shown:
                evidence = " → ".join(need.chain[1:])
                out.append(
                    f"| `{need.name}` | {need.status} | {need.tier.value} | {f'`{need.package}`' if need.package else '—'} | {_cell(evidence)} |"
                )
        else:
            out.append("Nothing the image lacks.")
        if service.findings:
            out += ["", "<details><summary>" + f"{len(service.findings)} finding(s)</summary>", ""]
            out += [f"- `{f.kind.value}` {f.path}{':' + str(f.line) if f.line else ''} — {_cell(f.message)}" for f in service.findings]
            out += ["", "</details>"]
        out.append("")
    return "\n".join(out)


def _packages(family: FamilyPlan, kind: str) -> str:
    items = getattr(family, kind)
    return ", ".join(f"`{i.package}`" for i in items) if items else "—"
