"""A pin's wheel found among pip's cached downloads, which pip names by a hash of the URL: the
caches here are made by real pip (`pip download --cache-dir`) from a simple index served over
HTTP on this machine, with the caching headers PyPI sends; then the audit reads them, pip not run."""

from __future__ import annotations

import functools
import json
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from depaudit.findings import FindingKind
from depaudit.lock import pip_cache
from depaudit.lock.environment import lock_environment
from depaudit.lock.tags import wheel_target
from depaudit.native.reads import read_by_the_scan
from depaudit.python.environment import load_environment
from helpers import release_archive
from lock_wheels import DEMO_WHEEL, Wheels, sha256_of

PY311 = wheel_target("3.11", "ubuntu-22.04")
# The name pip's cache knows the demo wheel by: made from its WHEEL file, which has one Tag line.
CACHED_NAME = "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"


class _CachingHandler(http.server.SimpleHTTPRequestHandler):
    """Files as PyPI's CDN serves them: cacheable for a year (pip caches nothing without it)."""

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "max-age=31536000, public")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        return None


@pytest.fixture()
def index(wheels: Wheels, tmp_path: Path) -> Iterator[str]:
    """A simple index of the demo wheel over HTTP on 127.0.0.1; its URL."""
    root = tmp_path / "served"
    (root / "files").mkdir(parents=True)
    (root / "simple" / "demo").mkdir(parents=True)
    shutil.copy(wheels.demo, root / "files" / DEMO_WHEEL)
    (root / "simple" / "demo" / "index.html").write_text(f'<a href="../../files/{DEMO_WHEEL}">{DEMO_WHEEL}</a>\n')
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_CachingHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


def _pip_download(pip: list[str], index_url: str, cache_dir: Path, dest: Path) -> None:
    """`pip download` of demo==1.0 into pip's cache at `cache_dir`, this machine's pip config left out
    (a trusted host: pip caches nothing it fetched over plain HTTP otherwise)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    result = subprocess.run(
        [*pip, "download", "--disable-pip-version-check", "--no-deps", "--only-binary", ":all:", "--python-version", "3.11",
         "--platform", "manylinux_2_17_x86_64", "--index-url", index_url, "--trusted-host", "127.0.0.1", "--cache-dir", str(cache_dir), "--dest", str(dest), "demo==1.0"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr


def _audit(lock: Path, cache: Path, pip_dir: Path):  # noqa: ANN202 - LockEnvironment
    return lock_environment(lock, PY311, find_links=[], cache=cache, reads=read_by_the_scan, pip_cache=pip_dir)


def test_a_pin_is_found_among_an_older_pips_cached_downloads(wheels: Wheels, index: str, tmp_path: Path) -> None:
    """pip ≤ 23.2 keeps headers and body in one file under http/: the wheel is the body inside."""
    pip_dir = tmp_path / "pip-cache"
    _pip_download([sys.executable, "-m", "pip"], index, pip_dir, tmp_path / "dest")
    bodies = [p for p in (pip_dir / "http").rglob("*") if p.is_file()]
    assert bodies and not (pip_dir / "http-v2").exists()  # this is the older layout
    lock = tmp_path / "requirements.txt"
    lock.write_text(f"demo==1.0 --hash=sha256:{sha256_of(wheels.demo)}\n")
    cache = tmp_path / "cache"
    audit = _audit(lock, cache, pip_dir)
    assert audit.findings == ()
    assert sorted(load_environment([audit.site_packages]).distributions) == ["demo"]
    assert [tree.sha256 for tree in audit.trees] == [sha256_of(wheels.demo)]
    (copied,) = (cache / "downloads").glob(f"pip-*/{CACHED_NAME}")  # copied out of the response file once
    assert copied.read_bytes() == wheels.demo.read_bytes()
    (index_file,) = (cache / "pip-http").glob("*.json")
    before = index_file.stat().st_mtime_ns
    again = _audit(lock, cache, pip_dir)
    assert again.findings == () and again.site_packages == audit.site_packages
    assert index_file.stat().st_mtime_ns == before  # nothing changed in pip's cache: the index is not rewritten
    # An index this code did not write (damaged, edited) is no reason to miss the wheel: its
    # bodies are looked at again.
    entries = json.loads(index_file.read_text())["entries"]
    index_file.write_text(json.dumps({"format": 1, "entries": {body: [stamp, ["not a wheel"], [0, "x"]] for body, (stamp, _, _) in entries.items()}}))
    damaged = _audit(lock, cache, pip_dir)
    assert damaged.findings == () and damaged.site_packages == audit.site_packages
    assert json.loads(index_file.read_text())["entries"] == entries


def test_a_cached_body_the_locks_hash_refuses_is_not_used(wheels: Wheels, index: str, tmp_path: Path) -> None:
    pip_dir = tmp_path / "pip-cache"
    _pip_download([sys.executable, "-m", "pip"], index, pip_dir, tmp_path / "dest")
    lock = tmp_path / "requirements.txt"
    lock.write_text(f"demo==1.0 --hash=sha256:{'0' * 64}\n")
    audit = _audit(lock, tmp_path / "cache", pip_dir)
    (finding,) = audit.findings
    assert finding.kind is FindingKind.LOCK_HASH_MISMATCH
    assert finding.message.startswith(f"{CACHED_NAME} ({tmp_path / 'pip-cache' / 'http'}/")
    assert finding.message.endswith(f"has sha256 {sha256_of(wheels.demo)}, which the lock does not accept for demo 1.0 (requirements.txt:1): the wheel is not used")
    assert sorted(load_environment([audit.site_packages]).distributions) == []


def test_without_pips_cache_the_pin_has_no_wheel(tmp_path: Path) -> None:
    """The same lock, pip's cache empty: the pin is DA601, so the tests above found it there."""
    lock = tmp_path / "requirements.txt"
    lock.write_text("demo==1.0\n")
    audit = _audit(lock, tmp_path / "cache", tmp_path / "no-pip-cache")
    assert [f.kind for f in audit.findings] == [FindingKind.LOCK_NO_WHEEL]


