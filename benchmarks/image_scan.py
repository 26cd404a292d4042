"""Issue 22, target 4: a second `--image` scan against the warm `--site-packages` scan.

    .venv/bin/python benchmarks/image_scan.py --runs 3

On the reference inputs (`reference_inputs.py`: gpu-image.tar holds the gpu-venv's site-packages),
each round runs, interleaved: a first `--image` scan into an empty cache folder, a second one into
the same folder, and a `--site-packages` scan of the same environment with a warm cache. Prints
each run and the medians; the second image scan over the warm one is the figure of the target
(at most 1.3). Also checks that the two image scans' JSON reports are byte-identical.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

BENCH = Path.home() / ".cache/depaudit-bench"


def _scan(config: str, cache: Path, output: Path, image: Path | None) -> float:
    command = [sys.executable, "-m", "depaudit", "scan", "--config", config, "--format", "json", "--fail-on", "never",
               "--no-progress", "--cache-dir", str(cache), "--output", str(output)]
    if image is not None:
        command += ["--image", str(image)]
    start = time.perf_counter()
    subprocess.run(command, cwd=BENCH / "monorepo", check=True)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--image", type=Path, default=BENCH / "gpu-image.tar")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="depaudit-image-bench-"))
    try:
        warm_cache = scratch / "warm"
        _scan("depaudit.toml", warm_cache, scratch / "warm.json", None)  # warms it
        figures: dict[str, list[float]] = {"first": [], "second": [], "warm": []}
        for run in range(args.runs):
            cache = scratch / f"image-{run}"
            figures["first"].append(_scan("depaudit-image.toml", cache, scratch / "first.json", args.image))
            figures["second"].append(_scan("depaudit-image.toml", cache, scratch / "second.json", args.image))
            figures["warm"].append(_scan("depaudit.toml", warm_cache, scratch / "warm.json", None))
            same = (scratch / "first.json").read_bytes() == (scratch / "second.json").read_bytes()
            print(f"run {run + 1}: first {figures['first'][-1]:.1f} s, second {figures['second'][-1]:.1f} s, "
                  f"warm --site-packages {figures['warm'][-1]:.1f} s; reports identical: {same}", flush=True)
            shutil.rmtree(cache, ignore_errors=True)
        medians = {name: statistics.median(values) for name, values in figures.items()}
        print(f"median: first {medians['first']:.1f} s, second {medians['second']:.1f} s, warm {medians['warm']:.1f} s; "
              f"second / warm = {medians['second'] / medians['warm']:.2f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
