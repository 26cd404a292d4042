"""Compare depaudit with the tools users know, on a real GPU site-packages and a real monorepo.

Issue 7, item 5. Run by hand, never by CI or pytest:

    .venv/bin/python benchmarks/compare.py [--runs N] [--json FILE] [--profile]
    .venv/bin/python benchmarks/compare.py --site-packages DIR --monorepo DIR --tools-venv DIR

Absent inputs are built once under ~/.cache/depaudit-bench (benchmarks/reference_inputs.py; pip
downloads several GB of CUDA wheels the first time). Every figure is the wall-clock median of
whole processes, all run in this one invocation, each group's rows interleaved (run 1 of each,
then run 2 of each, ...) so that the ratios compare like with like. The OS page cache is warm
for every tool (an untimed run first); "cold" and "warm" name depaudit's own result cache.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reference_inputs import (
    AGENTS,
    BASE_IMAGE,
    SCALE_FAMILIES,
    SCALE_SERVICES,
    Inputs,
    ensure_image,
    ensure_scale_monorepo,
    image_config,
    log,
    prepare,
)

REPO = Path(__file__).resolve().parent.parent
WORKERS = Path(__file__).resolve().parent / "workers.py"
# The call patterns the hint stage looks for (README: "What the ELF walk cannot see"), as grep -E.
HINT_PATTERN = (
    r"(CDLL|PyDLL|LoadLibrary|find_library|dlopen|Popen|check_output|check_call|getoutput|which"
    r"|subprocess\.(run|call)|os\.(system|popen|exec[a-z]*))[[:space:]]*\("
)


# --- running and timing processes --------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as stream:
                found.extend(int(child) for child in stream.read().split())
    except OSError:
        pass
    return found


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as stream:
            for line in stream:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeMemory(threading.Thread):
    """Samples the summed PSS of a process and its descendants: a process pool's workers count
    together (ru_maxrss only knows the largest single process), shared pages only once."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak_kib = pid, interval, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            pids, tree = [self.pid], []
            while pids:
                pid = pids.pop()
                tree.append(pid)
                pids.extend(_children(pid))
            self.peak_kib = max(self.peak_kib, sum(map(_pss_kib, tree)))
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak_kib


@dataclass
class Run:
    seconds: float
    returncode: int
    max_rss_mib: float  # peak RSS of the largest single process (GNU time's %M, else ru_maxrss)
    tree_pss_mib: float  # sampled peak of the whole process tree
    stdout: str
    stderr: str
    cpu_seconds: float = 0.0  # user + system of the process and the children it waited for


GNU_TIME = "/usr/bin/time"


def _peak_rss_kib(rss_file: str, usage: Any) -> int:
    """GNU time's %M when the tool ran under it: forked from that tiny process, the tool's peak
    is its own, whereas ru_maxrss of a child forked from this Python counts this process too."""
    lines = Path(rss_file).read_text().split()
    return int(lines[-1]) if lines and lines[-1].isdigit() else int(usage.ru_maxrss)


def child_env(**extra: str) -> dict[str, str]:
    """This environment, less PYTHONDONTWRITEBYTECODE (set on some machines): Python tools run as
    users run them, with their bytecode cached after the first run, not compiled in every one."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **extra}


def run_once(command: Sequence[str | Path], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss:
        argv = list(map(str, command))
        if os.access(GNU_TIME, os.X_OK):
            argv = [GNU_TIME, "-f", "%M", "-o", rss.name, *argv]
        start = time.perf_counter()
        process = subprocess.Popen(
            argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env or child_env(), cwd=cwd
        )
        memory = TreeMemory(process.pid)
        memory.start()
        _pid, status, usage = os.wait4(process.pid, 0)  # wait4: this child's rusage too
        seconds = time.perf_counter() - start
        tree_kib = memory.stop()
        max_rss_kib = _peak_rss_kib(rss.name, usage)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, os.waitstatus_to_exitcode(status), max_rss_kib / 1024, tree_kib / 1024, stdout, stderr, cpu)


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1][:200] if lines else ""


@dataclass
class Job:
    """One way to run a tool: `command` and `env` are asked for before each run (a cold run
    gets a fresh cache folder), `summarize` turns a run's stdout and stderr into the counts shown."""

    command: Callable[[], Sequence[str | Path]]
    env: Callable[[], dict[str, str] | None] = lambda: None
    cwd: Path | None = None
    ok: frozenset[int] = frozenset({0})
    summarize: Callable[[str, str], str] = lambda stdout, _stderr: _last_line(stdout)
    describe: Callable[[], str] | None = None  # what the last run left behind (a report file)


