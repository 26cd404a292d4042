"""How a scan grows with the fleet: checkouts × monorepos, cold or warm, runs interleaved.

Run by hand, never by CI:

    git worktree add --detach /tmp/before <commit>
    .venv/bin/python benchmarks/scale.py /tmp/before . \\
        --monorepo ~/.cache/depaudit-bench/monorepo --monorepo ~/.cache/depaudit-bench/monorepo-50 --runs 5
    .venv/bin/python benchmarks/scale.py . --monorepo A --monorepo B --cold --runs 3

Each monorepo is scanned with its own `depaudit.toml`, from its folder, with this interpreter and
each checkout's depaudit first on PYTHONPATH (as ab.py does). `--cold` gives every run an empty
cache folder; else one folder per checkout and monorepo is filled by an untimed run first. Per
row: wall and CPU time (all processes), median and minimum (noise only adds), the peak summed
PSS of the process tree (workers included) and the largest single process's peak RSS; then,
per checkout, each monorepo's median against the first one's: issue 22's scale targets are the
50-service fleet at most 2× (cold) and 1.5× (warm) the 14-service monorepo.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from compare import Run, child_env, run_once


def _scan(checkout: Path, monorepo: Path, cache: Path, output: Path) -> Run:
    command = [
        sys.executable, "-m", "depaudit", "scan", "--config", "depaudit.toml", "--format", "json", "--fail-on", "never",
        "--cache-dir", cache, "--output", output,
    ]
    run = run_once(command, env=child_env(PYTHONPATH=str(checkout)), cwd=monorepo)  # never this folder's depaudit
    if run.returncode != 0:
        raise SystemExit(f"depaudit scan failed in {checkout} on {monorepo}:\n{run.stderr[-2000:]}")
    return run


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs="+", type=Path, help="folders holding a depaudit/ package")
    parser.add_argument("--monorepo", type=Path, action="append", required=True, help="a folder with a depaudit.toml (repeatable; the first is the reference)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each checkout on each monorepo (default 5)")
    parser.add_argument("--cold", action="store_true", help="an empty cache folder for every run (default: warm)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    checkouts = [folder.resolve() for folder in args.checkouts]
    monorepos = [folder.expanduser().resolve() for folder in args.monorepo]
    for folder in checkouts:
        if not (folder / "depaudit" / "__init__.py").is_file():
            raise SystemExit(f"{folder}: no depaudit package there")
    rows = [(checkout, monorepo) for checkout in checkouts for monorepo in monorepos]
    runs: dict[tuple[Path, Path], list[Run]] = {row: [] for row in rows}
    with tempfile.TemporaryDirectory(prefix="scale-") as scratch:
        folder = Path(scratch)
        warm = {row: folder / f"warm-{index}" for index, row in enumerate(rows)}
        if not args.cold:
            for row in rows:
                _scan(*row, warm[row], folder / "report.json")  # fills the cache, untimed
        for _ in range(args.runs):
            for row in rows:
                cache = Path(tempfile.mkdtemp(prefix="cold-", dir=folder)) if args.cold else warm[row]
                runs[row].append(_scan(*row, cache, folder / "report.json"))
                if args.cold:
                    shutil.rmtree(cache)
    mode = "cold" if args.cold else "warm"
    for checkout, monorepo in rows:
        done = runs[checkout, monorepo]
        wall, cpu = [run.seconds for run in done], [run.cpu_seconds for run in done]
        print(
            f"{mode} {checkout.name:16} {monorepo.name:14} wall median {statistics.median(wall):6.2f} s min {min(wall):6.2f} s"
            f"  CPU median {statistics.median(cpu):6.2f} s min {min(cpu):6.2f} s"
            f"  tree PSS {max(run.tree_pss_mib for run in done):5.0f} MiB  peak RSS {max(run.max_rss_mib for run in done):5.0f} MiB"
        )
    for checkout in checkouts:
        first = statistics.median(run.seconds for run in runs[checkout, monorepos[0]])
        first_cpu = statistics.median(run.cpu_seconds for run in runs[checkout, monorepos[0]])
        for monorepo in monorepos[1:]:
            wall = statistics.median(run.seconds for run in runs[checkout, monorepo])
            cpu = statistics.median(run.cpu_seconds for run in runs[checkout, monorepo])
            print(f"{mode} {checkout.name}: {monorepo.name} / {monorepos[0].name} = {wall / first:.2f}× wall, {cpu / first_cpu:.2f}× CPU")


if __name__ == "__main__":
    main()
