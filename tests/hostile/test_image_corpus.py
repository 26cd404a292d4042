"""Hostile base images through the whole scan: docker save tarballs, OCI layouts and rootfs
folders built here with tarfile, each carrying one hostile part beside good files.

Each case asserts the exact finding, that the good files of the image still count (the image's
own distro, a library and a program found in it), and that the scan opened no path outside the
image and the other inputs: every `open`, `os.listdir` and `os.scandir` of the scan is recorded
by an audit hook. Beside each image lies `outside/`, files a hostile link points to: none of them
may ever be opened, and had one been read, the report would show it (its os-release names
another distro, its library would be found).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from depaudit.findings import Finding, FindingKind
from depaudit.packages.rules import rules_dir
from depaudit.report import ScanReport
from depaudit.scan import InputError, ScanOptions, run_scan
from helpers import opened_files
from image_builders import docker_save_members, with_diff_ids

OS_RELEASE = b'ID=debian\nVERSION_ID="12"\n'  # the image's: the report's distro comes from it
OUTSIDE_OS_RELEASE = b'ID=ubuntu\nVERSION_ID="24.04"\n'  # outside: read, it would make the distro ubuntu-24.04
LIB = "usr/lib/x86_64-linux-gnu"
# What the service loads and runs: libgood/ffmpeg are in the image; libsecret only outside it.
SERVICE = (
    "import ctypes, subprocess\n"
    'ctypes.CDLL("libgood.so.1")\n'
    'ctypes.CDLL("libsecret.so.1")\n'
    'subprocess.run(["ffmpeg", "-version"])\n'
)
FOUND = {
    "libgood.so.1": ("base-image", f"/{LIB}/libgood.so.1"),
    "ffmpeg": ("base-image", "/usr/bin/ffmpeg"),
    "libsecret.so.1": ("unmapped", None),  # never this machine's file, wherever a link points
}
MIB = 1024 * 1024
LIMIT = 64 * MIB  # the least a compressed layer may decompress to before it counts as a bomb
REREAD = "export the image again and scan it again"


# Tar members -------------------------------------------------------------------------------------
Member = tuple[tarfile.TarInfo, bytes | None]


def file(name: str, data: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def tar_bytes(members: Sequence[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def good_members() -> list[Member]:
    return [file("etc/os-release", OS_RELEASE), file(f"{LIB}/libgood.so.1", b"\x7fELF good"), file("usr/bin/ffmpeg", b"#!")]


def good_layer() -> bytes:
    return tar_bytes(good_members())


# The images --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Inputs:
    root: Path
    service: Path
    site_packages: Path
    outside: Path  # hostile links point here: nothing in it may be opened

    def docker_save(self, layers: Sequence[bytes], *, name: str = "image.tar", manifest: bytes | None = None,
                    config: bytes = b'{"config": {"Env": ["PATH=/usr/bin"]}}') -> Path:
        names = [f"{number}/layer.tar" for number in range(len(layers))]
        manifest = manifest or json.dumps([{"Config": "config.json", "Layers": names}]).encode()
        config = with_diff_ids(config, layers)  # as Docker writes it: each layer.tar's digest
        path = self.root / name
        path.write_bytes(tar_bytes([file("manifest.json", manifest), file("config.json", config)]
                                   + [file(n, data) for n, data in zip(names, layers)]))
        return path


@pytest.fixture()
def inputs(tmp_path: Path) -> Inputs:
    # The fleet folder above the services is walked for family Dockerfiles: outside/ is not in it.
    service, site_packages, outside = tmp_path / "fleet/services/svc", tmp_path / "site-packages", tmp_path / "outside"
    service.mkdir(parents=True)
    (service / "main.py").write_text(SERVICE)
    site_packages.mkdir()
    outside.mkdir()
    (outside / "os-release").write_bytes(OUTSIDE_OS_RELEASE)
    (outside / "libsecret.so.1").write_bytes(b"\x7fELF secret")
    (outside / "layer.tar").write_bytes(good_layer())
    return Inputs(tmp_path, service, site_packages, outside)


# Watching what the scan opens --------------------------------------------------------------------
def _recording() -> AbstractContextManager[list[str]]:
    """Paths the scan opens or lists (absolute ones, normalised)."""
    return opened_files().watching(("open", "os.listdir", "os.scandir"), form="normal")


def _escapes(paths: list[str], inputs: Inputs) -> list[str]:
    """Paths touched outside the image, the service, the environment, depaudit's own caches and
    rules, and the Python installation (modules imported on first use)."""
    allowed = (
        str(inputs.root) + os.sep,
        os.path.join(tempfile.gettempdir(), "depaudit-image-"),
        os.environ["DEPAUDIT_CACHE_DIR"],
        str(rules_dir()),
        sys.prefix,
        sys.base_prefix,
        str(Path(__file__).resolve().parents[2] / "depaudit"),
    )
    outside = str(inputs.outside)
    scratch = tempfile.gettempdir()  # listed for a killed run's scratch folders (atomic.scratch_folder), never read
    return [p for p in paths if p.startswith(outside) or not (p.startswith(allowed) or p == scratch)]


def scan(inputs: Inputs, *, own_site_packages: bool = False, **image: Path) -> ScanReport:
    """The scan of the service against the image, asserting it opened nothing outside its inputs.
    `own_site_packages`: the Python environment is the one found inside the image."""
    site_packages = () if own_site_packages else (inputs.site_packages,)
    options = ScanOptions((inputs.service,), site_packages, None, use_cache=False, processes=1, **image)
    with _recording() as paths:
        report = run_scan(options)
    assert _escapes(paths, inputs) == []
    assert paths, "the recorder saw nothing: it would not see an escape either"
    return report


def found(report: ScanReport) -> dict[str, tuple[str, str | None]]:
    return {need.name: (need.status, need.found_at) for need in report.services[0].needs}


def findings(report: ScanReport, *kinds: FindingKind) -> list[Finding]:
    return [f for f in report.findings if f.kind in kinds]


def assert_rest_reported(report: ScanReport, **changed: tuple[str, str | None]) -> None:
    """The image's good files still count: its distro, and what the service needs from it."""
    assert report.distro == "debian-12"
    assert found(report) == {**FOUND, **changed}


