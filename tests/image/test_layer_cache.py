"""Layers kept between runs by digest: a second scan of an image reads none of its layers, and
reports exactly what the first did; a changed image file is hashed again; the cache is bounded,
oldest first, and shared safely by scans running at once."""

from __future__ import annotations

import fcntl
import gc
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from depaudit.emit.json_report import dumps
from depaudit.findings import FindingKind
from depaudit.image import archive
from depaudit.image.layer_cache import LayerCache
from depaudit.image.open import open_image
from depaudit.native.reads import read_by_the_scan
from depaudit.scan import ScanOptions, run_scan
from helpers import build_image_scene, have_gcc

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")

SITE = "usr/local/lib/python3.10/site-packages"


def _tar_of_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def _docker_save(path: Path, layers: list[bytes]) -> Path:
    """The legacy `docker save` format: <id>/layer.tar, named by no digest; the config lists
    each one's diff_id."""
    config = json.dumps({
        "config": {"Env": ["PATH=/usr/bin", "LD_LIBRARY_PATH=/opt/ldpath"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}" for layer in layers]},
    }).encode()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    names = [f"{number:064x}/layer.tar" for number in range(1, len(layers) + 1)]
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["scene:1"], "Layers": names}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in [("manifest.json", manifest), (config_name, config), *zip(names, layers)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _oci_layout(folder: Path, layers: list[bytes]) -> Path:
    """An OCI layout folder: the first layer gzip, the second zstd."""
    (folder / "blobs/sha256").mkdir(parents=True)

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (folder / "blobs/sha256" / digest).write_bytes(data)
        return f"sha256:{digest}"

    config = json.dumps({"config": {"Env": ["PATH=/usr/bin", "LD_LIBRARY_PATH=/opt/ldpath"]}}).encode()
    compress = [gzip.compress, zstandard.ZstdCompressor().compress]
    manifest = {
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config)},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob(compress[number](layer))}
            for number, layer in enumerate(layers)
        ],
    }
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": blob(json.dumps(manifest).encode())}]}
    (folder / "index.json").write_text(json.dumps(index))
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One image of two layers (the scene's rootfs; its site-packages above), as a docker save and
    as an OCI layout; and a service importing the environment's `app`."""
    root = tmp_path_factory.mktemp("kept-layers")
    rootfs, sp = build_image_scene(root / "scene")
    upper = root / "upper"
    shutil.copytree(sp, upper / SITE, symlinks=True)
    (upper / SITE / "app/__init__.py").write_text("")
    (upper / SITE / "app/libalias.so.1").symlink_to("../rpathfirst/libprec.so.1")  # copied whole: a link's target
    (upper / SITE / "app/libself.so.1").symlink_to("libself.so.1")  # a loop met copying the folder out
    layers = [_tar_of_folder(rootfs), _tar_of_folder(upper)]
    service = root / "svc"
    service.mkdir()
    (service / "main.py").write_text("import app\n")
    return {
        "save": _docker_save(root / "image.docker.tar", layers),
        "oci": _oci_layout(root / "image.oci", layers),
        "service": service,
        "root": root,
    }


@pytest.fixture()
def layer_opens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The blobs of an image whose bytes are opened, by name: metadata and layers."""
    opened: list[str] = []
    real = archive._Store.opener

    def opener(self: archive._Store, name: str):  # type: ignore[no-untyped-def]
        inner = real(self, name)

        def counted():  # type: ignore[no-untyped-def]
            opened.append(name)
            return inner()

        return counted

    monkeypatch.setattr(archive._Store, "opener", opener)
    yield opened


def _copied(image_path: Path, cache: Path) -> tuple[Path, dict[str, bytes], object]:
    """The image's site-packages as copied out (its host folder, each file's bytes), and its fs."""
    image = open_image(image_path, cache_dir=cache)
    assert image.site_packages == ("/" + SITE,)
    host = image.fs.python_environment("/" + SITE, read_by_the_scan)
    assert host is not None
    files = {p.relative_to(host).as_posix(): p.read_bytes() for p in sorted(host.rglob("*")) if p.is_file()}
    return host, files, image.fs


def _layers_of(images: dict[str, Path], kind: str, opened: list[str]) -> list[str]:
    """Of the blobs opened, the layers."""
    if kind == "save":
        return [name for name in opened if name.endswith("/layer.tar")]
    manifest = json.loads((images["oci"] / _only_manifest(images["oci"])).read_text())
    layers = {"blobs/sha256/" + layer["digest"].removeprefix("sha256:") for layer in manifest["layers"]}
    return [name for name in opened if name in layers]


def _only_manifest(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    return "blobs/sha256/" + index["manifests"][0]["digest"].removeprefix("sha256:")


@pytest.mark.parametrize("kind", ["save", "oci"])
def test_a_second_open_reads_no_layer_and_copies_out_the_same_files(
    images: dict[str, Path], kind: str, tmp_path: Path, layer_opens: list[str]
) -> None:
    host, files, fs = _copied(images[kind], tmp_path)
    assert fs._kept.layer_reads == 2  # type: ignore[attr-defined]
    assert len(set(_layers_of(images, kind, layer_opens))) == 2
    assert host.is_relative_to(tmp_path / "layers")  # the same folder every run
    assert sorted(files) == [
        "app-1.0.dist-info/METADATA",
        "app-1.0.dist-info/RECORD",
        "app/__init__.py",
        "app/_native.cpython-311-x86_64-linux-gnu.so",
        "app/_rpath.cpython-311-x86_64-linux-gnu.so",
        "app/_runpath.cpython-311-x86_64-linux-gnu.so",
        "app/libalias.so.1",
        "rpathfirst/libprec.so.1",
    ]
    assert fs.read_text("/etc/os-release") == 'ID=ubuntu\nVERSION_ID="22.04"\n'
    del fs
    gc.collect()  # the first image closed: its lock released

    layer_opens.clear()
    again, files_again, fs_again = _copied(images[kind], tmp_path)
    assert fs_again._kept.layer_reads == 0  # type: ignore[attr-defined]
    assert (again, files_again) == (host, files)
    # Files of the lower layer the first run copied out (the system walk's) are kept too.
    assert fs_again.read_text("/etc/os-release") == 'ID=ubuntu\nVERSION_ID="22.04"\n'
    assert layer_opens and _layers_of(images, kind, layer_opens) == []  # metadata only


def _report(images: dict[str, Path], kind: str, cache: Path | None) -> str:
    options = ScanOptions((images["service"],), (), None, image=images[kind], cache_dir=cache, use_cache=cache is not None)
    text = dumps(run_scan(options))
    gc.collect()  # the image closed: its scratch folder removed, the cache's lock released
    return text


@pytest.mark.parametrize("kind", ["save", "oci"])
def test_two_scans_of_an_image_give_byte_identical_reports(images: dict[str, Path], kind: str, tmp_path: Path) -> None:
    """Cached or not, first or second: the report names the image's environment by the image
    and its path inside, never by the folder it was copied to."""
    first = _report(images, kind, tmp_path / "cache")
    second = _report(images, kind, tmp_path / "cache")
    uncached = _report(images, kind, None)
    assert second == first
    assert uncached == first
    document = json.loads(first)
    assert document["environments"] == [
        {"site_packages": [f"{images[kind]}:/{SITE}"], "source": f"the site-packages of {images[kind]}"}
    ]
    needs = {need["name"]: (need["status"], need["found_at"]) for need in document["services"][0]["needs"]}
    assert needs["libprec.so.1"] == ("bundled", "rpathfirst/libprec.so.1")
    assert needs["libdefault.so.1"] == ("base-image", "/lib/x86_64-linux-gnu/libdefault.so.1")
    assert str(tmp_path) not in first and "depaudit-image-" not in first
    # Met copying the site-packages out: reported again by the run that takes the copy as it is.
    loops = [f["path"] for f in document["findings"] if f["kind"] == "symlink_loop"]
    assert f"/{SITE}/app/libself.so.1" in loops


def _tampered_save(images: dict[str, Path], path: Path) -> Path:
    """The docker save with a byte of the upper layer's RECORD changed in place: same size, same
    member offsets; its diff_id no longer names it."""
    data = bytearray(images["save"].read_bytes())
    at = data.find(b"app-1.0.dist-info/METADATA,,")
    assert at > 0
    data[at : at + 3] = b"APP"
    path.write_bytes(bytes(data))
    return path


def test_a_touched_image_is_hashed_again_and_a_rewritten_one_is_not_trusted(images: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "image.tar"
    shutil.copyfile(images["save"], copy)
    cache = tmp_path / "cache"
    _, files, fs = _copied(copy, cache)
    del fs
    gc.collect()

    os.utime(copy)  # touched: the same bytes, another stat identity
    _, touched, fs = _copied(copy, cache)
    assert fs._kept.layer_reads == 2  # type: ignore[attr-defined]
    assert touched == files and [f for f in fs.findings if f.kind is FindingKind.BAD_IMAGE] == []
    del fs
    gc.collect()

    _tampered_save(images, copy)  # rewritten in place: other bytes under the same diff_id
    image = open_image(copy, cache_dir=cache)
    assert image.fs._kept.layer_reads == 2  # type: ignore[attr-defined]
    assert image.site_packages == ()  # the altered layer is not used, from the cache or otherwise
    bad = [f for f in image.fs.findings if f.kind is FindingKind.BAD_IMAGE]
    assert [(f.path, f.message.split(" (")[0]) for f in bad] == [(f"{copy} layer 2", "layer does not hold what its digest names")]


def _entries(cache: Path) -> list[str]:
    return sorted(name for name in os.listdir(cache / "layers") if name.startswith(("layer-", "view-")))


def test_the_cache_is_trimmed_oldest_first_to_its_cap(images: dict[str, Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for kind in ("save", "oci"):
        _copied(images[kind], cache)
        gc.collect()
        if kind == "save":
            saved = _entries(cache)
            for name in saved:  # used an hour ago: the oldest
                os.utime(cache / "layers" / name, (1, os.stat(cache / "layers" / name).st_mtime - 3600))
    assert len(saved) == 3  # two layers and the view of their merged files
    newer = sorted(set(_entries(cache)) - set(saved))
    assert len(newer) == 3  # the OCI layers are other blobs (compressed): entries of their own

    def held(names: list[str]) -> int:  # bytes on disk, each inode once
        seen = {}
        for name in names:
            for path in [cache / "layers" / name, *(cache / "layers" / name).rglob("*")]:
                status = path.lstat()
                seen[(status.st_dev, status.st_ino)] = status.st_blocks * 512
        return sum(seen.values())

    assert held(newer) < held(saved + newer)
    trimmed = LayerCache(cache / "layers", max_bytes=held(newer))
    trimmed.wrote = True  # as after a run that added to it
    trimmed.close()
    assert _entries(cache) == newer

    _, _, fs = _copied(images["oci"], cache)
    assert fs._kept.layer_reads == 0  # type: ignore[attr-defined]
    del fs
    gc.collect()
    _, _, fs = _copied(images["save"], cache)
    assert fs._kept.layer_reads == 2  # type: ignore[attr-defined]
    del fs
    gc.collect()

    tiny = LayerCache(cache / "layers", max_bytes=1)
    tiny.wrote = True
    tiny.close()
    assert _entries(cache) == []


def test_trimming_waits_for_no_scan_and_skips_while_one_holds_the_cache(images: dict[str, Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    image = open_image(images["save"], cache_dir=cache)
    assert image.fs.python_environment("/" + SITE, read_by_the_scan) is not None
    tiny = LayerCache(cache / "layers", max_bytes=1)
    tiny.wrote = True
    tiny.close()  # the image above still holds the cache: nothing is removed under it
    assert len(_entries(cache)) == 3
    del image
    gc.collect()


@pytest.mark.parametrize("kind", ["save", "oci"])
def test_an_image_let_go_releases_its_scratch_folder_and_the_cache_at_once(images: dict[str, Path], kind: str, tmp_path: Path) -> None:
    """No reference cycle keeps an opened image alive until the garbage collector runs (the
    ld.so.conf reader's recursive closure did): its scratch folder and the cache's lock go with it."""
    gc.disable()
    try:
        image = open_image(images[kind], cache_dir=tmp_path)
        scratch = image.fs._cache  # type: ignore[attr-defined]
        held = os.open(tmp_path / "layers" / "lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the image holds the cache (shared)
            assert scratch.is_dir()
            del image
            assert not scratch.exists()
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released: no scan holds it now
        finally:
            os.close(held)
    finally:
        gc.enable()


def test_two_scans_at_once_share_the_cache_and_both_report_correctly(images: dict[str, Path], tmp_path: Path) -> None:
    expected = _report(images, "save", None)
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "depaudit", "scan", str(images["service"]), "--image", str(images["save"]), "--format", "json",
               "--fail-on", "never", "--no-progress", "--cache-dir", str(cache)]
    runs = [subprocess.Popen([*command, "--output", str(tmp_path / f"report-{n}.json")], stderr=subprocess.PIPE) for n in (1, 2)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err.decode()
    for n in (1, 2):
        assert (tmp_path / f"report-{n}.json").read_text() == expected
    assert len(_entries(cache)) == 3 and os.listdir(cache / "layers" / "tmp") == []
    _, _, fs = _copied(images["save"], cache)
    assert fs._kept.layer_reads == 0  # type: ignore[attr-defined]


def test_a_docker_save_layer_stored_compressed_is_not_taken_for_its_diff_id(images: dict[str, Path], tmp_path: Path) -> None:
    """Tools writing the docker save format (crane, ko) may store a layer gzip-compressed; its
    diff_id names the uncompressed tar, not the blob: it is read every run, never kept, never
    called altered. The plain layer below it is kept."""
    with tarfile.open(images["save"]) as tar:
        layers = [tar.extractfile(name).read() for name in tar.getnames() if name.endswith("/layer.tar")]  # type: ignore[union-attr]
    path = _docker_save(tmp_path / "mixed.tar", layers)
    # The same archive, its second layer stored gzip-compressed (the config still lists the diff_id).
    with tarfile.open(path) as tar:
        members = [(member, tar.extractfile(member).read()) for member in tar.getmembers()]  # type: ignore[union-attr]
    with tarfile.open(path, "w") as out:
        for member, payload in members:
            if member.name.endswith(f"{2:064x}/layer.tar"):
                payload = gzip.compress(payload)
                member.size = len(payload)
            out.addfile(member, io.BytesIO(payload))
    cache = tmp_path / "cache"
    for reads in (2, 1):
        image = open_image(path, cache_dir=cache)
        assert image.fs._kept.layer_reads == reads  # type: ignore[attr-defined]
        assert image.site_packages == ("/" + SITE,)
        assert [f.kind for f in image.fs.findings] == [FindingKind.UNSAFE_MEMBER]  # the scene's libclimb.so.1
        assert not str(image.fs.root).startswith(str(cache))  # not every layer kept: a scratch folder
        del image
        gc.collect()
