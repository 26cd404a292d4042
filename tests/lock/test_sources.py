"""Where a pin's wheel comes from besides a wheel folder: a simple index (here on disk), the URL
the lock names (here a real HTTP server on this machine), downloaded once into the cache."""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from depaudit import consulted
from depaudit.findings import FindingKind
from depaudit.lock.environment import lock_environment
from depaudit.lock.tags import wheel_target
from depaudit.native.reads import read_by_the_scan
from depaudit.python.environment import load_environment
from lock_wheels import DEMO_WHEEL, Wheels, sha256_of

PY311 = wheel_target("3.11", "ubuntu-22.04")


def _installed(site: Path) -> list[str]:
    return sorted(load_environment([site]).distributions)


@pytest.fixture()
def server(wheels: Wheels) -> Iterator[http.server.ThreadingHTTPServer]:
    """The wheel folder over HTTP on 127.0.0.1; stopped after the test (or by it)."""
    handler = functools.partial(_QuietHandler, directory=str(wheels.folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _url(server: http.server.ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        return None


def test_a_pin_comes_from_a_simple_index_and_its_hash_is_checked(wheels: Wheels, tmp_path: Path) -> None:
    files, project = tmp_path / "index" / "files", tmp_path / "index" / "simple" / "demo"
    files.mkdir(parents=True)
    project.mkdir(parents=True)
    shutil.copy(wheels.demo, files / DEMO_WHEEL)
    digest = sha256_of(wheels.demo)
    (project / "index.html").write_text(f'<!DOCTYPE html><html><body>\n<a href="../../files/{DEMO_WHEEL}#sha256={digest}">{DEMO_WHEEL}</a>\n</body></html>\n')
    lock = tmp_path / "requirements.txt"
    lock.write_text("demo==1.0\n")
    index = (tmp_path / "index" / "simple").as_uri()
    audit = lock_environment(lock, PY311, find_links=[], cache=tmp_path / "cache", reads=read_by_the_scan, index_url=index)
    assert audit.findings == ()
    assert _installed(audit.site_packages) == ["demo"]
    assert not (tmp_path / "cache" / "downloads").exists()  # a file:// wheel is read where it lies
    (project / "index.html").write_text(f'<a href="../../files/{DEMO_WHEEL}#sha256={"0" * 64}">{DEMO_WHEEL}</a>\n')
    refused = lock_environment(lock, PY311, find_links=[], cache=tmp_path / "cache", reads=read_by_the_scan, index_url=index)
    assert [f.kind for f in refused.findings] == [FindingKind.LOCK_HASH_MISMATCH]  # the index's digest, when the lock has none
    assert _installed(refused.site_packages) == []


def _uv_lock(folder: Path, url: str, digest: str) -> Path:
    lock = folder / "uv.lock"
    lock.write_text(
        'version = 1\nrequires-python = ">=3.11"\n\n'
        '[[package]]\nname = "app"\nversion = "0.1.0"\nsource = { virtual = "." }\ndependencies = [{ name = "demo" }]\n\n'
        '[[package]]\nname = "demo"\nversion = "1.0"\nsource = { registry = "https://pypi.org/simple" }\n'
        f'wheels = [{{ url = "{url}/{DEMO_WHEEL}", hash = "sha256:{digest}", size = 1 }}]\n'
    )
    return lock


def test_a_wheel_the_lock_names_by_url_is_downloaded_once(wheels: Wheels, tmp_path: Path, server: http.server.ThreadingHTTPServer) -> None:
    lock = _uv_lock(tmp_path, _url(server), sha256_of(wheels.demo))
    cache = tmp_path / "cache"
    audit = lock_environment(lock, PY311, find_links=[], cache=cache, reads=read_by_the_scan)
    assert audit.findings == ()
    assert _installed(audit.site_packages) == ["demo"]
    (downloaded,) = (cache / "downloads").glob(f"*/{DEMO_WHEEL}")
    assert downloaded.read_bytes() == wheels.demo.read_bytes()
    server.shutdown()  # the next audit needs nothing from the network
    again = lock_environment(lock, PY311, find_links=[], cache=cache, reads=read_by_the_scan)
    assert again.findings == () and again.site_packages == audit.site_packages


def test_a_download_whose_hash_the_lock_refuses_is_not_kept(wheels: Wheels, tmp_path: Path, server: http.server.ThreadingHTTPServer) -> None:
    lock = _uv_lock(tmp_path, _url(server), "0" * 64)
    cache = tmp_path / "cache"
    audit = lock_environment(lock, PY311, find_links=[], cache=cache, reads=read_by_the_scan)
    (finding,) = audit.findings
    assert finding.kind is FindingKind.LOCK_HASH_MISMATCH and finding.path == "uv.lock"
    assert finding.message.endswith("which the lock does not accept for demo 1.0 (uv.lock: package[2]): the wheel is not used")
    assert list((cache / "downloads").glob("*/*")) == []


def test_a_pylock_names_its_wheels_by_path_beside_it(wheels: Wheels, tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    shutil.copy(wheels.demo, tmp_path / "wheels" / DEMO_WHEEL)
    (tmp_path / "pylock.toml").write_text(
        'lock-version = "1.0"\ncreated-by = "hand"\n\n[[packages]]\nname = "demo"\nversion = "1.0"\n\n'
        f'[[packages.wheels]]\npath = "wheels/{DEMO_WHEEL}"\nhashes = {{ sha256 = "{sha256_of(wheels.demo)}" }}\n'
    )
    audit = lock_environment(tmp_path / "pylock.toml", PY311, find_links=[], cache=tmp_path / "cache", reads=read_by_the_scan)
    assert audit.findings == ()
    assert _installed(audit.site_packages) == ["demo"]
    assert [tree.sha256 for tree in audit.trees] == [sha256_of(wheels.demo)]


def test_an_index_that_cannot_answer_is_named_and_the_scan_is_not_memoised(tmp_path: Path) -> None:
    """Refused, the index's error is in the DA601; a file:// index without the project is no
    error (it has none). Either way the answer came from outside any file: never memoised."""
    with socket.socket() as closed:  # a port nothing listens on once the socket is closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    lock = tmp_path / "requirements.txt"
    lock.write_text("demo==1.0\n")
    target = PY311.shown()
    empty = tmp_path / "empty-index"
    empty.mkdir()
    for index, said in (
        (f"http://127.0.0.1:{port}/simple", f"none was found in the wheel folders or the lock, and the index could not be read (http://127.0.0.1:{port}/simple/demo/: [Errno 111] Connection refused)"),
        (empty.as_uri(), "none was found in the wheel folders, the lock or the index"),
    ):
        with consulted.recording() as record:
            audit = lock_environment(lock, PY311, find_links=[], cache=tmp_path / "cache", reads=read_by_the_scan, index_url=index)
        assert [f.message for f in audit.findings] == [f"demo 1.0 (requirements.txt:1) has no wheel for {target}: {said}; it is not audited"]
        assert record.untold == f"{index} offered no wheel of demo 1.0"


def test_a_download_that_fails_is_named_and_the_scan_is_not_memoised(wheels: Wheels, tmp_path: Path, server: http.server.ThreadingHTTPServer) -> None:
    """A file the server lacks, and a URL urllib cannot parse: each is the pin's finding, the
    rest is audited, and the next scan tries again."""
    lock = tmp_path / "requirements.txt"
    gone = f"{_url(server)}/gone/{DEMO_WHEEL}"
    lock.write_text(f"demo @ {gone}\nother @ http://127.0.0.1:port/other-1.0-py3-none-any.whl\n")
    with consulted.recording() as record:
        audit = lock_environment(lock, PY311, find_links=[], cache=tmp_path / "cache", reads=read_by_the_scan)
    assert [(f.kind, f.message) for f in audit.findings] == [
        (FindingKind.UNREADABLE_FILE, f"demo 1.0: cannot read {DEMO_WHEEL}: HTTP Error 404: File not found"),
        (FindingKind.UNREADABLE_FILE, "other 1.0: cannot read other-1.0-py3-none-any.whl: InvalidURL: nonnumeric port: 'port'"),
    ]
    assert record.untold == f"{gone} could not be downloaded"
    assert list((tmp_path / "cache" / "downloads").glob("*/*")) == []  # no partial file left
