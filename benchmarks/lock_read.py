"""Issue 23's benchmark: an audit from a lock against `pip install --no-deps` of the same wheels.

    .venv/bin/python benchmarks/lock_read.py [--wheels DIR] [--pins FILE] [--runs N]

The wheels are torch 2.14.1, torchvision 0.29.1 and opencv-python 5.0.0.93 with their CUDA 13
nvidia-* wheels: the distributions of ~/.cache/depaudit-bench/gpu-venv (reference_inputs.py),
downloaded once with `pip download --no-deps` into ~/.cache/depaudit-bench/lock-wheels. The lock
is a requirements.txt pinning each with its sha256 (`--hash`), as `pip-compile --generate-hashes`
writes it. One service imports torch, torchvision and cv2.

Timed in one run, interleaved (run 1 of every row, then run 2, ...), whole processes:
- `lock, cold`: `depaudit scan --lock` with an empty cache: every wheel hashed, laid out, audited;
- `lock, warm`: again with that cache (the wheels' digests and trees kept, nothing of them read);
- `pip install --no-deps --target`: the same wheel files into a fresh folder (`--no-index`,
  `--no-compile`): what an audit of the installed environment would need first;
- `scan of pip's folder`: `depaudit scan --site-packages` of that folder, cold.
Bytes: what the cold layout read of the wheels (each byte once: `touched`; and every read,
repeats counted), from the trees' records; hashing reads each wheel once more, whole.
The two reports are compared, environments aside: they must be equal. Not run by CI.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = Path.home() / ".cache" / "depaudit-bench"
GPU_VENV = BENCH / "gpu-venv"
WHEELS = BENCH / "lock-wheels"
_PLATFORMS = [
    "manylinux_2_35_x86_64", "manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_25_x86_64",
    "manylinux_2_18_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_12_x86_64",
    "manylinux2010_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64",
]


def _pins_of_venv(venv: Path) -> list[str]:
    (site,) = venv.glob("lib/python3*/site-packages")
    pins = []
    for info in sorted(site.glob("*.dist-info")):
        name, _, version = info.name[: -len(".dist-info")].rpartition("-")
        if name != "pip":  # the venv's installer; setuptools stays: torch requires it
            pins.append(f"{name}=={version}")
    return pins


def _wheels(folder: Path, pins: list[str]) -> Path:
    if (folder / ".complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    platforms = [arg for platform in _PLATFORMS for arg in ("--platform", platform)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--python-version", "3.11",
         *platforms, "-d", str(folder), *pins],
        check=True,
    )
    (folder / ".complete").touch()
    return folder


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall-clock seconds, and CPU seconds (user + system, the process and its workers): on a
    machine shared with other work, the CPU time says more than the wall clock."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _report(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    data.pop("environments")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, default=WHEELS, help="a folder of the wheels (downloaded when it lacks .complete)")
    parser.add_argument("--pins", type=Path, help="name==version lines (default: the distributions of gpu-venv)")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    pins = args.pins.read_text().split() if args.pins else _pins_of_venv(GPU_VENV)
    wheels = _wheels(args.wheels, pins)
    files = sorted(wheels.glob("*.whl"))
    total = sum(path.stat().st_size for path in files)
    depaudit = [sys.executable, "-m", "depaudit", "scan", "services", "--distro", "ubuntu-22.04", "--format", "json", "--fail-on", "never"]
    times: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="lock-bench-", dir=BENCH) as scratch:
        work = Path(scratch)
        (work / "services" / "svc").mkdir(parents=True)
        (work / "services" / "svc" / "main.py").write_text("import torch\nimport torchvision\nimport cv2\n")
        by_name = {path.name.split("-")[0].lower().replace("_", "-"): path for path in files}
        lines = []
        for pin in pins:
            name = pin.split("==")[0].lower().replace("_", "-")
            lines.append(f"{pin} --hash=sha256:{_sha256(by_name[name])}" if name in by_name else pin)
        (work / "requirements.txt").write_text("\n".join(lines) + "\n")
        lock_args = ["--lock", "requirements.txt", "--find-links", str(wheels), "--python-version", "3.11"]
        trees: Path | None = None
        for run in range(args.runs):
            cold = work / f"cache-{run}"
            times.setdefault("lock, cold", []).append(
                _timed([*depaudit, *lock_args, "--cache-dir", str(cold), "--output", str(work / "lock.json")], work)
            )
            times.setdefault("lock, warm", []).append(
                _timed([*depaudit, *lock_args, "--cache-dir", str(cold), "--output", str(work / "lock-warm.json")], work)
            )
            target = work / f"pip-{run}"
            times.setdefault("pip install --no-deps --target", []).append(
                _timed([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-compile", "--target", str(target), *map(str, files)], work)
            )
            times.setdefault("scan of pip's folder, cold", []).append(
                _timed([*depaudit, "--site-packages", str(target), "--cache-dir", str(work / f"cache-pip-{run}"), "--output", str(work / "pip.json")], work)
            )
            trees = cold / "wheel-trees"
            if run + 1 < args.runs:
                shutil.rmtree(target)
        records = [json.loads(p.read_text()) for p in sorted(trees.glob("*/*/*/.depaudit-tree.json"))] if trees else []
        touched = sum(r["bytes_touched"] for r in records)
        read = sum(r["bytes_read"] for r in records)
        laid = sum(r["wheel_bytes"] for r in records)
        reports = {name: _report(work / f"{name}.json") for name in ("lock", "lock-warm", "pip")}
        same = reports["lock"] == reports["pip"] == reports["lock-warm"]
        if not same:  # kept for a look: which fields differ, and the files
            kept = BENCH / "lock-bench-reports"
            kept.mkdir(exist_ok=True)
            for name in reports:
                shutil.copy(work / f"{name}.json", kept / f"{name}.json")
            differing = sorted({key for name in reports for key in reports[name] if reports[name].get(key) != reports["pip"].get(key)})
            print(f"  reports differ in {', '.join(differing)}: kept in {kept}")
        print(f"wheels: {len(files)} files, {total / 1e9:.2f} GB ({wheels}); pins: {len(pins)}; runs: {args.runs}")
        print(f"  {'':<36} {'wall, median':>14} {'CPU, median':>13}   runs (wall/CPU)")
        for row, values in times.items():
            wall, cpu = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
            shown = ", ".join(f"{w:.1f}/{c:.1f}" for w, c in values)
            print(f"  {row:<36} {wall:12.1f} s {cpu:11.1f} s   ({shown})")
        print(f"  layout read of the wheels: {touched / 1e6:,.0f} MB of {laid / 1e6:,.0f} MB = {100 * touched / laid:.1f} % "
              f"(every read counted: {100 * read / laid:.1f} %); hashing reads each wheel once more, whole (cold only)")
        for record in sorted(records, key=lambda r: -r["wheel_bytes"])[:12]:
            print(f"    {record['wheel'][:64]:<64} {record['wheel_bytes'] / 1e6:8.1f} MB  {100 * record['bytes_touched'] / record['wheel_bytes']:5.1f} %")
        print(f"  same report from the lock (cold, warm) and from pip's folder, environments aside: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
