"""What the project's own files name stays inside the project: a requirements include that
leaves it is refused with a finding, and nothing of the file it names reaches a report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_a_requirements_include_outside_the_project_is_never_read(tmp_path: Path) -> None:
    service = tmp_path / "repo" / "services" / "svc"
    service.mkdir(parents=True)
    (tmp_path / "repo" / ".git").mkdir()  # the project: this repository
    (tmp_path / "repo" / "common.txt").write_text("six\n")  # inside it: followed
    (tmp_path / "secret.txt").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (service / "main.py").write_text("import json\n")
    (service / "requirements.txt").write_text("-r ../../common.txt\n-r ../../../secret.txt\n-c /etc/passwd\n")
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "depaudit", "scan", str(service.parent), "--site-packages", str(tmp_path / "empty"), "--format", "json"],
        capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "root:x" not in result.stdout
    findings = [(f["code"], f["path"], f["line"], f["message"]) for f in json.loads(result.stdout)["services"][0]["findings"]]
    root = (tmp_path / "repo").resolve()
    assert findings == [
        ("DA105", f"{service}/../../common.txt", 1, "six is declared but not installed in the scanned environment"),
        ("DA509", "svc/requirements.txt", 2, f"included file {service}/../../../secret.txt lies outside the project ({root}): not read"),
        ("DA509", "svc/requirements.txt", 3, f"constraints file /etc/passwd lies outside the project ({root}): not read"),
    ]


def test_a_family_dockerfile_linked_out_of_the_project_is_neither_read_nor_written(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    (fleet / ".git").mkdir(parents=True)
    (fleet / "services" / "svc").mkdir(parents=True)
    (fleet / "services" / "svc" / "main.py").write_text("import json\n")
    (fleet / "services" / "svc" / "Dockerfile").write_text("FROM family-x\n")
    outside = tmp_path / "host-Dockerfile"
    outside.write_text("FROM ubuntu:22.04\nRUN apt-get install -y curl wget\n")
    (fleet / "docker" / "family-x").mkdir(parents=True)
    (fleet / "docker" / "family-x" / "Dockerfile").symlink_to(outside)
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "depaudit", "scan", "services", "--site-packages", str(tmp_path / "empty"), "--format", "json",
         "--write", "--prune"],
        cwd=fleet, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert outside.read_text() == "FROM ubuntu:22.04\nRUN apt-get install -y curl wget\n"  # never written
    assert "patched" not in result.stderr
    assert [(f["code"], f["path"], f["message"]) for f in json.loads(result.stdout)["findings"]] == [
        ("DA509", f"{fleet}/docker/family-x/Dockerfile", f"rejected: a symbolic link to {outside}, outside the project: not read, never patched")
    ]


def test_families_built_from_one_another_in_a_circle_are_a_finding(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    (fleet / "services" / "svc").mkdir(parents=True)
    (fleet / "services" / "svc" / "main.py").write_text("import json\n")
    (fleet / "services" / "svc" / "Dockerfile").write_text("FROM family-a\n")
    for name, parent in (("family-a", "family-b"), ("family-b", "family-a")):
        (fleet / "docker" / name).mkdir(parents=True)
        (fleet / "docker" / name / "Dockerfile").write_text(f"# {name}\nFROM {parent}\nRUN apt-get install -y curl\n")
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "depaudit", "scan", "services", "--site-packages", str(tmp_path / "empty"), "--format", "json"],
        cwd=fleet, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    circles = [(f["code"], f["path"], f["line"], f["message"]) for f in json.loads(result.stdout)["findings"] if "circle" in f["message"]]
    assert circles == [(
        "DA401", "docker/family-a/Dockerfile", 2,
        "the families are built from one another in a circle (family-a → family-b → family-a): no image can be built so,"
        " and their base image is unknown; fix the FROM lines or the config's `parent`",
    )]


def test_an_auto_found_config_naming_host_files_is_refused(tmp_path: Path) -> None:
    """Each path that leaves the project is dropped with a finding at its line; the rest of the
    config, and the scan, go on. Only where reports would be written outside stops the run."""
    (tmp_path / "services" / "svc").mkdir(parents=True)
    (tmp_path / "services" / "svc" / "main.py").write_text("import json\n")
    (tmp_path / "services" / "svc" / "Dockerfile").write_text("FROM f\n")
    (tmp_path / "env").mkdir()
    head = 'paths = ["services"]\nsite-packages = ["env"]\n'
    refused = "lies outside the project ({root}): not read; a config may name only the project's own files"
    cases = {
        '[services.x]\nentry = "/etc/passwd"\n': [(4, "[services.x] entry: /etc/passwd")],
        '[services.x]\npath = "../../etc"\n': [(4, f"[services.x] path: {tmp_path}/../../etc")],
        '[services.x]\nentry = "services/svc/main.py"\nsource-roots = ["/etc"]\n': [(5, "[services.x] source-roots: /etc")],
        'base-image = "/"\n': [(3, "top level base-image: /")],
        '[families.f]\ndockerfile = "/etc/hosts"\n': [(4, "[families.f] dockerfile: /etc/hosts")],
    }
    for text, expected in cases.items():
        (tmp_path / "depaudit.toml").write_text(head + text)
        result = subprocess.run(
            [sys.executable, "-m", "depaudit", "scan", "--format", "json"], cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 0, (text, result.stderr)
        report = json.loads(result.stdout)
        config_findings = [(f["line"], f["message"]) for f in report["findings"] if f["path"] == "depaudit.toml"]
        assert config_findings == [(line, f"{named} {refused.format(root=tmp_path)}") for line, named in expected], text
        assert "svc" in [service["name"] for service in report["services"]], text  # the rest is scanned
        assert "root:" not in result.stdout and "localhost" not in result.stdout, text  # nothing of the host files
    # The family Dockerfile it names is never read: refused where the family is planned.
    assert [(f["code"], f["path"], f["message"]) for f in report["findings"] if f["path"] != "depaudit.toml"] == [
        ("DA509", "/etc/hosts", "rejected: a file outside the project: not read, never patched")
    ]
    # Where reports would be written outside: nothing runs.
    (tmp_path / "depaudit.toml").write_text(head + 'output-dir = "/tmp/elsewhere"\n')
    result = subprocess.run([sys.executable, "-m", "depaudit", "scan"], cwd=tmp_path, capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (2, "")
    named = "top level output-dir: /tmp/elsewhere"
    assert f": {named} lies outside the project ({tmp_path}): a config may name only the project's own files" in result.stderr
