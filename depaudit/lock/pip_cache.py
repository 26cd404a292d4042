"""pip's caches as a source of wheels, read as files, never by running pip.

pip keeps what it downloaded in `<cache>/http-v2/` (pip ≥ 23.3: a response's body in a `*.body`
file, its headers beside it) and `<cache>/http/` (older pip: headers and body in one file,
`cc=4,` then msgpack), each named by a hash of the URL, not by the wheel. So a body that is a
zip is named by what it holds: the wheel's filename is made from its `*.dist-info/WHEEL` (Tag,
Build) and `METADATA` (Name, Version). That look costs a few KiB per body, and is kept in
depaudit's cache by the body file's stat (path, size, mtime, ctime, inode): a second run opens
no body it saw before. Whether a body is the wheel the lock means is its sha256's business, as
for any wheel (environment.py).

The wheels pip built (`<cache>/wheels/`) keep their filenames: wheels.py lists them as they are.
"""

from __future__ import annotations

import configparser
import hashlib
import io
import itertools
import json
import os
import re
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from depaudit import consulted
from depaudit.atomic import write_atomic

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_FORMAT = 1
_ZIP = b"PK\x03\x04"
_OLD_PREFIX = b"cc=4,"  # cachecontrol's serialisation of a response pip ≤ 23.2 wrote
_MAX_META = 1 << 20  # no WHEEL or METADATA worth reading is larger


@dataclass(frozen=True)
class CachedWheel:
    """A wheel among pip's downloads: the file holding it and where in that file it lies."""

    filename: str  # as the wheel names itself inside
    path: Path
    offset: int = 0  # 0 and the file's size: a `.body` file, the wheel itself
    size: int = 0

    @property
    def whole(self) -> bool:
        return self.offset == 0 and self.path.name.endswith(".body")


def pip_cache_dir() -> Path:
    """pip's cache folder as pip would pick it: `PIP_CACHE_DIR`, else `cache-dir` in its config
    files (read as INI, the last one naming it winning, as pip layers them), else the default."""
    named = consulted.getenv("PIP_CACHE_DIR")
    if named:
        return Path(os.path.expanduser(named))
    found = None
    for path in _config_files():
        parser = configparser.RawConfigParser()
        try:
            parser.read_string(consulted.read_text(path, errors="replace"))
        except (OSError, configparser.Error):
            continue
        for section in ("global", "install"):  # pip's command section overrides [global]
            if parser.has_option(section, "cache-dir"):
                found = parser.get(section, "cache-dir").strip()
    if found:
        return Path(os.path.expanduser(found))
    return Path(consulted.getenv("XDG_CACHE_HOME") or Path.home() / ".cache") / "pip"


