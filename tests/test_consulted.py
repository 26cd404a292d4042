"""The whole-scan memo is only as right as the consulted set is complete: every path a cold scan
opens or lists in this process is in it (or inside depaudit's own cache and scratch folders).
Seen by an audit hook, which sees builtins.open, io.open, os.open, os.listdir and os.scandir
(os.walk and globbing list through scandir), and by os.stat and os.lstat wrapped (no audit
event tells those) — not by hope. The hooks see this process only: worker processes run the
same readers, and send back what those noted with their results (tested on its own below)."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import depaudit
from depaudit import consulted
from depaudit.scan import ScanOptions, run_scan
from helpers import EXAMPLE_FLEET, build_image_scene, have_gcc
from test_fleet_config import _monorepo

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")

_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class _Seen:
    """The audit hook: hooks cannot be removed, so there is one, quiet outside `watching`."""

    def __init__(self) -> None:
        self.active = False
        self.paths: list[tuple[str, str]] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[object, ...]) -> None:
        if not self.active or event not in ("open", "os.listdir", "os.scandir") or not args:
            return
        target = args[0]
        if not isinstance(target, (str, bytes, os.PathLike)):
            return  # a descriptor: listed through a path seen before, or our own
        if event == "open":
            mode, flags = args[1], args[2]
            if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flags, int) and flags & _WRITING):
                return  # written, not consulted: the cache, a scratch copy
        path = os.fsdecode(target)
        if os.path.isabs(path):  # a relative one is opened against a folder descriptor (rmtree of scratch)
            self.paths.append((event, os.path.normpath(path)))

    @contextmanager
    def watching(self) -> Iterator[list[tuple[str, str]]]:
        self.paths = []
        self.active = True
        try:
            yield self.paths
        finally:
            self.active = False


_SEEN: list[_Seen] = []


def _seen() -> _Seen:
    if not _SEEN:
        _SEEN.append(_Seen())
    return _SEEN[0]


def _own(path: str, cache: Path) -> bool:
    """depaudit's own reads: its cache folder (results, not inputs), scratch copies out of an
    image, the interpreter's modules and depaudit's package (imports, kept by the memo's key)."""
    if path.startswith(os.path.join(tempfile.gettempdir(), "depaudit-")) or path == tempfile.gettempdir():
        return True  # scratch folders, and the listing that removes those of dead runs
    own = [str(cache), sys.prefix, sys.base_prefix, str(Path(depaudit.__file__).parent)]
    return any(path == prefix or path.startswith(prefix.rstrip("/") + "/") for prefix in own)


def _uncovered(options: ScanOptions, cache: Path) -> list[tuple[str, str]]:
    """Every path the scan opened, listed or asked the status of that its consulted set does
    not name. A status (os.stat, os.lstat: exists, is_file, realpath…) counts as named when the
    path is, when its folder was listed (creating or removing it changes the listing), or when
    it is a folder on the way to a named path (realpath's lstat of each component)."""
    statted: list[tuple[str, str]] = []
    with pytest.MonkeyPatch.context() as patch, consulted.recording() as record, _seen().watching() as seen:
        for name in ("stat", "lstat"):
            patch.setattr(os, name, _watched(getattr(os, name), name, statted))
        run_scan(options)
    index = cache / "index"
    named = {os.path.abspath(path) for path in (*record.read, *record.listed, *record.probed)}
    listed = {os.path.abspath(path) for path in record.listed}
    on_the_way = {str(parent) for path in named for parent in Path(path).parents}
    seen_paths = [*seen, *((event, os.path.normpath(path)) for event, path in statted if os.path.isabs(path))]
    return sorted(
        {
            (event, path)
            for event, path in seen_paths
            if path not in named
            and (not _own(path, cache) or path.startswith(str(index)))
            and not (event in ("stat", "lstat") and (os.path.dirname(path) in listed or path in on_the_way))
        }
    )


def _watched(function: Callable[..., os.stat_result], event: str, seen: list[tuple[str, str]]) -> Callable[..., os.stat_result]:
    def watched(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if isinstance(path, (str, os.PathLike)) and kwargs.get("dir_fd") is None:
            seen.append((event, os.fspath(path)))  # type: ignore[arg-type]
        return function(path, *args, **kwargs)

    return watched


def test_a_monorepo_scan_names_every_path_it_opens_or_lists(tmp_path: Path) -> None:
    config = _monorepo(tmp_path / "repo")
    cache = tmp_path / "cache"
    for processes in (1, 2):  # in this process, then in workers (their reads come back with results)
        assert (found := _uncovered(ScanOptions((), config=config, cache_dir=cache, processes=processes), cache)) == [], "\n".join(map(str, found))
    assert (found := _uncovered(ScanOptions((), config=config, cache_dir=tmp_path / "cold", processes=2), tmp_path / "cold")) == [], "\n".join(map(str, found))


@pytest.mark.network
def test_the_example_fleet_scan_names_every_path_it_opens_or_lists(fleet_site_packages: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    options = ScanOptions((), (fleet_site_packages,), config=EXAMPLE_FLEET / "depaudit.toml", cache_dir=cache, processes=2)
    assert (found := _uncovered(options, cache)) == [], "\n".join(map(str, found))


def _tar_of_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def _docker_save(path: Path, rootfs: Path) -> Path:
    layer = _tar_of_folder(rootfs)
    config = json.dumps({"config": {"Env": ["LD_LIBRARY_PATH=/opt/ldpath"]}}).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["scene:1"], "Layers": ["l1/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in (("manifest.json", manifest), ("config.json", config), ("l1/layer.tar", layer)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("scene")
    rootfs, sp = build_image_scene(root / "scene")
    service = root / "svc"
    service.mkdir()
    (service / "main.py").write_text("import app\nimport ctypes\nctypes.CDLL('libhint.so.3')\n")
    shutil.copy(EXAMPLE_FLEET / "services/face-recognition/Dockerfile", service / "Dockerfile")
    return {"rootfs": rootfs, "sp": sp, "service": service, "save": _docker_save(root / "image.tar", rootfs)}


def test_a_rootfs_scan_names_every_path_it_opens_or_lists(scene: dict[str, Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    options = ScanOptions((scene["service"],), (scene["sp"],), rootfs=scene["rootfs"], cache_dir=cache, processes=2)
    assert (found := _uncovered(options, cache)) == [], "\n".join(map(str, found))


def test_an_image_scan_names_every_path_it_opens_or_lists(scene: dict[str, Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    options = ScanOptions((scene["service"],), (scene["sp"],), image=scene["save"], cache_dir=cache, processes=2)
    assert (found := _uncovered(options, cache)) == [], "\n".join(map(str, found))


def test_what_worker_processes_read_comes_back_with_their_results(tmp_path: Path) -> None:
    from depaudit.parallel import Workers
    from depaudit.reading import read_regular

    files = [tmp_path / f"source-{number}.py" for number in range(8)]
    for number, path in enumerate(files):
        path.write_text(f"import m{number}\n")
    with consulted.recording() as record, Workers(2) as workers:
        assert workers.map(read_regular, files) == [f"import m{number}\n".encode() for number in range(8)]
    assert record.read == {str(path) for path in files}
    assert record.untold is None


def test_a_worker_that_dies_leaves_the_scan_unmemoised() -> None:
    from depaudit.parallel import Workers

    with consulted.recording() as record, Workers(2) as workers:
        # os._exit(3) ends the worker process: each item is then run alone, and gets `crashed`.
        assert workers.map(os._exit, [3] * 4, crashed=lambda item: -item) == [-3] * 4
    assert record.untold == "a worker process died before saying what it read"
    assert consulted.take_stamps(record) == record.untold
