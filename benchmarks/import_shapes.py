"""100,000 imports in one file, in the shapes that decide which parser reads them: the wall time
and CPU time of a whole `depaudit scan --no-cache` per shape.

Run by hand, never by CI:

    .venv/bin/python benchmarks/import_shapes.py

Every shape is read from the `ast` tree (collect/import_ast.py); until that walk, imports in a
block (a try that guards them, a def that makes them lazy) and a file that renames
import_module were read by libcst, whose parse was then most of the time (6.5-8.4 s of CPU).
Issue 21 asks under 5 s of the first shape: hostile_sizes.py.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COUNT = 100_000

SHAPES: dict[str, str] = {
    "at module level": "".join(f"import json as j{n}\n" for n in range(COUNT)),
    "in one try: / except ImportError:": "try:\n"
    + "".join(f"    import json as j{n}\n" for n in range(COUNT))
    + "except ImportError:\n    pass\n",
    "in one def": "def load():\n" + "    import json\n" * COUNT,
    "at module level, a comment of 'é' each": "".join(f"import json as j{n}  # é\n" for n in range(COUNT)),
    "at module level, import_module renamed": "from importlib import import_module as load\n"
    + "".join(f"import json as j{n}\n" for n in range(COUNT)),
}


def _scan(source: str) -> tuple[float, float]:
    """Wall and CPU seconds of one scan of a service whose main.py is `source`."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "services" / "svc").mkdir(parents=True)
        (root / "services" / "svc" / "main.py").write_text(source)
        (root / "site-packages").mkdir()
        command = [sys.executable, "-m", "depaudit", "scan", "services", "--site-packages", "site-packages", "--no-cache", "-q"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        run = subprocess.run(command, cwd=root, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode not in (0, 1):
        raise SystemExit(f"scan failed: {run.stderr[-2000:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    for name, source in SHAPES.items():
        wall, cpu = _scan(source)
        print(f"100,000 imports {name:<42} {wall:6.2f} s wall {cpu:6.2f} s CPU")


if __name__ == "__main__":
    main()
