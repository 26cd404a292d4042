"""Real inputs for tests: wheels in cached venvs, dist-info folders, gcc-built shared objects."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_FLEET = REPO / "examples" / "fleet"


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "depaudit-tests"


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    assert len(found) == 1, f"expected one site-packages in {venv}, found {found}"
    return found[0]


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )


def made_once(folder: Path, make: Callable[[Path], None]) -> Path:
    """`folder`, made by `make` into a staging folder beside it and renamed into place when done
    (marked `.complete`): kept across runs, and a run cut short leaves nothing half made."""
    if (folder / ".complete").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + "-", dir=folder.parent))
    try:
        make(staging)
        (staging / ".complete").touch()
        if not (folder / ".complete").exists():
            shutil.rmtree(folder, ignore_errors=True)  # one cut short
            staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def index_reachable() -> bool:
    with tempfile.TemporaryDirectory() as scratch:
        probe = _pip(Path(sys.executable), "download", "--no-deps", "--dest", scratch, "six==1.16.0")
    return probe.returncode == 0


def build_wheel_env(name: str, pip_args: Sequence[str], cwd: Path = REPO) -> Path:
    """A venv with real wheels from the package index, cached across runs by its inputs.

    Returns its site-packages. Skips the calling test when the index cannot be reached.
    """
    key_material = [name, sys.version]
    for arg in pip_args:
        candidate = cwd / arg
        # A path inside the clone by its relative name: a clone elsewhere (every CI run, every
        # fresh-clone check) shares the venv.
        inside = candidate.resolve().is_relative_to(cwd.resolve())
        key_material.append(candidate.resolve().relative_to(cwd.resolve()).as_posix() if inside else arg)
        if candidate.is_file():  # requirements files: their content is part of the key
            key_material.append(candidate.read_text())
            for included in sorted(candidate.parent.rglob("*.txt")):
                key_material.append(f"{included.relative_to(candidate.parent)}:{included.read_text()}")
    digest = hashlib.sha256("\0".join(key_material).encode()).hexdigest()[:16]
    venv = _cache_root() / f"{name}-{digest}"

    def make(staging: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True)
        result = _pip(staging / "bin" / "python", "install", "--no-compile", *pip_args)
        if result.returncode != 0:
            if not index_reachable():
                pytest.skip("the Python package index is unreachable: cannot install real wheels")
            pytest.fail(f"pip install {' '.join(pip_args)} failed:\n{result.stdout}\n{result.stderr}")

    # venvs are not relocatable for running, but we only read their site-packages.
    return _site_packages(made_once(venv, make))


def _requirements_key(name: str, pip_args: Sequence[str], cwd: Path) -> str:
    key_material = [name, sys.version]
    for arg in pip_args:
        candidate = cwd / arg
        inside = candidate.resolve().is_relative_to(cwd.resolve())
        key_material.append(candidate.resolve().relative_to(cwd.resolve()).as_posix() if inside else arg)
        if candidate.is_file():
            key_material.append(candidate.read_text())
            for included in sorted(candidate.parent.rglob("*.txt")):
                key_material.append(f"{included.relative_to(candidate.parent)}:{included.read_text()}")
    return hashlib.sha256("\0".join(key_material).encode()).hexdigest()[:16]


def download_wheels(name: str, pip_args: Sequence[str], cwd: Path = REPO) -> Path:
    """A folder of the wheels `pip download --only-binary :all:` picks for `pip_args` (their
    dependencies too), for this interpreter, cached across runs by its inputs; what a
    `--find-links` folder holds. Skips the calling test when the index cannot be reached."""
    folder = _cache_root() / f"{name}-wheels-{_requirements_key(name, pip_args, cwd)}"

    def make(staging: Path) -> None:
        result = _pip(Path(sys.executable), "download", "--only-binary", ":all:", "--dest", str(staging), *pip_args)
        if result.returncode != 0:
            if not index_reachable():
                pytest.skip("the Python package index is unreachable: cannot download real wheels")
            pytest.fail(f"pip download {' '.join(pip_args)} failed:\n{result.stdout}\n{result.stderr}")

    return made_once(folder, make)


def install_wheels(name: str, wheels: Path) -> Path:
    """Every wheel of the folder installed as they are (`pip install --no-deps --target`), no
    index asked: the installed twin of an audit from a lock of those wheels. Cached by the
    folder's name (its inputs' digest)."""
    target = _cache_root() / f"{name}-installed-{wheels.name}"

    def make(staging: Path) -> None:
        files = sorted(str(path) for path in wheels.glob("*.whl"))
        result = _pip(Path(sys.executable), "install", "--no-deps", "--no-index", "--no-compile", "--target", str(staging / "site-packages"), *files)
        if result.returncode != 0:
            pytest.fail(f"pip install --target of {wheels} failed:\n{result.stdout}\n{result.stderr}")

    return made_once(target, make) / "site-packages"


PYPI_SIMPLE = "https://pypi.org/simple"


def release_archive(name: str, version: str) -> Path:
    """The file one release installs from, never installed, imported or built: its wheel for CPython
    3.11 on manylinux x86_64 (as pip picks it), else its sdist. Downloaded once, cached across runs
    beside the test venvs; skips the calling test when the package index is unreachable."""
    from packaging.utils import canonicalize_name

    folder = made_once(_cache_root() / "releases" / f"{canonicalize_name(name)}-{version}", lambda staging: _fetch_release(name, version, staging))
    (archive,) = [path for path in folder.iterdir() if path.name != ".complete"]
    return archive


def _fetch_release(name: str, version: str, staging: Path) -> None:
    result = _pip(
        Path(sys.executable), "download", "--no-deps", "--only-binary", ":all:", "--python-version", "3.11",
        "--platform", "manylinux_2_28_x86_64", "--dest", str(staging), f"{name}=={version}",
    )
    if result.returncode != 0:
        if not index_reachable():
            pytest.skip("the Python package index is unreachable: cannot download real wheels")
        if "No matching distribution" not in result.stderr:
            pytest.fail(f"pip download {name}=={version} failed:\n{result.stdout}\n{result.stderr}")
        _download_sdist(name, version, staging)  # the release publishes no wheel for this target


def _download_sdist(name: str, version: str, dest: Path) -> None:
    """A release's sdist, found in PyPI's JSON simple index (PEP 691) and checked against its SHA256:
    `pip download` would run its build backend to read its metadata."""
    import json
    import urllib.request

    from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename
    from packaging.version import Version

    request = urllib.request.Request(
        f"{PYPI_SIMPLE}/{canonicalize_name(name)}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            files = json.load(response)["files"]
    except OSError as error:
        pytest.skip(f"PyPI's simple index is unreachable: {error}")
    for entry in files:
        try:
            sdist_name, sdist_version = parse_sdist_filename(entry["filename"])
        except InvalidSdistFilename:
            continue
        if sdist_name == canonicalize_name(name) and sdist_version == Version(version):
            try:
                _download(entry["url"], dest / entry["filename"], entry["hashes"]["sha256"])
            except OSError as error:
                pytest.skip(f"cannot download {entry['url']}: {error}")
            return
    pytest.fail(f"{name}=={version} has neither a wheel for CPython 3.11 on manylinux x86_64 nor an sdist")


def make_dist(
    site_packages: Path,
    name: str,
    version: str = "1.0",
    *,
    files: dict[str, str | bytes] | None = None,
    existing: Sequence[str] = (),
    requires: Sequence[str] = (),
    top_level: Sequence[str] | None = None,
) -> Path:
    """Write a real dist-info folder (METADATA, RECORD, top_level.txt) and the files it lists.

    `files` are written with their content; `existing` are files already in place (e.g. built
    shared objects) that RECORD must list too.
    """
    site_packages.mkdir(parents=True, exist_ok=True)
    for relative, content in (files or {}).items():
        target = site_packages / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    info_name = f"{name.replace('-', '_')}-{version}.dist-info"
    info = site_packages / info_name
    info.mkdir()
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(metadata) + "\n")
    if top_level is not None:
        (info / "top_level.txt").write_text("".join(f"{t}\n" for t in top_level))
    listed = [*(files or {}), *existing, f"{info_name}/METADATA", f"{info_name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{path},,\n" for path in listed))
    return info


def have_gcc() -> bool:
    return shutil.which("gcc") is not None


def elf_folder(factory: pytest.TempPathFactory, name: str) -> Path:
    """A fresh folder for a fixture that builds shared objects; the fixture is skipped without gcc."""
    if not have_gcc():
        pytest.skip("gcc is not installed: cannot build ELF fixtures")
    return factory.mktemp(name)


def build_so(
    out: Path,
    *,
    soname: str | None = None,
    needed: Sequence[Path] = (),
    rpath: str | None = None,
    runpath: str | None = None,
    extra: Sequence[str] = (),
) -> Path:
    """A real shared object: `needed` are linked by path, so their SONAMEs become DT_NEEDED."""
    out.parent.mkdir(parents=True, exist_ok=True)
    source = out.parent / f".{out.name}.c"
    symbol = "".join(c if c.isalnum() else "_" for c in out.name)
    source.write_text(f"int depaudit_{symbol}(void) {{ return 0; }}\n")
    command = ["gcc", "-shared", "-fPIC", "-o", str(out), str(source), "-Wl,--no-as-needed"]
    if soname:
        command.append(f"-Wl,-soname,{soname}")
    if rpath:
        command += ["-Wl,--disable-new-dtags", f"-Wl,-rpath,{rpath}"]
    if runpath:
        command += ["-Wl,--enable-new-dtags", f"-Wl,-rpath,{runpath}"]
    command += [*extra, *map(str, needed)]
    subprocess.run(command, check=True, capture_output=True)
    source.unlink()
    return out


# As systemd's ELF_NOTE_DLOPEN macro emits it: an FDO note whose payload is JSON; and soname
# strings in read-only data, as torchaudio probes libavutil.
NOTE_AND_PROBE = r"""
#include <stdint.h>
struct note { uint32_t namesz, descsz, type; char name[4]; char desc[64]; };
__attribute__((used, section(".note.dlopen"), aligned(4)))
static const struct note dlopen_note = {4, 64, 0x407c0c0a, "FDO",
    "[{\"soname\":[\"libbar.so.2\"],\"priority\":\"required\"}]"};
