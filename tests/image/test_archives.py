"""docker save tarballs and OCI layouts, built here from a rootfs: the same audit as the folder."""

from __future__ import annotations

import gc
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest
import zstandard

from depaudit.findings import FindingKind
from depaudit.native.reads import read_by_the_scan
from depaudit.scan import ScanOptions, run_scan
from helpers import build_image_scene, have_gcc, opened_files
from image_builders import with_diff_ids

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")

ENV = ["PATH=/usr/bin", "LD_LIBRARY_PATH=/opt/ldpath"]


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _tar_of_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _second_layer(rootfs: Path) -> bytes:
    """Deletes libld.so.1 (a whiteout) and makes /opt/extra/lib opaque, adding libconf back."""
    libconf = (rootfs / "opt/extra/lib/libconf.so.1").read_bytes()
    return _tar([
        _file("opt/ldpath/.wh.libld.so.1", b""),
        _file("opt/extra/lib/.wh..wh..opq", b""),
        _file("opt/extra/lib/libconf.so.1", libconf),
    ])


def _docker_save(path: Path, config: bytes, layers: list[bytes]) -> Path:
    names = [f"l{number}/layer.tar" for number in range(1, len(layers) + 1)]
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["scene:1"], "Layers": names}]).encode()
    config = with_diff_ids(config, layers)
    with tarfile.open(path, "w") as tar:
        for name, data in [("manifest.json", manifest), ("config.json", config), *zip(names, layers)]:
            info, payload = _file(name, data)
            tar.addfile(info, io.BytesIO(payload))
    return path


def _oci_layout(folder: Path, config: bytes, layers: list[tuple[str, bytes]]) -> Path:
    """An OCI layout folder; layers are (media type suffix: "gzip" or "zstd", the layer tar)."""
    (folder / "blobs/sha256").mkdir(parents=True)

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (folder / "blobs/sha256" / digest).write_bytes(data)
        return f"sha256:{digest}"

    compress = {"gzip": gzip.compress, "zstd": zstandard.ZstdCompressor().compress}
    manifest = {
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config)},
        "layers": [
            {"mediaType": f"application/vnd.oci.image.layer.v1.tar+{kind}", "digest": blob(compress[kind](layer))}
            for kind, layer in layers
        ],
    }
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": blob(json.dumps(manifest).encode())}]}
    (folder / "index.json").write_text(json.dumps(index))
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("archives")
    rootfs, sp = build_image_scene(root / "scene")
    layers = [_tar_of_folder(rootfs), _second_layer(rootfs)]
    config = json.dumps({"config": {"Env": ENV}}).encode()

    # The folder the layers amount to.
    merged = root / "merged"
    shutil.copytree(rootfs, merged, symlinks=True)
    (merged / "opt/ldpath/libld.so.1").unlink()
    for entry in (merged / "opt/extra/lib").iterdir():  # opaque: only what layer 2 adds remains
        if entry.name != "libconf.so.1":
            entry.unlink()

    save = _docker_save(root / "image.docker.tar", config, layers)
    oci = _oci_layout(root / "image.oci", config, [("gzip", layers[0]), ("zstd", layers[1])])
    oci_tar = root / "image.oci.tar"
    oci_tar.write_bytes(_tar_of_folder(oci))

    service = root / "svc"
    service.mkdir()
    (service / "main.py").write_text("import app\n")
    return {"merged": merged, "sp": sp, "save": save, "oci": oci, "oci_tar": oci_tar, "service": service}


def _needs(built: dict[str, Path], **image: Path) -> list[tuple]:
    env = {"LD_LIBRARY_PATH": "/opt/ldpath"} if "rootfs" in image else {}
    report = run_scan(ScanOptions((built["service"],), (built["sp"],), None, env=env, **image))
    assert report.distro == "ubuntu-22.04"
    return [(n.name, n.status, n.package, n.tier.value, n.found_at, n.rule, n.tried) for n in report.services[0].needs]


def test_docker_save_and_oci_give_the_audit_of_the_merged_folder(built: dict[str, Path]) -> None:
    expected = _needs(built, rootfs=built["merged"])
    statuses = {name: status for name, status, *_ in expected}
    assert statuses["libld.so.1"] == "unmapped"  # whited out by the second layer
    assert statuses["libconf.so.1"] == "base-image"  # survives the opaque folder: added back above it
    assert statuses["libabi.so.1"] == "unmapped"  # hidden by the opaque folder
    for key in ("save", "oci", "oci_tar"):
        assert _needs(built, image=built[key]) == expected, key


