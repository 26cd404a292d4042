"""depaudit's finding codes: one table, total over every kind of result, each id once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from depaudit.codes import CODES, DEFAULT_GATE, PLAN_CODES, UNUSED_GATE, finding_code, gate, need_code
from depaudit.evidence import NeedKind, NeedStatus, Tier, service_step
from depaudit.findings import Finding, FindingKind
from depaudit.packages.model import Need, ServiceReport
from depaudit.paths import source_root
from depaudit.report import ScanReport
from helpers import REPO


def _need(status: NeedStatus, tier: Tier) -> Need:
    return Need(NeedKind.SONAME, "libgthread-2.0.so.0", status, "libglib2.0-0", tier, (service_step("svc"),))


def test_every_finding_kind_has_its_own_code_in_the_table() -> None:
    codes = [finding_code(kind) for kind in FindingKind]
    assert len(set(codes)) == len(FindingKind)
    assert set(codes) <= set(CODES)
    assert finding_code(FindingKind.MISSING_MODULE) == "DA101"
    assert finding_code(FindingKind.REACH_LIMIT) == "DA210"
    assert finding_code(FindingKind.DOCKERFILE) == "DA401"
    assert finding_code(FindingKind.UNSAFE_MEMBER) == "DA509"


def test_the_table_is_total_and_its_ids_unique_and_well_formed() -> None:
    used = {finding_code(kind) for kind in FindingKind} | set(PLAN_CODES.values()) | {"DA201", "DA202", "DA203", "DA204"}
    assert used == set(CODES)  # no code without a kind of result, no result without a code
    assert all(key == code.id and re.fullmatch(r"DA[1-6]\d\d", key) for key, code in CODES.items())
    names = [code.name for code in CODES.values()]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", name) for name in names)
    assert {code.level for code in CODES.values()} == {"error", "warning", "note"}
    assert DEFAULT_GATE | UNUSED_GATE <= set(CODES) and not DEFAULT_GATE & UNUSED_GATE


def test_plan_codes() -> None:
    assert PLAN_CODES == {"add": "DA301", "unused": "DA302", "redundant": "DA303", "build_only": "DA304"}
    assert [CODES[c].level for c in PLAN_CODES.values()] == ["error", "warning", "note", "warning"]


@pytest.mark.parametrize(
    ("status", "tier", "code"),
    [
        (NeedStatus.MISSING, Tier.REQUIRED, "DA201"),
        (NeedStatus.UNMAPPED, Tier.REQUIRED, "DA202"),
        (NeedStatus.MISSING, Tier.OPTIONAL, "DA203"),
        (NeedStatus.UNMAPPED, Tier.HINT, "DA203"),
        (NeedStatus.INSTALLED, Tier.REQUIRED, None),
        (NeedStatus.DRIVER, Tier.REQUIRED, None),
        (NeedStatus.CAPABILITY, Tier.REQUIRED, "DA204"),
        (NeedStatus.CAPABILITY, Tier.OPTIONAL, "DA203"),
        (NeedStatus.BUNDLED, Tier.OPTIONAL, None),
    ],
)
def test_a_need_has_a_code_only_when_the_image_lacks_it(status: NeedStatus, tier: Tier, code: str | None) -> None:
    assert need_code(_need(status, tier)) == code


def test_the_source_root_is_the_nearest_folder_holding_git(tmp_path: Path) -> None:
    (tmp_path / "repo" / "services" / "svc").mkdir(parents=True)
    assert source_root(tmp_path / "repo" / "services") == (tmp_path / "repo" / "services").resolve()  # no .git: itself
    (tmp_path / "repo" / ".git").write_text("gitdir: /elsewhere\n")  # a worktree's .git is a file
    assert source_root(tmp_path / "repo" / "services" / "svc") == (tmp_path / "repo").resolve()
    assert source_root(tmp_path / "repo") == (tmp_path / "repo").resolve()


@pytest.mark.parametrize("status", list(NeedStatus))
@pytest.mark.parametrize("tier", list(Tier))
def test_a_need_fails_the_default_gate_exactly_when_its_code_is_in_it(status: NeedStatus, tier: Tier) -> None:
    report = ScanReport("ubuntu-22.04", "3.11", 1, (ServiceReport("svc", (), (_need(status, tier),), ()),), ())
    assert report.failing is (need_code(_need(status, tier)) in DEFAULT_GATE)


@pytest.mark.parametrize("kind", list(FindingKind))
def test_a_finding_fails_the_default_gate_exactly_when_its_code_is_in_it(kind: FindingKind) -> None:
    finding = Finding(kind, "svc/main.py", 1, "a message")
    report = ScanReport("ubuntu-22.04", "3.11", 1, (ServiceReport("svc", (), (), (finding,)),), ())
    assert report.failing is (finding_code(kind) in DEFAULT_GATE)


def test_the_readme_table_is_the_code_table() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Finding codes\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = re.findall(r"^\| `(DA\d+)` \| `([^`]+)` \| (.+?) \| (.+?) \|$", section, re.M)
    assert rows == [(c.id, c.name, c.summary, gate(c.id)) for c in CODES.values()]
    assert section.count("\n| ") == len(CODES) + 1  # the header, then one row a code: nothing else
    assert text.index("\n## Finding codes\n") < text.index("\n## Development\n")
