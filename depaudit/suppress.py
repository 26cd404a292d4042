"""Suppressions: results a fleet has decided to live with — `[[ignore]]` entries of the config
and `# depaudit: ignore[CODE] reason` comments in service source — taken out of the verdict,
the plan and the gate, and listed with their reasons in every report, never dropped in silence.

The last stage: it reads the finished report, and only the source lines results point at."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path

from depaudit.codes import CODES, PLAN_CODES, finding_code, need_code
from depaudit.findings import Finding
from depaudit.fleet.ignores import IgnoreRule
from depaudit.inline_ignores import INLINE, source_lines
from depaudit.packages.model import Need, ServiceReport
from depaudit.plan.model import FamilyPlan, PlanItem
from depaudit.report import ScanReport, Suppressed

_SOURCE_CODES = frozenset({"DA101", "DA102", "DA103", "DA501"})


def apply_suppressions(report: ScanReport, rules: Sequence[IgnoreRule]) -> ScanReport:
    """The report without the results `rules` and inline comments suppress, which it lists."""
    suppressed: list[Suppressed] = []
    sources: dict[tuple[Path, str], list[str]] = {}  # each file read once: the services of a monorepo share their closure
    services = tuple(_service(service, (*rules, *_inline_rules(service, sources)), suppressed) for service in report.services)
    findings = _findings(report.findings, rules, None, (), suppressed)
    families = tuple(_family(family, rules, suppressed) for family in report.families)
    if not suppressed:
        return report
    return replace(report, services=services, findings=findings, families=families, suppressed=tuple(suppressed))


def _service(service: ServiceReport, rules: Sequence[IgnoreRule], out: list[Suppressed]) -> ServiceReport:
    if not rules:
        return service
    needs: list[Need] = []
    for need in service.needs:
        code = need_code(need)
        origin = need.origin
        path, line = (origin.file, origin.line) if origin is not None else (None, None)
        names = tuple(filter(None, (need.package, need.name)))
        rule = _first(rules, code, names, service.families, service.name, path, line) if code else None
        if rule is None:
            needs.append(need)
        else:
            subject = f"{service.name}: {need.name}" + (f" ({need.package})" if need.package else "")
            out.append(Suppressed(code or "", subject, rule.reason, rule.origin, service.name, None, path, line))
    findings = _findings(service.findings, rules, service.name, service.families, out)
    return replace(service, needs=tuple(needs), findings=findings)


def _findings(
    findings: Iterable[Finding], rules: Sequence[IgnoreRule], service: str | None, families: tuple[str, ...],
    out: list[Suppressed],
) -> tuple[Finding, ...]:
    kept = []
    for finding in findings:
        code = finding_code(finding.kind)
        rule = _first(rules, code, (), families, service, finding.path, finding.line)
        if rule is None:
            kept.append(finding)
        else:
            where = finding.path if finding.line is None else f"{finding.path}:{finding.line}"
            subject = f"{service + ': ' if service else ''}{where} {finding.message}"
            out.append(Suppressed(code, subject, rule.reason, rule.origin, service, None, finding.path, finding.line))
    return tuple(kept)


def _family(family: FamilyPlan, rules: Sequence[IgnoreRule], out: list[Suppressed]) -> FamilyPlan:
    lists: dict[str, tuple[PlanItem, ...]] = {}
    # A plan item is the family's: a rule for one service never takes it out of the others'.
    family_rules = [rule for rule in rules if rule.service is None]
    for kind, code in PLAN_CODES.items():
        kept = []
        for item in getattr(family, kind):
            line = item.line if kind != "add" else family.apt_line
            rule = _first(family_rules, code, (item.package,), (family.name,), None, family.dockerfile, line)
            if rule is None:
                kept.append(item)
            else:
                verb = "add" if kind == "add" else f"remove ({kind.replace('_', '-')})"
                subject = f"{family.name}: {verb} {item.package}"
                out.append(Suppressed(code, subject, rule.reason, rule.origin, None, family.name, family.dockerfile, line))
        lists[kind] = tuple(kept)
    return replace(family, **lists) if any(lists[k] != getattr(family, k) for k in lists) else family


def _first(
    rules: Iterable[IgnoreRule], code: str, names: tuple[str, ...], families: tuple[str, ...], service: str | None,
    path: str | None, line: int | None,
) -> IgnoreRule | None:
    for rule in rules:
        if rule.codes and code not in rule.codes:
            continue
        if rule.package is not None and not any(fnmatchcase(name, rule.package) for name in names):
            continue
        if rule.family is not None and not any(fnmatchcase(name, rule.family) for name in families):
            continue
        if rule.service is not None and (service is None or not fnmatchcase(service, rule.service)):
            continue
        if rule.file is not None and (path is None or not fnmatchcase(path, rule.file)):
            continue
        if rule.line is not None and rule.line != line:
            continue
        return rule
    return None


def _inline_rules(service: ServiceReport, sources: dict[tuple[Path, str], list[str]]) -> list[IgnoreRule]:
    """`# depaudit: ignore[…]` on the source lines the service's results point at (`sources`:
    the lines of the files read so far)."""
    if service.display_root is None:
        return []
    places: dict[str, set[int]] = {}
    for finding in service.findings:
        # Only results in the service's own source: others are relative to site-packages.
        if finding.line is not None and finding_code(finding.kind) in _SOURCE_CODES:
            places.setdefault(finding.path, set()).add(finding.line)
    for need in service.needs:
        origin = need.origin
        if origin is not None and origin.file is not None and origin.line is not None and need_code(need):
            places.setdefault(origin.file, set()).add(origin.line)
    rules = []
    for path, lines in places.items():
        at = (service.display_root, path)
        source = sources[at] if at in sources else sources.setdefault(at, source_lines(service.display_root / path))
        for line in sorted(lines):
            match = INLINE.search(source[line - 1]) if 0 < line <= len(source) else None
            if match is None:
                continue
            codes = tuple(code for code in re.split(r"[,\s]+", match.group(1).strip().upper()) if code)
            reason = match.group(2).strip(" -—:") or "an inline comment"
            known = tuple(code for code in codes if code in CODES)
            if known:
                rules.append(IgnoreRule(reason, f"{path}:{line}", known, service=service.name, file=path, line=line))
    return rules