def unsafe(image: Path, layer: int, name: str, message: str) -> Finding:
    return Finding(FindingKind.UNSAFE_MEMBER, f"{image} layer {layer}: {name}", None, f"rejected: {message}")


def bad_layer(image: Path, layer: int, message: str) -> Finding:
    return Finding(FindingKind.BAD_IMAGE, f"{image} layer {layer}", None, message)


# Members that try to leave the image -------------------------------------------------------------
def test_an_absolute_member_is_rejected(inputs: Inputs) -> None:
    image = inputs.docker_save([good_layer(), tar_bytes([file(str(inputs.outside / "planted"), b"x")])])
    report = scan(inputs, image=image)
    name = str(inputs.outside / "planted")
    assert findings(report, FindingKind.UNSAFE_MEMBER, FindingKind.BAD_IMAGE) == [
        unsafe(image, 2, name, f"member {name!r} would land outside the image root")
    ]
    assert not (inputs.outside / "planted").exists()
    assert_rest_reported(report)


def test_a_member_climbing_out_with_dot_dot_is_rejected(inputs: Inputs) -> None:
    image = inputs.docker_save([good_layer(), tar_bytes([file("usr/../../outside/planted", b"x")])])
    report = scan(inputs, image=image)
    assert findings(report, FindingKind.UNSAFE_MEMBER, FindingKind.BAD_IMAGE) == [
        unsafe(image, 2, "usr/../../outside/planted", "member 'usr/../../outside/planted' would land outside the image root")
    ]
    assert_rest_reported(report)


def test_a_symlink_climbing_out_of_the_root_is_rejected(inputs: Inputs) -> None:
    target = "../../../../outside/libsecret.so.1"  # from usr/lib/x86_64-linux-gnu/: one `..` above the root
    image = inputs.docker_save([good_layer(), tar_bytes([link(f"{LIB}/libsecret.so.1", target)])])
    report = scan(inputs, image=image)
    assert findings(report, FindingKind.UNSAFE_MEMBER, FindingKind.BAD_IMAGE) == [
        unsafe(image, 2, f"{LIB}/libsecret.so.1", f"symbolic link to {target!r} leaves the image root")
    ]
    assert_rest_reported(report)


@pytest.mark.parametrize("target", ["../../../../outside/libsecret.so.1", "/etc/passwd"], ids=["climbing", "absolute"])
def test_a_hard_link_out_of_the_root_is_rejected(inputs: Inputs, target: str) -> None:
    image = inputs.docker_save([good_layer(), tar_bytes([link(f"{LIB}/libsecret.so.1", target, tarfile.LNKTYPE)])])
    report = scan(inputs, image=image)
    name = f"{LIB}/libsecret.so.1"
    assert findings(report, FindingKind.UNSAFE_MEMBER, FindingKind.BAD_IMAGE) == [
        unsafe(image, 2, name, f"hard link {name!r} pointing to {target!r} would land outside the image root")
    ]
    assert_rest_reported(report)


