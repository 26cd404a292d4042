"""Random inputs to the two small readers of user files: the fleet config (depaudit.toml,
[tool.depaudit]) and requirements files. Whatever they hold, the config reader gives a
ConfigError or a config whose every field has its type, and the requirements reader gives
declared requirements and findings, never an exception.
"""

from __future__ import annotations

import datetime
import json
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from depaudit.findings import Finding, FindingKind
from depaudit.fleet.config import ConfigError, FamilyConfig, FleetConfig, ServiceConfig, load_config
from depaudit.python.model import DeclaredRequirement, TargetPython
from depaudit.python.requirements import read_requirements

TOP = ["distro", "paths", "family-dockerfiles", "site-packages", "base-image", "env", "families", "services"]
FAMILY = ["dockerfile", "parent", "site-packages", "base-image", "env", "gpu"]
SERVICE = ["path", "entry", "source-roots", "family", "dockerfile", "requirements"]
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# TOML, written from generated values -------------------------------------------------------------
def toml_string(text: str) -> str:
    # JSON escapes are TOML escapes; DEL is the one control character JSON leaves as it is.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{toml_string(key)} = {toml_value(item)}" for key, item in value.items()) + "}"


def toml_document(table: Mapping[str, Any]) -> str:
    return "".join(f"{toml_string(key)} = {toml_value(value)}\n" for key, value in table.items())


texts = st.one_of(
    st.sampled_from(["", ".", "..", "/", "services", "docker/Dockerfile", "nvidia/cuda:12.1.1-runtime-ubuntu22.04",
                     "ubuntu-22.04", "x" * 300, "a/" * 2100, "~", "**/Dockerfile", "family-a"]),
    st.text(max_size=20),
)
scalars = st.one_of(
    texts, st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(), st.dates(), st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.one_of(texts, st.sampled_from(TOP + FAMILY + SERVICE)), inner, max_size=4)),
    max_leaves=12,
)