__attribute__((used)) static const char probe58[] = "libavutil.so.58";
__attribute__((used)) static const char probe57[] = "libavutil.so.57";
int entry(void) { return 0; }
"""


def build_probing_so(folder: Path, name: str, padding: int = 0) -> Path:
    """A shared object with dlopen evidence of both kinds: a .note.dlopen naming libbar.so.2
    (required) and the strings libavutil.so.58 and .57; `padding` bytes of read-only data first
    put the strings that far from the headers."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f".{name}.c"
    pad = f"__attribute__((used)) static const char padding[{padding}] = {{1}};\n" if padding else ""
    source.write_text(pad + NOTE_AND_PROBE.replace("entry", "entry_" + "".join(c if c.isalnum() else "_" for c in name)))
    out = folder / name
    # In the order written: the padding, then the strings.
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-fno-toplevel-reorder", "-o", str(out), str(source)], check=True)
    source.unlink()
    return out


def build_vision_env(root: Path) -> Path:
    """A site-packages with one real wheel-shaped distribution, as opencv is laid out.

    `visionlib/_core` (an extension module) links a bundled `libvis-1a2b.so.1` that needs
    libGL.so.1; a plugin no extension module links needs libX11.so.6. Returns site-packages.
    """
    stubs, sp = root / "stubs", root / "site-packages"
    gl = build_so(stubs / "libGL.so.1", soname="libGL.so.1")
    x11 = build_so(stubs / "libX11.so.6", soname="libX11.so.6")
    libc_dep = build_so(stubs / "libz.so.1", soname="libz.so.1")
    vis = build_so(sp / "visionlib.libs/libvis-1a2b.so.1", soname="libvis-1a2b.so.1", needed=[gl, libc_dep])
    build_so(sp / "visionlib/_core.cpython-311-x86_64-linux-gnu.so", needed=[vis], rpath="$ORIGIN/../visionlib.libs")
    build_so(sp / "visionlib/plugins/libxplugin.so", needed=[x11])
    make_dist(
        sp,
        "visionlib",
        "2.0",
        files={"visionlib/__init__.py": ""},
        existing=[
            "visionlib.libs/libvis-1a2b.so.1",
            "visionlib/_core.cpython-311-x86_64-linux-gnu.so",
            "visionlib/plugins/libxplugin.so",
        ],
        requires=["helperlib"],
    )
    make_dist(sp, "helperlib", "0.1", files={"helperlib.py": ""})
    make_dist(sp, "unusedlib", "0.1", files={"unusedlib.py": ""})
    return sp


