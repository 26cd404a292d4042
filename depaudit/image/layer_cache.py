"""What scans copied out of an image's layers, kept between runs by each layer's content digest.

A layer is content-addressed: the digest its image names it by (an OCI blob's sha256, a docker
save layer's diff_id) stands for all of its bytes. So what one scan learnt of it — its index
(member names, kinds, sizes, offsets, whiteouts) and the files it copied out of it (whole, or
the ranges the stages read) — holds for every later scan of any image listing that digest, and
a second scan of the same image reads none of its layers.

Trust. A digest is only a name until the bytes are hashed: an image naming another's layer
digest for content of its own would otherwise poison the cache. So an entry is published only
for a layer hashed to its digest as it was indexed, read to its end. Hashing gigabytes again on
every scan would defeat the cache, so the check is remembered by the stat identity of the file
holding the blob (the image archive, or the OCI blob file) — device, inode, size, mtime_ns,
ctime_ns — taken before it was read: a write to the file changes its mtime and ctime (ctime
cannot be set back from user space), a file put in its place has another inode. While all five
hold, the bytes are the ones hashed; a touched or rewritten file is hashed again.

In the cache folder's `layers/`:
    layer-<code>-<sha256>/index.json                the layer's index (JSON)
                         /files/<offset>-<size>      a file of it, whole
                         /ranges/<offset>-<size>-<n> the same file holding only the ranges the
                                                     stage reading path <n> reads (sparse)
                         /trusted/<identity digest>  a blob file hashed to this digest
    view-<code>-<digest of the layer digests>/root/  the image's files as the stages read them:
                                                     hard links to the layers' copies, at the same
                                                     path every run (the result cache keys an
                                                     installed file by its path and stat)
                                          /environment-<n>.json  a site-packages copied out whole
                                                     into it: later runs take it as it is
    tmp/                                             writes in progress, renamed or linked into place
    lock                                             flock: scans hold it shared, eviction exclusive
<code> is a fingerprint of depaudit's code: the ranges read and the index format depend on it.

Bounded: MAX_BYTES of disk blocks (a sparse copy counts what it holds, a hard link once). After
a run that added to it, the least recently used entries are removed until it fits; only when no
other scan holds the cache (the exclusive lock is not waited for: the last scan to end trims it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from depaudit.cache import code_fingerprint
from depaudit.findings import Finding, FindingKind
from depaudit.lru import SharedUse, trim_lru
from depaudit.image.layers import LayeredImage, Opener, _Entry, _LayerIndex, compressed
from depaudit.image.model import ImageFormatError
from depaudit.image.rootfs import Ranges

# The cache's bound, in bytes of disk: ~50 CUDA images' worth of indexes and ELF headers (a
# 6 GB CUDA site-packages copies out ~170 MB), far less than the images themselves.
MAX_BYTES = 10 << 30
_FORMAT = 1
_HEX = re.compile(r"^[0-9a-f]{64}$")
_DIFF_ID = re.compile(r"^sha256:([0-9a-f]{64})$")


class LayerCache:
    """The `layers/` folder of a cache folder, held (shared lock) while this object is open."""

    def __init__(self, folder: Path, max_bytes: int = MAX_BYTES) -> None:
        """Raises OSError when the folder cannot be made or locked: scan without it."""
        self.folder = Path(os.path.abspath(folder))  # a view's paths end up in the result cache's keys
        self.max_bytes = max_bytes
        self.code = code_fingerprint()
        self.wrote = False  # whether this run added anything: only then may it need trimming
        self.folder.mkdir(parents=True, exist_ok=True)
        # Shared: scans use the cache together; eviction waits until none does.
        self._use: SharedUse | None = SharedUse(self.folder / "lock")
        try:
            (self.folder / "tmp").mkdir(exist_ok=True)
        except OSError:
            self._use.release()
            raise

    # Layers ------------------------------------------------------------------------------------
    def _layer(self, digest: str) -> Path:
        return self.folder / f"layer-{self.code}-{digest}"

    def index(self, digest: str, identity: str) -> dict[str, Any] | None:
        """The layer's index, when its entry holds one and the blob's file was hashed to it
        as it is now (same stat identity)."""
        entry = self._layer(digest)
        if not (entry / "trusted" / _name(identity)).exists():
            return None
        try:
            document = json.loads((entry / "index.json").read_bytes())
            os.utime(entry)  # used: evicted last
        except (OSError, ValueError):
            return None
        return document if isinstance(document, dict) and document.get("format") == _FORMAT else None

    def publish(self, digest: str, identity: str | None, document: dict[str, Any]) -> bool:
        """The layer's entry, written whole in a temporary folder and renamed into place; when
        another scan published it first, theirs is kept. False when the disk refused."""
        entry = self._layer(digest)
        try:
            if not entry.exists():
                scratch = self._temporary()
                for part in ("files", "ranges", "trusted"):
                    (scratch / part).mkdir(parents=True)
                (scratch / "index.json").write_text(json.dumps(document, separators=(",", ":")))
                try:
                    scratch.rename(entry)
                except OSError:
                    shutil.rmtree(scratch, ignore_errors=True)
                    if not entry.exists():
                        raise
            if identity is not None:
                self._trust(entry, identity)
            self.wrote = True
            return True
        except OSError:
            return False

    def _trust(self, entry: Path, identity: str) -> None:
        mark = entry / "trusted" / _name(identity)
        if not mark.exists():
            scratch = self._temporary()
            scratch.write_text(identity)
            try:
                os.link(scratch, mark)  # whole or not at all; another scan's is the same
            except FileExistsError:
                pass
            finally:
                scratch.unlink(missing_ok=True)

    def copy(self, digest: str, name: str, produce: Callable[[Path], object]) -> Path:
        """The layer's copy `name` ("files/…", "ranges/…"), made by `produce` into a temporary
        file first when absent: a copy in place is always whole. Raises OSError."""
        final = self._layer(digest) / name
        if final.exists():
            return final
        scratch = self._temporary()
        try:
            produce(scratch)
            try:
                os.link(scratch, final)
            except FileExistsError:
                pass  # another scan copied the same bytes first
        finally:
            scratch.unlink(missing_ok=True)
        self.wrote = True
        return final

    # Views -------------------------------------------------------------------------------------
    def view(self, digests: Sequence[str]) -> Path:
        """The root folder of the image made of these layers, in order. Raises OSError."""
        key = hashlib.blake2b("\n".join(digests).encode(), digest_size=16).hexdigest()
        view = self.folder / f"view-{self.code}-{key}"
        if not (view / "root").is_dir():
            self._hard_links()
            (view / "root").mkdir(parents=True, exist_ok=True)
        os.utime(view)
        return view / "root"

    def _hard_links(self) -> None:
        """Raises OSError when this file system makes no hard links (some FUSE and network
        ones): a view is made of them, so the image is read into a scratch folder instead."""
        probe = self._temporary()
        try:
            probe.touch()
            os.link(probe, probe.with_name(probe.name + "-link"))
        finally:
            probe.unlink(missing_ok=True)
            probe.with_name(probe.name + "-link").unlink(missing_ok=True)

    def place(self, source: Path, target: Path, *, replace: bool = False) -> None:
        """`target` in a view becomes a hard link to the layer's copy `source`: it appears whole
        (and a sparse one is replaced by the whole one) at once. Raises OSError."""
        if not replace:
            try:
                os.link(source, target)
            except FileExistsError:
                return  # another scan placed it
            self.wrote = True
            return
        scratch = self._temporary()
        os.link(source, scratch)
        try:
            os.replace(scratch, target)
        except OSError:
            scratch.unlink(missing_ok=True)
            raise
        self.wrote = True

    def _temporary(self) -> Path:
        return self.folder / "tmp" / f"{os.getpid()}-{secrets.token_hex(6)}"

    # Size --------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the cache; trim it first when this run added to it and no other scan holds it."""
        if self._use is not None:
            self._use.release(self.evict if self.wrote else None)
            self._use = None

    def evict(self) -> list[str]:
        """Remove the least recently used entries until the cache fits; the names removed.
        Call only under the exclusive lock: no scan is writing or reading."""
        shutil.rmtree(self.folder / "tmp", ignore_errors=True)  # a killed scan's leftovers
        entries = [child for child in self.folder.iterdir() if child.name.startswith(("layer-", "view-"))]
        removed = trim_lru(entries, self.max_bytes)  # a view's files are hard links to its layers' copies
        (self.folder / "tmp").mkdir(exist_ok=True)
        return [entry.name for entry in removed]


