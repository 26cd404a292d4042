"""depaudit never imports, runs, loads or `ldd`s what it audits: every way the audited tree
could run code writes a sentinel file, and after a real scan (with its worker processes) no
sentinel exists, while the report shows that each of those files was read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from depaudit.scan import ScanOptions, run_scan
from helpers import build_so, have_gcc, make_dist

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")

EXT = "evilpkg/_core.cpython-311-x86_64-linux-gnu.so"
TOOLS = ("ldd", "objdump", "readelf", "file", "evil-tool", "python", "python3")


def _constructor_so(out: Path, sentinel: Path, soname: str, needed: list[Path], rpath: str | None = None) -> Path:
    """A shared object whose constructor writes `sentinel` the moment anything loads it."""
    source = out.parent / f".{out.name}.constructor.c"
    out.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(
        "#include <stdio.h>\n"
        f'__attribute__((constructor)) static void loaded(void) {{ FILE *f = fopen("{sentinel}", "w"); if (f) fclose(f); }}\n'
    )
    build_so(out, soname=soname, needed=needed, rpath=rpath, extra=[str(source)])
    source.unlink()
    return out


def _writes(sentinel: Path) -> str:
    return f"open({str(sentinel)!r}, 'w').close()\n"


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[tuple[Path, Path, Path, Path]]:
    """services/, site-packages/, a bin/ of fake tools, and the sentinel folder (empty)."""
    sentinels, sp, bin_dir = tmp_path / "sentinels", tmp_path / "sp", tmp_path / "bin"
    sentinels.mkdir()
    gl = build_so(tmp_path / "stubs" / "libGL.so.1", soname="libGL.so.1")
    bundled = _constructor_so(sp / "evilpkg.libs" / "libevil-1a2b.so.1", sentinels / "bundled-loaded", "libevil-1a2b.so.1", [gl])
    _constructor_so(sp / EXT, sentinels / "extension-loaded", "_core.so", [bundled], rpath="$ORIGIN/../evilpkg.libs")
    make_dist(
        sp,
        "evilpkg",
        files={
            "evilpkg/__init__.py": _writes(sentinels / "package-imported") + "import ctypes\nctypes.CDLL('libevilhint.so.7')\n",
            "evil.pth": "import os; " + _writes(sentinels / "pth-ran"),
            "sitecustomize.py": _writes(sentinels / "sitecustomize-ran"),
        },
        existing=[EXT, "evilpkg.libs/libevil-1a2b.so.1"],
        top_level=["evilpkg"],
    )
    service = tmp_path / "services" / "svc"
    service.mkdir(parents=True)
    (service / "main.py").write_text(
        "import evilpkg\nimport subprocess\n" + _writes(sentinels / "service-ran") + "subprocess.run(['evil-tool', '-x'])\n"
    )
    for name in ("setup.py", "conftest.py", "__main__.py"):
        (service / name).write_text(_writes(sentinels / f"{name}-ran"))
    bin_dir.mkdir()
    for tool in TOOLS:
        script = bin_dir / tool
        script.write_text(f"#!/bin/sh\ntouch {sentinels / ('tool-' + tool)}\n")
        script.chmod(0o755)
    yield tmp_path / "services", sp, bin_dir, sentinels


def _needs(service: dict) -> dict[str, str]:
    return {need["name"]: need["status"] for need in service["needs"]}


def test_a_scan_with_workers_runs_nothing_it_audits(tmp_path: Path, hostile: tuple[Path, Path, Path, Path]) -> None:
    services, sp, bin_dir, sentinels = hostile
    out = tmp_path / "report.json"
    command = [sys.executable, "-m", "depaudit", "scan", str(services), "--site-packages", str(sp), "--distro", "ubuntu-22.04"]
    command += ["--no-cache", "--jobs", "2", "--format", "json", "--output", str(out), "--fail-on", "never"]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in sentinels.iterdir()) == []
    service = json.loads(out.read_text())["services"][0]
    # Every file that could have run was read: the ELF chain, the package's hint, the service's.
    needs = _needs(service)
    assert needs["libGL.so.1"] == "missing"
    assert needs["libevil-1a2b.so.1"] == "bundled"
    assert needs["libevilhint.so.7"] == "unmapped"
    assert needs["evil-tool"] == "unmapped"
    assert [(i["file"], i["module"], i["distribution"]) for i in service["imports"]] == [("svc/main.py", "evilpkg", "evilpkg")]


def test_in_process_no_subprocess_dlopen_or_import_of_audited_code(hostile: tuple[Path, Path, Path, Path]) -> None:
    services, sp, _bin, sentinels = hostile
    events: list[tuple[str, str]] = []
    audited = ("evilpkg", "main", "setup", "conftest", "__main__", "sitecustomize")
    active = [True]

    def hook(event: str, args: tuple) -> None:  # type: ignore[type-arg]
        if not active[0]:
            return
        if event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "ctypes.dlopen"):
            events.append((event, str(args[0])))
        elif event == "import" and str(args[0]).split(".")[0] in audited:
            events.append((event, str(args[0])))

    sys.addaudithook(hook)  # cannot be removed: made inert once the scan is done
    try:
        report = run_scan(ScanOptions((services,), (sp,), "ubuntu-22.04", use_cache=False, processes=1))
    finally:
        active[0] = False
    assert events == []
    assert sorted(p.name for p in sentinels.iterdir()) == []
    assert {n.name: n.status for n in report.services[0].needs}["libGL.so.1"] == "missing"