def test_absolute_symlinks_to_files_of_this_machine_resolve_inside_the_image(inputs: Inputs) -> None:
    """Links naming the sentinel files by their absolute path on this machine: inside the image
    those paths hold nothing, so the image has no os-release and no libsecret."""
    layer = tar_bytes([
        *good_members()[1:],
        link("etc/os-release", str(inputs.outside / "os-release")),
        link(f"{LIB}/libsecret.so.1", str(inputs.outside / "libsecret.so.1")),
    ])
    report = scan(inputs, image=inputs.docker_save([layer]))
    assert findings(report, FindingKind.UNSAFE_MEMBER, FindingKind.BAD_IMAGE, FindingKind.SYMLINK_LOOP) == []
    assert report.distro == "ubuntu-22.04"  # the default: no os-release in the image, the outside one unread
    assert found(report) == FOUND


def test_an_archives_own_site_packages_never_leads_onto_this_machine(inputs: Inputs) -> None:
    """The image's Python environment, copied out of the archive for the scan: its links to
    files of this machine (absolute: inside the image they name nothing; climbing: rejected
    when the layer is indexed) are not followed, and its one honest distribution is audited."""
    site = "usr/local/lib/python3.11/site-packages"
    record = "pkg/__init__.py,,\npkg/libsecret.so.1,,\npkg/libclimb.so.1,,\npkg-1.0.dist-info/METADATA,,\n"
    climb = "../" * 8 + str(inputs.outside / "libsecret.so.1").lstrip("/")
    layer = tar_bytes([
        *good_members(),
        file(f"{site}/pkg-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n"),
        file(f"{site}/pkg-1.0.dist-info/RECORD", record.encode()),
        file(f"{site}/pkg/__init__.py", b'import ctypes\nctypes.CDLL("libgood.so.1")\n'),
        link(f"{site}/pkg/libsecret.so.1", str(inputs.outside / "libsecret.so.1")),
        link(f"{site}/pkg/libclimb.so.1", climb),
        link(f"{site}/evil-1.0.dist-info", str(inputs.outside)),
    ])
    image = inputs.docker_save([layer])
    (inputs.service / "main.py").write_text(SERVICE + "import pkg\n")
    report = scan(inputs, image=image, own_site_packages=True)
    assert findings(report, FindingKind.UNSAFE_MEMBER, FindingKind.BAD_IMAGE, FindingKind.SYMLINK_LOOP) == [
        unsafe(image, 1, f"{site}/pkg/libclimb.so.1", f"symbolic link to {climb!r} leaves the image root")
    ]
    assert (report.python_version, report.distribution_count) == ("3.11", 1)
    assert_rest_reported(report)
    imports = {(i.record.module, i.distribution) for i in report.services[0].imports if i.record.module == "pkg"}
    assert imports == {("pkg", "pkg")}


def test_a_symlink_loop_is_one_finding(inputs: Inputs) -> None:
    layer = tar_bytes([*good_members(), link(f"{LIB}/libsecret.so.1", "libloop.so.1"), link(f"{LIB}/libloop.so.1", "libsecret.so.1")])
    report = scan(inputs, image=inputs.docker_save([layer]))
    assert findings(report, FindingKind.SYMLINK_LOOP, FindingKind.BAD_IMAGE, FindingKind.UNSAFE_MEMBER) == [
        Finding(FindingKind.SYMLINK_LOOP, f"/{LIB}/libsecret.so.1", None, "symbolic links loop: the loader cannot open it")
    ]
    assert_rest_reported(report)


def test_whiteouts_of_files_no_layer_has_change_nothing(inputs: Inputs) -> None:
    whiteouts = tar_bytes([
        file("opt/.wh.never-there", b""),
        file("nowhere/deep/.wh..wh..opq", b""),
        file(".wh.", b""),  # would name the root itself
        file("etc/.wh...", b""),  # would name etc/..
        file(f"{LIB}/.wh.libgone.so.1", b""),
    ])
    report = scan(inputs, image=inputs.docker_save([good_layer(), whiteouts]))
    assert findings(report, FindingKind.UNSAFE_MEMBER, FindingKind.BAD_IMAGE, FindingKind.SYMLINK_LOOP) == []
    assert_rest_reported(report)


def test_a_path_thousands_of_folders_deep(inputs: Inputs) -> None:
    deep = "/".join(["d"] * 5000) + "/file"  # a PAX name: a parent index built by recursion overflows
    report = scan(inputs, image=inputs.docker_save([good_layer(), tar_bytes([file(deep, b"x"), link("d/up", "../" * 6000)])]))
    assert findings(report, FindingKind.UNSAFE_MEMBER, FindingKind.BAD_IMAGE, FindingKind.SYMLINK_LOOP) == [
        unsafe(inputs.root / "image.tar", 2, "d/up", f"symbolic link to {'../' * 6000!r} leaves the image root")
    ]
    assert_rest_reported(report)


