"""Sizes an attacker picks: one row per attack, the wall time of a whole `depaudit scan`.

Run by hand, never by CI (issue 21 asks each row under 5 s):

    .venv/bin/python benchmarks/hostile_sizes.py

Each attack is built in a temporary folder: a service of 100,000 imports; a family Dockerfile
with 60 apt options before `installx`; an LD_LIBRARY_PATH of 120,000 folders (the loader's
search, as a DT_RUNPATH that long would be); a docker save whose manifest lists one gzip layer
10,000 times. Services import nothing third-party, so no Python environment is needed beyond an
empty site-packages.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _scan(folder: Path, *args: str) -> float:
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "depaudit", "scan", *args, "--no-cache", "-q"], cwd=folder, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if run.returncode not in (0, 1):
        raise SystemExit(f"scan failed: {run.stderr[-2000:]}")
    return seconds


def _service(folder: Path, source: str) -> Path:
    (folder / "services" / "svc").mkdir(parents=True)
    (folder / "services" / "svc" / "main.py").write_text(source)
    (folder / "site-packages").mkdir()
    return folder


def imports(folder: Path) -> float:
    _service(folder, "".join(f"import json as j{number}\n" for number in range(100_000)))
    return _scan(folder, "services", "--site-packages", "site-packages")


def apt_options(folder: Path) -> float:
    _service(folder, "import json\n")
    (folder / "services" / "svc" / "Dockerfile").write_text("FROM family-x\n")
    (folder / "docker" / "family-x").mkdir(parents=True)
    (folder / "docker" / "family-x" / "Dockerfile").write_text("FROM ubuntu:22.04\nRUN apt-get " + "-a " * 60 + "installx curl\n")
    return _scan(folder, "services", "--site-packages", "site-packages")


def search_folders(folder: Path) -> float:
    _service(folder, "import ctypes\nctypes.CDLL('libnothere.so.1')\n")
    folders = ":".join(f"/nowhere/{number}" for number in range(120_000))  # too long for a command line: the config
    (folder / "depaudit.toml").write_text(f'paths = ["services"]\nsite-packages = ["site-packages"]\nenv = {{ LD_LIBRARY_PATH = "{folders}" }}\n')
    return _scan(folder)


def layer_listings(folder: Path) -> float:
    _service(folder, "import json\n")
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        data = b'ID=debian\nVERSION_ID="12"\n'
        member = tarfile.TarInfo("etc/os-release")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    files = {
        "manifest.json": json.dumps([{"Config": "config.json", "Layers": ["0/layer.tar"] * 10_000}]).encode(),
        "config.json": b'{"config": {"Env": ["PATH=/usr/bin"]}}',
        "0/layer.tar": gzip.compress(layer.getvalue()),
    }
    with tarfile.open(folder / "image.tar", "w") as tar:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return _scan(folder, "services", "--site-packages", "site-packages", "--image", "image.tar")


ATTACKS: dict[str, Callable[[Path], float]] = {
    "100,000 imports in one file": imports,
    "60 apt options before installx": apt_options,
    "a search path of 120,000 folders": search_folders,
    "one gzip layer listed 10,000 times": layer_listings,
}


def main() -> None:
    for name, attack in ATTACKS.items():
        with tempfile.TemporaryDirectory() as folder:
            seconds = attack(Path(folder))
        print(f"{name:<40} {seconds:6.2f} s  {'ok' if seconds < 5 else 'OVER 5 s'}")


if __name__ == "__main__":
    main()