def build_elf32_so(out: Path, soname: str) -> Path:
    """A minimal but real 32-bit i386 shared object with a SONAME (gcc here has no -m32).

    One PT_LOAD maps the file; PT_DYNAMIC holds DT_STRTAB, DT_STRSZ, DT_SONAME.
    """
    import struct

    strtab = b"\0" + soname.encode() + b"\0"
    strtab_offset = 52 + 2 * 32
    dynamic_offset = (strtab_offset + len(strtab) + 3) & ~3
    entries = [(5, strtab_offset), (10, len(strtab)), (14, 1), (0, 0)]  # STRTAB, STRSZ, SONAME, NULL
    dynamic = b"".join(struct.pack("<iI", tag, value) for tag, value in entries)
    size = dynamic_offset + len(dynamic)
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    header = struct.pack("<16sHHIIIIIHHHHHH", ident, 3, 3, 1, 0, 52, 0, 0, 52, 32, 2, 40, 0, 0)
    load = struct.pack("<IIIIIIII", 1, 0, 0, 0, size, size, 4, 0x1000)
    dyn = struct.pack("<IIIIIIII", 2, dynamic_offset, dynamic_offset, dynamic_offset, len(dynamic), len(dynamic), 6, 4)
    body = header + load + dyn + strtab
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(body + bytes(dynamic_offset - len(body)) + dynamic)
    return out