# Layers cut short, damaged, or far larger than they look ------------------------------------------
def _members(members: Sequence[Member]) -> bytes:
    """Tar members without the end-of-archive blocks (nor the record padding) tarfile writes last."""
    out = b""
    for info, data in members:
        out += info.tobuf(format=tarfile.PAX_FORMAT)
        if data:
            out += data + bytes(-len(data) % tarfile.BLOCKSIZE)
    return out


def _truncated_layers() -> dict[str, tuple[bytes, str]]:
    """Layer bytes cut somewhere after libgood.so.1 and before usr/bin/ffmpeg, and the message."""
    noise = hashlib.shake_256(b"depaudit").digest(8192)  # incompressible: a cut hits the data
    members = [*good_members()[:2], file("var/noise.bin", noise), good_members()[2]]
    plain = tar_bytes(members)
    head = _members(good_members()[:2])
    zstd = zstandard.ZstdCompressor()
    cut_in_noise = plain.index(noise) + 4000
    after_noise = plain.index(noise) + len(noise)  # a 512-byte boundary: no header is cut
    garbage_header = plain[:after_noise] + hashlib.shake_256(b"garbage").digest(512) + plain[after_noise + 512 :]
    ends = f"the files after that point are not audited; {REREAD}"
    no_marker = f"layer ends without its end-of-archive marker after 'var/noise.bin': it was cut short or is damaged, and {ends}"
    return {
        "plain-in-data": (plain[:cut_in_noise], f"layer cannot be read to its end (unexpected end of data): {ends}"),
        "plain-between-members": (plain[:after_noise], no_marker),
        "plain-garbage-header": (garbage_header, no_marker),
        "gzip": (
            gzip.compress(plain)[:6000],
            f"layer cannot be read to its end (Compressed file ended before the end-of-stream marker was reached): {ends}",
        ),
        # zstd decompresses whole blocks: the good files in a frame of their own, the cut in the next.
        "zstd": (
            zstd.compress(head) + zstd.compress(plain[len(head) :])[:4000],
            f"layer cannot be read to its end (the zstd stream ends inside a frame): {ends}",
        ),
    }


TRUNCATED = _truncated_layers()


@pytest.mark.parametrize("case", sorted(TRUNCATED))
def test_a_layer_cut_short_keeps_what_came_before(inputs: Inputs, case: str) -> None:
    layer, message = TRUNCATED[case]
    image = inputs.docker_save([layer])
    report = scan(inputs, image=image)
    assert findings(report, FindingKind.BAD_IMAGE, FindingKind.UNSAFE_MEMBER) == [bad_layer(image, 1, message)]
    # os-release and libgood.so.1 came before the cut; ffmpeg after it.
    assert_rest_reported(report, ffmpeg=("missing", None))


def _gzip_bomb() -> bytes:
    """The good files, then a member claiming 1 GiB of zeros: gzip members one after the other,
    each 1 MiB of zeros in about a kilobyte."""
    big = tarfile.TarInfo("var/bomb.bin")
    big.size = 1024 * MIB
    head = _members([*good_members(), (big, None)])  # its data follows
    return gzip.compress(head) + gzip.compress(bytes(MIB), 9) * 100


def _zstd_bomb() -> bytes:
    big = tarfile.TarInfo("var/bomb.bin")
    big.size = 1024 * MIB
    head = _members([*good_members(), (big, None)])
    compressor = zstandard.ZstdCompressor(level=19)
    return compressor.compress(head) + compressor.compress(bytes(4 * MIB)) * 25


@pytest.mark.parametrize("make", [_gzip_bomb, _zstd_bomb], ids=["gzip", "zstd"])
def test_a_compression_bomb_is_read_to_a_bound_then_reported(inputs: Inputs, make) -> None:
    layer = make()
    assert len(layer) * 200 < LIMIT  # so the bound is the floor: 64 MiB
    image = inputs.docker_save([layer])
    started = time.perf_counter()
    report = scan(inputs, image=image)
    assert time.perf_counter() - started < 10  # 64 MiB decompressed, never the claimed gigabyte
    assert findings(report, FindingKind.BAD_IMAGE, FindingKind.UNSAFE_MEMBER) == [
        bad_layer(
            image, 1,
            f"layer decompresses to more than {LIMIT} bytes, {LIMIT // len(layer)} times its {len(layer)} compressed"
            " bytes: it is read no further, as a compression bomb would be, and the files after that point are not"
            " audited; if the image is genuine, unpack it and scan the folder with --rootfs",
        )
    ]
    assert_rest_reported(report)  # the files before the bomb were read


