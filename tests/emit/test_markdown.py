"""The Markdown step summary, rendered as GitHub does: CommonMark, GFM tables, raw HTML.

markdown-it-py is CommonMark-compliant (Python-Markdown is not: it keeps `\\<` and `\\|` in code as
typed); it is installed with rich, a dependency of depaudit.
"""

from __future__ import annotations

import re

import pytest

from depaudit.emit.markdown import render_markdown
from depaudit.findings import Finding, FindingKind
from depaudit.evidence import EvidenceStep, NeedKind, NeedStatus, StepKind, Tier, import_step, service_step
from depaudit.plan.model import FamilyPlan, PlanItem
from depaudit.packages.model import Need, ServiceReport
from depaudit.report import ScanReport

markdown_it = pytest.importorskip("markdown_it")


def _html(report: ScanReport) -> str:
    return str(markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(render_markdown(report)))


def _report(*needs: Need, findings: tuple[Finding, ...] = (), scan_findings: tuple[Finding, ...] = (), families: tuple[FamilyPlan, ...] = ()) -> ScanReport:
    service = ServiceReport("asr_svc", (), needs, findings, "nvidia/cuda:12.1.1-runtime-ubuntu22.04")
    return ScanReport("ubuntu-22.04", "3.11", 1, (service,), scan_findings, families=families)


def _need(name: str, package: str | None, *objects: str, tier: Tier = Tier.REQUIRED) -> Need:
    chain = (
        service_step("asr_svc"),
        import_step("asr_svc/app/__init__.py", 3, "lib_x"),
        EvidenceStep(StepKind.DISTRIBUTION, "lib_x 1.0", name="lib_x"),
        *(EvidenceStep(StepKind.OBJECT, path) for path in objects),
        EvidenceStep(StepKind.NEED, name),
    )
    if package:
        chain += (EvidenceStep(StepKind.PACKAGE, f"{package} (ubuntu-22.04)", name=package),)
    status = NeedStatus.MISSING if package else NeedStatus.UNMAPPED
    return Need(NeedKind.SONAME, name, status, package, tier, chain)