def _config_files() -> list[Path]:
    """pip's config files, lowest precedence first: site-wide, the user's (unless
    PIP_CONFIG_FILE names an existing file), the venv's, then PIP_CONFIG_FILE's; none when
    PIP_CONFIG_FILE is /dev/null (pip loads none then)."""
    named = consulted.getenv("PIP_CONFIG_FILE")
    if named == os.devnull:
        return []
    dirs = (consulted.getenv("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep)
    files = [Path(d, "pip", "pip.conf") for d in dirs if d] + [Path("/etc/pip.conf")]
    if not (named and consulted.exists(named)):
        home = Path.home()
        files += [home / ".pip" / "pip.conf", Path(consulted.getenv("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf"]
    venv = consulted.getenv("VIRTUAL_ENV")
    if venv:
        files.append(Path(venv, "pip.conf"))
    if named:
        files.append(Path(named))
    return [path for path in files if consulted.is_file(path)]


def http_wheels(pip_cache: Path, cache: Path) -> dict[str, list[CachedWheel]]:
    """The wheels among pip's cached downloads, by canonical name. The identity of each body is
    taken from depaudit's index of this pip cache while the body's stat is as it was; the index
    is written back only when something changed."""
    index_file = cache / "pip-http" / (hashlib.blake2b(str(pip_cache.resolve()).encode(), digest_size=12).hexdigest() + ".json")
    try:
        known = json.loads(index_file.read_text())
        entries: dict[str, list[object]] = known["entries"] if known.get("format") == _FORMAT else {}
        if not isinstance(entries, dict):
            entries = {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        entries = {}
    fresh: dict[str, list[object]] = {}
    found: dict[str, list[CachedWheel]] = {}
    for path, old_format in _bodies(pip_cache):
        try:
            status = path.stat()
        except OSError:
            continue
        stamp = [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino]
        entry = entries.get(str(path))
        if not (isinstance(entry, list) and len(entry) == 3 and entry[0] == stamp):
            entry = [stamp, *_identify(path, old_format, status.st_size)]
        wheels = _entry_wheels(path, entry)
        if wheels is None:  # an index entry this code did not write: the body is looked at again
            entry = [stamp, *_identify(path, old_format, status.st_size)]
            wheels = _entry_wheels(path, entry) or []
        fresh[str(path)] = entry
        for name, wheel in wheels:
            found.setdefault(name, []).append(wheel)
    if fresh != entries:
        _write_json(index_file, {"format": _FORMAT, "entries": fresh})
    return found


def _entry_wheels(path: Path, entry: list[object]) -> list[tuple[str, CachedWheel]] | None:
    """(canonical name, wheel) of an index entry; None when it is not one `_identify` makes."""
    filenames, region = entry[1], entry[2]
    if filenames == [] and region is None:
        return []
    try:
        if not isinstance(filenames, list) or not isinstance(region, list):
            return None
        offset, size = (int(n) for n in region)
        return [(canonicalize_name(parse_wheel_filename(str(f))[0]), CachedWheel(str(f), path, offset, size)) for f in filenames]
    except (InvalidWheelFilename, InvalidVersion, TypeError, ValueError):
        return None


def extract(wheel: CachedWheel, cache: Path) -> tuple[Path, bool]:
    """The wheel as a file of its own, and whether it was copied now: a `.body` file is one; a
    body inside an older pip's response file is copied out into the cache once (by the file's
    stat). Raises OSError."""
    if wheel.whole:
        return wheel.path, False
    status = wheel.path.stat()
    stamp = f"{wheel.path}|{status.st_size}|{status.st_mtime_ns}|{status.st_ctime_ns}|{status.st_ino}|{wheel.offset}"
    folder = cache / "downloads" / ("pip-" + hashlib.blake2b(stamp.encode(), digest_size=8).hexdigest())
    target = folder / wheel.filename
    if target.is_file():
        return target, False
    folder.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=wheel.filename + ".", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out, open(wheel.path, "rb") as source:
            source.seek(wheel.offset)
            remaining = wheel.size
            while remaining > 0 and (chunk := source.read(min(remaining, 1 << 20))):
                out.write(chunk)
                remaining -= len(chunk)
            if remaining:
                raise OSError(f"{wheel.path} ended {remaining} bytes before its wheel did")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target, True


def _bodies(pip_cache: Path) -> list[tuple[Path, bool]]:
    """The response files of pip's HTTP caches: (path, whether it is the older one-file kind)."""
    found = []
    for folder, old_format in (("http-v2", False), ("http", True)):
        # Listed as inputs of the scan (memo.py): a body pip adds lands in a folder listed here.
        for current, dirs, names in consulted.walk(pip_cache / folder):
            dirs.sort()
            for name in sorted(names):
                if old_format or name.endswith(".body"):
                    found.append((Path(current, name), old_format))
    return found


def _identify(path: Path, old_format: bool, size: int) -> list[object]:
    """[wheel filenames, [offset, size]] of the body, or [[], None] when it holds no wheel."""
    try:
        with open(path, "rb") as stream:
            offset, length = (_old_body(stream) if old_format else (0, size)) or (0, 0)
            stream.seek(offset)
            if length < 22 or stream.read(4) != _ZIP:
                return [[], None]
            names = _wheel_filenames(_Window(stream, offset, length))
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, struct.error):
        return [[], None]
    return [names, [offset, length]] if names else [[], None]


def _old_body(stream: io.BufferedReader) -> tuple[int, int] | None:
    """Where the body lies in an older pip's response file: cachecontrol writes `cc=4,` then a
    msgpack map whose `response` map begins with `body`, a msgpack bin (its length, then it)."""
    head = stream.read(256)
    if not head.startswith(_OLD_PREFIX):
        return None
    at = head.find(b"\xa4body")
    if at < 0 or at + 6 > len(head):
        return None
    kind, start = head[at + 5], at + 6
    widths = {0xC4: 1, 0xC5: 2, 0xC6: 4}
    if kind not in widths or start + widths[kind] > len(head):
        return None
    width = widths[kind]
    length = int.from_bytes(head[start : start + width], "big")
    return start + width, length


def _wheel_filenames(stream: io.RawIOBase) -> list[str]:
    """The filenames the zip's dist-info says it has (one per tag when its tags are no product
    of interpreters × ABIs × platforms, as a filename spells them)."""
    with zipfile.ZipFile(stream) as archive:  # type: ignore[arg-type]
        tops = {info.filename: info for info in archive.infolist() if info.filename.count("/") == 1}
        wheel = next((info for name, info in sorted(tops.items()) if name.endswith(".dist-info/WHEEL")), None)
        metadata = next((info for name, info in sorted(tops.items()) if name.endswith(".dist-info/METADATA")), None)
        if wheel is None or metadata is None or max(wheel.file_size, metadata.file_size) > _MAX_META:
            return []
        parsed_wheel = HeaderParser().parsestr(archive.read(wheel).decode("utf-8", errors="replace"))
        parsed_meta = HeaderParser().parsestr(archive.read(metadata).decode("utf-8", errors="replace"))
    name, version = parsed_meta.get("Name"), parsed_meta.get("Version")
    tags = [tag.strip() for tag in parsed_wheel.get_all("Tag") or [] if tag.count("-") == 2]
    if not name or not version or not tags:
        return []
    try:
        version = str(Version(version.strip()))
    except InvalidVersion:
        return []
    stem = re.sub(r"[-_.]+", "_", name.strip())
    build = (parsed_wheel.get("Build") or "").strip()
    prefix = f"{stem}-{version}-{build}" if build else f"{stem}-{version}"
    parts = [tuple(dict.fromkeys(tag.split("-")[i] for tag in tags)) for i in range(3)]
    if {"-".join(p) for p in itertools.product(*parts)} == set(tags):
        spelled = [".".join(part) for part in parts]
        candidates = [f"{prefix}-{'-'.join(spelled)}.whl"]
    else:
        candidates = [f"{prefix}-{tag}.whl" for tag in dict.fromkeys(tags)]
    names = []
    for filename in candidates:
        try:
            parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion):
            continue
        names.append(filename)
    return names


class _Window(io.RawIOBase):
    """Bytes [offset, offset + length) of a file, as a file of their own (a zip inside a larger file)."""

    def __init__(self, stream: io.BufferedReader, offset: int, length: int) -> None:
        super().__init__()
        self._stream, self._offset, self._length, self._at = stream, offset, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._length}[whence]
        self._at = max(0, base + offset)
        return self._at

    def tell(self) -> int:
        return self._at

    def readinto(self, buffer: WriteableBuffer) -> int:
        count = max(0, min(len(memoryview(buffer)), self._length - self._at))
        if not count:
            return 0
        self._stream.seek(self._offset + self._at)
        data = self._stream.read(count)
        memoryview(buffer)[: len(data)] = data
        self._at += len(data)
        return len(data)


def _write_json(path: Path, document: object) -> None:
    """A cache that cannot be written is worked out again next run."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(document, separators=(",", ":")))
    except OSError:
        pass
