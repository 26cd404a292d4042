"""Real inputs for tests: wheels in cached venvs, dist-info folders, gcc-built shared objects."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_FLEET = REPO / "examples" / "fleet"


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "depaudit-tests"


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    assert len(found) == 1, f"expected one site-packages in {venv}, found {found}"
    return found[0]


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )


def index_reachable() -> bool:
    with tempfile.TemporaryDirectory() as scratch:
        probe = _pip(Path(sys.executable), "download", "--no-deps", "--dest", scratch, "six==1.16.0")
    return probe.returncode == 0


def build_wheel_env(name: str, pip_args: Sequence[str], cwd: Path = REPO) -> Path:
    """A venv with real wheels from the package index, cached across runs by its inputs.

    Returns its site-packages. Skips the calling test when the index cannot be reached.
    """
    key_material = [name, sys.version, *pip_args]
    for arg in pip_args:
        candidate = cwd / arg
        if candidate.is_file():  # requirements files: their content is part of the key
            key_material.append(candidate.read_text())
            for included in candidate.parent.rglob("*.txt"):
                key_material.append(f"{included}:{included.read_text()}")
    digest = hashlib.sha256("\0".join(key_material).encode()).hexdigest()[:16]
    venv = _cache_root() / f"{name}-{digest}"
    if (venv / ".complete").exists():
        return _site_packages(venv)

    venv.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=venv.parent))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True)
        result = _pip(staging / "bin" / "python", "install", "--no-compile", *pip_args)
        if result.returncode != 0:
            if not index_reachable():
                pytest.skip("the Python package index is unreachable: cannot install real wheels")
            pytest.fail(f"pip install {' '.join(pip_args)} failed:\n{result.stdout}\n{result.stderr}")
        (staging / ".complete").touch()
        # venvs are not relocatable for running, but we only read their site-packages.
        if not venv.exists():
            staging.rename(venv)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _site_packages(venv)


def make_dist(
    site_packages: Path,
    name: str,
    version: str = "1.0",
    *,
    files: dict[str, str | bytes] | None = None,
    existing: Sequence[str] = (),
    requires: Sequence[str] = (),
    top_level: Sequence[str] | None = None,
) -> Path:
    """Write a real dist-info folder (METADATA, RECORD, top_level.txt) and the files it lists.

    `files` are written with their content; `existing` are files already in place (e.g. built
    shared objects) that RECORD must list too.
    """
    site_packages.mkdir(parents=True, exist_ok=True)
    for relative, content in (files or {}).items():
        target = site_packages / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    info_name = f"{name.replace('-', '_')}-{version}.dist-info"
    info = site_packages / info_name
    info.mkdir()
    metadata = [f"Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(metadata) + "\n")
    if top_level is not None:
        (info / "top_level.txt").write_text("".join(f"{t}\n" for t in top_level))
    listed = [*(files or {}), *existing, f"{info_name}/METADATA", f"{info_name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{path},,\n" for path in listed))
    return info


def have_gcc() -> bool:
    return shutil.which("gcc") is not None


def build_so(
    out: Path,
    *,
    soname: str | None = None,
    needed: Sequence[Path] = (),
    rpath: str | None = None,
    runpath: str | None = None,
    extra: Sequence[str] = (),
) -> Path:
    """A real shared object: `needed` are linked by path, so their SONAMEs become DT_NEEDED."""
    out.parent.mkdir(parents=True, exist_ok=True)
    source = out.parent / f".{out.name}.c"
    symbol = "".join(c if c.isalnum() else "_" for c in out.name)
    source.write_text(f"int depaudit_{symbol}(void) {{ return 0; }}\n")
    command = ["gcc", "-shared", "-fPIC", "-o", str(out), str(source), "-Wl,--no-as-needed"]
    if soname:
        command.append(f"-Wl,-soname,{soname}")
    if rpath:
        command += ["-Wl,--disable-new-dtags", f"-Wl,-rpath,{rpath}"]
    if runpath:
        command += ["-Wl,--enable-new-dtags", f"-Wl,-rpath,{runpath}"]
    command += [*extra, *map(str, needed)]
    subprocess.run(command, check=True, capture_output=True)
    source.unlink()
    return out


def build_vision_env(root: Path) -> Path:
    """A site-packages with one real wheel-shaped distribution, as opencv is laid out.

    `visionlib/_core` (an extension module) links a bundled `libvis-1a2b.so.1` that needs
    libGL.so.1; a plugin no extension module links needs libX11.so.6. Returns site-packages.
    """
    stubs, sp = root / "stubs", root / "site-packages"
    gl = build_so(stubs / "libGL.so.1", soname="libGL.so.1")
    x11 = build_so(stubs / "libX11.so.6", soname="libX11.so.6")
    libc_dep = build_so(stubs / "libz.so.1", soname="libz.so.1")
    vis = build_so(sp / "visionlib.libs/libvis-1a2b.so.1", soname="libvis-1a2b.so.1", needed=[gl, libc_dep])
    build_so(sp / "visionlib/_core.cpython-311-x86_64-linux-gnu.so", needed=[vis], rpath="$ORIGIN/../visionlib.libs")
    build_so(sp / "visionlib/plugins/libxplugin.so", needed=[x11])
    make_dist(
        sp,
        "visionlib",
        "2.0",
        files={"visionlib/__init__.py": ""},
        existing=[
            "visionlib.libs/libvis-1a2b.so.1",
            "visionlib/_core.cpython-311-x86_64-linux-gnu.so",
            "visionlib/plugins/libxplugin.so",
        ],
        requires=["helperlib"],
    )
    make_dist(sp, "helperlib", "0.1", files={"helperlib.py": ""})
    make_dist(sp, "unusedlib", "0.1", files={"unusedlib.py": ""})
    return sp