def test_a_gzipped_docker_save_is_read_and_a_gzipped_bomb_is_an_input_error(inputs: Inputs) -> None:
    image = inputs.docker_save([good_layer()])
    gzipped = inputs.root / "image.tar.gz"
    gzipped.write_bytes(gzip.compress(image.read_bytes()))
    assert_rest_reported(scan(inputs, image=gzipped))

    big = tarfile.TarInfo("blob")
    big.size = 1024 * MIB
    bomb = inputs.root / "bomb.tar.gz"
    bomb.write_bytes(gzip.compress(big.tobuf(format=tarfile.PAX_FORMAT)) + gzip.compress(bytes(MIB), 9) * 100)
    with pytest.raises(InputError) as raised, _recording():
        run_scan(ScanOptions((inputs.service,), (inputs.site_packages,), None, image=bomb, use_cache=False, processes=1))
    size = bomb.stat().st_size
    assert str(raised.value) == (
        f"{bomb}: not a readable image archive: decompresses to more than {LIMIT} bytes, {LIMIT // size} times its"
        f" {size} compressed bytes"
    )


# What the image's metadata names -----------------------------------------------------------------
def test_a_manifest_naming_a_missing_layer(inputs: Inputs) -> None:
    config = with_diff_ids(b'{"config": {}}', [good_layer(), b"the layer that is gone"])  # the config names both
    image = inputs.docker_save(
        [good_layer()], manifest=json.dumps([{"Config": "config.json", "Layers": ["0/layer.tar", "gone/layer.tar"]}]).encode(), config=config
    )
    report = scan(inputs, image=image)
    assert findings(report, FindingKind.BAD_IMAGE, FindingKind.UNSAFE_MEMBER) == [
        Finding(FindingKind.BAD_IMAGE, str(image), None, "the manifest names layer gone/layer.tar, which the image does not hold")
    ]
    assert_rest_reported(report)


@pytest.mark.parametrize("layer", ["../outside/layer.tar", "{outside}/layer.tar", "escape/layer.tar"], ids=["dot-dot", "absolute", "symlink"])
def test_a_layout_folder_naming_a_layer_outside_it(inputs: Inputs, layer: str) -> None:
    """A `docker save` unpacked into a folder: its manifest is a list of paths, and a path (or a
    symlink below the folder) may lead to a layer.tar outside it, which must not be read."""
    folder = inputs.root / "image"
    (folder / "0").mkdir(parents=True)
    (folder / "0/layer.tar").write_bytes(good_layer())
    (folder / "escape").symlink_to(inputs.outside)
    (folder / "config.json").write_bytes(with_diff_ids(b'{"config": {}}', [good_layer(), good_layer()]))
    name = layer.format(outside=inputs.outside)
    (folder / "manifest.json").write_text(json.dumps([{"Config": "config.json", "Layers": ["0/layer.tar", name]}]))
    report = scan(inputs, image=folder)
    assert findings(report, FindingKind.BAD_IMAGE, FindingKind.UNSAFE_MEMBER) == [
        Finding(
            FindingKind.UNSAFE_MEMBER, str(folder), None,
            f"rejected: the manifest names layer {name!r}, which lies outside the image; it is not read",
        )
    ]
    assert_rest_reported(report)


def test_an_oci_layout_whose_blob_is_a_symlink_out_of_it(inputs: Inputs) -> None:
    folder = inputs.root / "oci"
    blobs = folder / "blobs/sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return digest

    outside_digest = hashlib.sha256(b"outside").hexdigest()
    (blobs / outside_digest).symlink_to(inputs.outside / "layer.tar")
    manifest = {
        "schemaVersion": 2,
        "config": {"digest": f"sha256:{blob(b'{}')}"},
        "layers": [{"digest": f"sha256:{blob(gzip.compress(good_layer()))}"}, {"digest": f"sha256:{outside_digest}"}],
    }
    (folder / "index.json").write_text(json.dumps({"manifests": [{"digest": f"sha256:{blob(json.dumps(manifest).encode())}"}]}))
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    report = scan(inputs, image=folder)
    assert findings(report, FindingKind.BAD_IMAGE, FindingKind.UNSAFE_MEMBER) == [
        Finding(
            FindingKind.UNSAFE_MEMBER, str(folder), None,
            f"rejected: the manifest names layer 'blobs/sha256/{outside_digest}', which lies outside the image; it is not read",
        )
    ]
    assert_rest_reported(report)


