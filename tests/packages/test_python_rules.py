"""rules/python/packages.toml: each entry is validated; a rule's tier caps the needs it adds."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.packages.python_rules import load_python_rules
from depaudit.packages.rules import RulesError
from depaudit.scan import ScanOptions, run_scan
from helpers import make_dist

RULES = load_python_rules()


def test_a_tier_not_in_the_vocabulary_says_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[demo]\nsource = "s"\ntier = "sometimes"\n')
    with pytest.raises(RulesError) as raised:
        load_python_rules(path)
    assert str(raised.value) == "rules.toml: [demo] tier must be one of ['hint', 'optional', 'required'] (got 'sometimes')"


def test_a_rule_tier_caps_the_needs_it_adds(tmp_path: Path) -> None:
    """audioread's ffmpeg serves a fallback: optional on import; pytesseract's tesseract keeps the import's tier."""
    site_packages = tmp_path / "site-packages"
    make_dist(site_packages, "audioread", "3.1.0", files={"audioread/__init__.py": ""})
    make_dist(site_packages, "pytesseract", "0.3.13", files={"pytesseract/__init__.py": ""})
    service = tmp_path / "speech"
    service.mkdir()
    (service / "main.py").write_text("import audioread\nimport pytesseract\n")
    (report,) = run_scan(ScanOptions((service,), (site_packages,), "debian-12")).services
    assert [(n.kind, n.name, n.package, n.status, n.tier.value, str(n.chain[-3])) for n in report.needs] == [
        ("program", "tesseract", "tesseract-ocr", "missing", "required",
         "rules/python/packages.toml [pytesseract]: " + RULES["pytesseract"].source),
        ("program", "ffmpeg", "ffmpeg", "missing", "optional",
         "rules/python/packages.toml [audioread]: " + RULES["audioread"].source),
    ]


def test_a_rule_tier_caps_what_the_code_is_found_to_run(tmp_path: Path) -> None:
    """Found in the code at import, confirmed by the rule: no stronger than the rule's tier."""
    site_packages = tmp_path / "site-packages"
    code = 'import subprocess\nsubprocess.run(["ffmpeg"])\n'
    make_dist(site_packages, "audioread", "3.1.0", files={"audioread/__init__.py": code})
    service = tmp_path / "speech"
    service.mkdir()
    (service / "main.py").write_text("import audioread\n")
    (report,) = run_scan(ScanOptions((service,), (site_packages,), "debian-12")).services
    assert [(n.name, n.tier.value, str(n.chain[-3])) for n in report.needs] == [
        ("ffmpeg", "optional", "audioread/__init__.py:2 subprocess.run('ffmpeg')")
    ]
