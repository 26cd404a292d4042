"""The JSON report: the CI artifact. Its shape is fixed by report.schema.json."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from depaudit import __version__
from depaudit.codes import PLAN_CODES, finding_code, need_code
from depaudit.findings import Finding
from depaudit.plan.model import FamilyPlan, PlanItem
from depaudit.evidence import chain_text
from depaudit.packages.model import Need, ServiceReport
from depaudit.python.model import ResolvedImport
from depaudit.report import ScanReport
from depaudit.emit.indented import dumps_indented

SCHEMA_VERSION = "1.10"  # 1.10: codes DA601–DA603 (audit from a lock); an image's environment shown as <image>:<path>
# 1.8: environments (which were audited, and why), suppressed
# 1.7: "code" (depaudit.codes) on every finding, plan item and need (null: not lacking)
# 1.6: missing_module findings (an unguarded start-up import nothing provides: failing)


def report_to_json(report: ScanReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "depaudit", "version": __version__},
        "distro": report.distro,
        "base_image": report.base_image,
        "python_version": report.python_version,
        "distribution_count": report.distribution_count,
        "environments": [
            {"site_packages": list(choice.names), "source": choice.source} for choice in report.environments
        ],
        "failing": report.failing,
        "services": [_service(service) for service in report.services],
        "families": [_family(family) for family in report.families],
        "findings": [_finding(finding) for finding in report.findings],
        "suppressed": [
            {"code": item.code, "subject": item.subject, "reason": item.reason, "by": item.origin, "service": item.service,
             "family": item.family, "path": item.path, "line": item.line}
            for item in report.suppressed
        ],
    }


def dumps(report: ScanReport) -> str:
    return dumps_indented(report_to_json(report)) + "\n"


def load_schema() -> dict[str, Any]:
    text = resources.files("depaudit.emit").joinpath("report.schema.json").read_text("utf-8")
    return json.loads(text)


def _family(family: FamilyPlan) -> dict[str, Any]:
    def items(kind: str) -> list[dict[str, Any]]:
        entries: tuple[PlanItem, ...] = getattr(family, kind)
        code = PLAN_CODES[kind]
        return [
            {"package": i.package, "code": code, "tier": i.tier.value, "because": i.because, "line": i.line, "kib": i.kib}
            for i in entries
        ]

    return {
        "name": family.name,
        "dockerfile": family.dockerfile,
        "parent": family.parent,
        "distro": family.distro,
        "services": list(family.services),
        "installs": list(family.installs),
        "add": items("add"),
        "unused": items("unused"),
        "redundant": items("redundant"),
        "build_only": items("build_only"),
        "adds_kib": family.adds_kib,
        "frees_kib": family.frees_kib,
    }


def _service(service: ServiceReport) -> dict[str, Any]:
    return {
        "name": service.name,
        "base_image": service.base_image,
        "families": list(service.families),
        "imports": [_import(item) for item in service.imports],
        "needs": [_need(need) for need in service.needs],
        "findings": [_finding(finding) for finding in service.findings],
    }


def _import(item: ResolvedImport) -> dict[str, Any]:
    record = item.record
    return {
        "module": record.module,
        "file": record.file,
        "line": record.line,
        "guarded": record.guarded,
        "guarded_by": None if record.via is None else f"{record.via.file}:{record.via.line} {record.via.statement}",
        "lazy": record.lazy,
        "dynamic": record.dynamic,
        "type_checking": record.type_checking,
        "distribution": item.distribution,
    }


def _need(need: Need) -> dict[str, Any]:
    return {
        "kind": need.kind.value,
        "name": need.name,
        "status": need.status.value,
        "code": need_code(need),
        "package": need.package,
        "tier": need.tier.value,
        "chain": list(chain_text(need.chain)),
        "found_at": need.found_at,
        "rule": need.rule,
        "tried": list(need.tried),
    }


def _finding(finding: Finding) -> dict[str, Any]:
    record = finding.to_json()
    return {"kind": record.pop("kind"), "code": finding_code(finding.kind), **record}