def _name(identity: str) -> str:
    return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()


def docker_save_digests(store: Any, config_name: str | None, layer_names: Sequence[str]) -> list[str | None]:
    """A docker save's layers' diff_ids (the config's rootfs.diff_ids, in layer order): the
    sha256 of each uncompressed layer tar, which is the blob itself when stored uncompressed."""
    if not config_name or not store.has(config_name):
        return [None] * len(layer_names)
    try:
        document = store.json(config_name)
    except ImageFormatError:  # unreadable, or not what its digest names: its reader's finding
        return [None] * len(layer_names)
    rootfs = document.get("rootfs") if isinstance(document, dict) else None
    listed = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(listed, list) or len(listed) != len(layer_names):
        return [None] * len(layer_names)
    matches = [_DIFF_ID.match(diff_id) if isinstance(diff_id, str) else None for diff_id in listed]
    return [match.group(1) if match is not None else None for match in matches]


def _stored_compressed(opener: Opener) -> bool:
    with opener() as stream:
        return compressed(stream.read(4))


class KeptLayers:
    """One image's layers in the cache: the hooks a LayeredImage calls (indexing a layer, copying
    a file out), and the root at the same place every run once every layer is kept."""

    def __init__(self, cache: LayerCache, identities: Sequence[str | None], diff_ids: Sequence[str | None]) -> None:
        """`identities`: of each layer's blob file (None: no stat); `diff_ids`: a docker save's
        (None elsewhere: an OCI blob is named by its digest)."""
        self.cache = cache
        self.identities = list(identities)
        self.diff_ids = list(diff_ids)
        self.digests: list[str | None] = [None] * len(self.identities)  # of the layers kept
        self.layer_reads = 0  # layers indexed from their bytes rather than from the cache

    def index(self, image: LayeredImage, number: int, opener: Opener) -> _LayerIndex:
        named = image._digests[number]
        digest = named or self.diff_ids[number]
        identity = self.identities[number]
        if digest is None or not _HEX.match(digest):
            self.layer_reads += 1
            return image._read_layer(number, opener)
        document = self.cache.index(digest, identity) if identity is not None else None
        if document is not None:
            read = _decoded(document, number, f"{image.label} layer {number + 1}: ", image, opener)
            if read is not None:
                self.digests[number] = digest
                return read
        self.layer_reads += 1
        if named is None:
            try:
                if _stored_compressed(opener):
                    return image._read_layer(number, opener)  # its diff_id is not its blob's digest: not kept
            except Exception:  # noqa: BLE001 - unreadable: its reader says so
                return image._read_layer(number, opener)
            image._digests[number] = digest  # hashed as it is indexed, as an OCI blob is
        before, budget = len(image.findings), image._budget
        read = image._read_layer(number, opener)
        # A damaged layer, or one not holding what its digest names, gave a BAD_IMAGE finding:
        # only a layer read to its end and hashed to its digest is kept.
        prefix = f"{image.label} layer {number + 1}: "
        document = _encoded(read, number in image._plain, budget - image._budget, image.findings[before:], prefix)
        if document is not None and self.cache.publish(digest, identity, document):
            self.digests[number] = digest
        return read

    def root(self, image: LayeredImage) -> Path | None:
        """The image's view root, when every layer is kept; else None (a scratch folder serves)."""
        first: dict[int, int] = {}  # a blob listed again is indexed once, as its first listing
        digests = [self.digests[first.setdefault(id(opener), number)] for number, opener in enumerate(image._layers)]
        if not digests or None in digests:
            return None
        try:
            return self.cache.view([digest for digest in digests if digest is not None])
        except OSError:
            return None

    def host_file(self, image: LayeredImage, key: str, entry: _Entry, ranges: Ranges | None, whole: bool) -> Path | None:
        """The file's copy in the view (see LayeredImage._host_file): a link to the layer's copy,
        made first when the layer's entry has none."""
        target = image.root / key
        digest = self.digests[entry.layer] or ""

        def whole_copy() -> Path:
            return self.cache.copy(digest, f"files/{entry.offset}-{entry.size}", lambda out: image._copy_out(entry, out))

        try:
            if target.exists():
                if not whole:
                    return target  # sparse or whole: either serves the reader that asked for it
                source = whole_copy()
                if not os.path.samefile(source, target):
                    self.cache.place(source, target, replace=True)
                return target
            if ranges is not None and not whole:
                name = f"ranges/{entry.offset}-{entry.size}-{_name(key)}"
                source = self.cache.copy(digest, name, lambda out: image._copy_ranges(entry, out, ranges) or image._copy_out(entry, out))
            else:
                source = whole_copy()
            image._folder(target.parent)
            self.cache.place(source, target)
        except OSError as error:
            image._cannot_copy(key, error)
            return None
        return target


    def environment(
        self, image: LayeredImage, path: str, reads: Callable[[str], bool | Ranges], copy: Callable[[], Path | None]
    ) -> Path | None:
        """LayeredImage.python_environment: once a run copied the folder out whole into the view,
        later runs take it as it is (the same layers, code and reader made it); the symbolic link
        loops met on the way are reported again."""
        mark = image.root.parent / f"environment-{_name(f'{reads.__module__}.{reads.__qualname__}|{path}')}.json"
        try:
            met = json.loads(mark.read_bytes())
            folder = image.root / str(met["folder"])
            if folder.is_dir() and all(isinstance(where, str) for where in met["loops"]):
                for where in met["loops"]:
                    image.report_loop(where)
                return folder
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not copied out yet (or not whole): copy it
        before, loops = len(image.findings), len(image.loops_met)
        folder = copy()
        # A file that could not be copied (the disk) leaves the folder partial: copied again next run.
        if folder is not None and all(f.kind is FindingKind.SYMLINK_LOOP for f in image.findings[before:]):
            document = {"folder": folder.relative_to(image.root).as_posix(), "loops": sorted(set(image.loops_met[loops:]))}
            try:
                scratch = self.cache._temporary()
                scratch.write_text(json.dumps(document))
                os.replace(scratch, mark)
                self.cache.wrote = True
            except OSError:
                pass
        return folder