@pytest.mark.parametrize(
    "manifest,reason",
    [
        (b"{not json", "manifest.json is not readable JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (b'[{"Layers": 5}]', "manifest.json Layers is not a list of layer paths"),
        (b'[{"Config": ["x"], "Layers": []}]', "manifest.json Config is not a path"),
        (b"[]", "manifest.json lists no image"),
    ],
    ids=["not-json", "layers-not-a-list", "config-not-a-path", "empty"],
)
def test_an_unreadable_manifest_is_an_input_error_with_one_line(inputs: Inputs, manifest: bytes, reason: str) -> None:
    image = inputs.docker_save([good_layer()], manifest=manifest)
    result = subprocess.run(
        [sys.executable, "-m", "depaudit", "scan", str(inputs.service), "--image", str(image), "--no-cache",
         "--site-packages", str(inputs.site_packages)],
        capture_output=True, text=True,
    )
    assert (result.returncode, result.stderr, result.stdout) == (2, f"depaudit: error: {image}: {reason}\n", "")


@pytest.mark.parametrize("config", [b"[1, 2]", b'{"config": "x"}', b'{"config": {"Env": "PATH=/x"}}', b"\xff\xfe"],
                         ids=["list", "config-a-string", "env-a-string", "not-utf8"])
def test_an_unreadable_config_is_a_finding_and_the_scan_goes_on(inputs: Inputs, config: bytes) -> None:
    image = inputs.docker_save([good_layer()], config=config)
    report = scan(inputs, image=image)
    assert findings(report, FindingKind.BAD_IMAGE, FindingKind.UNSAFE_MEMBER) == [
        Finding(
            FindingKind.BAD_IMAGE, str(image), None,
            "the image config config.json has no readable Env list: the image's own PATH and LD_LIBRARY_PATH are not"
            " used; pass them with --env",
        )
    ]
    assert_rest_reported(report)


# An unpacked rootfs folder -----------------------------------------------------------------------
def test_a_rootfs_folder_never_follows_a_link_onto_this_machine(inputs: Inputs) -> None:
    rootfs = inputs.root / "rootfs"
    for member, data in good_members():
        (rootfs / member.name).parent.mkdir(parents=True, exist_ok=True)
        (rootfs / member.name).write_bytes(data or b"")
    (rootfs / "etc/os-release").unlink()
    (rootfs / "etc/os-release").symlink_to(inputs.outside / "os-release")  # absolute: the image's own /tmp/...
    (rootfs / LIB / "libsecret.so.1").symlink_to("../../../../../../../../.." + str(inputs.outside / "libsecret.so.1"))
    (rootfs / "etc/ld.so.conf").symlink_to("ld.so.conf")  # a loop
    python = rootfs / "usr/local/lib/python3.11"
    python.parent.mkdir(parents=True)
    python.symlink_to(inputs.outside)  # a site-packages of the image, pointing out of it ...
    (inputs.outside / "site-packages").mkdir()
    (rootfs / "usr/lib/python3/dist-packages").mkdir(parents=True)  # ... and its real one
    report = scan(inputs, rootfs=rootfs, own_site_packages=True)
    assert findings(report, FindingKind.SYMLINK_LOOP, FindingKind.BAD_IMAGE, FindingKind.UNSAFE_MEMBER) == [
        Finding(FindingKind.SYMLINK_LOOP, "/etc/ld.so.conf", None, "symbolic links loop: the loader cannot open it")
    ]
    assert report.distro == "ubuntu-22.04"  # the default: the image's os-release leads nowhere inside it
    assert found(report) == FOUND


def test_one_layer_listed_ten_thousand_times_is_read_once(inputs: Inputs) -> None:
    """Identical layers are legal (empty `RUN true` layers share a digest); 10,000 listings of one
    gzip layer were decompressed 10,000 times (~55 min)."""
    once = inputs.docker_save([gzip.compress(good_layer())], name="once.tar")
    manifest = json.dumps([{"Config": "config.json", "Layers": ["0/layer.tar"] * 10_000}]).encode()
    many = inputs.docker_save([gzip.compress(good_layer())], name="many.tar", manifest=manifest)
    started = time.perf_counter()
    report = scan(inputs, image=many)
    assert time.perf_counter() - started < 5
    assert found(report) == found(scan(inputs, image=once))
    assert_rest_reported(report)


def _oci_layout(root: Path) -> Path:
    layout = root / "oci"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return layout


def _index_of(digest: str) -> bytes:
    descriptor = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": f"sha256:{digest}", "size": 1}
    return json.dumps({"schemaVersion": 2, "manifests": [descriptor]}).encode()


def _scan_layout(inputs: Inputs, layout: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "depaudit", "scan", str(inputs.service), "--site-packages", str(inputs.site_packages), "--image", str(layout)],
        capture_output=True, text=True,
    )