@dataclass
class Row:
    key: str
    work: str
    tool: str
    reference: str | None  # key of the row this one's ratio is taken against
    status: str = "ok"  # ok, not installed, failed (...)
    times: list[float] = field(default_factory=list)
    median: float | None = None
    max_rss_mib: float | None = None
    tree_pss_mib: float | None = None
    output: str = ""
    note: str = ""
    stage_outputs: list[str] = field(default_factory=list)  # each run's last stdout line


@dataclass
class _Plan:
    row: Row
    job: Job
    runs: int
    warmup: int
    then: Callable[[Row], None] | None
    results: list[Run] = field(default_factory=list)
    failed: bool = False


class Schedule:
    """The runs of one group's rows, taken round-robin: run 1 of every row, then run 2 of every
    row, and so on. This machine's speed drifts by tens of percent within minutes; measured one
    after another, two rows could land in different minutes and their ratio would show the drift,
    not the tools. A row that changes what others read (it touches the site-packages) runs alone,
    after the others."""

    def __init__(self) -> None:
        self.shared: list[_Plan] = []
        self.alone: list[_Plan] = []

    def add(
        self,
        row: Row,
        job: Job,
        runs: int,
        warmup: int,
        *,
        alone: bool = False,
        then: Callable[[Row], None] | None = None,
    ) -> Row:
        """`row`, to be measured by `run()`; `then` is called with it once it is."""
        (self.alone if alone else self.shared).append(_Plan(row, job, runs, warmup, then))
        return row

    def run(self) -> None:
        self._rounds(self.shared)
        for plan in self.alone:
            self._rounds([plan])
        self.shared, self.alone = [], []

    def _rounds(self, plans: list[_Plan]) -> None:
        for plan in plans:  # the untimed runs first: the page cache warm for every row
            for _ in range(plan.warmup):
                self._once(plan)
        for index in range(max((plan.runs for plan in plans), default=0)):
            for plan in plans:
                if index < plan.runs:
                    result = self._once(plan)
                    if result is not None:
                        plan.results.append(result)
        for plan in plans:
            if not plan.failed:
                _finish(plan.row, plan.job, plan.results)
            if plan.then is not None:
                plan.then(plan.row)

    @staticmethod
    def _once(plan: _Plan) -> Run | None:
        if plan.failed:
            return None
        result = run_once(plan.job.command(), plan.job.env(), plan.job.cwd)
        # A crash can be quick: never let it pass for a fast run.
        if result.returncode not in plan.job.ok or "Traceback (most recent call last)" in result.stderr:
            plan.row.status = f"failed (exit {result.returncode}: {_last_line(result.stderr or result.stdout)[:120]})"
            log(f"{plan.row.tool}: {plan.row.status}")
            plan.failed = True
            return None
        return result


def _finish(row: Row, job: Job, results: list[Run]) -> None:
    row.times = [r.seconds for r in results]
    row.stage_outputs = [_last_line(r.stdout) for r in results]
    row.median = statistics.median(row.times)
    row.max_rss_mib = max(r.max_rss_mib for r in results)
    row.tree_pss_mib = max(r.tree_pss_mib for r in results)
    row.output = (
        (job.describe() if job.describe else "")
        or job.summarize(results[-1].stdout, results[-1].stderr)
        or _last_line(results[-1].stderr)
    )
    log(f"{row.tool}: median {row.median:.3f} s over {len(results)} runs ({row.output})")


def missing(row: Row, what: str) -> Row:
    row.status = f"not installed ({what})"
    log(f"{row.tool}: {row.status}")
    return row


def external(
    schedule: Schedule, row: Row, program: Path | None, job: Callable[[Path], Job], runs: int, warmup: int, install: str
) -> Row:
    """A row of another project's tool: measured when it is installed, else says so."""
    return schedule.add(row, job(program), runs, warmup) if program is not None else missing(row, install)


# --- the measurements --------------------------------------------------------------------


@dataclass
class Settings:
    runs: int
    slow_runs: int
    warmup: int
    python: str  # the interpreter with depaudit, pyelftools and libcst
    scratch: Path  # fresh cache folders and lists of paths live here
    cache: Path = Path.home() / ".cache" / "depaudit-bench"  # where inputs are built
    lddtree_sample: int = 0  # 0: every ELF file
    schedule: Schedule = field(default_factory=Schedule)  # the group's rows, run by main()


def _worker(python: str | Path, name: str, *args: str | Path) -> Callable[[], list[str | Path]]:
    return lambda: [python, WORKERS, name, *args]


def _fresh_folder(settings: Settings, prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=settings.scratch))


def _cache_env(folder: Path) -> dict[str, str]:
    return child_env(DEPAUDIT_CACHE_DIR=str(folder))


def _program(venv: Path | None, name: str) -> Path | None:
    """The tools venv's, else the PATH's."""
    if venv is not None and (venv / "bin" / name).exists():
        return venv / "bin" / name
    found = shutil.which(name)
    return Path(found) if found else None


