"""Confinement as a property, for images: whatever a hostile image holds, a whole scan of it
opens nothing outside the image, the project and depaudit's own scratch and cache folders (an
audit hook sees every open and listing, resolved through links), and writes nothing outside.

Hypothesis builds each image: `docker save` (tar or folder) or OCI layout (folder or tar), over
a good base layer (os-release, ld.so.conf, a site-packages whose real extension module needs
libz.so.1 and libsecret.so.1, so that the scan copies files out); then hostile layers, plain or
gzip: members named `../x`, absolutely, into this machine's `outside/` folder; symbolic and hard
links climbing out or naming `outside/` absolutely; whiteouts and opaque folders; and hostile
metadata: layers and configs named `../outside/…`, absolutely, through a link out of the layout
folder, blobs named `../../etc/passwd`, configs whose diff_ids are odd. Beside the image lies
`outside/`, files no scan may open. CI runs DEPAUDIT_FUZZ_EXAMPLES/5 examples (40 by default).
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depaudit.options import InputError
from depaudit.packages.rules import rules_dir
from depaudit.scan import ScanOptions, run_scan
from helpers import build_so, elf_folder, opened_files
from image_builders import Member, diff_id, file, folder, gzipped, link, oci_members, sha256, tar_bytes, write_folder

FUZZ = settings(
    max_examples=max(1, int(os.environ.get("DEPAUDIT_FUZZ_EXAMPLES", "200")) // 5), deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
LIB = "usr/lib/x86_64-linux-gnu"
SITE = "usr/local/lib/python3.11/site-packages"
OUT = "{outside}"  # replaced by this machine's outside/ folder, absolute, when the image is built

names = st.one_of(
    st.sampled_from([
        "../x", "../../etc/passwd", "/etc/passwd", f"{OUT}/planted", "a/../../x", "./../x", "..", ".", "",
        "etc/os-release", "etc/ld.so.conf", "etc/ld.so.conf.d/x.conf", f"{LIB}/libz.so.1", f"{LIB}/libsecret.so.1",
        f"{SITE}/pkg/__init__.py", f"{SITE}/pkg/_native.cpython-311-x86_64-linux-gnu.so", f"{SITE}/pkg-1.0.dist-info/RECORD",
        SITE, f"{SITE}/pkg", "usr/lib", "usr", "etc",
        ".wh.etc", "etc/.wh.os-release", "usr/.wh..wh..opq", f"{SITE}/.wh.pkg", f"{LIB}/.wh..wh..opq", "usr/lib/.wh..", ".wh...",
    ]),
    st.lists(st.sampled_from(["..", ".", "etc", "usr", "lib", "x", ".wh.x", OUT.strip("/")]), min_size=1, max_size=5).map("/".join),
)
targets = st.sampled_from([
    "/etc/passwd", f"{OUT}/libsecret.so.1", OUT, "../" * 12 + OUT.lstrip("/") + "/os-release", "..", "../..", "/", ".",
    "libz.so.1", f"/{LIB}/libz.so.1", "os-release", "../etc/os-release", "../../../../..", f"/{SITE}", "x",
])
contents = st.sampled_from([
    b"", b"\x7fELF", b'ID=ubuntu\nVERSION_ID="22.04"\n', f"include {OUT}/*.conf\n{OUT}\n/../../{OUT}\n".encode(), b"pkg/x.py,,\n",
])


@st.composite
def members(draw: st.DrawFn) -> tuple[str, str, object]:
    kind = draw(st.sampled_from(["file", "symlink", "hardlink", "dir", "fifo"]))
    extra: object = draw(contents) if kind == "file" else draw(targets)
    return kind, draw(names), extra


layers = st.tuples(st.lists(members(), min_size=1, max_size=6), st.booleans())  # (members, gzip)
formats = st.sampled_from(["save-tar", "save-folder", "oci-folder", "oci-tar"])
# How the metadata lies: (which name, as what); None: it does not.
lies = st.one_of(
    st.none(),
    st.tuples(st.sampled_from(["layer", "config"]), st.sampled_from([
        "../outside/layer.tar", f"{OUT}/layer.tar", "escape/layer.tar", "../../etc/passwd", "/etc/passwd",
        "sha256:../../etc/passwd", "sha256:" + "0" * 64, "blobs/sha256/../../../outside/layer.tar",
    ])),
)
diff_ids = st.sampled_from(["right", [], "x", None, [1, 2], ["sha256:" + "0" * 64] * 5, ["sha512:" + "0" * 128], {"a": 1}])


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An extension module needing libz.so.1 (in the image) and libsecret.so.1 (only outside)."""
    built = elf_folder(tmp_path_factory, "image-fuzz")
    libz = build_so(built / "libz.so.1", soname="libz.so.1")
    secret = build_so(built / "libsecret.so.1", soname="libsecret.so.1")
    return build_so(built / "_native.so", needed=[libz, secret])


def _base_layer(native: Path) -> bytes:
    record = f"pkg/__init__.py,,\npkg/_native.cpython-311-x86_64-linux-gnu.so,,\npkg-1.0.dist-info/METADATA,,\n"
    return tar_bytes([
        file("etc/os-release", b'ID=debian\nVERSION_ID="12"\n'),
        file("etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n"),
        file("etc/ld.so.conf.d/x.conf", b"/opt/lib\n"),
        file(f"{LIB}/libz.so.1", b"\x7fELF not really"),
        file(f"{SITE}/pkg-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n"),
        file(f"{SITE}/pkg-1.0.dist-info/RECORD", record.encode()),
        file(f"{SITE}/pkg/__init__.py", b"from . import _native\n"),
        file(f"{SITE}/pkg/_native.cpython-311-x86_64-linux-gnu.so", native.read_bytes()),
    ])