def test_a_manifest_naming_a_missing_layer_is_a_finding(built: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.tar"
    with tarfile.open(built["save"]) as source, tarfile.open(broken, "w") as tar:
        for member in source.getmembers():
            if member.name == "l2/layer.tar":
                continue
            tar.addfile(member, source.extractfile(member))
    report = run_scan(ScanOptions((built["service"],), (built["sp"],), None, image=broken))
    assert [(f.kind, f.message) for f in report.findings if f.kind is FindingKind.BAD_IMAGE] == [
        (FindingKind.BAD_IMAGE, "the manifest names layer l2/layer.tar, which the image does not hold")
    ]
    statuses = {n.name: n.status for n in report.services[0].needs}
    assert statuses["libld.so.1"] == "base-image"  # the whiteout never came: the rest still audited


def test_hostile_members_are_rejected_and_nothing_outside_is_opened(built: dict[str, Path], tmp_path: Path) -> None:
    def link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        return info, None

    layer = _tar([
        _file("/etc/absolute-member", b"x"),
        _file("../../climbing-member", b"x"),
        link("usr/lib/x86_64-linux-gnu/libhard.so.1", "../../../../etc/passwd", tarfile.LNKTYPE),
        link("usr/lib/x86_64-linux-gnu/libout.so.1", "../../../../../etc/passwd", tarfile.SYMTYPE),
        link("usr/lib/x86_64-linux-gnu/libabs.so.1", "/etc/hostname", tarfile.SYMTYPE),
        link("opt/a", "b", tarfile.SYMTYPE),
        link("opt/b", "a", tarfile.SYMTYPE),
    ])
    hostile = tmp_path / "hostile.tar"
    with tarfile.open(hostile, "w") as tar:
        for name, data in [
            ("manifest.json", json.dumps([{"Config": "c.json", "Layers": ["l/layer.tar"]}]).encode()),
            ("c.json", b'{"config": {"Env": ["LD_LIBRARY_PATH=/opt/a"]}}'),
            ("l/layer.tar", layer),
        ]:
            info, payload = _file(name, data)
            tar.addfile(info, io.BytesIO(payload))

    # Earlier tests' unpacked images are removed when collected (shutil.rmtree opens each folder by
    # a relative name): collected now, not while this scan is watched.
    gc.collect()
    with opened_files().watching() as opened:
        report = run_scan(ScanOptions((built["service"],), (built["sp"],), "ubuntu-22.04", image=hostile))
    unsafe = sorted(f.path.split(": ", 1)[1] for f in report.findings if f.kind is FindingKind.UNSAFE_MEMBER)
    assert unsafe == [
        "../../climbing-member",
        "/etc/absolute-member",
        "usr/lib/x86_64-linux-gnu/libhard.so.1",
        "usr/lib/x86_64-linux-gnu/libout.so.1",
    ]
    assert [f.path for f in report.findings if f.kind is FindingKind.SYMLINK_LOOP] == ["/opt/a"]
    statuses = {n.name: n.status for n in report.services[0].needs}
    assert statuses["libabs.so.1"] == "unmapped"  # the image has no /etc/hostname; this machine's is not looked at
    from depaudit.packages.rules import rules_dir

    # The archive, the environment, the image's private cache, our rules and code, the service scanned.
    import os

    import depaudit

    allowed = (
        str(hostile),
        str(built["sp"]),
        tempfile.gettempdir() + "/depaudit-image-",
        str(rules_dir()),
        str(Path(depaudit.__file__).parent) + "/",  # the results cache's fingerprint of our code
        str(built["service"]),
        os.environ["DEPAUDIT_CACHE_DIR"],  # our own index cache
    )
    scratch = tempfile.gettempdir()  # listed for a killed run's scratch folders, never read
    assert opened and [p for p in opened if not (p.startswith(allowed) or p == scratch)] == []


def test_a_warm_scan_of_an_image_takes_its_walks_from_the_cache(built: dict[str, Path], tmp_path: Path) -> None:
    """The image's files are copied out to a new folder on every run; a walk reaching into them
    is keyed by the image file, never by those copies' stamps, so a second run reads no ELF file."""
    options = ScanOptions((built["service"],), (built["sp"],), None, image=built["save"], cache_dir=tmp_path)
    first = run_scan(options)
    with opened_files().watching() as opened:
        second = run_scan(options)
    found = [path for path in opened if re.search(r"\.so(\.\d+)*(\.depaudit-part)?$", path)]
    assert second.services[0].needs == first.services[0].needs
    assert ("libdefault.so.1", "/lib/x86_64-linux-gnu/libdefault.so.1") in [(n.name, n.found_at) for n in first.services[0].needs]
    assert found == []


SITE = "usr/local/lib/python3.10/site-packages"


@pytest.fixture(scope="module")
def python_image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An image holding its own Python environment, as a folder, a docker save and an OCI tar."""
    root = tmp_path_factory.mktemp("python-image")
    rootfs, sp = build_image_scene(root / "scene")
    folder = root / "rootfs"
    shutil.copytree(rootfs, folder, symlinks=True)
    site = folder / SITE
    shutil.copytree(sp, site, symlinks=True)
    (site / "app/__init__.py").write_text("")
    (site / "app/data.json").write_text("{}")  # read by no stage: never copied out
    (site / "app/libalias.so.1").symlink_to("../rpathfirst/libprec.so.1")
    (site / "app/libgone.so.1").symlink_to("/etc/passwd")  # the image has none: dangling there
    layer = _tar_of_folder(folder)
    config = json.dumps({"config": {"Env": ENV}}).encode()
    save = _docker_save(root / "image.docker.tar", config, [layer])
    oci = _oci_layout(root / "image.oci", config, [("gzip", layer)])
    service = root / "svc"
    service.mkdir()
    (service / "main.py").write_text("import app\n")
    return {"rootfs": folder, "save": save, "oci": oci, "service": service}


def test_an_image_archive_gives_its_own_site_packages_as_the_folder_does(python_image: dict[str, Path]) -> None:
    """No --site-packages: the environment is the image's, read from the archive as from the
    unpacked folder (it used to be an empty folder, and no distribution was audited)."""

    def audit(**image: Path) -> tuple:
        env = {"LD_LIBRARY_PATH": "/opt/ldpath"} if "rootfs" in image else {}
        report = run_scan(ScanOptions((python_image["service"],), (), None, env=env, use_cache=False, **image))
        needs = [(n.name, n.status, n.package, n.found_at, n.rule) for n in report.services[0].needs]
        return report.python_version, report.distribution_count, needs

    expected = audit(rootfs=python_image["rootfs"])
    version, count, needs = expected
    assert (version, count) == ("3.10", 1)
    found = {name: (status, found_at) for name, status, _, found_at, _ in needs}
    assert found["libprec.so.1"] == ("bundled", "rpathfirst/libprec.so.1")
    assert found["libdefault.so.1"] == ("base-image", "/lib/x86_64-linux-gnu/libdefault.so.1")
    for key in ("save", "oci"):
        assert audit(image=python_image[key]) == expected, key


def test_only_what_the_scan_reads_is_copied_out_of_an_image(python_image: dict[str, Path]) -> None:
    from depaudit.image.open import open_image

    image = open_image(python_image["save"])
    assert image.site_packages == ("/" + SITE,)
    host = image.fs.python_environment("/" + SITE, read_by_the_scan)
    assert host is not None
    copied = sorted(p.relative_to(host).as_posix() for p in host.rglob("*") if not p.is_dir())
    assert copied == [
        "app-1.0.dist-info/METADATA",
        "app-1.0.dist-info/RECORD",
        "app/__init__.py",
        "app/_native.cpython-311-x86_64-linux-gnu.so",
        "app/_rpath.cpython-311-x86_64-linux-gnu.so",
        "app/_runpath.cpython-311-x86_64-linux-gnu.so",
        "app/libalias.so.1",
        "rpathfirst/libprec.so.1",
    ]
    alias = host / "app/libalias.so.1"
    assert alias.is_symlink() and alias.resolve() == (host / "rpathfirst/libprec.so.1").resolve()
    assert not os.path.lexists(host / "app/libgone.so.1")  # dangling in the image: absent here too
    assert [f.kind for f in image.fs.findings] == [FindingKind.UNSAFE_MEMBER]  # the scene's libclimb.so.1: nothing copied failed


def test_a_folder_an_upper_layer_turned_into_a_link_is_not_copied_out_with_its_old_files() -> None:
    from depaudit.image.layers import LayeredImage

    def link(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = tarfile.SYMTYPE, target
        return info, None

    lower = _tar([_file("sp/pkg/old.py", b""), _file("sp/pkg2/mod.py", b""), _file("elsewhere/lib.py", b"")])
    upper = _tar([link("sp/pkg", "/elsewhere"), link("sp/mod.py", "pkg2/mod.py")])
    image = LayeredImage("two-layers", [lambda: io.BytesIO(lower), lambda: io.BytesIO(upper)])
    host = image.python_environment("/sp", lambda relative: True)
    assert host is not None
    found = sorted((p.relative_to(host).as_posix(), p.is_symlink()) for p in host.rglob("*"))
    # pkg leads out of the folder: left out, and its lower layer's old.py with it
    assert found == [("mod.py", True), ("pkg2", False), ("pkg2/mod.py", False)]
    assert (host / "mod.py").read_bytes() == b""


def test_a_file_a_cut_layer_holds_in_part_is_copied_as_short_sparse_or_whole() -> None:
    from depaudit.image.layers import LayeredImage

    data = b"\x7fELF" + bytes(range(256)) * 64
    whole = _tar([_file("sp/libcut.so.1", data)])
    cut = whole[: 512 + len(data) // 2]  # the header block, then half the file
    sparse_image = LayeredImage("cut", [lambda: io.BytesIO(cut)])
    folder = sparse_image.python_environment("/sp", read_by_the_scan)
    whole_image = LayeredImage("cut", [lambda: io.BytesIO(cut)])
    copy = whole_image.host_path("/sp/libcut.so.1")
    assert folder is not None and copy is not None
    assert (folder / "libcut.so.1").stat().st_size == copy.stat().st_size == len(data) // 2
