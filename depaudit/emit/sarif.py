"""SARIF 2.1.0: code-scanning results on the family Dockerfile lines."""

from __future__ import annotations

import json
from typing import Any

from depaudit import __version__
from depaudit.plan.model import FamilyPlan, PlanItem
from depaudit.report import ScanReport

_RULES = {
    "DEP001": ("missing-package", "A package the family's services need is not installed", "error"),
    "DEP002": ("unused-package", "An installed package no service built on the family needs", "warning"),
    "DEP003": ("redundant-package", "An installed package a parent family or a dependency already provides", "note"),
    "DEP004": ("build-only-package", "A build-time package in a runtime image", "warning"),
}
_KINDS = {"add": "DEP001", "unused": "DEP002", "redundant": "DEP003", "build_only": "DEP004"}


def render_sarif(report: ScanReport, *, uri_base: str = "") -> str:
    results = [
        _result(family, kind, item, uri_base)
        for family in report.families
        for kind in _KINDS
        for item in getattr(family, kind)
    ]
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "depaudit",
                        "version": __version__,
                        "informationUri": "https://pypi.org/project/depaudit/",
                        "rules": [
                            {"id": rule, "name": name, "shortDescription": {"text": text}, "defaultConfiguration": {"level": level}}
                            for rule, (name, text, level) in _RULES.items()
                        ],
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def _result(family: FamilyPlan, kind: str, item: PlanItem, uri_base: str) -> dict[str, Any]:
    rule = _KINDS[kind]
    # A missing package belongs on the RUN that should install it; the others on their own line.
    line = item.line if kind != "add" else (family.apt_line or 1)
    verb = {"add": "add", "unused": "remove (unused)", "redundant": "remove (redundant)", "build_only": "remove (build-only)"}[kind]
    return {
        "ruleId": rule,
        "level": _RULES[rule][2],
        "message": {"text": f"{family.name}: {verb} {item.package} — {item.because}"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": f"{uri_base}{family.dockerfile}"},
                    "region": {"startLine": line or 1},
                }
            }
        ],
    }