def test_oci_indexes_nested_too_deep_say_so(inputs: Inputs) -> None:
    layout = _oci_layout(inputs.root)
    below = hashlib.sha256(b"{}").hexdigest()  # the innermost: never reached
    (layout / "blobs" / "sha256" / below).write_bytes(b"{}")
    for _ in range(8):  # each index names the one below by its real digest
        data = _index_of(below)
        below = hashlib.sha256(data).hexdigest()
        (layout / "blobs" / "sha256" / below).write_bytes(data)
    (layout / "index.json").write_bytes(_index_of(below))
    result = _scan_layout(inputs, layout)
    assert (result.returncode, result.stderr) == (
        2, f"depaudit: error: {layout}: OCI indexes nested more than 4 deep before a manifest: not followed further\n"
    )


def test_a_blob_that_is_not_what_its_digest_names_is_not_used(inputs: Inputs) -> None:
    """A self-listing index can only be made by putting other content under a digest: caught as
    that, before any cycle is followed."""
    layout = _oci_layout(inputs.root)
    digest = hashlib.sha256(b"the original content").hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(_index_of(digest))
    (layout / "index.json").write_bytes(_index_of(digest))
    result = _scan_layout(inputs, layout)
    assert (result.returncode, result.stderr) == (
        2, f"depaudit: error: {layout}: blobs/sha256/{digest} does not hold what its digest names (sha256:{digest}): not used\n"
    )


def test_a_docker_save_config_that_is_not_what_its_digest_names_is_a_finding(inputs: Inputs) -> None:
    config = b'{"config": {"Env": ["LD_LIBRARY_PATH=/evil"]}}'
    name = hashlib.sha256(b"another config").hexdigest() + ".json"
    manifest = json.dumps([{"Config": name, "Layers": ["0/layer.tar"]}]).encode()
    image = inputs.root / "image.tar"
    image.write_bytes(tar_bytes([file("manifest.json", manifest), file(name, config), file("0/layer.tar", good_layer())]))
    report = scan(inputs, image=image)
    assert findings(report, FindingKind.BAD_IMAGE) == [
        Finding(FindingKind.BAD_IMAGE, str(image), None,
                f"{name} does not hold what its digest names (sha256:{name[:-5]}): not used: the image's own PATH and "
                "LD_LIBRARY_PATH are not used; pass them with --env")
    ]
    assert_rest_reported(report)


def test_a_member_whose_pax_path_holds_a_nul_byte_is_rejected(inputs: Inputs) -> None:
    name = "usr/lib/python3/dist-packages/" + "d" * 90 + "/a\0b.py"  # long: written as a PAX path, NUL kept
    image = inputs.docker_save([tar_bytes([*good_members(), file(name, b"import os\n")])])
    report = scan(inputs, image=image, own_site_packages=False)
    shown = name.replace("\0", "\\0")
    assert findings(report, FindingKind.UNSAFE_MEMBER) == [
        unsafe(image, 1, shown, f"member {shown!r} holds a NUL byte, which no file name can")
    ]
    assert_rest_reported(report)


def test_a_layer_that_is_not_what_its_digest_names_is_not_used(inputs: Inputs) -> None:
    """A layer blob swapped after the build (here: an os-release saying another distro) is a
    finding, and none of its files counts; the check reads the blob once, as it is indexed."""
    layout = _oci_layout(inputs.root)
    blobs = layout / "blobs" / "sha256"

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return digest

    good = gzip.compress(good_layer())
    config = blob(b'{"config": {"Env": ["PATH=/usr/bin"]}}')
    layer = blob(good)
    manifest = {"schemaVersion": 2, "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{config}"},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": f"sha256:{layer}"}]}
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                "digest": f"sha256:{blob(json.dumps(manifest).encode())}"}]}
    (layout / "index.json").write_text(json.dumps(index))
    assert found(scan(inputs, image=layout)) == FOUND  # as built: read, and every file counts
    swapped = gzip.compress(tar_bytes([file("etc/os-release", b'ID=ubuntu\nVERSION_ID="24.04"\n')]))
    (blobs / layer).write_bytes(swapped)
    report = scan(inputs, image=layout)
    assert findings(report, FindingKind.BAD_IMAGE) == [
        Finding(FindingKind.BAD_IMAGE, f"{layout} layer 1", None,
                f"layer does not hold what its digest names (sha256:{layer}; it holds sha256:{hashlib.sha256(swapped).hexdigest()}): "
                "it was altered after the image was built, and none of its files is used")
    ]
    assert report.distro == "ubuntu-22.04"  # the default: the swapped os-release (24.04) was not believed