def _rows(html: str) -> list[list[str]]:
    return [re.findall(r"<td>(.*?)</td>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)[1:]]


def test_dunder_paths_and_underscores_are_not_emphasis() -> None:
    finding = Finding(FindingKind.PARSE_ERROR, "asr_svc/app/__sub__/__init__.py", 6, "expected one of ), *, **, NAME; read *line by line*")
    html = _html(_report(_need("lib_my_thing.so.2", None, "lib_x/__init__.so"), findings=(finding,)))
    assert "<strong>" not in html.split("</p>", 1)[1] and "<em>" not in html
    assert "<td>asr_svc/app/__init__.py:3 import lib_x → lib_x 1.0 → lib_x/__init__.so</td>" in html
    assert "<h3>asr_svc on <code>nvidia/cuda:12.1.1-runtime-ubuntu22.04</code></h3>" in html
    assert "asr_svc/app/__sub__/__init__.py:6 — expected one of ), *, **, NAME; read *line by line*</li>" in html


def test_angle_brackets_and_ampersands_are_text_not_html() -> None:
    findings = (Finding(FindingKind.BAD_REQUIREMENT, "asr_svc/requirements.txt", 4, "included file asr_svc/<missing>.txt does not exist &amp; more"),)
    scan = (Finding(FindingKind.BAD_METADATA, "foo_bar-1.0.dist-info", None, "METADATA has no Name: <unknown>"),)
    html = _html(_report(_need("libweird.so", "weird<pkg>", "lib_x/_core.so"), findings=findings, scan_findings=scan))
    assert "included file asr_svc/&lt;missing&gt;.txt does not exist &amp;amp; more" in html
    assert "<code>weird&lt;pkg&gt;</code>" in html


def test_pipes_stay_inside_their_table_cell() -> None:
    html = _html(_report(_need("libweird|pipe.so", "weird|pkg", "lib_x/_a|b.so", tier=Tier.OPTIONAL)))
    assert _rows(html) == [
        ["DA203", "<code>libweird|pipe.so</code>", "missing", "optional", "<code>weird|pkg</code>", "asr_svc/app/__init__.py:3 import lib_x → lib_x 1.0 → lib_x/_a|b.so"]
    ]


def test_quoted_parts_of_a_message_are_code_without_stray_backslashes() -> None:
    findings = (
        Finding(FindingKind.BAD_REQUIREMENT, "asr_svc/requirements.txt", 2, "cannot understand `requests<3,>=2 | foo`: Expected end"),
        Finding(FindingKind.BAD_REQUIREMENT, "asr_svc/requirements.txt", 5, "cannot understand `a``b`: an odd `backtick"),
    )
    html = _html(_report(findings=findings))
    assert "— cannot understand <code>requests&lt;3,&gt;=2 | foo</code>: Expected end</li>" in html
    assert "— cannot understand `a``b`: an odd `backtick</li>" in html  # unpaired: all of it is text


def test_backticks_in_names_keep_their_code_span() -> None:
    html = _html(_report(_need("lib`tick`.so", "pkg``x", "lib_x/_core.so")))
    assert _rows(html)[0][:2] == ["DA201", "<code>lib`tick`.so</code>"] and _rows(html)[0][4] == "<code>pkg``x</code>"


def test_long_evidence_folds_and_does_not_repeat_the_library_and_package() -> None:
    deep = ("torch 2.3.1", "nvidia-cudnn-cu12 8.9.2.26", "torch/lib/libtorch_cuda.so", "nvidia/cudnn/lib/libcudnn.so.8")
    html = _html(_report(_need("libz.so.1", "zlib1g", *deep), _need("libstdc++.so.6", "libstdc++6", "lib_x/_core.so")))
    long, short = (row[5] for row in _rows(html))
    assert long == (
        "<details><summary>asr_svc/app/__init__.py:3 import lib_x → lib_x 1.0 → … → libcudnn.so.8</summary>"
        "asr_svc/app/__init__.py:3 import lib_x → lib_x 1.0 → torch 2.3.1 → nvidia-cudnn-cu12 8.9.2.26 → "
        "torch/lib/libtorch_cuda.so → nvidia/cudnn/lib/libcudnn.so.8</details>"
    )
    assert short == "asr_svc/app/__init__.py:3 import lib_x → lib_x 1.0 → lib_x/_core.so"
    assert "<strong>2 required package(s) missing:</strong> <code>libstdc++6</code>, <code>zlib1g</code>" in html


def test_findings_not_tied_to_a_service_are_shown() -> None:
    scan = (Finding(FindingKind.BAD_METADATA, "foo_bar-1.0.dist-info", None, "METADATA has no Name"),)
    html = _html(_report(scan_findings=scan))
    assert "<h2>Scan findings</h2>" in html
    assert "<summary>1 finding(s) not tied to one service: bad_metadata</summary>" in html
    assert "<li>DA505 <code>bad_metadata</code> foo_bar-1.0.dist-info — METADATA has no Name</li>" in html


def test_finding_summaries_name_their_kinds() -> None:
    findings = tuple(Finding(FindingKind.UNRESOLVED_IMPORT, "asr_svc/main.py", line, "imports x") for line in (1, 2)) + (
        Finding(FindingKind.PARSE_ERROR, "asr_svc/main.py", 9, "no parse"),
    )
    assert "<summary>3 finding(s): parse_error, unresolved_import ×2</summary>" in _html(_report(findings=findings))


def test_family_table_escapes_its_cells() -> None:
    family = FamilyPlan(
        "family_asr", "docker/family_asr/Dockerfile", None, "ubuntu-22.04", ("g++",), ("asr_svc",),
        add=(PlanItem("libstdc++6", Tier.REQUIRED, "needed"),), unused=(), redundant=(),
        build_only=(PlanItem("g++", Tier.OPTIONAL, "builds", 3),),
    )
    assert _rows(_html(_report(families=(family,))))[0] == [
        "<code>family_asr</code>", "<code>docker/family_asr/Dockerfile</code>", "<code>libstdc++6</code>", "—", "—", "<code>g++</code>", "—"
    ]


def test_an_empty_scan_says_so() -> None:
    html = _html(ScanReport("ubuntu-22.04", "3.11", 0, (), ()))
    assert "<p><strong>Nothing required is missing.</strong> — 0 service(s), distro <code>ubuntu-22.04</code>, Python 3.11.</p>" in html
    assert html.endswith("<h2>Services</h2>\n<p>No service was scanned.</p>\n")
