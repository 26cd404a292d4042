"""rules/python/packages.toml: each entry is validated, names the release it was checked against,
and the code it cites is in that release; a rule's tier caps the needs it adds."""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from depaudit.evidence import NeedKind, Tier
from depaudit.packages.python_rules import PackageRule, load_python_rules
from depaudit.packages.rules import RulesError
from depaudit.scan import ScanOptions, run_scan
from helpers import make_dist, release_archive

RULES = load_python_rules()


def test_every_entry_names_its_checked_release_and_citations() -> None:
    """Pinned, so that an edit of the file is deliberate."""
    table = {
        key: (str(rule.checked), len(rule.cites), rule.large, rule.tier.value) for key, rule in RULES.items()
    }
    assert table == {
        "sounddevice": ("0.5.6", 3, False, "required"),
        "soundfile": ("0.14.0", 4, False, "required"),
        "pyttsx3": ("2.99", 3, False, "required"),
        "pydub": ("0.25.1", 4, False, "required"),
        "pytesseract": ("0.3.13", 3, False, "required"),
        "pdf2image": ("1.17.0", 2, False, "required"),
        "python-magic": ("0.4.27", 4, False, "required"),
        "pyzbar": ("0.1.9", 4, False, "required"),
        "audioread": ("3.1.0", 4, False, "optional"),
        "openai-whisper": ("20250625", 3, False, "required"),
        "torchaudio": ("2.11.1", 3, False, "required"),
        "onnxruntime-gpu": ("1.31.1", 14, True, "optional"),
    }


GOOD = 'source = "s"\nchecked = "demo==1.0"\ncites = [{ file = "demo/x.py", text = "t" }]\n'
SHAPE = 'rules.toml: [demo] cites must be a non-empty list of { file = "path/in/the/wheel", text = "..." }'
KEYS = "rules.toml: [demo] needs a source and only " + str(
    sorted(["source", "needs", "ignore", "when-files", "versions", "tier", "checked", "cites", "large", "cuda", "wheels", "cuda-from", "builds"])
)
CUDA_FROM = 'rules.toml: [demo] cuda-from must be { file = "path/in/the/wheel", pattern = "a regex whose group 1 is the major" }'
CHECKED = "rules.toml: [demo] checked must be 'demo==VERSION', the release the citations were read in"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        # What the loader said before these keys, unchanged.
        ('checked = "demo==1.0"\ncites = []\n', f"{KEYS} (got [])"),
        (GOOD + "checkd = 1\n", f"{KEYS} (got ['checkd'])"),
        # checked: this distribution, one release, inside `versions`.
        ('source = "s"\ncites = [{ file = "x.py", text = "t" }]\n', f"{CHECKED} (got None)"),
        (GOOD.replace("demo==1.0", "other==1.0"), f"{CHECKED} (got 'other==1.0')"),
        (GOOD.replace("demo==1.0", "demo>=1.0"), f"{CHECKED} (got 'demo>=1.0')"),
        (GOOD.replace("demo==1.0", "demo==one"), f"{CHECKED} (got 'demo==one')"),
        (GOOD + 'versions = ">=2"\n', "rules.toml: [demo] checked 'demo==1.0' is outside the entry's versions '>=2'"),
        # cites: at least one, each exactly a file inside the wheel and a non-empty text.
        ('source = "s"\nchecked = "demo==1.0"\n', SHAPE),
        (GOOD.replace('[{ file = "demo/x.py", text = "t" }]', "[]"), SHAPE),
        (GOOD.replace('text = "t"', 'text = ""'), SHAPE + " (got {'file': 'demo/x.py', 'text': ''})"),
        (GOOD.replace(', text = "t"', ""), SHAPE + " (got {'file': 'demo/x.py'})"),
        (GOOD.replace('text = "t"', 'text = "t", line = 3'), SHAPE + " (got {'file': 'demo/x.py', 'text': 't', 'line': 3})"),
        (GOOD.replace("demo/x.py", "../x.py"), "rules.toml: [demo] cites: '../x.py' is not a relative path inside the wheel"),
        (GOOD.replace("demo/x.py", "/x.py"), "rules.toml: [demo] cites: '/x.py' is not a relative path inside the wheel"),
        (GOOD + "large = 1\n", "rules.toml: [demo] large must be true or false (got 1)"),
        (GOOD + 'tier = "sometimes"\n', "rules.toml: [demo] tier must be one of ['hint', 'optional', 'required'] (got 'sometimes')"),
        # cuda: a major; wheels: one of the entry's needs → a distribution.
        (GOOD + 'cuda = "13.0"\n', "rules.toml: [demo] cuda must be a CUDA major such as \"13\" (got '13.0')"),
        (GOOD + "cuda = 13\n", "rules.toml: [demo] cuda must be a CUDA major such as \"13\" (got 13)"),
        (GOOD + 'wheels = ["x"]\n', 'rules.toml: [demo] wheels must be a table of "soname:NAME" = "distribution"'),
        (GOOD + 'wheels = { "libx.so.1" = "w" }\n', "rules.toml: [demo] 'libx.so.1' must be 'soname:NAME' or 'program:NAME'"),
        (GOOD + 'needs = ["soname:liby.so.1"]\nwheels = { "soname:libx.so.1" = "w" }\n',
         "rules.toml: [demo] wheels names soname:libx.so.1, which is not among its needs"),
        # cuda-from: a file and a pattern with a group; builds: per CUDA major, with cuda-from.
        (GOOD + 'cuda-from = { file = "demo/info.py" }\n', CUDA_FROM + " (got {'file': 'demo/info.py'})"),
        (GOOD + 'cuda-from = { file = "demo/info.py", pattern = "cuda = \'\\\\d+" }\n', CUDA_FROM + " (got \"cuda = '\\\\d+\": no group)"),
        (GOOD + 'cuda-from = { file = "demo/info.py", pattern = "(" }\n',
         CUDA_FROM + " (got '(': missing ), unterminated subpattern at position 0)"),
        (GOOD + 'needs = ["soname:libx.so.1"]\n[demo.builds.12]\nneeds = ["soname:liby.so.1"]\n',
         "rules.toml: [demo] builds needs cuda-from, where a build writes its CUDA major"),
        (GOOD + '[demo.builds.twelve]\nneeds = ["soname:liby.so.1"]\n', "rules.toml: [demo.builds.twelve] must be a CUDA major's table of needs (and wheels)"),
        (GOOD + '[demo.builds.12]\nneeds = ["soname:liby.so.1"]\nwheels = { "soname:libx.so.1" = "w" }\n',
         "rules.toml: [demo.builds.12] wheels names soname:libx.so.1, which is not among its needs"),
    ],
)
def test_a_malformed_entry_says_what_is_wrong(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[demo]\n" + entry)
    with pytest.raises(RulesError) as raised:
        load_python_rules(path)
    assert str(raised.value) == message


def test_a_well_formed_entry_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[Demo_Pkg]\n' + GOOD.replace("demo==1.0", "demo-pkg==1.0") + 'tier = "hint"\nlarge = true\n'
                    'needs = ["soname:libx.so.1"]\ncuda = "13"\nwheels = { "soname:libx.so.1" = "Nvidia_X_cu13" }\n')
    (rule,) = load_python_rules(path).values()
    assert (rule.distribution, str(rule.checked), [(c.file, c.text) for c in rule.cites], rule.large, rule.tier) == (
        "demo-pkg", "1.0", [("demo/x.py", "t")], True, Tier.HINT
    )
    assert (rule.cuda, rule.wheels) == ("13", (((NeedKind.SONAME, "libx.so.1"), "nvidia-x-cu13"),))


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


