"""What finding a lock's wheels in pip's HTTP cache costs (lock/pip_cache.py).

    .venv/bin/python benchmarks/pip_http_cache.py [--wheels DIR] [--newer-pip WHEEL] [--runs N]

The wheels are lock_read.py's (~/.cache/depaudit-bench/lock-wheels: torch, torchvision,
opencv-python and their CUDA 13 wheels, 33 files, 3.1 GB). They are served over HTTP on this
machine as a simple index with PyPI's caching headers, and real pip downloads them
(`pip download --no-deps --cache-dir`) into a pip cache kept under ~/.cache/depaudit-bench:
this venv's pip writes the older one-file `http/` entries; `--newer-pip` (a pip ≥ 23.3 wheel, run
from the wheel) writes `http-v2/*.body` too. pip is not run by what is timed.

Timed, whole processes unless said:
- `index, cold` / `index, warm` (in this process): `http_wheels` over the pip cache with an empty
  depaudit cache, then again with the index it wrote (no body opened);
- `lock, cold` / `lock, warm`: `depaudit scan --lock` of a hashed requirements.txt pinning the 33
  wheels, no --find-links, no index, PIP_CACHE_DIR set to that cache; cold with an empty cache
  folder (bodies indexed, every wheel hashed and laid out; an older pip's bodies copied out first).
Not run by CI.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from lock_read import _PLATFORMS, BENCH, WHEELS, _sha256, _timed  # noqa: E402

from depaudit.lock.pip_cache import http_wheels  # noqa: E402


class _Caching(http.server.SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Cache-Control", "max-age=31536000, public")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return None


def _pip_cache(wheels: list[Path], folder: Path, pip: list[str]) -> Path:
    """A pip cache holding the wheels, as real pip downloads them from an index on 127.0.0.1."""
    if (folder / ".complete").exists():
        return folder
    with tempfile.TemporaryDirectory(prefix="served-", dir=BENCH) as scratch:
        root = Path(scratch)
        (root / "files").mkdir()
        for wheel in wheels:
            (root / "files" / wheel.name).symlink_to(wheel)
            project = root / "simple" / canonicalize_name(parse_wheel_filename(wheel.name)[0])
            project.mkdir(parents=True, exist_ok=True)
            with open(project / "index.html", "a") as page:
                page.write(f'<a href="../../files/{wheel.name}">{wheel.name}</a>\n')
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Caching, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
            env["PIP_CONFIG_FILE"] = os.devnull
            pins = [f"{parse_wheel_filename(w.name)[0]}=={parse_wheel_filename(w.name)[1]}" for w in wheels]
            platforms = [a for p in _PLATFORMS for a in ("--platform", p)]
            subprocess.run(
                [*pip, "download", "--disable-pip-version-check", "--no-deps", "--only-binary", ":all:", "--python-version", "3.11",
                 *platforms, "--index-url", f"http://127.0.0.1:{server.server_address[1]}/simple", "--trusted-host", "127.0.0.1",
                 "--cache-dir", str(folder), "-d", str(root / "dest"), *pins],
                check=True, env=env,
            )
        finally:
            server.shutdown()
            server.server_close()
    (folder / ".complete").touch()
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, default=WHEELS)
    parser.add_argument("--newer-pip", type=Path, help="a pip ≥ 23.3 wheel: its http-v2 cache is measured too")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    wheels = sorted(args.wheels.glob("*.whl"))
    caches = {"pip 23.2 (http/)": _pip_cache(wheels, BENCH / "pip-cache-http", [sys.executable, "-m", "pip"])}
    if args.newer_pip:
        caches["pip ≥ 23.3 (http-v2/)"] = _pip_cache(wheels, BENCH / "pip-cache-http-v2", [sys.executable, str(args.newer_pip / "pip")])
    print(f"{len(wheels)} wheels, {sum(w.stat().st_size for w in wheels) / 1e9:.2f} GB")
    with tempfile.TemporaryDirectory(prefix="pip-cache-bench-", dir=BENCH) as scratch:
        work = Path(scratch)
        (work / "services" / "svc").mkdir(parents=True)
        (work / "services" / "svc" / "main.py").write_text("import torch\nimport torchvision\nimport cv2\n")
        lines = [f"{parse_wheel_filename(w.name)[0]}=={parse_wheel_filename(w.name)[1]} --hash=sha256:{_sha256(w)}" for w in wheels]
        (work / "requirements.txt").write_text("\n".join(lines) + "\n")
        for label, pip_dir in caches.items():
            bodies = sum(1 for p in pip_dir.rglob("*") if p.is_file())
            times: dict[str, list[float]] = {}
            for run in range(args.runs):
                cache = work / f"cache-{hashlib.sha1(label.encode()).hexdigest()[:6]}-{run}"
                for phase in ("index, cold", "index, warm"):
                    start = time.perf_counter()
                    found = http_wheels(pip_dir, cache)
                    times.setdefault(phase, []).append(time.perf_counter() - start)
                assert sum(len(v) for v in found.values()) == len(wheels), found.keys()
                env_cache = work / f"scan-{run}-{hashlib.sha1(label.encode()).hexdigest()[:6]}"
                command = [sys.executable, "-m", "depaudit", "scan", "services", "--distro", "ubuntu-22.04", "--format", "json",
                           "--fail-on", "never", "--lock", "requirements.txt", "--python-version", "3.11", "--cache-dir", str(env_cache),
                           "--output", str(work / "out.json")]
                os.environ["PIP_CACHE_DIR"] = str(pip_dir)
                for phase in ("lock, cold", "lock, warm"):
                    wall, cpu = _timed(command, work)
                    times.setdefault(phase, []).append(wall)
                    times.setdefault(phase + " (CPU)", []).append(cpu)
            print(f"\n{label}: {bodies} files in pip's cache")
            for phase, values in times.items():
                print(f"  {phase:22} {statistics.median(values):8.3f} s")


if __name__ == "__main__":
    main()