@pytest.mark.network  # a pip that writes http-v2 (≥ 23.3), run from its wheel
def test_a_pin_is_found_among_a_newer_pips_cached_bodies(wheels: Wheels, index: str, tmp_path: Path) -> None:
    newer = release_archive("pip", "24.2")
    pip_dir = tmp_path / "pip-cache"
    _pip_download([sys.executable, str(newer / "pip")], index, pip_dir, tmp_path / "dest")
    (body,) = [p for p in (pip_dir / "http-v2").rglob("*.body") if p.read_bytes()[:4] == b"PK\x03\x04"]  # the index page is another
    assert body.read_bytes() == wheels.demo.read_bytes()
    lock = tmp_path / "requirements.txt"
    lock.write_text(f"demo==1.0 --hash=sha256:{sha256_of(wheels.demo)}\n")
    cache = tmp_path / "cache"
    audit = _audit(lock, cache, pip_dir)
    assert audit.findings == ()
    assert sorted(load_environment([audit.site_packages]).distributions) == ["demo"]
    assert not (cache / "downloads").exists()  # a .body file is the wheel: read where it lies
    assert "demo-1.0.dist-info/RECORD" in {p.relative_to(audit.site_packages).as_posix() for p in audit.site_packages.rglob("*")}


def test_pips_cache_folder_is_read_from_its_config_without_running_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "pip.conf"
    config.write_text("[global]\ncache-dir = /somewhere/global\n\n[install]\ncache-dir = /somewhere/install\n")
    monkeypatch.delenv("PIP_CACHE_DIR", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    assert pip_cache.pip_cache_dir() == Path("/somewhere/install")
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "env"))
    assert pip_cache.pip_cache_dir() == tmp_path / "env"
    monkeypatch.delenv("PIP_CACHE_DIR")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip reads no config file then
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pip_cache.pip_cache_dir() == tmp_path / "xdg" / "pip"


SIX = "six-1.16.0-py2.py3-none-any.whl"
SIX_SHA256 = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"


