"""Time depaudit on a real site-packages and the example fleet; prints medians. Run by hand:

    .venv/bin/python benchmarks/scan_fleet.py [--site-packages DIR] [--runs N]

Not run by CI: figures, not pass/fail. Each measurement is a whole process, as users run it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

ELF_STAGE = """
import sys, time
from pathlib import Path
from depaudit.python.environment import load_environment
from depaudit.native.distribution import elf_candidates
from depaudit.native.elf import read_elf, ElfError
start = time.perf_counter()
env = load_environment([Path(sys.argv[1])])
files = [p for d in env.distributions.values() for p in elf_candidates(d)]
for path in files:
    try:
        read_elf(path)
    except ElfError:
        pass
print(len(files), time.perf_counter() - start)
"""


def _median_seconds(command: list[str], runs: int) -> tuple[float, str]:
    times, last = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-200:]
    return statistics.median(times), last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-packages", type=Path, default=Path(sysconfig.get_paths()["purelib"]))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sp = args.site_packages.resolve()

    elf_wall, elf_out = _median_seconds([sys.executable, "-c", ELF_STAGE, str(sp)], args.runs)
    files, inner = elf_out.split()
    scan = [sys.executable, "-m", "depaudit", "scan", str(REPO / "examples/fleet/services"), "--site-packages", str(sp), "--format", "json"]
    scan_wall, _ = _median_seconds(scan, args.runs)
    print(f"site-packages: {sp}")
    print(f"ELF stage: {files} ELF files read with pyelftools, median {float(inner):.3f} s in-process, {elf_wall:.3f} s whole process")
    print(f"depaudit scan of the example fleet (4 services), whole process: median {scan_wall:.3f} s over {args.runs} runs")


if __name__ == "__main__":
    main()