def elf_rows(inputs: Inputs, settings: Settings) -> list[Row]:
    sp = inputs.site_packages
    work = f"DT_NEEDED of the {len(inputs.elf_paths)} ELF files among {inputs.site_files:,} files"
    elf_list = settings.scratch / "elf-files.txt"
    elf_list.write_text("\n".join(inputs.elf_paths) + "\n", encoding="utf-8")
    runs, warmup, schedule = settings.runs, settings.warmup, settings.schedule
    rows = []

    def scanelf(program: Path) -> Job:
        return Job(
            lambda: [program, "-R", "-n", "-q", sp],
            summarize=lambda out, _: f"{len(out.splitlines())} ELF files with DT_NEEDED",
        )

    row = Row("elf.scanelf", work, "scanelf -R -n (C)", None)
    rows.append(external(schedule, row, _program(None, "scanelf"), scanelf, runs, warmup, "apt-get install pax-utils"))

    row = Row("elf.floor-walk", work, "os.pread + struct, walk everything (floor)", "elf.scanelf")
    rows.append(schedule.add(row, Job(_worker(settings.python, "floor-walk", sp)), runs, warmup))
    row = Row("elf.floor-paths", work, "os.pread + struct, given the ELF paths", "elf.scanelf")
    rows.append(schedule.add(row, Job(_worker(settings.python, "floor-paths", elf_list)), runs, warmup))
    row = Row("elf.pyelftools", work, "pyelftools, one ELFFile per file, given the paths", "elf.scanelf")
    rows.append(schedule.add(row, Job(_worker(settings.python, "pyelftools", elf_list)), runs, warmup))
    rows.append(_lddtree_row(inputs, settings, work, elf_list))
    rows += _depaudit_elf_rows(inputs, settings, work)
    return rows


def _lddtree_row(inputs: Inputs, settings: Settings, work: str, elf_list: Path) -> Row:
    row = Row("elf.lddtree", work, "auditwheel lddtree.ldd() per file", "elf.scanelf")
    python = _program(inputs.tools_venv, "python")
    if inputs.tools_venv is None or python is None or run_once([python, "-c", "import auditwheel.lddtree"]).returncode:
        return missing(row, "pip install auditwheel")
    total, sample = len(inputs.elf_paths), settings.lddtree_sample
    count = min(sample, total) if sample else total

    def extrapolate(row: Row) -> None:
        if row.median is not None and count < total:
            row.times = [t * total / count for t in row.times]  # per-file cost taken as even
            row.median = statistics.median(row.times)
            row.note = f"extrapolated from the first {count} of {total} files"

    job = Job(_worker(python, "lddtree", elf_list, str(count)))
    return settings.schedule.add(row, job, settings.slow_runs, 0, then=extrapolate)


def _depaudit_elf_rows(inputs: Inputs, settings: Settings, work: str) -> list[Row]:
    runs, rows = settings.runs, []
    for temperature in ("cold", "warm"):
        row = Row(
            f"elf.depaudit-{temperature}",
            work,
            f"depaudit ELF stage (API, every distribution), {temperature}",
            "elf.scanelf",
        )
        job = _cached_job(
            settings,
            temperature,
            lambda folder: [settings.python, WORKERS, "depaudit-elf", inputs.site_packages, folder],
        )
        stage = Row(
            f"elf.depaudit-stage-{temperature}",
            work,
            f"depaudit ELF stage, {temperature}: in-process (no interpreter start)",
            "elf.scanelf",
        )
        settings.schedule.add(row, job, runs, _warmup(settings, temperature), then=functools.partial(_stage_row, row=stage))
        rows += [row, stage]

    # The same through the command line: one service that imports torch, cv2 and torchvision.
    service = settings.scratch / "one-service"
    service.mkdir(exist_ok=True)
    (service / "main.py").write_text("import cv2\nimport torch\nimport torchvision\n", encoding="utf-8")
    for temperature in ("cold", "warm"):
        row = Row(
            f"elf.depaudit-service-{temperature}",
            work,
            f"depaudit scan of 1 service (torch, cv2, torchvision), {temperature}",
            "elf.scanelf",
        )
        rows.append(
            settings.schedule.add(
                row,
                _scan_job(
                    settings,
                    temperature,
                    [service, "--site-packages", inputs.site_packages, "--base-image", BASE_IMAGE],
                ),
                runs,
                _warmup(settings, temperature),
            )
        )
    return rows


_IN_PROCESS = re.compile(r"([0-9.]+) s in-process")