def table(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly known keys, with values of any type (often the right one), now and then an unknown key."""
    right = {
        "dockerfile": texts, "parent": texts, "base-image": texts, "distro": texts, "path": texts, "entry": texts,
        "family": texts, "gpu": st.booleans(), "env": st.dictionaries(texts, texts, max_size=3),
        "paths": st.lists(texts, max_size=3), "site-packages": st.lists(texts, max_size=3),
        "source-roots": st.lists(texts, max_size=3), "requirements": st.lists(texts, max_size=3),
        "family-dockerfiles": st.lists(texts, max_size=3),
    }
    key = st.one_of(st.sampled_from(keys), st.sampled_from(keys), st.text(max_size=8))
    return st.dictionaries(key, st.deferred(lambda: st.one_of(values, *(right[k] for k in keys if k in right))), max_size=6)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    document: dict[str, Any] = draw(table([k for k in TOP if k not in ("families", "services")]))
    if draw(st.booleans()):
        document["families"] = draw(st.one_of(st.dictionaries(texts, table(FAMILY), max_size=3), values))
    if draw(st.booleans()):
        document["services"] = draw(st.one_of(st.dictionaries(texts, table(SERVICE), max_size=3), values))
    return document


def assert_valid(config: FleetConfig) -> None:
    """Every field of the config has the type the rest of depaudit relies on."""
    assert isinstance(config.root, Path) and isinstance(config.path, Path)
    assert config.distro is None or isinstance(config.distro, str)
    assert all(isinstance(p, Path) for p in (*config.paths, *config.site_packages))
    assert all(isinstance(g, str) and g for g in config.family_globs)  # none: families are all named
    assert config.base_image is None or isinstance(config.base_image, str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in config.env.items())
    for name, family in config.families.items():
        assert isinstance(family, FamilyConfig) and family.name == name
        assert family.dockerfile is None or isinstance(family.dockerfile, Path)
        assert family.parent is None or (isinstance(family.parent, str) and family.parent != name)
        assert all(isinstance(p, Path) for p in family.site_packages)
        assert family.gpu in (None, True, False)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in family.env.items())
    for name, service in config.services.items():
        assert isinstance(service, ServiceConfig) and service.name == name
        assert (service.path is None) != (service.entry is None)
        assert not service.source_roots or service.entry is not None
        assert service.requirements is None or all(isinstance(p, Path) for p in service.requirements)


def load(text: str | bytes, name: str = "depaudit.toml") -> FleetConfig | ConfigError:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(text.encode("utf-8", errors="surrogatepass") if isinstance(text, str) else text)
        try:
            config = load_config(path)
        except ConfigError as error:
            assert str(error) and "\n" not in str(error).strip()  # one line for stderr
            return error
        assert_valid(config)
        return config


@FUZZ
@given(configs())
def test_random_config_values_give_a_config_error_or_a_valid_config(document: dict[str, Any]) -> None:
    outcome = load(toml_document(document))
    if any(key not in TOP for key in document):
        assert isinstance(outcome, ConfigError) and "unknown key" in str(outcome)  # never silently ignored


@FUZZ
@given(st.one_of(configs(), values), st.sampled_from(["tool", "depaudit"]))
def test_random_pyproject_tables_give_a_config_error_or_a_valid_config(document: Any, depth: str) -> None:
    tool = {"depaudit": document} if depth == "tool" else document
    load(f"[project]\nname = \"x\"\n\n[tool]\ndepaudit = {toml_value(tool) if depth == 'depaudit' else toml_value(document)}\n", "pyproject.toml")


VALID = """\
distro = "ubuntu-22.04"
paths = ["services"]
base-image = "nvidia/cuda:12.1.1-runtime-ubuntu22.04"

[env]
LD_LIBRARY_PATH = "/usr/local/nvidia/lib64"

[families.family-torch]
dockerfile = "docker/family-torch/Dockerfile"
parent = "base-gpu"
gpu = true

[services.stt]
entry = "main_pc_code/services/stt_service.py"
source-roots = ["."]
family = "family-torch"
requirements = ["requirements.txt"]
"""


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID)), st.sampled_from(["", "\x00", "\"", "[", "]", "=", "\n", "\\", "é", "\x7f", "'''", "{", "#", ".", "\udcff"])), min_size=1, max_size=4))
def test_a_config_text_damaged_anywhere_gives_a_config_error_or_a_valid_config(edits: list[tuple[int, str]]) -> None:
    text = VALID
    for at, insert in sorted(edits, reverse=True):
        text = text[:at] + insert + text[at + 1 :]
    load(text)


@pytest.mark.parametrize(
    "text,message",
    [
        ('base-image = "' + "x" * 5000 + '"\n', None),  # once an OSError (file name too long) from exists()
        ('[families.a]\ndockerfile = "' + "d" * 300 + '"\n', "[families.a] dockerfile: "),
        ('[services.s]\npath = "a\\u0000b"\n', "[services.s] path: "),
        ("\xff\xfe", "is not UTF-8 text"),
    ],
    ids=["long-base-image-is-a-reference", "long-dockerfile", "nul-in-path", "not-utf8"],
)
def test_names_no_file_can_have(text: str, message: str | None) -> None:
    outcome = load(text.encode("latin-1") if text.startswith("\xff") else text)
    if message is None:
        assert isinstance(outcome, FleetConfig) and outcome.base_image == "x" * 5000
    else:
        assert isinstance(outcome, ConfigError) and message in str(outcome)
        if "path" in message or "dockerfile" in message:
            assert str(outcome).endswith("cannot name a file (a NUL byte, or a name too long)")


# Requirements files ------------------------------------------------------------------------------
LINES = [
    "numpy==1.26.4", "torch>=2.1; python_version >= '3.9'", "pkg[extra1,extra2]~=1.0", "Foo_Bar.baz", "-r other.txt",
    "-r requirements.txt", "-c constraints.txt", "-r missing.txt", "-e .", "-e ./libs/core", "--index-url https://x/simple",
    "https://example.com/x.whl", "git+https://github.com/a/b#egg=b", "name @ https://x/y.whl", "# comment", "",
    "pkg==1.0 \\", "    --hash=sha256:" + "0" * 64, "pkg; sys_platform == 'win32'", "pkg; bogus_marker == 'x'",
    "pkg===", "!!!", "-r", "-r https://example.com/r.txt", "./local.whl", "pkg==1.0 # trailing", "-f ./wheels",
]
lines = st.one_of(st.sampled_from(LINES), st.text(max_size=30))
raw = st.binary(max_size=40)


@FUZZ
@given(
    st.lists(st.one_of(lines, raw), max_size=12),
    st.lists(st.one_of(lines, raw), max_size=6),
    st.sampled_from(["\n", "\r\n"]),
)
def test_random_requirements_files_give_requirements_and_findings(main_lines: list[str | bytes], other_lines: list[str | bytes], eol: str) -> None:
    def content(items: list[str | bytes]) -> bytes:
        return b"".join((i.encode("utf-8", errors="surrogatepass") if isinstance(i, str) else i) + eol.encode() for i in items)

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "requirements.txt").write_bytes(content(main_lines))
        (root / "other.txt").write_bytes(content(other_lines))
        (root / "libs/core").mkdir(parents=True)
        (root / "libs/core/pyproject.toml").write_bytes(b'[project]\nname = "core"\n')
        declared, findings = read_requirements([root / "requirements.txt"], root, TargetPython())
    assert all(isinstance(d, DeclaredRequirement) for d in declared)
    assert all(d.key == canonicalize_name(d.key) and d.key and d.file in ("requirements.txt", "other.txt") for d in declared)
    assert all(d.line is None or d.line >= 1 for d in declared)
    assert all(isinstance(f, Finding) and f.kind in (FindingKind.BAD_REQUIREMENT, FindingKind.UNREADABLE_FILE) for f in findings)
    assert all(f.message and (f.line is None or f.line >= 1) for f in findings)
    assert findings == sorted(findings)


@pytest.mark.parametrize(
    "text,message",
    [
        ('[services."a\\nb"]\nentry = "no\\nsuch.py"\n', '[services."a\\nb"] entry: no such file: "'),
        ('[families."f\\tg"]\ndockerfile = "gone\\r.Dockerfile"\n', '[families."f\\tg"] dockerfile: no such file: "'),
        ('[families."x\\ny"]\n', '[families."x\\ny"]: no dockerfile given'),
        ('[families.f]\ndockerfile = "D"\nparent = "p\\nq"\n', "[families.f] parent: no family named 'p\\nq'"),
    ],
    ids=["service-entry", "family-dockerfile", "family-unfound", "parent"],
)
def test_errors_about_the_fleet_name_odd_keys_and_paths_on_one_line(tmp_path: Path, text: str, message: str) -> None:
    """The checks made after the config is read (files exist, names are known) quote what they
    name as the config reader does, so that a name or path holding a line break stays one line."""
    from depaudit.fleet.layout import fleet_from_config

    (tmp_path / "D").write_text("FROM scratch\n")
    (tmp_path / "depaudit.toml").write_text(text)
    with pytest.raises(ConfigError) as raised:
        fleet_from_config(load_config(tmp_path / "depaudit.toml"))
    assert "\n" not in str(raised.value) and message in str(raised.value)
