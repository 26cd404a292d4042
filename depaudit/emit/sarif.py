"""SARIF 2.1.0 for code scanning: each result on the line of the repository file it is about.

Rule ids are depaudit's codes (depaudit.codes). Results: every plan item on its family
Dockerfile's line (a missing package on the RUN that should install it); every service finding
with a file and a line in the service's own source; every need the image lacks (but weak hints)
at the service's import or call it starts from. URIs are relative to the repository root
(depaudit.paths.source_root, the patch's root too) under `%SRCROOT%`. What has no place in the
repository (a file in site-packages or in the base image) is left to the JSON report: code
scanning takes no result without a location, and a guessed URI would point at the wrong file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from depaudit import __version__
from depaudit.codes import CODES, PLAN_CODES, finding_code, gate, need_code
from depaudit.evidence import StepKind, Tier
from depaudit.findings import Finding, FindingKind
from depaudit.packages.model import Need, ServiceReport
from depaudit.paths import root_relative, source_root
from depaudit.plan.model import FamilyPlan, PlanItem
from depaudit.report import ScanReport
from depaudit.emit.indented import dumps_indented

SRCROOT = "%SRCROOT%"
_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_RULE_INDEX = {code: index for index, code in enumerate(CODES)}
# Findings whose path is relative to site-packages, not to the scanned folder.
_LIBRARY_KINDS = frozenset({FindingKind.REACH_LIMIT})
# Findings about a family image as a whole: on its Dockerfile's FROM line when known, else on no file.
_FAMILY_KINDS = frozenset({FindingKind.CUDA_MAJOR_MISMATCH, FindingKind.UNUSED_BASE_CUDA, FindingKind.DUPLICATE_CUDA})
_VERBS = {"add": "add", "unused": "remove (unused)", "redundant": "remove (redundant)", "build_only": "remove (build-only)"}


def render_sarif(report: ScanReport, *, root: Path | None = None) -> str:
    """`root`: the folder URIs are relative to; the repository root by default."""
    base = (root or source_root()).resolve()
    results = [
        *_plan_results(report.families, base),
        *(result for service in report.services for result in _service_results(service, base)),
        *_scan_finding_results(report.findings, report.families, base),
        *_suppressed_results(report, base),
    ]
    document = {
        "$schema": _SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "depaudit",
                        "version": __version__,
                        "informationUri": "https://pypi.org/project/depaudit/",
                        "rules": [_rule(code) for code in CODES],
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": _folder_uri(base)}},
                "results": results,
            }
        ],
    }
    return dumps_indented(document) + "\n"


def _rule(code: str) -> dict[str, Any]:
    entry = CODES[code]
    return {
        "id": entry.id,
        "name": entry.name,
        "shortDescription": {"text": entry.summary},
        "fullDescription": {"text": f"{entry.summary}. Fails the default gate (exit 1): {gate(code).replace('`', '')}."},
        "defaultConfiguration": {"level": entry.level},
    }


def _folder_uri(folder: Path) -> str:
    uri = folder.as_uri()
    return uri if uri.endswith("/") else uri + "/"  # a base URI names a folder only with its slash


def _result(code: str, message: str, uri: str, line: int) -> dict[str, Any]:
    return {
        "ruleId": code,
        "ruleIndex": _RULE_INDEX[code],
        "level": CODES[code].level,
        "message": {"text": message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": quote(uri, safe="/", errors="surrogateescape"), "uriBaseId": SRCROOT},
                    "region": {"startLine": max(line, 1)},
                }
            }
        ],
    }


def _dockerfile_uri(family: FamilyPlan, root: Path) -> str | None:
    if family.source is None:
        return None
    return root_relative(family.source.path, root)


def _plan_results(families: tuple[FamilyPlan, ...], root: Path) -> Iterator[dict[str, Any]]:
    for family in families:
        uri = _dockerfile_uri(family, root)
        if uri is None:
            continue
        for kind, code in PLAN_CODES.items():
            item: PlanItem
            for item in getattr(family, kind):
                # A missing package belongs on the RUN that should install it; the others on their own line.
                line = (family.apt_line if kind == "add" else item.line) or 1
                yield _result(code, f"{family.name}: {_VERBS[kind]} {item.package} — {item.because}", uri, line)


def _service_results(service: ServiceReport, root: Path) -> Iterator[dict[str, Any]]:
    if service.display_root is None:
        return
    for finding in service.findings:
        if finding.line is None or finding.kind in _LIBRARY_KINDS:
            continue
        uri = _source_uri(service.display_root, finding.path, root)
        if uri is not None:
            yield _result(finding_code(finding.kind), f"{service.name}: {finding.message}", uri, finding.line)
    for need in service.needs:
        code = need_code(need)
        origin = need.origin
        # Weak hints stay in the JSON report, as in the table: a feature that may never run.
        if code is None or need.tier is Tier.HINT or origin is None or origin.kind not in (StepKind.IMPORT, StepKind.CALL):
            continue
        if origin.file is None or origin.line is None:
            continue
        uri = _source_uri(service.display_root, origin.file, root)
        if uri is not None:
            yield _result(code, _need_message(service.name, need), uri, origin.line)


def _need_message(service: str, need: Need) -> str:
    if need.fix is not None:
        return f"{service}: the image lacks {need.name} ({need.tier.value}, {need.status.value}): {need.fix}"
    provider = f"; {need.package} provides it" if need.package else "; no apt package is known to provide it"
    return f"{service}: the image lacks {need.name} ({need.tier.value}, {need.status.value}){provider}"


def _source_uri(display_root: Path, shown: str, root: Path) -> str | None:
    """A service file the report shows relative to the scanned folder, from the repository root;
    None when that is no file there (a path of another root) or it lies outside the repository."""
    path = display_root / shown
    if not path.is_file():
        return None
    return root_relative(path, root)


def _suppressed_results(report: ScanReport, root: Path) -> Iterator[dict[str, Any]]:
    """What the fleet suppressed stays in code scanning as suppressed (dismissed there), with
    its reason: in source for an inline comment, external for the config's entry."""
    roots = {service.name: service.display_root for service in report.services}
    families = {family.name: family for family in report.families}
    for item in report.suppressed:
        if item.family is not None and item.family in families:
            uri = _dockerfile_uri(families[item.family], root)
        else:
            display_root = roots.get(item.service) if item.service is not None else None
            uri = _source_uri(display_root, item.path, root) if display_root is not None and item.path else None
        if uri is None:
            continue
        result = _result(item.code, item.subject, uri, item.line or 1)
        inline = item.path is not None and item.origin == f"{item.path}:{item.line}"
        result["suppressions"] = [{"kind": "inSource" if inline else "external", "justification": item.reason}]
        yield result


def _scan_finding_results(
    findings: tuple[Finding, ...], families: tuple[FamilyPlan, ...], root: Path
) -> Iterator[dict[str, Any]]:
    """Scan findings about a family Dockerfile, on its line: the others name no repository file
    depaudit can tell apart (the environment, the image, discovery from several roots)."""
    dockerfiles: dict[str, str] = {}
    for family in families:
        uri = _dockerfile_uri(family, root)
        if uri is not None and family.source is not None:
            dockerfiles[family.dockerfile] = dockerfiles[family.source.display] = uri
    for finding in findings:
        uri = dockerfiles.get(finding.path)
        if finding.kind is FindingKind.DOCKERFILE and finding.line is not None and uri is not None:
            yield _result(finding_code(finding.kind), finding.message, uri, finding.line)
        elif finding.kind in _FAMILY_KINDS:
            result = _result(finding_code(finding.kind), finding.message, uri or "", finding.line or 1)
            if uri is None or finding.line is None:
                del result["locations"]
            yield result