def _archive_members(archive: Path) -> dict[str, bytes]:
    """Path → content of every file in a wheel, or in an sdist under its top folder (as installed).
    Read, never extracted."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            return {name: wheel.read(name) for name in wheel.namelist() if not name.endswith("/")}
    members = {}
    with tarfile.open(archive) as sdist:
        for member in sdist.getmembers():
            handle = sdist.extractfile(member) if member.isfile() else None
            if handle is not None:
                members[PurePosixPath(*PurePosixPath(member.name).parts[1:]).as_posix()] = handle.read()
    return members


def _not_found(archive: Path, rule: PackageRule) -> list[str]:
    members = _archive_members(archive)
    missing = [f"when-files {path}: not in {archive.name}" for path in rule.when_files if path not in members]
    for cite in rule.cites:
        if cite.file not in members:
            missing.append(f"{cite.file}: not in {archive.name}")
        elif cite.text.encode() not in members[cite.file]:
            missing.append(f"{cite.file}: no {cite.text!r}")
    return missing


@pytest.mark.network
@pytest.mark.parametrize("key", sorted(RULES))
def test_every_citation_is_in_the_checked_release(key: str) -> None:
    rule = RULES[key]
    release = f"{rule.distribution}=={rule.checked}"
    if rule.large and not os.environ.get("DEPAUDIT_LARGE_WHEELS"):
        pytest.skip(f"{release}: its wheel is over 100 MB, too big for CI; its citations were checked by hand "
                    "(DEPAUDIT_LARGE_WHEELS=1 downloads it and checks them)")
    archive = release_archive(rule.distribution, str(rule.checked))
    assert _not_found(archive, rule) == []


def test_a_build_for_another_cuda_major_takes_its_own_needs(tmp_path: Path) -> None:
    """`builds."12"` replaces the needs and wheels of a CUDA 12 build; a major with no table of its
    own keeps the entry's needs with its packages named for that major; no major read: the entry."""
    path = tmp_path / "rules.toml"
    path.write_text('[demo]\n' + GOOD + 'needs = ["soname:libx.so.13"]\ncuda = "13"\nwheels = { "soname:libx.so.13" = "x-cu13" }\n'
                    'cuda-from = { file = "demo/info.py", pattern = "^cuda = (\\\\d+)" }\n'
                    '[demo.builds.12]\nneeds = ["soname:libx.so.12"]\nwheels = { "soname:libx.so.12" = "X_cu12" }\n')
    (rule,) = load_python_rules(path).values()
    assert rule.cuda_from is not None and rule.cuda_from.major("# info\ncuda = 12\n") == "12"
    twelve = rule.for_build("12")
    assert (twelve.cuda, twelve.needs, twelve.wheels) == ("12", ((NeedKind.SONAME, "libx.so.12"),), (((NeedKind.SONAME, "libx.so.12"), "x-cu12"),))
    assert twelve.source == "s; this build is for CUDA 12, as its demo/info.py says"
    fourteen = rule.for_build("14")
    assert (fourteen.cuda, fourteen.needs, fourteen.wheels) == ("14", rule.needs, rule.wheels)
    assert rule.for_build(None) is rule and rule.for_build("13") is rule