def _stage_row(measured: Row, row: Row) -> None:
    """The stage's own time, which the worker prints for every run, as a row of its own: the
    issue's ELF targets are about the stage, the whole-process row beside it adds the interpreter
    start and the imports (~0.2 s)."""
    row.status, row.output = measured.status, measured.output
    row.times = [float(match.group(1)) for match in map(_IN_PROCESS.search, measured.stage_outputs) if match]
    if row.times and len(row.times) == len(measured.times):
        row.median = statistics.median(row.times)
    else:
        row.status = f"failed (no in-process time in: {measured.output[:80]})"


def _warmup(settings: Settings, temperature: str) -> int:
    """Warm runs need one first to fill the cache; a cold warm-up run has its own empty folder."""
    return max(1, settings.warmup) if temperature in ("warm", "reinstalled", "edited") else settings.warmup


def _cached_job(settings: Settings, temperature: str, command: Callable[[Path], Sequence[str | Path]]) -> Job:
    """A fresh, empty depaudit cache folder for each run (cold), or one folder for all (warm),
    given as DEPAUDIT_CACHE_DIR too, so that no user cache is ever read."""
    current = [_fresh_folder(settings, f"{temperature}-")]

    def next_command() -> Sequence[str | Path]:
        if temperature == "cold":
            current[0] = _fresh_folder(settings, "cold-")
        return command(current[0])

    # measure() asks for the command first, then the environment: both see the same folder.
    return Job(
        next_command, lambda: _cache_env(current[0]), describe=lambda: _report_summary(current[0] / "report.json")
    )


def _scan_command(settings: Settings, folder: Path, arguments: Sequence[str | Path]) -> list[str | Path]:
    # A report file, not /dev/null: an atomic writer (temp file + rename) must never replace it.
    output: list[str | Path] = ["--format", "json", "--output", folder / "report.json", "--fail-on", "never"]
    return [settings.python, "-m", "depaudit", "scan", *arguments, "--cache-dir", folder, *output]


def _scan_job(settings: Settings, temperature: str, arguments: Sequence[str | Path]) -> Job:
    return _cached_job(settings, temperature, lambda folder: _scan_command(settings, folder, arguments))