def _encoded(read: _LayerIndex, plain: bool, consumed: int, findings: list[Finding], prefix: str) -> dict[str, Any] | None:
    """The layer's index as JSON; None when it cannot be kept (a finding other than a rejected
    member: the layer is damaged or not what its digest names)."""
    if any(f.kind is not FindingKind.UNSAFE_MEMBER or not f.path.startswith(prefix) or f.line is not None for f in findings):
        return None
    added, removed, opaque, hardlinks = read
    return {
        "format": _FORMAT,
        "plain": plain,
        "consumed": consumed,
        "added": [[path, e.kind, e.offset, e.size, e.target] for path, e in added.items()],
        "removed": removed,
        "opaque": opaque,
        "hardlinks": [list(pair) for pair in hardlinks],
        "rejected": [[f.path[len(prefix):], f.message] for f in findings],
    }


def _decoded(document: dict[str, Any], number: int, prefix: str, image: LayeredImage, opener: Opener) -> _LayerIndex | None:
    """The index kept, its entries naming layer `number`; what indexing the layer did besides
    (its rejected members' findings, the bytes it took of the image's budget) done again."""
    try:
        added = {str(path): _Entry(str(kind), number, int(offset), int(size), str(target)) for path, kind, offset, size, target in document["added"]}
        removed = [str(path) for path in document["removed"]]
        opaque = [str(path) for path in document["opaque"]]
        hardlinks = [(str(path), str(target)) for path, target in document["hardlinks"]]
        rejected = [Finding(FindingKind.UNSAFE_MEMBER, prefix + str(name), None, str(message)) for name, message in document["rejected"]]
        plain, consumed = bool(document["plain"]), int(document["consumed"])
    except (KeyError, TypeError, ValueError):
        return None  # not what this code writes: read the layer instead
    if plain:
        image._plain[number] = opener
    image._budget -= consumed
    image.findings.extend(rejected)
    return added, removed, opaque, hardlinks


def open_cache(folder: Path | None) -> LayerCache | None:
    """The layer cache below a cache folder (None: no cache, or it cannot be used here)."""
    if folder is None:
        return None
    try:
        return LayerCache(folder / "layers")
    except OSError:
        return None


__all__ = ["MAX_BYTES", "KeptLayers", "LayerCache", "docker_save_digests", "open_cache"]