def build_image_scene(root: Path) -> tuple[Path, Path]:
    """An unpacked base image and a site-packages whose extension module exercises ld.so's order.

    Returns (rootfs, site-packages).
    """
    rootfs, sp, stubs = root / "rootfs", root / "site-packages", root / "stubs"
    lib = rootfs / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    os.symlink("usr/lib", rootfs / "lib")  # usrmerge
    (rootfs / "etc/ld.so.conf.d").mkdir(parents=True)
    (rootfs / "etc/ld.so.conf").write_text("# ld.so.conf\ninclude /etc/ld.so.conf.d/*.conf\n")
    (rootfs / "etc/ld.so.conf.d/10-extra.conf").write_text("/opt/extra/lib\n")
    (rootfs / "etc/ld.so.conf.d/20-cuda.conf").write_text("/usr/local/cuda/lib64 # cuda\n")
    (rootfs / "etc/ld.so.conf.d/README").write_text("/opt/not-a-conf-file\n")
    (rootfs / "etc/os-release").write_text('ID=ubuntu\nVERSION_ID="22.04"\n')

    # In the image: a symlinked soname in the default dirs, owned by a dpkg package.
    build_so(lib / "libdefault.so.1.2.3", soname="libdefault.so.1")
    os.symlink("libdefault.so.1.2.3", lib / "libdefault.so.1")
    build_so(rootfs / "opt/extra/lib/libconf.so.1", soname="libconf.so.1")
    build_elf32_so(rootfs / "opt/ldpath/libconf.so.1", "libconf.so.1")  # wrong class: skipped
    build_so(rootfs / "opt/ldpath/libld.so.1", soname="libld.so.1")
    # A FreeBSD-ABI copy first in the search order (EI_OSABI = 9): skipped for the Linux one.
    build_so(rootfs / "opt/extra/lib/libabi.so.1", soname="libabi.so.1")
    freebsd = bytearray((rootfs / "opt/extra/lib/libabi.so.1").read_bytes())
    freebsd[7] = 9
    (rootfs / "opt/ldpath/libabi.so.1").write_bytes(bytes(freebsd))
    build_so(rootfs / "opt/ldpath/libprec.so.1", soname="libprec.so.1")
    build_so(rootfs / "opt/not-a-conf-file/libhidden.so.1", soname="libhidden.so.1")
    os.symlink("libloop.so.1", lib / "libloop.so.1")  # a symlink loop
    os.symlink("/etc/passwd", lib / "libabs.so.1")  # absolute: means the image's /etc/passwd
    os.symlink("../../../../../../../../etc/passwd", lib / "libclimb.so.1")  # ".." stops at the root
    dpkg = rootfs / "var/lib/dpkg"
    (dpkg / "info").mkdir(parents=True)
    (dpkg / "status").write_text(
        "Package: libdefault1\nStatus: install ok installed\nVersion: 1.2.3-1\n\n"
        "Package: removed-pkg\nStatus: deinstall ok config-files\nVersion: 1\n"
    )
    (dpkg / "info/libdefault1:amd64.list").write_text(
        "/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libdefault.so.1.2.3\n/lib/x86_64-linux-gnu/libdefault.so.1\n"
    )

    names = ["libdefault.so.1", "libconf.so.1", "libld.so.1", "libabi.so.1", "libhidden.so.1", "libmissing.so.1",
             "libloop.so.1", "libabs.so.1", "libclimb.so.1"]
    linked = [build_so(stubs / n, soname=n) for n in names]
    prec = build_so(stubs / "libprec.so.1", soname="libprec.so.1")
    build_so(sp / "rpathfirst/libprec.so.1", soname="libprec.so.1")
    ext = ".cpython-311-x86_64-linux-gnu.so"
    build_so(sp / f"app/_native{ext}", needed=linked)
    # DT_RPATH is searched before LD_LIBRARY_PATH; DT_RUNPATH after it.
    build_so(sp / f"app/_rpath{ext}", needed=[prec], rpath="$ORIGIN/../rpathfirst")
    build_so(sp / f"app/_runpath{ext}", needed=[prec], runpath="$ORIGIN/../rpathfirst")
    make_dist(
        sp,
        "app",
        existing=[f"app/_native{ext}", f"app/_rpath{ext}", f"app/_runpath{ext}", "rpathfirst/libprec.so.1"],
    )
    return rootfs, sp


