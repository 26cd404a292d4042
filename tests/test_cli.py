"""The command line as users and CI run it: exit codes, JSON that follows its schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from depaudit.emit.json_report import load_schema
from helpers import build_vision_env, have_gcc

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")


@pytest.fixture(scope="module")
def vision_sp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_vision_env(tmp_path_factory.mktemp("vision-cli"))


def _depaudit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "depaudit", *args], capture_output=True, text=True)


def _service(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "main.py").write_text(source)
    return folder


def test_missing_required_library_exits_1_with_valid_json(tmp_path: Path, vision_sp: Path) -> None:
    service = _service(tmp_path, "import visionlib\n")
    result = _depaudit("scan", str(service), "--site-packages", str(vision_sp), "--format", "json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, load_schema())
    assert report["failing"] is True
    assert [(n["name"], n["status"], n["code"], n["package"], n["tier"]) for n in report["services"][0]["needs"][:2]] == [
        ("libGL.so.1", "missing", "DA201", "libgl1", "required"),
        ("libX11.so.6", "missing", "DA203", "libx11-6", "optional"),
    ]
    assert {n["code"] for n in report["services"][0]["needs"] if n["status"] not in ("missing", "unmapped")} <= {None}


def test_only_optional_needs_exit_0(tmp_path: Path, vision_sp: Path) -> None:
    service = _service(tmp_path, "try:\n    import visionlib\nexcept ImportError:\n    visionlib = None\n")
    result = _depaudit("scan", str(service), "--site-packages", str(vision_sp), "--distro", "debian-12")
    assert result.returncode == 0, result.stderr
    assert "libGL.so.1" in result.stdout
    assert "\x1b[" not in result.stdout  # piped: no colour codes
    assert "No required library or program is missing from the image." in result.stdout


def test_output_file(tmp_path: Path, vision_sp: Path) -> None:
    service = _service(tmp_path, "import json\n")
    out = tmp_path / "reports" / "scan.json"
    result = _depaudit("scan", str(service), "--site-packages", str(vision_sp), "--format", "json", "--output", str(out))
    assert (result.returncode, result.stdout) == (0, "")
    jsonschema.validate(json.loads(out.read_text()), load_schema())


@pytest.mark.parametrize(
    "args,message",
    [
        (["scan", "/nonexistent-folder"], "depaudit: error: not a folder: /nonexistent-folder\n"),
        (["scan", ".", "--distro", "plan9"], "depaudit: error: unknown distro 'plan9' (known: debian-12, ubuntu-22.04, ubuntu-24.04)\n"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = _depaudit(*args)
    assert (result.returncode, result.stderr) == (2, message)


def test_rootfs_gives_the_distro_the_owners_and_the_search_evidence(tmp_path: Path) -> None:
    from helpers import build_image_scene

    rootfs, sp = build_image_scene(tmp_path / "scene")
    service = _service(tmp_path, "import app\n")
    result = _depaudit(
        "scan", str(service), "--site-packages", str(sp), "--rootfs", str(rootfs),
        "--env", "LD_LIBRARY_PATH=/opt/ldpath", "--format", "json",
    )
    report = json.loads(result.stdout)
    jsonschema.validate(report, load_schema())
    assert (report["distro"], report["base_image"]) == ("ubuntu-22.04", str(rootfs))  # from /etc/os-release
    needs = {n["name"]: n for n in report["services"][0]["needs"]}
    assert (needs["libdefault.so.1"]["status"], needs["libdefault.so.1"]["package"]) == ("base-image", "libdefault1")
    assert needs["libdefault.so.1"]["chain"][-2:] == [
        "/lib/x86_64-linux-gnu/libdefault.so.1",
        "libdefault1 (ubuntu-22.04)",
    ]
    # The image has no glibc at all: with a real image, nothing is assumed present.
    assert (needs["libc.so.6"]["status"], needs["libc.so.6"]["package"]) == ("missing", "libc6")
    assert needs["libmissing.so.1"]["status"] == "unmapped"
    assert [(f["kind"], f["code"]) for f in report["findings"]] == [("symlink_loop", "DA507")]
    assert result.returncode == 1


def test_bad_env_option_is_a_usage_error(tmp_path: Path) -> None:
    result = _depaudit("scan", str(tmp_path), "--env", "LD_LIBRARY_PATH")
    assert (result.returncode, result.stderr) == (2, "depaudit: error: --env takes KEY=VALUE, not 'LD_LIBRARY_PATH'\n")


def test_schema_enums_match_the_code() -> None:
    from depaudit.codes import PLAN_CODES, finding_code
    from depaudit.findings import FindingKind
    from depaudit.evidence import NeedStatus

    definitions = load_schema()["$defs"]
    assert definitions["finding"]["properties"]["kind"]["enum"] == [k.value for k in FindingKind]
    assert definitions["need"]["properties"]["status"]["enum"] == [s.value for s in NeedStatus]
    assert definitions["finding"]["properties"]["code"]["enum"] == sorted(finding_code(k) for k in FindingKind)
    assert definitions["need"]["properties"]["code"]["enum"] == ["DA201", "DA202", "DA203", "DA204", None]
    assert definitions["plan_item"]["properties"]["code"]["enum"] == list(PLAN_CODES.values())
    family = definitions["family"]["properties"]
    assert {kind: family[kind]["items"]["properties"]["code"]["const"] for kind in PLAN_CODES} == PLAN_CODES


def test_a_venv_root_is_read_as_its_site_packages(tmp_path: Path, vision_sp: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "lib" / "python3.11").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.7\n")
    (venv / "lib" / "python3.11" / "site-packages").symlink_to(vision_sp, target_is_directory=True)
    service = _service(tmp_path, "import visionlib\n")
    by_root = _depaudit("scan", str(service), "--site-packages", str(venv), "--format", "json")
    by_folder = _depaudit("scan", str(service), "--site-packages", str(vision_sp), "--format", "json")
    assert (by_root.returncode, by_folder.returncode) == (1, 1), by_root.stderr
    assert json.loads(by_root.stdout)["services"] == json.loads(by_folder.stdout)["services"]
    assert json.loads(by_root.stdout)["distribution_count"] == 3


def test_an_empty_environment_for_a_service_with_third_party_imports_is_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    service = _service(tmp_path, "import json\nimport cv2\n")
    result = _depaudit("scan", str(service), "--site-packages", str(empty))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"depaudit: error: no installed distribution in {empty.resolve()}, yet svc imports cv2 (svc/main.py:2): give "
        "--site-packages the environment the services run in (a site-packages folder or a venv root)"
    )
    (tmp_path / "other").mkdir()
    stdlib_only = _service(tmp_path / "other", "import json\n")
    assert _depaudit("scan", str(stdlib_only), "--site-packages", str(empty)).returncode == 0


def test_version_and_a_reader_that_goes_away(tmp_path: Path, vision_sp: Path) -> None:
    import depaudit

    assert _depaudit("--version").stdout == f"depaudit {depaudit.__version__}\n"
    # `depaudit why … | head`: the reader closes the pipe before the chains are written.
    service = _service(tmp_path, "import visionlib\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "depaudit", "why", "libGL.so.1", str(service), "--site-packages", str(vision_sp)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    error = process.stderr.read().decode()
    assert (process.wait(), error) == (1, "")  # the output was cut: 1, and no traceback


@pytest.mark.parametrize(
    ("source", "code", "kind"),
    [
        ("import cv2\n", 1, "missing_module"),  # the service dies at start-up: the gate fails
        ("try:\n    import cv2\nexcept ImportError:\n    cv2 = None\n", 0, "unresolved_import"),
        ("def frames():\n    import cv2\n    return cv2\n", 0, "unresolved_import"),  # only when called
    ],
)
def test_an_import_nothing_provides_fails_the_gate_only_at_start_up(
    tmp_path: Path, vision_sp: Path, source: str, code: int, kind: str
) -> None:
    service = _service(tmp_path, source)
    result = _depaudit("scan", str(service), "--site-packages", str(vision_sp), "--format", "json")
    assert result.returncode == code, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, load_schema())
    line = 2 if "def" in source or "try" in source else 1
    finding_code = "DA101" if kind == "missing_module" else "DA102"  # its own code: the one that fails the gate
    assert [(f["kind"], f["code"], f["line"]) for f in report["services"][0]["findings"]] == [(kind, finding_code, line)]
    assert report["failing"] is (code == 1)
    table = _depaudit("scan", str(service), "--site-packages", str(vision_sp))
    assert ("1 service(s) import what no installed distribution provides (svc/main.py:1)." in table.stdout) is (code == 1)


def test_markdown_names_an_import_nothing_provides(tmp_path: Path, vision_sp: Path) -> None:
    service = _service(tmp_path, "import cv2\n")
    result = _depaudit("scan", str(service), "--site-packages", str(vision_sp), "--format", "markdown")
    assert result.returncode == 1
    assert "**Imports no installed distribution provides:** `svc/main.py:1`" in result.stdout


def test_output_dir_needs_its_folder(tmp_path: Path) -> None:
    service = _service(tmp_path, "import json\n")
    result = _depaudit("scan", str(service), "--output-dir")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "depaudit scan: error: argument --output-dir: expected one argument"


def test_why_from_the_whole_scan_memo_answers_as_the_scan_did(tmp_path: Path, vision_sp: Path) -> None:
    """`why` on a memo hit: the entry's report is read from the kept file after the entry is
    saved (its file is read on demand, never dropped before)."""
    import time

    service = _service(tmp_path, "import visionlib\n")
    command = ("why", "libGL.so.1", str(service), "--site-packages", str(vision_sp), "--cache-dir", str(tmp_path / "cache"), "-v")
    first = _depaudit(*command)
    time.sleep(2.1)  # past the racy window: the inputs' stamps are trusted
    _depaudit(*command)  # memoised now that its inputs are old enough
    second = _depaudit(*command)
    assert "memo hit" in second.stderr, second.stderr
    assert (second.returncode, second.stdout) == (first.returncode, first.stdout)
    assert first.returncode == 0 and "libGL.so.1" in first.stdout, first.stdout