def _member(kind: str, name: str, extra: object, outside: Path) -> Member:
    name = name.replace(OUT, str(outside))
    if kind == "file":
        return file(name, bytes(extra).replace(OUT.encode(), str(outside).encode()))  # type: ignore[call-overload]
    if kind == "dir":
        return folder(name)
    target = str(extra).replace(OUT, str(outside).lstrip("/") if str(extra).startswith("../") else str(outside))
    if kind == "fifo":
        info = tarfile.TarInfo(name)
        info.type = tarfile.FIFOTYPE
        return info, None
    return link(name, target, tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE)


def _image(root: Path, outside: Path, blobs: list[bytes], form: str, lie: tuple[str, str] | None, ids: object) -> Path:
    """The image at root/image(.tar); what `lie` names replaces the layer's or config's true name."""
    listed = [diff_id(blob) for blob in blobs]
    config = json.dumps({"config": {"Env": ["PATH=/usr/bin"]}, "rootfs": {"diff_ids": listed if ids == "right" else ids}}).encode()
    lied = (lie[0], lie[1].replace(OUT, str(outside))) if lie is not None else None
    if form.startswith("save"):
        names = [f"{number:02d}{sha256(blob)[:8]}/layer.tar" for number, blob in enumerate(blobs)]
        config_name = f"{sha256(config)}.json"
        listed_names = list(names)
        if lied is not None and lied[0] == "layer":
            listed_names[-1] = lied[1]
        manifest = [{"Config": lied[1] if lied is not None and lied[0] == "config" else config_name, "Layers": listed_names}]
        content = [file("manifest.json", json.dumps(manifest).encode()), file(config_name, config),
                   *(file(name, blob) for name, blob in zip(names, blobs))]
    else:
        content = oci_members(blobs, config=config)
        if lied is not None:
            index = json.loads(content[1][1] or b"")
            manifest_name = "blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]
            manifest_at = next(n for n, (info, _) in enumerate(content) if info.name == manifest_name)
            manifest = json.loads(content[manifest_at][1] or b"")
            target = manifest["layers"][-1] if lied[0] == "layer" else manifest["config"]
            target["digest"] = lied[1]
            data = json.dumps(manifest).encode()  # a manifest whose own digest no longer matches: also a lie
            content[manifest_at] = file(manifest_name, data)
    if form.endswith("folder"):
        image = write_folder(root / "image", content)
        (image / "escape").symlink_to(outside)  # a link out of the layout folder, for a name through it
        return image
    image = root / "image.tar"
    image.write_bytes(tar_bytes(content))
    return image


def _allowed(root: Path) -> tuple[str, ...]:
    return (
        str(root / "image"), str(root / "image.tar"), str(root / "project"),
        os.path.join(os.path.realpath(tempfile.gettempdir()), "depaudit-image-"),
        os.path.realpath(os.environ["DEPAUDIT_CACHE_DIR"]), os.path.realpath(rules_dir()),
        os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix), str(Path(__file__).resolve().parents[2] / "depaudit"),
    )


@FUZZ
@given(st.lists(layers, min_size=1, max_size=3), formats, lies, diff_ids)
def test_no_image_makes_the_scan_open_a_path_outside_its_inputs(
    native: Path, hostile: list[tuple[list[tuple[str, str, object]], bool]], form: str, lie: tuple[str, str] | None, ids: object
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(os.path.realpath(scratch))
        outside, service = root / "outside", root / "project" / "services" / "svc"  # the fleet walk reads project/
        outside.mkdir()
        service.mkdir(parents=True)
        (service / "main.py").write_text('import ctypes\nimport pkg\nctypes.CDLL("libz.so.1")\n')
        for name, data in {"os-release": b'ID=ubuntu\nVERSION_ID="24.04"\n', "libsecret.so.1": b"\x7fELF", "x.conf": b"/\n",
                           "layer.tar": tar_bytes([file("etc/os-release", b'ID=ubuntu\nVERSION_ID="24.04"\n')]),
                           "config.json": b'{"config": {"Env": ["LD_LIBRARY_PATH=/"]}}'}.items():
            (outside / name).write_bytes(data)
        before = sorted(os.listdir(outside))
        blobs = [_base_layer(native)]
        for entries, packed in hostile:
            blob = tar_bytes([_member(*entry, outside) for entry in entries])
            blobs.append(gzipped(blob) if packed else blob)
        image = _image(root, outside, blobs, form, lie, ids)
        options = ScanOptions((service,), (), None, use_cache=False, processes=1, image=image)
        with opened_files().watching(("open", "os.listdir", "os.scandir"), form="raw") as raw:
            try:
                report = run_scan(options)
            except InputError:
                report = None  # refused (unreadable metadata, no environment): what it opened still counts
        # Resolved through links: a name below the image that leads out of it is an escape. A
        # relative name is opened against a folder descriptor (rmtree's), opened by its own path.
        paths = [os.path.realpath(path) for path in raw if os.path.isabs(path) and "\0" not in path]
        allowed = _allowed(root)
        scratch_root = os.path.realpath(tempfile.gettempdir())  # listed for killed runs' folders, never read
        escapes = [p for p in paths if p.startswith(str(outside)) or not (p.startswith(allowed) or p == scratch_root)]
        assert escapes == []
        assert paths, "the recorder saw nothing: it would not see an escape either"
        assert sorted(os.listdir(outside)) == before  # nothing written there
        if report is not None:
            assert report.distro != "ubuntu-24.04"  # outside/os-release never believed
            secret = [n for s in report.services for n in s.needs if n.name == "libsecret.so.1"]
            assert all(n.found_at is None or not n.found_at.startswith(str(outside)) for n in secret)