def debian_archive_file(relative: str) -> Path:
    """A file of the distro's archive (e.g. `dists/bookworm/main/Contents-amd64.gz`), fetched from
    the mirror this machine's apt uses and cached across runs; skips the test when unreachable."""
    import urllib.request

    import pytest

    target = _cache_root() / "debian-archive" / relative
    if target.exists():
        return target
    mirror = None
    for source in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in source.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                mirror = mirror or line.split()[1]
    if mirror is None:
        pytest.skip("no Debian mirror in this machine's apt sources")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    try:
        with urllib.request.urlopen(f"{mirror.rstrip('/')}/{relative}", timeout=120) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as error:
        pytest.skip(f"the Debian archive is unreachable: {error}")
    partial.rename(target)
    return target


UBUNTU_MIRROR = "http://archive.ubuntu.com/ubuntu"


def ubuntu_archive_files(suite: str, names: Sequence[str]) -> dict[str, Path]:
    """Files of one suite of the Ubuntu archive (`dists/<suite>/<name>`, e.g. `main/binary-amd64/Packages.xz`),
    cached across runs with the suite's Release; skips the calling test when the archive is unreachable.

    Packages files are fetched by their hash in that Release (`by-hash/SHA256/…`) and checked against
    it, so a pocket republished while we download (`jammy-updates` changes daily) still yields the
    Packages of one Release. $DEPAUDIT_UBUNTU_MIRROR names another mirror."""
    import urllib.error

    folder = _cache_root() / "ubuntu-archive" / suite
    mirror = os.environ.get("DEPAUDIT_UBUNTU_MIRROR", UBUNTU_MIRROR).rstrip("/")
    try:
        try:
            return _ubuntu_snapshot(folder, f"{mirror}/dists/{suite}", names)
        except urllib.error.HTTPError as error:
            if error.code != 404 or not (folder / "Release").exists():
                raise
            shutil.rmtree(folder)  # the cached Release is so old its files left by-hash: start afresh
            return _ubuntu_snapshot(folder, f"{mirror}/dists/{suite}", names)
    except OSError as error:
        pytest.skip(f"the Ubuntu archive is unreachable: cannot fetch {suite} from {mirror}: {error}")


def _ubuntu_snapshot(folder: Path, base: str, names: Sequence[str]) -> dict[str, Path]:
    release = folder / "Release"
    if not release.exists():
        _download(f"{base}/Release", release)
    digests = _release_sha256(release.read_text(encoding="utf-8"))
    for name in names:
        if not (folder / name).exists():
            _fetch_archive_file(base, name, folder / name, digests)
    return {name: folder / name for name in names}