@pytest.mark.network
def test_a_wheel_pip_downloaded_from_pypi_is_found_in_its_cache(tmp_path: Path) -> None:
    """From PyPI itself: the wheel's name is made again from its WHEEL Tag lines (py2.py3)."""
    pip_dir = tmp_path / "pip-cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "--cache-dir", str(pip_dir), "--dest", str(tmp_path / "dest"), "six==1.16.0"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"PyPI is unreachable: {result.stderr.strip()[-200:]}")
    if not any(p.is_file() and p.stat().st_size > 10_000 for p in pip_dir.rglob("*")):
        pytest.skip("PyPI's responses reached this machine without caching headers: pip cached no wheel")
    lock = tmp_path / "requirements.txt"
    lock.write_text(f"six==1.16.0 --hash=sha256:{SIX_SHA256}\n")
    audit = _audit(lock, tmp_path / "cache", pip_dir)
    assert audit.findings == ()
    assert sorted(load_environment([audit.site_packages]).distributions) == ["six"]
    assert [tree.sha256 for tree in audit.trees] == [SIX_SHA256]
    found = pip_cache.http_wheels(pip_dir, tmp_path / "cache")
    assert [wheel.filename for wheel in found["six"]] == [SIX]


def _age(root: Path) -> None:
    """Everything below `root` changed 10 s ago: the memo trusts no stamp taken within
    consulted.RACY_NS of a scan's start."""
    import time

    then = time.time() - 10
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            os.utime(os.path.join(folder, name), (then, then), follow_symlinks=False)
    os.utime(root, (then, then))


def test_a_wheel_pip_caches_later_is_another_scan_not_a_memo_hit(wheels: Wheels, index: str, tmp_path: Path) -> None:
    """pip's cache is an input of the scan: a memoised DA601 does not outlive the wheel's arrival."""
    root = tmp_path / "fleet"
    (root / "services" / "svc").mkdir(parents=True)
    (root / "services" / "svc" / "main.py").write_text("import demo_user\n")
    (root / "wheels").mkdir()
    shutil.copy(wheels.user, root / "wheels" / wheels.user.name)
    (root / "requirements.txt").write_text("demo==1.0\ndemo-user==2.0\n")
    pip_dir = tmp_path / "pip-cache"
    pip_dir.mkdir()
    _age(root)
    _age(pip_dir)
    env = {**os.environ, "NO_COLOR": "1", "PIP_CACHE_DIR": str(pip_dir)}
    command = [sys.executable, "-m", "depaudit", "scan", "services", "--lock", "requirements.txt", "--find-links", "wheels",
               "--python-version", "3.11", "--distro", "ubuntu-22.04", "--cache-dir", str(tmp_path / "cache"), "--format", "json", "-v"]

    def scan() -> tuple[list[str], str]:
        result = subprocess.run(command, cwd=root, capture_output=True, text=True, env=env, check=False)
        assert result.returncode in (0, 1), result.stderr
        return [f["code"] for f in json.loads(result.stdout)["findings"]], result.stderr.strip().splitlines()[-1]

    assert scan()[0] == ["DA601"]
    found, said = scan()
    assert found == ["DA601"] and said.startswith("depaudit: memo hit"), said  # memoised: it can go stale
    _pip_download([sys.executable, "-m", "pip"], index, pip_dir, tmp_path / "dest")
    found, said = scan()
    assert found == []
    assert said.startswith(f"depaudit: changed: listed {pip_dir}")


def test_a_wheel_copied_out_of_pips_cache_is_trimmed_with_the_rest(wheels: Wheels, index: str, tmp_path: Path) -> None:
    """downloads/ is bounded too: the copy goes once a scan that did not use it trims at a tiny cap."""
    from depaudit.lock.kept import KeptWheels

    pip_dir = tmp_path / "pip-cache"
    _pip_download([sys.executable, "-m", "pip"], index, pip_dir, tmp_path / "dest")
    lock = tmp_path / "requirements.txt"
    lock.write_text("demo==1.0\n")
    cache = tmp_path / "cache"
    kept = KeptWheels(cache, max_bytes=1)
    first = lock_environment(lock, PY311, find_links=[], cache=cache, reads=read_by_the_scan, pip_cache=pip_dir, kept=kept)
    kept.close()
    (copied,) = (cache / "downloads").glob(f"pip-*/{CACHED_NAME}")  # its own scan's: kept past the cap
    other = tmp_path / "other.txt"
    other.write_text("demo-user==2.0\n")  # requires demo, which it leaves out: a DA603, and a new site-packages
    kept = KeptWheels(cache, max_bytes=1)
    second = lock_environment(other, PY311, find_links=[wheels.folder], cache=cache, reads=read_by_the_scan, kept=kept)
    assert kept.wrote and [f.kind for f in second.findings] == [FindingKind.LOCK_UNREADABLE]
    kept.close()
    assert not copied.parent.exists()
    assert not first.site_packages.exists() and second.site_packages.is_dir()
