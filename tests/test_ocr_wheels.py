"""What reading pytesseract's code finds without its rule, on the real wheel in a cached venv."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit import scan
from depaudit.packages.model import Need
from depaudit.packages.python_rules import load_python_rules
from depaudit.scan import ScanOptions, run_scan

pytestmark = pytest.mark.network

WHEELS = ["pytesseract==0.3.13", "pillow==12.0.0", "packaging==25.0"]


@pytest.fixture(scope="module")
def ocr_sp(wheel_env) -> Path:  # type: ignore[no-untyped-def]
    return wheel_env("ocr", WHEELS)


def _needs(tmp_path: Path, site_packages: Path, source: str) -> tuple[bool, dict[str, Need]]:
    service = tmp_path / "reader"
    service.mkdir()
    (service / "main.py").write_text(source)
    report = run_scan(ScanOptions((service,), (site_packages,), "ubuntu-22.04"))
    return report.failing, {need.name: need for need in report.services[0].needs}


CALLS = "import pytesseract\nfrom PIL import Image\n\nprint(pytesseract.image_to_string(Image.open('a.png')))\n"


@pytest.mark.parametrize("rules", ["with", "without"])
def test_a_call_of_image_to_string_needs_tesseract_with_or_without_the_rule(
    tmp_path: Path, ocr_sp: Path, monkeypatch: pytest.MonkeyPatch, rules: str
) -> None:
    if rules == "without":
        monkeypatch.setattr(scan, "load_python_rules", lambda: {k: v for k, v in load_python_rules().items() if k != "pytesseract"})
    failing, needs = _needs(tmp_path, ocr_sp, CALLS)
    tesseract = needs["tesseract"]
    assert (tesseract.status.value, tesseract.tier.value, tesseract.package) == ("missing", "required", "tesseract-ocr")
    assert failing is True
    if rules == "without":
        # The argument list is built in steps (`cmd_args += (tesseract_cmd, …)`) and the call goes
        # through a table of lambdas: both read, no rule needed.
        assert [str(step) for step in tesseract.chain[3:7]] == [
            "reader/main.py:4 calls pytesseract.image_to_string",
            "pytesseract/pytesseract.py:487 calls pytesseract.pytesseract.run_and_get_output",
            "pytesseract/pytesseract.py:352 calls pytesseract.pytesseract.run_tesseract",
            "pytesseract/pytesseract.py:275 subprocess.Popen('tesseract')",
        ]


def test_without_the_rule_an_import_alone_leaves_tesseract_optional(
    tmp_path: Path, ocr_sp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the rule stays: a service that imports pytesseract and calls it some way the call walk
    does not follow (an object passed in) would pass with tesseract-ocr missing without it."""
    monkeypatch.setattr(scan, "load_python_rules", lambda: {k: v for k, v in load_python_rules().items() if k != "pytesseract"})
    failing, needs = _needs(tmp_path, ocr_sp, "import pytesseract\n")
    assert needs["tesseract"].tier.value == "optional"  # kept from --prune, not failing the scan
    assert failing is False