def _fetch_archive_file(base: str, name: str, target: Path, digests: dict[str, str]) -> None:
    if name.startswith("Contents-"):
        # Ubuntu regenerates Contents apart from the Release, whose entry for it lags: not by hash.
        _download(f"{base}/{name}", target)
    elif name in digests:
        directory = name.rpartition("/")[0]
        _download(f"{base}/{directory + '/' if directory else ''}by-hash/SHA256/{digests[name]}", target, digests[name])
    else:
        pytest.fail(f"{base}/Release lists no {name}")


def _release_sha256(release: str) -> dict[str, str]:
    """name → SHA256 from a Release file's `SHA256:` section."""
    digests: dict[str, str] = {}
    section = ""
    for line in release.splitlines():
        if not line.startswith(" "):
            section = line.split(":", 1)[0]
        elif section == "SHA256":
            digest, _size, name = line.split()
            digests[name] = digest
    return digests


def _download(url: str, target: Path, sha256: str | None = None) -> None:
    import urllib.request

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".part{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=120) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            pytest.fail(f"{url}: SHA256 {digest.hexdigest()}, the Release says {sha256}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: a FIFO opened for reading blocks until a writer comes."""

    def expire(*_: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class OpenedFiles:
    """The paths this process opens (and, if asked, lists) while `watching`: an audit hook, which
    sees builtins.open, io.open and os.open alike. Hooks cannot be removed, so the suite has one
    (`opened_files()`), quiet outside `watching`."""

    def __init__(self) -> None:
        self.active = False
        self.paths: list[str] = []
        self.events: tuple[str, ...] = ("open",)
        self.form = "raw"
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[object, ...]) -> None:
        if not self.active or event not in self.events or not args:
            return
        for at in _PATH_ARGS.get(event, (0,)):
            target = args[at] if at < len(args) else None
            if isinstance(target, (str, bytes, os.PathLike)):  # not a folder descriptor
                self._note(os.fsdecode(target))

    def _note(self, text: str) -> None:
        if self.form == "raw":
            self.paths.append(text)
        elif self.form == "real":
            try:
                self.paths.append(os.path.realpath(text))
            except ValueError:  # a NUL byte: open itself refuses it next
                pass
        elif self.form == "real-absolute":  # resolved as the call finds it; a relative one is opened
            if os.path.isabs(text) and "\0" not in text:  # against a folder descriptor (rmtree's)
                self.paths.append(os.path.realpath(text))
        elif os.path.isabs(text):  # "normal"; a relative one is opened against a folder descriptor
            self.paths.append(os.path.normpath(text))

    @contextmanager
    def watching(self, events: tuple[str, ...] = ("open",), form: str = "raw") -> Iterator[list[str]]:
        """form: "raw" (as passed), "real" (os.path.realpath), "real-absolute" (absolute paths
        only, os.path.realpath'd when the call is made) or "normal" (absolute paths only, normalised)."""
        self.paths, self.events, self.form = [], events, form
        self.active = True
        try:
            yield self.paths
        finally:
            self.active = False


# Events naming more than one path: both ends of a rename or hard link; a symbolic link's own
# name (its first argument is the text it will hold, no path opened).
_PATH_ARGS = {"os.rename": (0, 1), "os.link": (0, 1), "os.symlink": (1,)}
_OPENED_FILES: list[OpenedFiles] = []


def opened_files() -> OpenedFiles:
    """The suite's one OpenedFiles, made (and its hook installed) on first use."""
    if not _OPENED_FILES:
        _OPENED_FILES.append(OpenedFiles())
    return _OPENED_FILES[0]


def scan_source(folder: Path, site_packages: Path, source: str, distro: str = "debian-12", **options: object):  # type: ignore[no-untyped-def]
    """A real scan of one service `folder/svc` whose main.py is `source`: its report."""
    from depaudit.scan import ScanOptions, run_scan

    service = folder / "svc"
    service.mkdir(parents=True)
    (service / "main.py").write_text(source)
    return run_scan(ScanOptions((service,), (site_packages,), distro, use_cache=False, **options))  # type: ignore[arg-type]


def verdict(need) -> tuple[str, str, str | None]:  # type: ignore[no-untyped-def]
    """A need's status, tier and package, as the tests compare them."""
    return need.status.value, need.tier.value, need.package
