"""One service file edited, then scanned again: the memo misses, and what the per-file caches and
the per-stage results give back is all a re-scan costs. Beside it, the memo hit of the same tree.

Run by hand, never by CI:

    .venv/bin/python benchmarks/edit_rescan.py                       # this checkout
    .venv/bin/python benchmarks/edit_rescan.py /tmp/before . --runs 3  # checkouts interleaved

The benchmark monorepo (~/.cache/depaudit-bench/monorepo; benchmarks/reference_inputs.py builds
it) is copied to a scratch folder, never edited in place. Each checkout gets its own cache folder,
filled by an untimed scan. Then, per run and per checkout: a comment line appended to
agents/agent_01.py, a wait past the memo's racy window (2 s: a scan of a file changed later than
that is not memoised), the timed scan after the edit, and the timed scan that hits. Each
checkout's depaudit runs first on PYTHONPATH, with this interpreter. The stage times of the last
scan after an edit (-v) are printed too.

`--edit import` appends an import line instead (`import json as _edit_N`: a stdlib module, so the
same wheels are reached), an edit that changes what the scan collects from the file: the memo
cannot be reused (memo_edit.py) and the scan runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MONOREPO = Path.home() / ".cache" / "depaudit-bench" / "monorepo"
EDITED = Path("agents") / "agent_01.py"


def scan(checkout: Path, tree: Path, cache: Path) -> tuple[float, str]:
    command = [
        sys.executable, "-m", "depaudit", "scan", "--config", "depaudit.toml", "--format", "json",
        "--fail-on", "never", "--cache-dir", str(cache), "--output", str(cache / "report.json"), "-v",
    ]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(checkout.resolve())
    start = time.perf_counter()
    run = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"scan failed ({checkout}):\n{run.stderr[-2000:]}")
    return seconds, run.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs="*", type=Path, default=[Path(".")])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--monorepo", type=Path, default=MONOREPO)
    parser.add_argument("--edit", choices=("comment", "import"), default="comment", help="the line appended (default: a comment)")
    arguments = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="edit-rescan-"))
    try:
        tree = scratch / "monorepo"
        shutil.copytree(arguments.monorepo, tree, symlinks=True)
        caches = {checkout: scratch / f"cache-{number}" for number, checkout in enumerate(arguments.checkouts)}
        for checkout, cache in caches.items():
            cache.mkdir()
            scan(checkout, tree, cache)  # cold: fills the caches, untimed
        times: dict[Path, tuple[list[float], list[float]]] = {checkout: ([], []) for checkout in caches}
        last: dict[Path, str] = {}
        for run in range(arguments.runs):
            for checkout, cache in caches.items():
                with open(tree / EDITED, "a") as stream:
                    number = run * len(caches) + list(caches).index(checkout)
                    stream.write(f"# edit {run} for {checkout}\n" if arguments.edit == "comment" else f"import json as _edit_{number}\n")
                time.sleep(2.1)
                missed, said = scan(checkout, tree, cache)
                hit, hit_said = scan(checkout, tree, cache)
                if "memo hit" not in hit_said:
                    raise SystemExit(f"the second scan after an edit did not hit the memo ({checkout}):\n{hit_said[-2000:]}")
                times[checkout][0].append(missed)
                times[checkout][1].append(hit)
                last[checkout] = said
        for checkout, (misses, hits) in times.items():
            print(f"{checkout}:")
            print(f"  scan after one edit: {' '.join(f'{t:.2f}' for t in misses)} s (median {statistics.median(misses):.2f})")
            print(f"  memo hit:            {' '.join(f'{t:.2f}' for t in hits)} s (median {statistics.median(hits):.2f})")
            print(f"  ratio of medians:    {statistics.median(misses) / statistics.median(hits):.2f}x")
            print("  stages of the last scan after an edit:")
            for line in last[checkout].splitlines():
                if line.strip():
                    print(f"    {line}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
