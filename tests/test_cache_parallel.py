"""A result cache and worker processes change how fast a scan is, never what it says."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from depaudit.cache import MISSING, ResultCache
from depaudit.emit.json_report import dumps
from depaudit.scan import ScanOptions, run_scan
from helpers import have_gcc, opened_files
from test_fleet_config import _monorepo

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")


def _scan(config: Path, cache: Path, **options: object) -> str:
    return dumps(run_scan(ScanOptions((), config=config, cache_dir=cache, **options)))  # type: ignore[arg-type]


def test_cold_warm_uncached_and_parallel_scans_say_the_same(tmp_path: Path) -> None:
    config = _monorepo(tmp_path / "repo")
    (tmp_path / "repo/shared/common.py").write_text("print 'python 2'\nimport os\n")  # a finding, cached too
    cache = tmp_path / "cache"
    cold = _scan(config, cache, processes=1)
    assert len(list(cache.glob("results-*.sqlite"))) == 1
    warm = _scan(config, cache, processes=1)
    uncached = _scan(config, tmp_path / "unused", use_cache=False, processes=2)
    parallel_cold = _scan(config, tmp_path / "cache2", processes=2)
    assert warm == cold
    assert uncached == cold
    assert parallel_cold == cold
    assert not (tmp_path / "unused").exists()  # --no-cache writes nothing
    assert '"parse_error"' in cold


def test_a_warm_scan_reads_no_installed_file(tmp_path: Path) -> None:
    config = _monorepo(tmp_path / "repo")
    cache = tmp_path / "cache"
    first = _scan(config, cache, processes=1)
    with opened_files().watching() as opened:
        second = _scan(config, cache, processes=1)
    found = [path for path in opened if "/envs/" in path and path.endswith((".py", ".so"))]
    assert second == first
    # METADATA and RECORD are read (they say what is installed); no source or ELF file is.
    assert found == []


def test_entries_of_other_code_are_never_read(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    cache.put("imports", "k", [1, 2])
    cache.save()
    assert cache.path is not None and cache.path.is_file()
    assert ResultCache(tmp_path).get("imports", "k") == [1, 2]
    other = tmp_path / "results-0.0.1-000000000000.sqlite"
    cache.path.rename(other)
    assert ResultCache(tmp_path).get("imports", "k") is MISSING  # another version's file is ignored


def test_a_damaged_cache_is_an_empty_one(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    assert cache.path is not None
    cache.path.write_bytes(b"not a database")
    assert ResultCache(tmp_path).get("hints", "k") is MISSING
    fresh = ResultCache(tmp_path)
    fresh.put("hints", "k", [])
    fresh.save()  # cannot write over it: only a slower next run, no error


def _writer(folder: str, number: int) -> None:
    cache = ResultCache(Path(folder))
    for item in range(200):
        cache.put("hints", f"{number}-{item}", [number, item])
    cache.save()


def test_concurrent_runs_each_write_all_their_entries(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_writer, args=(str(tmp_path), n)) for n in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        assert process.exitcode == 0
    (database,) = tmp_path.glob("results-*.sqlite")
    rows = sqlite3.connect(database).execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert rows == 800


def test_a_cached_native_walk_is_keyed_by_everything_installed(tmp_path: Path) -> None:
    from depaudit.image.open import open_rootfs
    from depaudit.native.reports import environment_digest, report_key
    from depaudit.python.environment import load_environment
    from helpers import make_dist

    sp = tmp_path / "site-packages"
    make_dist(sp, "alpha", files={"alpha.py": ""})
    before = environment_digest(load_environment((sp,)))
    assert environment_digest(load_environment((sp,))) == before
    make_dist(sp, "beta", files={"beta.py": ""})  # a wheel installed beside it may hold a library
    assert environment_digest(load_environment((sp,))) != before
    assert report_key(before, "alpha", ("/opt/lib",), None) != report_key(before, "alpha", (), None)
    (tmp_path / "rootfs").mkdir()
    assert report_key(before, "alpha", (), open_rootfs(tmp_path / "rootfs")) is None  # a folder: never cached


@pytest.mark.parametrize("change", ["relinked", "deleted", "library_added"])
def test_a_cached_native_walk_sees_a_library_changed_after_install(tmp_path: Path, change: str) -> None:
    """RECORD is not touched when an installed library is relinked (patchelf), deleted (a slimmed
    image) or a missing one is copied beside it: the walk's cache must see each all the same."""
    from helpers import build_so

    config = _monorepo(tmp_path / "repo")
    sp = tmp_path / "repo/envs/vision/site-packages"
    cache = tmp_path / "cache"
    first = _scan(config, cache, processes=1)
    assert '"libGL.so.1"' in first and '"libX11.so.6"' in first
    if change == "relinked":  # libvis no longer needs libGL
        libz = tmp_path / "repo/envs/vision/stubs/libz.so.1"
        build_so(sp / "visionlib.libs/libvis-1a2b.so.1", soname="libvis-1a2b.so.1", needed=[libz])
    elif change == "deleted":  # the plugin that needs libX11, removed from the image
        (sp / "visionlib/plugins/libxplugin.so").unlink()
    else:  # libGL copied into the folder _core's RPATH names: found there, bundled
        (sp / "visionlib.libs/libGL.so.1").write_bytes((tmp_path / "repo/envs/vision/stubs/libGL.so.1").read_bytes())
    uncached = _scan(config, tmp_path / "unused", use_cache=False, processes=1)
    assert uncached != first
    assert _scan(config, cache, processes=1) == uncached