def _report_summary(path: Path) -> str:
    """A few counts of a scan's JSON report, to see that the run audited what it should."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        services = report["services"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    needs = sum(len(service.get("needs", ())) for service in services)
    imports = sum(len(service.get("imports", ())) for service in services)
    return f"{len(services)} services, {imports} imports, {needs} needs"


def import_rows(inputs: Inputs, settings: Settings) -> list[Row]:
    repo, runs, warmup, schedule = inputs.monorepo, settings.runs, settings.warmup, settings.schedule
    work = f"imports of the monorepo ({inputs.monorepo_py_files:,} .py files)"
    rows = []
    # --python: third-party imports resolved in the same environment depaudit is given.
    venv = next((folder for folder in inputs.site_packages.parents if (folder / "pyvenv.cfg").exists()), None)
    python: list[str | Path] = ["--python", venv] if venv is not None else []

    def ruff(program: Path) -> Job:
        return Job(lambda: [program, "analyze", "graph", *python, "."], cwd=repo, summarize=_graph_summary)

    row = Row("imports.ruff", work, "ruff analyze graph (Rust)", None)
    rows.append(external(schedule, row, _program(inputs.tools_venv, "ruff"), ruff, runs, warmup, "pip install ruff"))
    row = Row("imports.deptry", work, "deptry (Rust parser)", "imports.ruff")
    rows.append(
        external(
            schedule,
            row,
            _program(inputs.tools_venv, "deptry"),
            lambda program: _deptry_job(program, inputs),
            runs,
            warmup,
            "pip install deptry",
        )
    )
    rows[-1].note = f"({len(DEPTRY_CRASHES)} files it crashes on left out)" if rows[-1].status == "ok" else ""

    row = Row("imports.ast", work, "stdlib ast, 1 process", "imports.ruff")
    rows.append(schedule.add(row, Job(_worker(settings.python, "ast-imports", repo)), runs, warmup))
    row = Row("imports.libcst", work, "libcst parse_module + visitor, 1 process", "imports.ruff")
    rows.append(schedule.add(row, Job(_worker(settings.python, "libcst-imports", repo)), settings.slow_runs, 0))
    return rows


# deptry 0.25.1 dies (ValueError: A distribution name is required) on a relative
# importlib.import_module(".management", package); these files of django do that.
DEPTRY_CRASHES = ("django/core/management/commands/flush.py", "django/core/management/commands/migrate.py")


def _deptry_job(deptry: Path, inputs: Inputs) -> Job:
    excludes = [r"\.git", *(re.escape(path) for path in DEPTRY_CRASHES)]  # replaces its default, which skips tests/
    # deptry maps packages to modules through the environment it runs in: give it the image's.
    env = child_env(PYTHONPATH=str(inputs.site_packages))
    return Job(
        lambda: [deptry, ".", *(arg for pattern in excludes for arg in ("--exclude", pattern)), "--no-ansi"],
        lambda: env,
        cwd=inputs.monorepo,
        ok=frozenset({0, 1}),  # 1: dependency issues found
        summarize=lambda _, err: " ".join(re.findall(r"Found \d+ dependency issues", err)),
    )


def _graph_summary(stdout: str, _stderr: str) -> str:
    try:
        graph = json.loads(stdout)
    except ValueError:
        return ""
    return f"{len(graph)} files, {sum(map(len, graph.values()))} edges"


def hint_rows(inputs: Inputs, settings: Settings) -> list[Row]:
    sp = inputs.site_packages
    work = f"ctypes/subprocess call sites among the {inputs.site_py_files:,} .py files of the site-packages"
    grep: list[str | Path] = ["grep", "-rlE", "--include=*.py", HINT_PATTERN, sp]
    row = Row("hints.grep", work, "grep -rlE of the call patterns", None)
    # grep exits 1 when nothing matched: still a valid run.
    job = Job(lambda: grep, ok=frozenset({0, 1}), summarize=lambda out, _: f"{len(out.splitlines())} files match")
    rows = [settings.schedule.add(row, job, settings.runs, settings.warmup)]
    matches = subprocess.run(list(map(str, grep)), check=False, capture_output=True, text=True).stdout.split()
    match_list = settings.scratch / "hint-matches.txt"
    match_list.write_text("\n".join(sorted(matches)) + "\n", encoding="utf-8")
    row = Row("hints.libcst", work, f"libcst parse + visitor of the {len(matches)} matches", "hints.grep")
    rows.append(settings.schedule.add(row, Job(_worker(settings.python, "libcst-calls", match_list)), settings.slow_runs, 0))
    row = Row("hints.ast", work, f"stdlib ast parse of the {len(matches)} matches", "hints.grep")
    rows.append(settings.schedule.add(row, Job(_worker(settings.python, "ast-calls", match_list)), settings.runs, settings.warmup))
    for route, how in (("libcst", "the ast cut, then libcst (a service's file)"), ("ast", "the ast walk (a wheel's file)")):
        row = Row(f"hints.depaudit-{route}", work, f"depaudit's hint reader on the {len(matches)} matches: {how}", "hints.grep")
        job = Job(_worker(settings.python, "depaudit-hints", match_list, route))
        rows.append(settings.schedule.add(row, job, settings.runs, settings.warmup))
    return rows


def scan_rows(inputs: Inputs, settings: Settings) -> list[Row]:
    config = inputs.monorepo / "depaudit.toml"
    work = f"depaudit scan --config of {len(AGENTS)} entry scripts (whole process)"
    rows = []
    tools = {
        "cold": "depaudit scan, cold cache",
        "warm": "depaudit scan, warm cache (the whole-scan memo)",
        "reinstalled": "depaudit scan, warm cache, wheels reinstalled (every file a new stat)",
        "edited": "depaudit scan, warm cache, one service file edited",
    }
    edited = inputs.monorepo / "agents" / "agent_01.py"
    for temperature, reference in (
        ("cold", "imports.deptry"), ("warm", "imports.ruff"), ("reinstalled", "scan.cold"), ("edited", "scan.warm"),
    ):
        row = Row(f"scan.{temperature}", work, tools[temperature], reference)
        job = _scan_job(settings, "warm" if temperature == "edited" else temperature, ["--config", config])
        job.cwd = inputs.monorepo
        then = None
        if temperature == "reinstalled":
            job.command = _touching(inputs.site_packages, job.command)
        if temperature == "edited":
            job.command, then = _editing(edited, job.command)
        # The touch and the edit would turn the other rows' warm runs into other ones: they run alone.
        alone = temperature in ("reinstalled", "edited")
        rows.append(settings.schedule.add(row, job, settings.runs, _warmup(settings, temperature), alone=alone, then=then))
    return rows


def _editing(
    path: Path, command: Callable[[], Sequence[str | Path]]
) -> tuple[Callable[[], Sequence[str | Path]], Callable[[Row], None]]:
    """`command`, after a new comment line at the end of `path` (a new memo key for nothing else:
    what issue 22 calls one file changed); and what puts the file back as it was, once measured.
    The first run (the untimed warm-up: the row has a cache folder of its own) scans the file as
    it is, so that every timed run finds the memo of the tree before its edit, as a scan run
    after the developer's last one does."""
    original = path.read_bytes()
    status = path.stat()
    runs = [0]

    def edited() -> Sequence[str | Path]:
        runs[0] += 1
        if runs[0] > 1:
            path.write_bytes(original + f"# edited for a benchmark run ({runs[0]})\n".encode())
        return command()

    def restore(_: Row) -> None:
        path.write_bytes(original)
        os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))

    return edited, restore


