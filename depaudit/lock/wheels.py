"""Where each pin's wheel for the target comes from: a local wheel folder (`--find-links`), the
file the lock itself names (a path, or a URL downloaded once into depaudit's cache), pip's caches
(the wheels it built, the wheels it downloaded: pip_cache.py), or an index (`--index-url`, its simple API). Never built, never installed, never run."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from depaudit import consulted
from depaudit.lock.model import Pin, WheelTarget
from depaudit.lock.pip_cache import CachedWheel, extract, http_wheels

_HREF = re.compile(r"""<a\s[^>]*href=["']([^"']+)["']""", re.IGNORECASE)
_TIMEOUT = 120


@dataclass(frozen=True)
class Candidate:
    filename: str
    rank: int  # the target's preference for its best tag: lower is better
    path: Path | None = None  # a local file
    url: str | None = None  # where to download it from
    sha256: str | None = None  # what the lock (or the index) says its digest is
    cached: CachedWheel | None = None  # a body in pip's HTTP cache


@dataclass(frozen=True)
class Offer:
    """What is on offer for a pin: its usable wheels, best first, and what else was seen."""

    wheels: tuple[Candidate, ...]
    sdists: tuple[str, ...]
    other_wheels: tuple[str, ...]  # wheels of the pin for other targets
    index_error: str | None = None  # the index was asked and could not answer: why


class WheelSources:
    def __init__(self, find_links: Sequence[Path], lock_folder: Path, cache: Path, index_url: str | None = None, pip_cache: Path | None = None) -> None:
        self.lock_folder = lock_folder
        self.cache = cache
        self.index_url = index_url
        self.pip_cache = pip_cache
        self._local: dict[str, list[Path]] = {}  # canonical name → archives in the folders
        self._downloaded: dict[str, list[CachedWheel]] | None = None  # pip's HTTP cache, indexed when first needed
        self.fetched: dict[Path, bool] = {}  # folders of `downloads/` this run read: whether it made them
        found = [path for folder in find_links for path in _archives(folder)]
        if pip_cache is not None:
            found += _archives(pip_cache / "wheels", nested=True)
        for path in found:
            self._local.setdefault(_archive_name(path.name), []).append(path)

    def offer(self, pin: Pin, target: WheelTarget) -> Offer:
        """Of the lock's files and the wheel folders' (pip's built wheels among them) first; then,
        when none of those is a wheel on this machine, pip's downloads; when none of the three
        holds a file of the pin at all, the index."""
        key = canonicalize_name(pin.name)
        seen: list[Candidate] = []
        for locked in pin.files:
            path = None
            if locked.url and "://" not in locked.url:
                path = self.lock_folder / locked.url
            seen.append(Candidate(locked.filename, 0, path, locked.url if path is None else None, locked.sha256))
        local = self._local.get(key, [])
        if pin.exact_files:  # a copy on this machine of a file the lock names exactly is that file (its hash checked)
            local = [path for path in local if path.name in {locked.filename for locked in pin.files}]
        seen.extend(Candidate(path.name, 0, path) for path in local)
        offer = _sorted_offer(pin, target, seen)
        if pin.exact_files:
            return offer
        if self.pip_cache is not None and not any(c.path is not None for c in offer.wheels):
            if self._downloaded is None:
                self._downloaded = http_wheels(self.pip_cache, self.cache)
            seen.extend(Candidate(w.filename, 0, w.path if w.whole else None, cached=w) for w in self._downloaded.get(key, []))
            offer = _sorted_offer(pin, target, seen)
        if not seen and self.index_url:
            files, error = _index_files(self.index_url, key)
            seen.extend(Candidate(name, 0, None, url, sha256) for name, url, sha256 in files)
            offer = replace(_sorted_offer(pin, target, seen), index_error=error)
            if not offer.wheels:
                # An answer of the network, which no file stamp tells: a wheel uploaded later, or
                # an index back up, must be seen by the next scan, not a memo of this one.
                consulted.note_untold(f"{self.index_url} offered no wheel of {pin.name} {pin.version}")
        return offer

    def fetch(self, candidate: Candidate) -> Path:
        """The candidate as a local file: a download lands in the cache once (OSError on failure)."""
        if candidate.path is not None:
            return candidate.path
        if candidate.cached is not None:
            wheel, made = extract(candidate.cached, self.cache)
            if not candidate.cached.whole:
                self.fetched[wheel.parent] = made or self.fetched.get(wheel.parent, False)
            return wheel
        if candidate.url is None:
            raise OSError(f"{candidate.filename}: no file and no URL")
        if candidate.url.startswith("file:"):  # a wheel on this machine: read where it lies
            return Path(urllib.request.url2pathname(urllib.parse.urlparse(candidate.url).path))
        # By the URL too: another index may serve other bytes under the same file name.
        folder = self.cache / "downloads" / hashlib.blake2b(candidate.url.encode(), digest_size=8).hexdigest()
        target = folder / candidate.filename
        if target.is_file():
            self.fetched.setdefault(folder, False)
            return target
        self.fetched[folder] = True
        folder.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=candidate.filename + ".", dir=folder)
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(candidate.url, timeout=_TIMEOUT) as response:  # noqa: S310 - the lock's own URL
                shutil.copyfileobj(response, out, 1 << 20)
            os.replace(partial, target)
        except (OSError, ValueError, http.client.HTTPException) as error:
            consulted.note_untold(f"{candidate.url} could not be downloaded")  # the network's answer: no stamp
            if isinstance(error, OSError):
                raise
            raise OSError(f"{type(error).__name__}: {error}") from error  # a URL it cannot use, a response cut short
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        return target


def _sorted_offer(pin: Pin, target: WheelTarget, seen: Sequence[Candidate]) -> Offer:
    """The pin's wheels for the target among `seen`, best tag first; a wheel on this machine
    rather than one to download or copy out."""
    ranks = {tag: number for number, tag in enumerate(target.tags)}
    key = canonicalize_name(pin.name)
    wheels: dict[tuple[str, str], Candidate] = {}
    sdists: list[str] = []
    others: list[str] = []
    for candidate in seen:
        filename, path = candidate.filename, candidate.path
        version = _version_of(filename, key)
        if version is None or not _same_version(version, pin.version):
            continue
        if not filename.endswith(".whl"):
            sdists.append(filename)
            continue
        tags = parse_wheel_filename(filename)[3]
        rank = min((ranks[str(tag)] for tag in tags if str(tag) in ranks), default=None)
        if rank is None:
            others.append(filename)
            continue
        local = path if path is not None and path.is_file() else None
        # pip's cache may hold several bodies of one filename (from other indexes): each is tried.
        slot = (filename, str(candidate.cached.path) if candidate.cached else "")
        known = wheels.get(slot)
        if known is None or (known.path is None and local is not None):
            # The digest the lock or index gave for this filename still holds the new one to it.
            wheels[slot] = replace(candidate, rank=rank, path=local, sha256=candidate.sha256 or (known.sha256 if known else None))
    for (filename, where), candidate in list(wheels.items()):
        if where and candidate.sha256 is None:
            named = next((c.sha256 for (f, w), c in wheels.items() if f == filename and not w and c.sha256), None)
            wheels[(filename, where)] = replace(candidate, sha256=named)
    # On this machine first (a file, then a body in pip's cache), a download last.
    ordered = sorted(wheels.values(), key=lambda c: (c.rank, c.filename, c.path is None and c.cached is None))
    return Offer(tuple(ordered), tuple(sorted(set(sdists))), tuple(sorted(set(others))))


def file_sha256(path: Path, cache: Path) -> str:
    """The file's sha256, worked out once per (path, size, times, inode): a wheel folder's
    wheels are hashed the first time a lock names them, not on every scan."""
    status = path.stat()
    stamp = f"{path.resolve()}|{status.st_size}|{status.st_mtime_ns}|{status.st_ctime_ns}|{status.st_ino}"
    memo = cache / "wheel-digests" / hashlib.blake2b(stamp.encode(), digest_size=16).hexdigest()
    try:
        known = memo.read_text().strip()
        if len(known) == 64:
            return known
    except OSError:
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 22):
            digest.update(chunk)
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(digest.hexdigest())
    return digest.hexdigest()


def _archives(folder: Path, *, nested: bool = False) -> list[Path]:
    """The wheels and sdists a folder holds; `nested`: in its subfolders too (pip's cache).
    Listed as inputs of the scan: a wheel added or removed is another scan (memo.py)."""
    if nested:
        return sorted(Path(current, name) for current, _, names in consulted.walk(folder) for name in names if name.endswith(".whl"))
    try:
        names = consulted.listdir(folder)
    except OSError:
        return []
    return sorted(p for p in (folder / name for name in names) if p.name.endswith((".whl", ".tar.gz", ".zip")) and p.is_file())


def _archive_name(filename: str) -> str:
    try:
        if filename.endswith(".whl"):
            return canonicalize_name(parse_wheel_filename(filename)[0])
        return canonicalize_name(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return ""


def _version_of(filename: str, key: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return version if canonicalize_name(name) == key else None


def _same_version(version: Version, pinned: str) -> bool:
    try:
        return version == Version(pinned)
    except InvalidVersion:
        return str(version) == pinned


def _index_files(index_url: str, key: str) -> tuple[list[tuple[str, str, str | None]], str | None]:
    """(filename, url, sha256) of a project's files on a simple index (PEP 503 HTML, which every
    index serves, a file:// one too), and why the index could not say (a project it does not
    have is no error: it has no files)."""
    page = index_url.rstrip("/") + f"/{key}/"
    opened = page + "index.html" if page.startswith("file:") else page  # a folder on disk serves no listing
    try:
        with urllib.request.urlopen(opened, timeout=_TIMEOUT) as response:  # noqa: S310 - the configured index
            text = response.read(64 << 20).decode("utf-8", errors="replace")
    except urllib.error.HTTPError as error:
        return [], None if error.code in (404, 410) else f"{opened}: HTTP {error.code} {error.reason}"
    except (OSError, ValueError, http.client.HTTPException) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(reason, FileNotFoundError):
            return [], None  # a file:// index without the project's folder
        return [], f"{opened}: {reason}"
    found = []
    for href in _HREF.findall(text):
        url = urllib.parse.urljoin(page, href.replace("&amp;", "&"))
        base, _, fragment = url.partition("#")
        filename = urllib.parse.unquote(base.rsplit("/", 1)[-1])
        sha256 = fragment.partition("sha256=")[2] or None
        found.append((filename, base, sha256))
    return found, None