def test_a_fresh_install_of_the_same_wheels_parses_none_of_their_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reinstall, a new venv or a restored CI cache gives every installed file a new stat but
    the same bytes: their hints are found by content. New bytes are parsed."""
    import os

    import depaudit.native.hints as hints

    config = _monorepo(tmp_path / "repo")
    cache = tmp_path / "cache"
    first = _scan(config, cache, processes=1)
    for path in (tmp_path / "repo/envs").rglob("*.py"):
        os.utime(path, ns=(1, 1))  # a new mtime and ctime, as after a reinstall

    parsed: list[bytes] = []
    real = hints.installed_file_hints  # a service's files and a wheel's alike
    monkeypatch.setattr(hints, "installed_file_hints", lambda source: parsed.append(source) or real(source))
    assert _scan(config, cache, processes=1) == first
    assert parsed == []  # (an exception would be swallowed: an unparsable wheel file is passed over)
    monkeypatch.undo()
    (tmp_path / "repo/envs/audio/site-packages/audiolib/__init__.py").write_text('import ctypes\nctypes.CDLL("libsndfile.so.1")\n')
    changed = _scan(config, cache, processes=1)
    assert '"libsndfile.so.1"' in changed and '"libsndfile.so.1"' not in first
    assert changed == _scan(config, tmp_path / "unused", use_cache=False, processes=1)


def test_a_results_file_past_its_bound_keeps_only_what_the_last_run_used(tmp_path: Path) -> None:
    """Stat keys of reinstalled files pile up (a CI cache); every run loads each kind it asks
    for whole, so past its bound the file is cut down to the entries of the run that saw it."""
    first = ResultCache(tmp_path, max_bytes=200_000)
    for number in range(2_000):
        first.put("elf", f"old-{number}", ["x" * 200])
    first.save()  # all written by this run: all kept, though past the bound
    (database,) = tmp_path.glob("results-*.sqlite")
    assert sqlite3.connect(database).execute("SELECT COUNT(*) FROM results").fetchone()[0] == 2_000
    big = database.stat().st_size
    second = ResultCache(tmp_path, max_bytes=200_000)
    assert [second.get("elf", f"old-{number}") for number in (1, 2)] == [["x" * 200], ["x" * 200]]
    assert second.get("elf", "never-written") is MISSING
    second.put("hints", "new", [])
    second.save()
    rows = sqlite3.connect(database).execute("SELECT kind, key FROM results ORDER BY kind, key").fetchall()
    assert rows == [("elf", "old-1"), ("elf", "old-2"), ("hints", "new")]
    assert database.stat().st_size < big // 10
    third = ResultCache(tmp_path)  # under the default bound: nothing is removed
    third.put("hints", "newer", [])
    third.save()
    assert sqlite3.connect(database).execute("SELECT COUNT(*) FROM results").fetchone()[0] == 4


def test_the_code_fingerprint_follows_bytes_not_mtimes(tmp_path: Path) -> None:
    """CI installs depaudit afresh on each run (new mtimes, same code): a restored cache must
    still be read. Other code, even one byte, is another cache."""
    import os
    import shutil

    import depaudit
    from depaudit.cache import _fingerprint, code_digest

    here = _fingerprint()
    assert code_digest(Path(depaudit.__file__).parent) == here
    copy = tmp_path / "depaudit"
    shutil.copytree(Path(depaudit.__file__).parent, copy, copy_function=shutil.copy)  # new mtimes
    for path in copy.rglob("*.py"):
        os.utime(path, ns=(1, 1))
    assert code_digest(copy) == here
    (copy / "scan.py").write_bytes((copy / "scan.py").read_bytes() + b"\n")
    assert code_digest(copy) != here


def test_a_service_file_unchanged_since_it_was_read_is_not_read_to_tell_its_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import depaudit.cache as cache_module

    monkeypatch.setattr(cache_module, "RACY_NS", 0)  # the file was just written: trust its times now
    source = tmp_path / "svc.py"
    source.write_bytes(b"import os\n")
    first = ResultCache(tmp_path / "cache")
    digest, read = first.file_digest_and_source(source)
    assert read == b"import os\n" and digest == cache_module.content_key(b"import os\n")
    first.save()
    with opened_files().watching() as opened:
        assert ResultCache(tmp_path / "cache").file_digest_and_source(source) == (digest, None)
    assert str(source) not in opened
    # Rewritten (same size, other bytes): its times change, and it is read again.
    source.write_bytes(b"import re\n")
    again = ResultCache(tmp_path / "cache").file_digest_and_source(source)
    assert again == (cache_module.content_key(b"import re\n"), b"import re\n")
    # A fresh checkout of the same bytes (another file: new inode and times) hits the content key.
    copy = tmp_path / "checkout" / "svc.py"
    copy.parent.mkdir()
    copy.write_bytes(b"import os\n")
    assert ResultCache(tmp_path / "cache").file_digest_and_source(copy) == (digest, b"import os\n")


def test_a_service_file_changed_within_the_racy_window_is_read_again(tmp_path: Path) -> None:
    source = tmp_path / "svc.py"
    source.write_bytes(b"import os\n")
    first = ResultCache(tmp_path / "cache")
    first.file_digest_and_source(source)
    first.save()
    # Just written: a later write in the same timestamp tick could keep its stat, so none was kept.
    assert ResultCache(tmp_path / "cache").file_digest_and_source(source)[1] == b"import os\n"