def scale_rows(inputs: Inputs, settings: Settings) -> list[Row]:
    """Issue 22, target 5: 50 services in 3 families over the same environment."""
    root = ensure_scale_monorepo(settings.cache, inputs.monorepo, inputs.site_packages)
    work = f"depaudit scan --config of {SCALE_SERVICES} entry scripts in {len(SCALE_FAMILIES)} families"
    rows = []
    for temperature in ("cold", "warm"):
        row = Row(f"scale.{temperature}", work, f"depaudit scan, {temperature} cache", f"scan.{temperature}")
        job = _scan_job(settings, temperature, ["--config", root / "depaudit.toml"])
        job.cwd = root
        rows.append(settings.schedule.add(row, job, settings.runs, _warmup(settings, temperature)))
    return rows


def image_rows(inputs: Inputs, settings: Settings) -> list[Row]:
    """Issue 22, target 4: a second `--image` scan of a docker save holding the gpu-venv's
    site-packages, against the warm `--site-packages` scan of the same environment (scan.warm)."""
    image = ensure_image(settings.cache, inputs.site_packages)
    config = image_config(inputs.monorepo)
    work = f"depaudit scan --config of {len(AGENTS)} entry scripts, the environment read from a docker save"
    row = Row("image.second", work, "depaudit scan --image, second scan (warm cache)", "scan.warm")
    job = _scan_job(settings, "warm", ["--config", config, "--image", image])
    job.cwd = inputs.monorepo
    return [settings.schedule.add(row, job, settings.runs, _warmup(settings, "warm"))]


def same_reports(inputs: Inputs, settings: Settings) -> str:
    """Target 6: the JSON report of a cold, a warm, a --no-cache and a --jobs 1 scan, byte for byte."""
    config = inputs.monorepo / "depaudit.toml"
    shared = _fresh_folder(settings, "same-")
    variants: dict[str, list[str | Path]] = {"cold": [], "warm": [], "--no-cache": ["--no-cache"], "--jobs 1, cold": ["--jobs", "1"]}
    reports: dict[str, bytes] = {}
    for name, extra in variants.items():
        folder = shared if name in ("cold", "warm") else _fresh_folder(settings, "same-")
        command = _scan_command(settings, folder, ["--config", config, *extra])
        run_once(command, _cache_env(folder), inputs.monorepo)
        reports[name] = (folder / "report.json").read_bytes()
    differ = [name for name, body in reports.items() if body != reports["cold"]]
    return "identical" if not differ else f"differ from cold: {', '.join(differ)}"


def _touching(site_packages: Path, command: Callable[[], Sequence[str | Path]]) -> Callable[[], Sequence[str | Path]]:
    """`command`, after giving every file of the site-packages a new mtime and ctime (same bytes):
    what a CI job sees after installing the same wheels again or restoring a cached venv."""

    def touched() -> Sequence[str | Path]:
        for folder, _, names in os.walk(site_packages):
            for name in names:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    os.utime(path)
        return command()

    return touched


# --- the report --------------------------------------------------------------------------


def ratio(row: Row, rows: dict[str, Row]) -> str:
    reference = rows.get(row.reference or row.key)
    if row.median is None or reference is None or not reference.median:
        return "-"
    return f"{row.median / reference.median:.2f}× {reference.tool.split(' ')[0]}"


def print_table(rows: list[Row]) -> None:
    by_key = {row.key: row for row in rows}
    header = ("work", "tool", "median wall", "ratio", "peak RSS / tree PSS", "output")
    table = [header]
    for row in rows:
        wall = f"{row.median:.3f} s" if row.median is not None else row.status
        memory = f"{row.max_rss_mib:.0f} / {row.tree_pss_mib:.0f} MiB" if row.max_rss_mib is not None else "-"
        table.append((row.work, row.tool, wall, ratio(row, by_key), memory, f"{row.output} {row.note}".strip()))
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    for line in table:
        print(" | ".join(cell.ljust(width) for cell, width in zip(line, widths)) + " | " + line[-1])


@dataclass(frozen=True)
class Target:
    name: str
    value: str
    met: bool | None  # None: a figure it needs is missing


def _median(rows: dict[str, Row], key: str) -> float | None:
    row = rows.get(key)
    return row.median if row is not None else None


