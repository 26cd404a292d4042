"""A worker process that dies (a native parser's segfault on a hostile file) costs that one file,
never the scan: the batch is run again one item at a time, and the file that kills its worker
becomes a finding. The crash here is real (SIGSEGV); only what triggers it is injected."""

from __future__ import annotations

import faulthandler
import os
import signal
from pathlib import Path

import pytest

import depaudit.collect.imports as imports
from depaudit.findings import Finding, FindingKind
from depaudit.parallel import Workers
from depaudit.scan import ScanOptions, run_scan
from helpers import make_dist


def _segfault() -> None:
    """Die of a real SIGSEGV, quietly: the forked worker inherits pytest's fault handler, which
    would print a `Fatal Python error` traceback to the terminal for a crash we asked for. The
    signal's default action still kills the worker, which is what the pool must survive."""
    faulthandler.disable()
    os.kill(os.getpid(), signal.SIGSEGV)


def _square_or_die(n: int) -> int:
    if n in (3, 7):
        _segfault()
    return n * n


_PARSE = imports._parse_source


def _crash_on_poison(item: tuple[bytes, str]) -> object:
    if b"CRASH" in item[0]:
        _segfault()
    return _PARSE(item)


def _segfault_with_handler_on(report: str) -> None:
    with open(report, "w") as sink:
        faulthandler.enable(file=sink)  # as pytest enables it in the process the workers fork from
        _segfault()


def test_the_injected_crash_is_a_real_sigsegv_that_prints_no_fatal_error(tmp_path: Path) -> None:
    import multiprocessing

    report = tmp_path / "faulthandler.txt"
    worker = multiprocessing.get_context("fork").Process(target=_segfault_with_handler_on, args=(str(report),))
    worker.start()
    worker.join(60)
    assert worker.exitcode == -signal.SIGSEGV
    assert report.read_text() == ""  # with the handler left on: "Fatal Python error: Segmentation fault"


def test_the_items_that_kill_their_worker_get_the_crash_value_and_the_rest_their_results() -> None:
    with Workers(2) as workers:
        assert workers.map(_square_or_die, list(range(10)), crashed=lambda n: -n) == [0, 1, 4, -3, 16, 25, 36, -7, 64, 81]
        assert workers.map(_square_or_die, [1, 2, 4, 5]) == [1, 4, 16, 25]  # the pool works on


def test_without_a_crash_value_a_dead_worker_is_an_error() -> None:
    from concurrent.futures.process import BrokenProcessPool

    with Workers(2) as workers, pytest.raises(BrokenProcessPool):
        workers.map(_square_or_die, list(range(10)))


def test_a_source_file_that_kills_the_parser_is_a_finding_and_the_scan_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site_packages = tmp_path / "sp"
    make_dist(site_packages, "goodlib", files={"goodlib/__init__.py": ""}, top_level=["goodlib"])
    service = tmp_path / "services" / "svc"
    service.mkdir(parents=True)
    for n in range(6):
        (service / f"mod{n}.py").write_text("import goodlib\n")
    (service / "poison.py").write_text("import numpy  # CRASH\n")
    monkeypatch.setattr(imports, "_parse_source", _crash_on_poison)  # the forked workers inherit it
    report = run_scan(ScanOptions((tmp_path / "services",), (site_packages,), "ubuntu-22.04", use_cache=False, processes=2))
    found = report.services[0]
    assert [f for f in found.findings if f.kind is FindingKind.PARSE_ERROR] == [
        Finding(
            FindingKind.PARSE_ERROR,
            "svc/poison.py",
            None,
            "the parser crashed on this file (its worker process died); its imports were read line by line",
        )
    ]
    assert sorted((i.record.file, i.record.module, i.record.fallback, i.distribution) for i in found.imports) == [
        *[(f"svc/mod{n}.py", "goodlib", False, "goodlib") for n in range(6)],
        ("svc/poison.py", "numpy", True, None),
    ]
