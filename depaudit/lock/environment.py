"""A lock turned into a site-packages the stages read: each pin's wheel for the target found,
hash-checked, laid out (only what the stages read) and linked into one folder.

What cannot be audited is a finding naming it, and the rest is audited: a pin with no wheel for
the target (DA601), a wheel the lock's hashes refuse (DA602), a lock or a line that pins nothing
exactly, or a distribution a pinned wheel requires that the lock leaves out (DA603)."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from depaudit import consulted
from depaudit.findings import Finding, FindingKind
from depaudit.lock.model import Pin, WheelTarget
from depaudit.lock.readers import read_lock
from depaudit.lock.kept import KeptWheels
from depaudit.lock.tree import Reads, WheelError, WheelTree, assemble, env_made, env_root, trees_root, wheel_tree
from depaudit.lock.wheels import WheelSources, file_sha256
from depaudit.parallel import Workers, available_cores


@dataclass(frozen=True)
class LockEnvironment:
    site_packages: Path
    findings: tuple[Finding, ...]
    trees: tuple[WheelTree, ...]  # the wheels audited, in the lock's order

    @property
    def wheel_bytes(self) -> int:
        return sum(tree.wheel_bytes for tree in self.trees)

    @property
    def bytes_read(self) -> int:
        """Of the wheels, to lay them out (when they were laid out: a cached tree reads none now)."""
        return sum(tree.bytes_read for tree in self.trees)

    @property
    def bytes_touched(self) -> int:
        return sum(tree.bytes_touched for tree in self.trees)


def lock_environment(
    lock: Path,
    target: WheelTarget,
    *,
    find_links: Sequence[Path],
    cache: Path,
    reads: Reads,
    index_url: str | None = None,
    pip_cache: Path | None = None,
    processes: int | None = None,
    kept: KeptWheels | None = None,
) -> LockEnvironment:
    """Each pin's wheel chosen and checked first (and, for a requirements file, what they
    require), then the wheels not laid out yet laid out in parallel, one per worker. `kept`:
    the cache folder held by the scan, told what it uses (see kept.py)."""
    read = read_lock(lock, target.python)
    sources = WheelSources(find_links, lock.parent, cache, index_url, pip_cache)
    findings: list[Finding] = list(read.findings)
    shown = lock.name
    chosen: dict[str, tuple[Pin, Path, str, str]] = {}  # canonical name → pin, its wheel, the wheel's sha256, its filename
    todo: list[Pin] = list(read.pins)
    pinned = {canonicalize_name(pin.name): pin for pin in read.pins}
    unpinned: set[str] = set()  # required, pinned nowhere: said once
    while todo:
        pin = todo.pop(0)
        if pin.built_from is not None:  # looking up an index by its name could find other code
            message = f"{pin.shown()} ({pin.where}) installs from {pin.built_from}: no wheel to read, and depaudit never builds one; it is not audited"
            findings.append(Finding(FindingKind.LOCK_NO_WHEEL, shown, None, message))
            continue
        found = _wheel_of(pin, target, sources, cache, shown, findings)
        if found is None:
            continue
        chosen[canonicalize_name(pin.name)] = (pin, *found)
        if read.closed:
            continue  # a pylock.toml or uv.lock lists what installs; a requirements file may not
        for name in _required(found[0], target):
            if name in pinned or name in unpinned:
                continue
            constraint = read.constraints.get(name)
            if constraint is None:
                message = f"{name} is required by {pin.name} {pin.version} ({pin.where}) but the lock pins no version of it: it is not audited"
                findings.append(Finding(FindingKind.LOCK_UNREADABLE, shown, None, message))
                unpinned.add(name)
                continue
            pinned[name] = constraint
            todo.append(constraint)
    items = [(wheel, digest, cache, reads, filename) for _, wheel, digest, filename in chosen.values()]
    trees_root(cache).mkdir(parents=True, exist_ok=True)  # another depaudit's trees go before any worker starts
    with Workers(min(processes or available_cores(), len(items)) or 1) as workers:
        laid = workers.map(_lay_out, items, crashed=_crashed)
    trees = []
    for (pin, *_), result in zip(chosen.values(), laid):
        if isinstance(result, str):
            findings.append(Finding(FindingKind.UNREADABLE_FILE, shown, None, f"{pin.name} {pin.version}: {result}"))
        else:
            trees.append(result)
            findings.extend(result.findings)
    root = env_root(trees, target.python.python_version, cache)
    new_env = not env_made(root)
    site = assemble(trees, target.python.python_version, cache)
    if kept is not None:
        for tree in trees:
            kept.use(tree.folder, made=not tree.cached)
        for folder, fetched_now in sources.fetched.items():
            kept.use(folder, made=fetched_now)
        kept.use(root, made=new_env)
    return LockEnvironment(site, tuple(sorted(set(findings))), tuple(trees))


def _lay_out(item: tuple[Path, str, Path, Reads, str]) -> WheelTree | str:
    """Runs in a worker: the wheel's tree, or why it cannot be read."""
    wheel, digest, cache, reads, filename = item
    try:
        return wheel_tree(wheel, digest, cache, reads, filename)
    except (WheelError, OSError) as error:
        return str(error)


