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

The same images go to the image readers alone (open_image, the site-packages copied out, the
loader's lookups), in-process and without the rest of the scan: ~20 ms an example on a tmpfs
against ~0.23 s for a whole scan. CI runs DEPAUDIT_FUZZ_EXAMPLES of them (200 by default); by
hand, `TMPDIR=/dev/shm DEPAUDIT_FUZZ_EXAMPLES=100000 pytest … -k readers` ran 100,000 in 37 min.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depaudit.cache import code_fingerprint
from depaudit.image import layer_cache
from depaudit.image.model import BaseImage, ImageFormatError
from depaudit.image.open import open_image
from depaudit.image.rootfs import Ranges
from depaudit.native.reads import elf_ranges, read_by_the_scan
from depaudit.options import InputError
from depaudit.packages.rules import rules_dir
from depaudit.scan import ScanOptions, run_scan
from depaudit.scratch import release
from helpers import build_so, elf_folder, opened_files
from image_builders import Member, diff_id, file, folder, gzipped, link, oci_members, sha256, tar_bytes, write_folder

FUZZ = settings(
    max_examples=max(1, int(os.environ.get("DEPAUDIT_FUZZ_EXAMPLES", "200")) // 5), deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# The image readers alone run every example (a few ms each): DEPAUDIT_FUZZ_EXAMPLES of them.
FUZZ_READERS = settings(FUZZ, max_examples=int(os.environ.get("DEPAUDIT_FUZZ_EXAMPLES", "200")))
# What the readers' property watches: every open, listing, and write of a name.
WRITES_AND_READS = (
    "open", "os.listdir", "os.scandir", "os.mkdir", "os.rename", "os.link", "os.symlink", "os.remove", "os.rmdir",
    "os.truncate", "os.utime", "os.chmod",
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
def members(draw: st.DrawFn, named: st.SearchStrategy[str] = names) -> tuple[str, str, object]:
    kind = draw(st.sampled_from(["file", "symlink", "hardlink", "dir", "fifo"]))
    extra: object = draw(contents) if kind == "file" else draw(targets)
    return kind, draw(named), extra


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


@pytest.fixture(scope="module")
def native_layer(native: Path) -> Iterator[bytes]:
    """The readers' base layer. The layer cache's code fingerprint (a hash of depaudit's every
    source file, ~16 ms here) is taken once: a fresh cache is opened every example."""
    fingerprint = code_fingerprint()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(layer_cache, "code_fingerprint", lambda: fingerprint)
        yield _Shown(_reader_base_layer(native))


class _Shown(bytes):
    """Bytes that a failing example's report names instead of printing (~100 KB of ELF)."""

    def __repr__(self) -> str:
        return f"<the base layer, {len(self)} bytes>"


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


# The image readers alone, in-process: the same hostile images, without the rest of the scan (a
# whole scan takes ~0.23 s an example; this, a few ms), so that a session by hand runs 100,000.
# What they are asked for is what the scan asks: open_image (os-release, ld.so.conf, dpkg,
# site-packages), a site-packages copied out (all of it, the ranges the stages read, ranges of
# every file, or nothing), every file of that copy read, and the loader's questions on paths a
# hostile image or service would name.
DPKG_NAMES = [
    "var/lib/dpkg/status", "var/lib/dpkg/info/evil.list", "var/lib/dpkg/info", "var/lib/dpkg/status.d/x",
    "var/lib/dpkg/status.d", "usr/bin/python3", "usr/bin", f"{SITE}/pkg/link.so", f"{SITE}/up",
]
reader_names = st.one_of(names, st.sampled_from(DPKG_NAMES))
reader_layers = st.tuples(st.lists(members(reader_names), min_size=1, max_size=6), st.booleans())
# Paths the loader and the scan's lookups ask the image about: up and out, this machine's own
# files, the outside folder absolutely or climbing to it, and the image's own files.
PROBES = (
    "../../etc/passwd", "/etc/passwd", "/proc/self/environ", "/proc/self/root/etc/passwd", "/", "", "..", "../..",
    "/etc/os-release", "/etc/ld.so.conf", f"{OUT}/os-release", "../" * 12 + OUT.lstrip("/") + "/os-release",
    f"/{LIB}/libz.so.1", f"/{LIB}/libsecret.so.1", f"/{SITE}", f"/{SITE}/pkg/_native.cpython-311-x86_64-linux-gnu.so",
    f"/{SITE}/pkg/link.so", f"/{SITE}/up/os-release", "/escape/os-release", "/var/lib/dpkg/info/evil.list",
)
probed = st.lists(st.sampled_from(PROBES), min_size=1, max_size=8, unique=True)  # besides the image's own names
# Names a service asks the loader or PATH for, and the search paths it may be given.
PROGRAMS = ("python3", "libz.so.1", "libsecret.so.1", "os-release", "passwd", "../../etc/passwd", "/etc/passwd")
SEARCH_PATHS = (None, "/usr/bin", OUT, f"/../..{OUT}", "..:.:/etc:/proc/self", f"/{SITE}/up:/usr/local/bin")
envs = st.one_of(st.none(), st.fixed_dictionaries({
    "PATH": st.sampled_from([p for p in SEARCH_PATHS if p is not None]),
    "LD_LIBRARY_PATH": st.sampled_from([OUT, "/..", "/etc:/proc/self/root", f"{OUT}:/{LIB}", ""]),
}))
caches = st.sampled_from(["none", "fresh", "reopened"])  # a fresh layer cache; read again from it
MARK = b"DEPAUDIT-OUTSIDE"  # in every outside file: no reader may ever hand it back


def read_everything(relative: str) -> bool:
    return True


def read_nothing(relative: str) -> bool:
    return False


def _head_and_tail(stream: BinaryIO) -> list[tuple[int, int]]:
    size = stream.seek(0, io.SEEK_END)
    return [(0, 64), (max(size - 32, 0), 32), (size + 4096, 16)]  # one past the end: nothing to copy


def read_ranges(relative: str) -> Ranges:
    return _head_and_tail


readers = st.sampled_from([read_by_the_scan, read_everything, read_nothing, read_ranges])


def _reader_base_layer(native: Path) -> bytes:
    """The base layer, plus what the readers ask for besides: a dpkg database (status, a file
    list), a program on PATH, and links in the site-packages (a file, a folder, one climbing)."""
    base = tarfile.open(fileobj=io.BytesIO(_base_layer(native)))
    members = [(info, base.extractfile(info).read() if info.isfile() else None) for info in base.getmembers()]  # type: ignore[union-attr]
    return tar_bytes([
        *members,
        file("var/lib/dpkg/status", b"Package: zlib1g\nStatus: install ok installed\nVersion: 1\nInstalled-Size: 3\n"),
        file("var/lib/dpkg/info/zlib1g:amd64.list", f"/{LIB}/libz.so.1\n/etc/../../etc/passwd\n".encode()),
        file("usr/bin/python3", b"\x7fELF"),
        link(f"{SITE}/pkg/zlink.so", f"/{LIB}/libz.so.1"),
        link(f"{SITE}/pkg/sub", "."),
        link(f"{SITE}/up", "../../../../etc"),
    ])


def _outside(root: Path) -> Path:
    """This machine's files beside the image, which no reader may open."""
    outside = root / "outside"
    outside.mkdir()
    for name, data in {"os-release": b'ID=ubuntu\nVERSION_ID="24.04"\n', "libsecret.so.1": b"\x7fELF", "x.conf": b"/\n",
                       "layer.tar": tar_bytes([file("etc/os-release", b'ID=ubuntu\nVERSION_ID="24.04"\n')]),
                       "config.json": b'{"config": {"Env": ["LD_LIBRARY_PATH=/"]}}', "evil.list": b"/x\n"}.items():
        (outside / name).write_bytes(data + b"\n# " + MARK + b"\n" if not name.endswith(".tar") else data)
    return outside


def _read(path: Path | str) -> bytes:
    with open(path, "rb") as stream:
        return stream.read()


def _read_tree(folder: Path) -> list[bytes]:
    """Every file below the folder, read as the stages read them (through its links)."""
    read = []
    for parent, subfolders, files in os.walk(folder):
        for name in sorted(files + [s for s in subfolders if os.path.islink(os.path.join(parent, s))]):
            path = os.path.join(parent, name)
            if os.path.isfile(path):
                read.append(_read(path))
            elif os.path.isdir(path):
                read.extend(_read(os.path.join(path, child)) for child in os.listdir(path) if os.path.isfile(os.path.join(path, child)))
    return read


def _ask(image: BaseImage, probes: list[str], reads: Callable[[str], bool | Ranges]) -> tuple[list[bytes], list[Path]]:
    """What the scan and the loader ask a base image; the bytes handed back, the host paths given."""
    fs, handed, given = image.fs, [], []
    for site in image.site_packages:
        copy = fs.python_environment(site, reads)
        if copy is not None:
            given.append(Path(os.path.realpath(copy)))
            handed.extend(_read_tree(copy))
    for probe in probes:  # the resolver treats "x/y" as "/x/y": one form each
        handed.append((fs.read_text(probe) or "").encode())
        for host in (fs.host_path(probe), fs.readable_part(probe, elf_ranges(posixpath.basename(probe)))):
            if host is not None:
                given.append(Path(os.path.realpath(host)))
                if os.path.isfile(host):
                    handed.append(_read(host))
                elif os.path.isdir(host):
                    handed.extend(name.encode() for name in os.listdir(host))
        handed.extend(name.encode() for name in fs.glob(probe.rstrip("/") + "/*"))  # a listing, filtered
        fs.file_size(probe)
        image.owner_of(probe)
    folders = tuple(probes[:6])
    for name in PROGRAMS:
        for search in SEARCH_PATHS:
            image.find_program(name, search)
        image.find_library(name, image.ld_library_path)
        image.find_library(name, folders)
    for found in (image.find_program("python3"), image.find_library("libz.so.1", image.ld_library_path)):
        if found is not None:
            host = fs.host_path(found)
            if host is not None:
                given.append(Path(os.path.realpath(host)))
                handed.append(_read(host))
    return handed, given


def _new_scratch(before: set[str]) -> list[Path]:
    mine = f"depaudit-image-{os.getpid()}-"
    return [Path(tempfile.gettempdir(), n) for n in os.listdir(tempfile.gettempdir()) if n.startswith(mine) and n not in before]


@FUZZ_READERS
@given(st.lists(reader_layers, min_size=1, max_size=3), formats, lies, diff_ids, envs, readers, caches, probed)
def test_no_image_makes_its_readers_open_a_path_outside_it(
    native_layer: bytes, hostile: list[tuple[list[tuple[str, str, object]], bool]], form: str, lie: tuple[str, str] | None,
    ids: object, env: dict[str, str] | None, reads: Callable[[str], bool | Ranges], cache: str, asked: list[str],
) -> None:
    mine = f"depaudit-image-{os.getpid()}-"
    before = {n for n in os.listdir(tempfile.gettempdir()) if n.startswith(mine)}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(os.path.realpath(scratch))
        outside = _outside(root)
        blobs, named = [native_layer], []
        for entries, packed in hostile:
            blob = tar_bytes([_member(*entry, outside) for entry in entries])
            blobs.append(gzipped(blob) if packed else blob)
            named.extend(name.replace(OUT, str(outside)) for _, name, _ in entries)
        image_path = _image(root, outside, blobs, form, lie, ids)
        given_env = {k: v.replace(OUT, str(outside)) for k, v in env.items()} if env is not None else None
        probes = [p.replace(OUT, str(outside).lstrip("/") if p.startswith("../") else str(outside)) for p in asked] + named
        cache_dir = None if cache == "none" else root / "cache"
        handed: list[bytes] = []
        given_paths: list[Path] = []
        seen_distros: list[str | None] = []
        with opened_files().watching(WRITES_AND_READS, form="real-absolute") as paths:
            for _ in range(2 if cache == "reopened" else 1):
                try:
                    image = open_image(image_path, given_env, cache_dir)
                except ImageFormatError:
                    continue  # refused (unreadable metadata): what it opened still counts
                seen_distros.append(image.distro)
                read, given_here = _ask(image, probes, reads)
                handed += read
                given_paths += given_here
                given_paths.append(Path(os.path.realpath(image.fs.root)))
                del image
            for folder in _new_scratch(before):
                release(folder)  # what the images copied out: gone with them (the CLI's last step)
        allowed = (str(image_path), str(root / "cache"), os.path.join(os.path.realpath(tempfile.gettempdir()), mine))
        scratch_root = os.path.realpath(tempfile.gettempdir())  # listed for killed runs' folders
        code = (os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix), str(Path(__file__).resolve().parents[2] / "depaudit"))
        escapes = [p for p in paths if p.startswith(str(outside)) or not (p.startswith((*allowed, *code)) or p == scratch_root)]
        assert escapes == []
        assert any(p.startswith(allowed) for p in paths), "the recorder saw nothing of the image: it would not see an escape either"
        assert sorted(os.listdir(outside)) == ["config.json", "evil.list", "layer.tar", "libsecret.so.1", "os-release", "x.conf"]
        assert [p for p in given_paths if not str(p).startswith(allowed)] == []  # every path handed out lies inside
        assert [data for data in handed if MARK in data] == []
        assert "ubuntu-24.04" not in seen_distros  # outside/os-release never believed
