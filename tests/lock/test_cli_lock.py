"""`--lock` on the command line and `lock` in the config: how a user names a lock, and the
usage errors around it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema

from depaudit.emit.json_report import load_schema
from lock_wheels import Wheels


def _depaudit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "depaudit", *args], capture_output=True, text=True, cwd=cwd, env=env)


def _fleet(tmp_path: Path) -> Path:
    service = tmp_path / "services" / "svc"
    service.mkdir(parents=True)
    (service / "main.py").write_text("import demo\n")
    (tmp_path / "requirements.txt").write_text("demo==1.0\nnowhere==2.0\n")
    return tmp_path


def test_a_lock_named_in_the_config_is_audited_from_its_wheels(wheels: Wheels, tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    (root / "depaudit.toml").write_text(
        'paths = ["services"]\ndistro = "ubuntu-22.04"\n'
        f'lock = "requirements.txt"\npython-version = "3.11"\nfind-links = ["{wheels.folder}"]\n'
    )
    result = _depaudit("scan", "--format", "json", "--cache-dir", str(tmp_path / "cache"), cwd=root)
    assert result.returncode == 1, result.stderr  # demo's extension module needs libsystemonly.so.1
    report = json.loads(result.stdout)
    jsonschema.validate(report, load_schema())
    assert report["environments"][0]["source"] == "the wheels of " + str(root / "requirements.txt") + " for Python 3.11 on ubuntu-22.04, from depaudit.toml"
    assert [(f["code"], f["kind"]) for f in report["findings"]] == [("DA601", "lock_no_wheel")]
    assert report["distribution_count"] == 1


def test_lock_and_site_packages_are_one_choice(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    result = _depaudit("scan", "services", "--lock", "requirements.txt", "--site-packages", ".", cwd=root)
    assert result.returncode == 2
    assert "argument --site-packages: not allowed with argument --lock" in result.stderr


def test_a_python_version_is_x_dot_y(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    result = _depaudit("scan", "services", "--lock", "requirements.txt", "--python-version", "3.11.4", cwd=root)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("--python-version takes X.Y (e.g. 3.11), not '3.11.4'")


def test_a_lock_that_is_not_there_is_a_usage_error(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    result = _depaudit("scan", "services", "--lock", "pylock.toml", cwd=root)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("lock: no such file: pylock.toml (from --lock)")


def test_a_lock_option_without_a_lock_is_a_usage_error(tmp_path: Path) -> None:
    """Nothing would read it: the scan would look as if it had applied it."""
    root = _fleet(tmp_path)
    for flag, value in (("--find-links", "wheels"), ("--index-url", "https://example.invalid/simple"), ("--python-version", "3.11")):
        result = _depaudit("scan", "services", flag, value, "--cache-dir", str(tmp_path / "cache"), cwd=root)
        assert result.returncode == 2, (flag, result.stdout)
        assert result.stderr == f"depaudit: error: {flag} is for the wheels of a lock, and no lock is given (--lock, or `lock` in the config or a family)\n"


def test_a_lock_key_in_the_config_without_a_lock_is_a_usage_error_naming_its_line(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    config = root / "depaudit.toml"
    config.write_text('paths = ["services"]\n\n[families.gpu]\ndockerfile = "Dockerfile"\nfind-links = ["wheels"]\n')
    result = _depaudit("scan", "--cache-dir", str(tmp_path / "cache"), cwd=root)
    assert result.returncode == 2, result.stdout
    assert result.stderr == (
        f"depaudit: error: {config}, line 5: [families.gpu] find-links is for the wheels of a lock, "
        "and no lock is given (--lock, or `lock` in the config or a family)\n"
    )
    config.write_text('paths = ["services"]\nindex-url = "https://example.invalid/simple"\n')
    result = _depaudit("scan", "--cache-dir", str(tmp_path / "cache"), cwd=root)
    assert result.returncode == 2 and result.stderr.startswith(f"depaudit: error: {config}, line 2: top level index-url is for the wheels of a lock")


def test_a_familys_lock_makes_the_lock_options_wanted(wheels: Wheels, tmp_path: Path) -> None:
    """The top level's find-links and python-version serve a family's lock: no usage error."""
    root = _fleet(tmp_path)
    (root / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    (root / "depaudit.toml").write_text(
        f'distro = "ubuntu-22.04"\npython-version = "3.11"\nfind-links = ["{wheels.folder}"]\n\n'
        '[families.gpu]\ndockerfile = "Dockerfile"\nlock = "requirements.txt"\n\n'
        '[services.svc]\npath = "services/svc"\nfamily = "gpu"\n'
    )
    result = _depaudit("scan", "--format", "json", "--cache-dir", str(tmp_path / "cache"), "--python-version", "3.11", cwd=root)
    assert result.returncode == 1, result.stderr  # demo's extension module needs libsystemonly.so.1
    report = json.loads(result.stdout)
    assert [(f["code"], f["kind"]) for f in report["findings"]] == [("DA601", "lock_no_wheel")]
    assert report["distribution_count"] == 1