def targets(rows: list[Row], reports: str | None = None) -> list[Target]:
    """Issue 22's targets, each from figures of this one run."""
    by_key = {row.key: row for row in rows}
    scanelf, lddtree = _median(by_key, "elf.scanelf"), _median(by_key, "elf.lddtree")
    stage = _median(by_key, "elf.depaudit-stage-cold")
    scan_cold, scan_warm = _median(by_key, "scan.cold"), _median(by_key, "scan.warm")
    deptry, ruff = _median(by_key, "imports.deptry"), _median(by_key, "imports.ruff")
    edited, second_image = _median(by_key, "scan.edited"), _median(by_key, "image.second")
    scale_cold, scale_warm = _median(by_key, "scale.cold"), _median(by_key, "scale.warm")
    scale = [by_key[key] for key in ("scale.cold", "scale.warm") if key in by_key and by_key[key].median]
    memory = [max(r.max_rss_mib or 0, r.tree_pss_mib or 0) for r in scale]

    def check(name: str, value: float | None, limit: float | None, unit: str, higher_is_better: bool = False) -> Target:
        if value is None or limit is None:
            return Target(name, "no figure", None)
        met = value >= limit if higher_is_better else value <= limit
        return Target(name, f"{value:.3f}{unit} vs {limit:.3f}{unit}", met)

    def times(value: float | None, factor: float) -> float | None:
        return value * factor if value is not None else None

    return [
        check("1. warm, nothing changed: scan ≤ 1.0× ruff analyze graph", scan_warm, ruff, " s"),
        check("2. one service file changed: scan ≤ 1.5× the warm scan", edited, times(scan_warm, 1.5), " s"),
        check("3. cold: scan ≤ 2× deptry", scan_cold, times(deptry, 2), " s"),
        check("4. images: second --image scan ≤ 1.3× the warm --site-packages scan", second_image, times(scan_warm, 1.3), " s"),
        check("5. scale: 50 services cold ≤ 2× the 14-service cold scan", scale_cold, times(scan_cold, 2), " s"),
        check("5. scale: 50 services warm ≤ 1.5× the 14-service warm scan", scale_warm, times(scan_warm, 1.5), " s"),
        check("5. scale: peak memory (tree PSS, workers included) ≤ 300 MB", max(memory) * 1.048576 if memory else None, 300, " MB"),
        check("6. ELF stage (in-process, first run) ≤ scanelf", stage, scanelf, " s"),
        check("6. ELF stage (first run) ≥ 30× faster than lddtree", lddtree / stage if lddtree and stage else None, 30, "×", True),
        Target("6. cold, warm, --no-cache and --jobs 1 reports byte-identical", reports or "no figure", None if reports is None else reports == "identical"),
    ]


def print_targets(found: list[Target]) -> None:
    print("\nTargets of issue 22:")
    for target in found:
        mark = "no figure" if target.met is None else "met" if target.met else "NOT MET"
        print(f"  [{mark}] {target.name}: {target.value}")