def _crashed(item: tuple[Path, str, Path, Reads, str]) -> WheelTree | str:
    return f"laying out {item[4]} killed its worker process: it is not audited"


def _wheel_of(
    pin: Pin, target: WheelTarget, sources: WheelSources, cache: Path, shown: str, findings: list[Finding]
) -> tuple[Path, str, str] | None:
    """The pin's best wheel for the target that the lock's hashes accept, its sha256 and
    filename. A body of pip's cache the hashes refuse is said only when no wheel is accepted:
    pip's cache may hold the same filename from another index, other bytes rightly."""
    offer = sources.offer(pin, target)
    if not offer.wheels:
        findings.append(Finding(FindingKind.LOCK_NO_WHEEL, shown, None, _no_wheel(pin, target, offer.sdists, offer.other_wheels, offer.index_error)))
        return None
    refused: list[Finding] = []
    for candidate in offer.wheels:
        try:
            wheel = sources.fetch(candidate)
            # An input of the scan like a file it reads (its bytes, through the digest, decide
            # the answer): a wheel rewritten in place is another scan, not a memo hit.
            consulted.note_read(wheel)
            digest = file_sha256(wheel, cache)
        except OSError as error:
            findings.append(Finding(FindingKind.UNREADABLE_FILE, shown, None, f"{pin.name} {pin.version}: cannot read {candidate.filename}: {error}"))
            continue
        accepted = pin.hashes or ({candidate.sha256} if candidate.sha256 else set())
        if accepted and digest not in accepted:
            message = (
                f"{candidate.filename} ({candidate.cached.path if candidate.cached else wheel}) has sha256 {digest}, which the lock does not accept for "
                f"{pin.name} {pin.version} ({pin.where}): the wheel is not used"
            )
            (refused if candidate.cached is not None else findings).append(Finding(FindingKind.LOCK_HASH_MISMATCH, shown, None, message))
            if candidate.path is None and wheel.parent.parent == cache / "downloads":
                wheel.unlink(missing_ok=True)  # never kept: the next run downloads it again
            continue
        return wheel, digest, candidate.filename
    findings.extend(refused)
    return None


def _no_wheel(pin: Pin, target: WheelTarget, sdists: Sequence[str], others: Sequence[str], index_error: str | None = None) -> str:
    what = f"{pin.name} {pin.version} ({pin.where}) has no wheel for {target.shown()}"
    if index_error is not None and not sdists and not others:
        return f"{what}: none was found in the wheel folders or the lock, and the index could not be read ({index_error}); it is not audited"
    if sdists:
        return f"{what}: only an sdist ({', '.join(sdists)}), which depaudit never builds; it is not audited"
    if others:
        return f"{what}: its wheels are for other targets ({', '.join(others)}); it is not audited"
    return f"{what}: none was found in the wheel folders, the lock or the index; it is not audited"


def _required(wheel: Path, target: WheelTarget) -> list[str]:
    """The canonical names the wheel's METADATA requires for the target (no extras asked for),
    read from the zip: a few KiB."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            text = archive.read(names[0]).decode("utf-8", errors="replace") if names else ""
    except (OSError, zipfile.BadZipFile):
        return []  # laying it out says why
    required = []
    environment = target.python.marker_environment()
    for value in HeaderParser().parsestr(text).get_all("Requires-Dist") or []:
        try:
            requirement = Requirement(value)
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
        except (InvalidRequirement, InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
            continue  # the environment reader reports it, as for an installed wheel
        required.append(canonicalize_name(requirement.name))
    return required
