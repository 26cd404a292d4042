"""Which Python environment a scan audits, and the report saying which and why: the flags, the
config, then $VIRTUAL_ENV, ./.venv and the interpreter running depaudit, never a tool's own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from depaudit.options import InputError
from depaudit.python.locate import default_environment, interpreter_folders
from helpers import build_vision_env, have_gcc

REPO = Path(__file__).resolve().parents[2]
needs_gcc = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")


@pytest.fixture(scope="module")
def vision_sp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_vision_env(tmp_path_factory.mktemp("vision-choice"))


def make_venv(root: Path, site_packages: Path, version: str = "3.11") -> Path:
    """A venv's layout (pyvenv.cfg, bin/python, lib/pythonX.Y/site-packages) around `site_packages`."""
    (root / "bin").mkdir(parents=True)
    (root / "lib" / f"python{version}").mkdir(parents=True)
    (root / "pyvenv.cfg").write_text(f"home = /usr/bin\ninclude-system-site-packages = false\nversion = {version}.7\n")
    (root / "bin" / "python").symlink_to(sys.executable)
    (root / "lib" / f"python{version}" / "site-packages").symlink_to(site_packages, target_is_directory=True)
    return root


def service(folder: Path, source: str = "import visionlib\n") -> Path:
    (folder / "svc").mkdir(parents=True)
    (folder / "svc" / "main.py").write_text(source)
    return folder / "svc"


def depaudit(*args: str, cwd: Path, python: str = sys.executable, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    environ["PYTHONPATH"] = str(REPO)  # a tool venv below runs this checkout's depaudit
    return subprocess.run(
        [python, "-m", "depaudit", *args], capture_output=True, text=True, cwd=cwd, env={**environ, **env}
    )


def environments(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)["environments"]


@needs_gcc
def test_virtual_env_then_dot_venv_each_named_in_the_report(tmp_path: Path, vision_sp: Path) -> None:
    svc = service(tmp_path)
    active = make_venv(tmp_path / "active", vision_sp)
    local = make_venv(tmp_path / ".venv", vision_sp)
    folder = [str(vision_sp.resolve())]
    by_active = depaudit("scan", str(svc), "--format", "json", cwd=tmp_path, VIRTUAL_ENV=str(active))
    assert environments(by_active) == [{"site_packages": folder, "source": "$VIRTUAL_ENV"}]
    assert json.loads(by_active.stdout)["distribution_count"] == 3
    by_local = depaudit("scan", str(svc), "--format", "json", cwd=tmp_path)
    assert environments(by_local) == [{"site_packages": folder, "source": "./.venv"}]
    shutil.rmtree(local)
    table = depaudit("scan", str(svc), "--site-packages", str(vision_sp), cwd=tmp_path)
    assert f"Python environment: {vision_sp.resolve()} (--site-packages)\n" in table.stdout


@needs_gcc
def test_python_names_the_environment_by_its_interpreter(tmp_path: Path, vision_sp: Path) -> None:
    svc = service(tmp_path)
    venv = make_venv(tmp_path / "env", vision_sp)
    by_python = depaudit("scan", str(svc), "--python", str(venv / "bin" / "python"), "--format", "json", cwd=tmp_path)
    by_folder = depaudit("scan", str(svc), "--site-packages", str(vision_sp), "--format", "json", cwd=tmp_path)
    assert environments(by_python) == [{"site_packages": [str(vision_sp.resolve())], "source": "--python"}]
    assert json.loads(by_python.stdout)["services"] == json.loads(by_folder.stdout)["services"]
    missing = depaudit("scan", str(svc), "--python", str(tmp_path / "nope" / "python"), cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (2, f"depaudit: error: --python: no such interpreter: {tmp_path}/nope/python\n")
    both = depaudit("scan", str(svc), "--python", str(venv / "bin" / "python"), "--site-packages", str(vision_sp), cwd=tmp_path)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_an_interpreter_outside_a_venv_is_read_by_its_prefix(tmp_path: Path) -> None:
    prefix = tmp_path / "usr"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "python3.10").symlink_to(sys.executable)
    (prefix / "bin" / "python3").symlink_to("python3.10")
    for folder in ("lib/python3.10/site-packages", "lib/python3/dist-packages", "local/lib/python3.10/dist-packages"):
        (prefix / folder).mkdir(parents=True)
    (prefix / "lib" / "python3.12" / "site-packages").mkdir(parents=True)  # another Python's: not this one's
    assert interpreter_folders(prefix / "bin" / "python3") == (
        prefix / "lib/python3.10/site-packages", prefix / "local/lib/python3.10/dist-packages", prefix / "lib/python3/dist-packages",
    )
    (prefix / "bin" / "python").write_bytes(b"\x7fELF")  # named python, two lib/python3.X: which?
    with pytest.raises(InputError, match=r"cannot tell its Python version; name the versioned interpreter"):
        interpreter_folders(prefix / "bin" / "python")


def test_a_venv_that_includes_the_system_packages_reads_them_after_its_own(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "bin").mkdir(parents=True)
    (base / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "pyvenv.cfg").write_text(f"home = {base / 'bin'}\ninclude-system-site-packages = true\nversion_info = 3.11.7\n")
    assert interpreter_folders(venv / "bin" / "python") == (
        venv / "lib/python3.11/site-packages", base / "lib/python3.11/site-packages",
    )


def test_the_default_without_venvs_is_the_running_interpreter(tmp_path: Path) -> None:
    choice = default_environment(tmp_path, {})
    assert (choice.source, choice.fallback) == ("the interpreter running depaudit", True)
    assert Path(sys.prefix) in choice.folders[0].parents
    (tmp_path / ".venv").mkdir()  # no pyvenv.cfg: not a venv
    assert default_environment(tmp_path, {}).source == "the interpreter running depaudit"
    with pytest.raises(InputError, match=r"\$VIRTUAL_ENV names no folder: /nowhere"):
        default_environment(tmp_path, {"VIRTUAL_ENV": "/nowhere"})


def tool_venv(root: Path) -> Path:
    """What `pipx install` makes: a venv holding depaudit and what it requires, nothing else.
    Its metadata is copied from this environment; its code is this checkout's (PYTHONPATH)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = next((root / "lib").glob("python3*/site-packages"))
    todo, seen = ["depaudit"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        dist = metadata.distribution(name)
        shutil.copytree(Path(str(dist._path)), site / Path(str(dist._path)).name)  # type: ignore[attr-defined]
        for text in dist.requires or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    # The copied metadata's code: this environment's site-packages, read through a .pth.
    (site / "code.pth").write_text(str(Path(metadata.distribution("libcst").locate_file(""))) + "\n")
    return root


def test_a_tools_own_environment_is_never_audited_in_silence(tmp_path: Path) -> None:
    """`pipx install depaudit`, then `depaudit scan services` with no venv active and none here:
    auditing depaudit's own venv would call every import missing. Exit 2, saying what to give."""
    tool = tool_venv(tmp_path / "pipx" / "depaudit")
    svc = service(tmp_path / "fleet", "import cv2\n")
    result = depaudit("scan", str(svc), cwd=tmp_path / "fleet", python=str(tool / "bin" / "python"))
    site = next((tool / "lib").glob("python3*/site-packages"))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"depaudit: error: no Python environment named, and the one depaudit runs from ({site}) holds only "
        "depaudit: give --site-packages (a site-packages folder or a venv root) or --python (the services' "
        "interpreter), activate the services' venv, or run where their ./.venv is\n"
    )