def versions(inputs: Inputs, settings: Settings) -> dict[str, str]:
    def first_line(command: Sequence[str | Path]) -> str:
        try:
            result = subprocess.run(list(map(str, command)), check=False, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return "not installed"
        return (result.stdout.strip() or result.stderr.strip() or "?").splitlines()[0]

    probe = "import importlib.metadata as m, sys; print(' '.join(f'{n}=={m.version(n)}' for n in sys.argv[1:]))"
    found = {
        "depaudit": first_line([settings.python, "-c", probe, "depaudit", "libcst", "pyelftools"]),
        "depaudit git": first_line(["git", "-C", REPO, "describe", "--always", "--dirty"]),
        "depaudit sources": source_fingerprint(),
        "scanelf": first_line(["scanelf", "-V"]) if shutil.which("scanelf") else "not installed",
    }
    tools_python = _program(inputs.tools_venv, "python")
    if tools_python is not None and inputs.tools_venv is not None:
        found["tools"] = first_line([tools_python, "-c", probe, "auditwheel", "ruff", "deptry"])
    return found


def source_fingerprint() -> str:
    """A digest of depaudit/*.py as they are now: the package may be edited while this runs."""
    digest = hashlib.blake2b(digest_size=6)
    for path in sorted((REPO / "depaudit").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def machine() -> dict[str, str]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {cores} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load before": f"{os.getloadavg()[0]:.2f}",  # other work on the machine skews every figure
    }


def print_inputs(inputs: Inputs) -> None:
    print(f"site-packages: {inputs.site_packages}")
    print(
        f"  {inputs.site_files:,} files, {inputs.site_bytes / 1e9:.2f} GB, {len(inputs.elf_paths)} ELF files, {inputs.site_py_files:,} .py files"
    )
    print(f"monorepo: {inputs.monorepo}")
    print(
        f"  {inputs.monorepo_files:,} files, {inputs.monorepo_py_files:,} .py files, {len(AGENTS)} entry scripts (agents/)"
    )


def profile_scan(inputs: Inputs, settings: Settings, lines: int = 15) -> str:
    """A cold `depaudit scan` of the monorepo under cProfile, top entries by cumulative time. With
    --jobs 1 where depaudit has it: work done in pool workers is invisible to cProfile."""
    folder = _fresh_folder(settings, "profile-")
    helptext = subprocess.run([settings.python, "-m", "depaudit", "scan", "--help"], check=False, capture_output=True)
    jobs = ["--jobs", "1"] if b"--jobs" in helptext.stdout else []
    scan = _scan_command(settings, folder, ["--config", inputs.monorepo / "depaudit.toml", *jobs])
    profiled = [settings.python, "-m", "cProfile", "-o", folder / "scan.prof", *scan[1:]]
    subprocess.run(list(map(str, profiled)), env=_cache_env(folder), capture_output=True, check=False)
    show = f"import pstats; pstats.Stats({str(folder / 'scan.prof')!r}).sort_stats('cumulative').print_stats({lines})"
    heading = f"cProfile of one cold `depaudit scan --config ... {' '.join(jobs)}` (top {lines} by cumulative time):"
    return (
        heading
        + "\n"
        + subprocess.run([settings.python, "-c", show], check=False, capture_output=True, text=True).stdout
    )


# --- main --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--runs", type=int, default=5, help="timed runs per tool; the median is shown (default 5)")
    add("--slow-runs", type=int, help="runs of the slow baselines, lddtree and libcst (default: --runs)")
    add("--warmup", type=int, default=1, help="untimed runs first, so the page cache is warm for every tool")
    add("--cache", type=Path, default=Path.home() / ".cache" / "depaudit-bench", help="where inputs are built")
    add("--site-packages", type=Path, help="an existing GPU site-packages instead of building one")
    add("--monorepo", type=Path, help="an existing monorepo with a depaudit.toml instead of building one")
    add("--tools-venv", type=Path, help="an existing venv with auditwheel, ruff and deptry")
    add("--build-python", default="python3", help="the interpreter that builds the venvs (default python3)")
    add("--lddtree-sample", type=int, default=0, help="time lddtree on the first N ELF files only, extrapolate")
    add("--only", choices=GROUPS, action="append", help="run only these groups (repeatable)")
    add("--profile", action="store_true", help="also print the top 15 cProfile entries of a cold scan")
    add("--json", type=Path, metavar="FILE", help="save every figure (each run's time, memory, output) here")
    return parser.parse_args(argv)


GROUPS: dict[str, Callable[[Inputs, Settings], list[Row]]] = {
    "elf": elf_rows,
    "imports": import_rows,
    "hints": hint_rows,
    "scan": scan_rows,
    "scale": scale_rows,
    "image": image_rows,
}


def report(inputs: Inputs, settings: Settings, rows: list[Row], found: list[Target], info: dict[str, str]) -> None:
    print()
    print(", ".join(f"{key}: {value}" for key, value in info.items()))
    print_inputs(inputs)
    print(f"\nmedian of {settings.runs} whole-process runs (slow baselines: {settings.slow_runs});", end=" ")
    print("ratio = median / the reference row's median\n")
    print_table(rows)
    print_targets(found)


def figures(inputs: Inputs, rows: list[Row], found: list[Target], info: dict[str, str], profile: str) -> dict[str, Any]:
    counted = {**asdict(inputs), "elf_paths": len(inputs.elf_paths)}
    return {
        **info,
        "inputs": {key: str(value) if isinstance(value, Path) else value for key, value in counted.items()},
        "rows": [asdict(row) for row in rows],
        "targets": [asdict(target) for target in found],
        "profile": profile,
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    inputs = prepare(args.cache, args.build_python, args.site_packages, args.monorepo, args.tools_venv)
    with tempfile.TemporaryDirectory(prefix="runs-", dir=args.cache) as scratch:
        settings = Settings(args.runs, args.slow_runs or args.runs, args.warmup, sys.executable, Path(scratch), args.cache)
        settings.lddtree_sample = args.lddtree_sample
        info = {**machine(), **versions(inputs, settings)}
        rows = []
        for name, group in GROUPS.items():
            if name in (args.only or GROUPS):
                rows += group(inputs, settings)
                settings.schedule.run()
        info["load average (1 min) before/after"] = f"{info.pop('load before')} / {os.getloadavg()[0]:.2f}"
        if source_fingerprint() != info["depaudit sources"]:
            info["warning"] = "depaudit's sources changed during this run: its rows mix two versions"
        reports = same_reports(inputs, settings) if "scan" in (args.only or GROUPS) else None
        found = targets(rows, reports)
        report(inputs, settings, rows, found, info)
        profile = profile_scan(inputs, settings) if args.profile else ""
        print("\n" + profile if profile else "", end="")
    if args.json:
        args.json.write_text(json.dumps(figures(inputs, rows, found, info, profile), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