@pytest.mark.parametrize("packing", ["plain", "gzip"])
def test_a_docker_save_layer_that_is_not_what_the_configs_diff_ids_name_is_not_used(inputs: Inputs, packing: str) -> None:
    """The legacy `docker save` layout names each layer `<id>/layer.tar`, by no digest: the config,
    itself named `<sha256>.json`, names each layer's uncompressed tar in rootfs.diff_ids. A layer
    swapped after the build (an os-release saying another distro, a library planted) is a
    finding, and none of its files counts; a gzip layer is checked as it decompresses."""
    pack = (lambda data: gzip.compress(data, mtime=0)) if packing == "gzip" else (lambda data: data)
    lower, upper = tar_bytes(good_members()), tar_bytes([file("usr/share/doc/readme", b"upper")])
    members = docker_save_members([pack(lower), pack(upper)])
    image = inputs.root / "image.tar"
    image.write_bytes(tar_bytes(members))
    assert findings(scan(inputs, image=image), FindingKind.BAD_IMAGE) == []  # as built: every layer checked, and good
    swapped = tar_bytes([file("etc/os-release", b'ID=ubuntu\nVERSION_ID="24.04"\n'), file(f"{LIB}/libsecret.so.1", b"\x7fELF")])
    layer_name = members[3][0].name
    assert layer_name.endswith("/layer.tar") and members[1][0].name.endswith(".json")
    image.write_bytes(tar_bytes([*members[:3], file(layer_name, pack(swapped))]))
    report = scan(inputs, image=image)
    expected = json.loads(members[1][1] or b"")["rootfs"]["diff_ids"][1]
    assert findings(report, FindingKind.BAD_IMAGE) == [
        bad_layer(image, 2, f"layer does not hold what the image config's rootfs.diff_ids names ({expected}; it holds "
                            f"sha256:{hashlib.sha256(swapped).hexdigest()}): it was altered after the image was built, and none of its files is used")
    ]
    assert_rest_reported(report)  # debian-12 from the lower layer: the swapped os-release was not believed; libsecret not found


@pytest.mark.parametrize(
    ("rootfs", "shown"),
    [({"diff_ids": ["sha256:" + "0" * 64]}, "1 entries"), ({"diff_ids": ["md5:abc", "sha256:x"]}, "2 entries"), ({}, "no list"),
     ({"diff_ids": "sha256:" + "0" * 64}, "no list")],
    ids=["too-few", "not-digests", "none", "a-string"],
)
def test_a_docker_save_config_whose_diff_ids_name_no_layer_says_its_layers_are_unchecked(
    inputs: Inputs, rootfs: dict[str, object], shown: str
) -> None:
    config = json.dumps({"config": {"Env": ["PATH=/usr/bin"]}, "rootfs": rootfs}).encode()
    image = inputs.root / "image.tar"
    image.write_bytes(tar_bytes(docker_save_members([good_layer(), tar_bytes([file("x", b"x")])], config=config)))
    report = scan(inputs, image=image)
    assert findings(report, FindingKind.BAD_IMAGE) == [
        Finding(FindingKind.BAD_IMAGE, str(image), None,
                f"the image config's rootfs.diff_ids ({shown}) does not name each of the manifest's 2 layer(s) by its sha256"
                " digest: the layers' content is not checked")
    ]
    assert_rest_reported(report)  # the layers are read, unchecked


def test_layers_that_decompress_past_the_images_budget_in_all_are_not_read(inputs: Inputs, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each layer under its own limit, the image over its total: 10,000 distinct small bombs
    would otherwise each be decompressed to 64 MiB."""
    from depaudit.image import layers

    monkeypatch.setattr(layers, "MAX_IMAGE_BYTES", 3 << 20)
    big = [gzip.compress(tar_bytes([file(f"opt/blob{n}", bytes(1_600_000))])) for n in range(3)]
    image = inputs.docker_save([gzip.compress(good_layer()), *big])
    report = scan(inputs, image=image)
    message = (
        f"layer not read: the image's layers decompress to more than {3 << 20} bytes in all, far beyond any real"
        " image; its files after that point, and those of the layers above, are not audited"
    )
    assert findings(report, FindingKind.BAD_IMAGE) == [
        Finding(FindingKind.BAD_IMAGE, f"{image} layer {n}", None, message) for n in (3, 4)
    ]
    assert_rest_reported(report)  # the first layers' files still count


def test_an_image_without_site_packages_says_which_environment_was_read_instead(
    inputs: Inputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = inputs.root / "active"
    (venv / "lib" / "python3.11").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.7\n")
    (venv / "lib" / "python3.11" / "site-packages").symlink_to(inputs.site_packages, target_is_directory=True)
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    monkeypatch.chdir(inputs.root)
    image = inputs.docker_save([good_layer()])  # no site-packages in it
    report = scan(inputs, image=image, own_site_packages=True)
    assert [(choice.folders, choice.source) for choice in report.environments] == [
        ((inputs.site_packages.resolve(),), f"$VIRTUAL_ENV: {image} holds no site-packages")
    ]
