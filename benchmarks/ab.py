"""Compare depaudit checkouts with their runs interleaved: A, B, A, B, ...

Run by hand, never by CI:

    git worktree add --detach /tmp/before <commit>
    .venv/bin/python benchmarks/ab.py /tmp/before . --runs 10
    .venv/bin/python benchmarks/ab.py /tmp/before . --only elf --only scan-warm --runs 15

On this 2-core machine the same code's figures drift by ±10 % over an hour, which two separate
compare.py runs cannot tell from a change. Interleaving gives both checkouts the same drift; the
minimum, which noise can only raise, is printed beside the median. Every checkout runs on
compare.py's reference inputs (benchmarks/reference_inputs.py builds what is missing), with
this interpreter and its installed dependencies, each checkout's depaudit first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from compare import _IN_PROCESS, Settings, _cache_env, _scan_command, _worker, child_env, run_once
from reference_inputs import Inputs, prepare

# What each measure reports for one run of one checkout: seconds of wall-clock time, and of CPU
# (all processes, None where not measured).
Measure = Callable[[Path, Inputs, Path], tuple[float, float | None]]


def _scan(inputs: Inputs, checkout: Path, cache: Path) -> tuple[float, float | None]:
    settings = Settings(1, 1, 0, sys.executable, cache)
    command = _scan_command(settings, cache, ["--config", inputs.monorepo / "depaudit.toml"])
    env = {**_cache_env(cache), "PYTHONPATH": str(checkout)}
    run = run_once(command, env=env, cwd=inputs.monorepo)  # from the monorepo: never this folder's depaudit
    if run.returncode != 0:
        raise SystemExit(f"depaudit scan failed in {checkout}:\n{run.stderr[-2000:]}")
    return run.seconds, run.cpu_seconds


def scan_cold(checkout: Path, inputs: Inputs, scratch: Path) -> tuple[float, float | None]:
    return _scan(inputs, checkout, Path(tempfile.mkdtemp(prefix="cold-", dir=scratch)))


def scan_warm(checkout: Path, inputs: Inputs, scratch: Path) -> tuple[float, float | None]:
    cache = scratch / ("warm" + str(checkout).replace("/", "_"))
    if not cache.is_dir():
        cache.mkdir()
        _scan(inputs, checkout, cache)  # fills the cache, untimed
    return _scan(inputs, checkout, cache)


def elf(checkout: Path, inputs: Inputs, scratch: Path) -> tuple[float, float | None]:
    """The ELF stage's own time, cold, as workers.py prints it (no interpreter start)."""
    cache = Path(tempfile.mkdtemp(prefix="elf-", dir=scratch))
    env = child_env(PYTHONPATH=str(checkout))
    run = run_once(_worker(sys.executable, "depaudit-elf", inputs.site_packages, cache)(), env=env, cwd=scratch)
    found = _IN_PROCESS.search(run.stdout)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"the ELF stage failed in {checkout}:\n{run.stderr[-2000:]}")
    return float(found.group(1)), None


MEASURES: dict[str, Measure] = {"elf": elf, "scan-cold": scan_cold, "scan-warm": scan_warm}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs="+", type=Path, help="folders holding a depaudit/ package; the first is the baseline")
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each checkout per measure (default 10)")
    parser.add_argument("--only", choices=MEASURES, action="append", help="run only these measures (repeatable)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "depaudit-bench", help="where inputs are built")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    checkouts = [folder.resolve() for folder in args.checkouts]
    for folder in checkouts:
        if not (folder / "depaudit" / "__init__.py").is_file():
            raise SystemExit(f"{folder}: no depaudit package there")
    inputs = prepare(args.cache, "python3", None, None, None)
    with tempfile.TemporaryDirectory(prefix="ab-", dir=args.cache) as scratch:
        for name, measure in MEASURES.items():
            if args.only and name not in args.only:
                continue
            times: dict[Path, list[float]] = {folder: [] for folder in checkouts}
            cpu: dict[Path, list[float]] = {folder: [] for folder in checkouts}
            for _ in range(args.runs):
                for folder in checkouts:
                    wall, used = measure(folder, inputs, Path(scratch))
                    times[folder].append(wall)
                    cpu[folder] += [used] if used is not None else []
            base = statistics.median(times[checkouts[0]])
            for folder in checkouts:
                median, best = statistics.median(times[folder]), min(times[folder])
                line = f"{name:10} {str(folder):40} median {median:.3f} s  min {best:.3f} s  {median / base:.2f}× the first"
                if cpu[folder]:
                    line += f"  CPU median {statistics.median(cpu[folder]):.2f} s"
                print(line)


if __name__ == "__main__":
    main()
