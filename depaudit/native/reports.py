"""The native stage of an environment: each distribution's whole walk, kept in the result cache
between runs.

The walk of a wheel depends on more than its own files: a library may resolve into another
wheel, or into the base image. So its key names the whole environment (every distribution's
RECORD by stat), the loader's LD_LIBRARY_PATH, and the base image; a base image given as a
folder is never cached, since no cheap stat says whether a file deep inside it changed.
RECORD does not change when a library is relinked, deleted or copied in after the install, so
the entry also holds the stamp of every path the walk looked at — each file it read, each
candidate it probed, found or not — and is used only while all of them still hold.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from depaudit.cache import MISSING
from depaudit.findings import Finding, FindingKind
from depaudit.image.model import BaseImage
from depaudit.native.distribution import analyse_distribution, shipped_elf
from depaudit.evidence import Tier
from depaudit.native.model import LibraryStatus, NativeNeed, NativeReport
from depaudit.native.store import ElfStore
from depaudit.python.environment import PythonEnvironment

KIND = "native"


def analyse_environment(
    env: PythonEnvironment,
    keys: Sequence[str],
    store: ElfStore,
    *,
    ld_library_path: Sequence[str] = (),
    image: BaseImage | None = None,
) -> dict[str, NativeReport]:
    """The walks of these distributions: from the cache, else walked after one parallel read of
    the ELF files of every distribution not cached (per distribution, a batch is too small to
    keep the workers busy)."""
    return start_environment(env, keys, store, ld_library_path=ld_library_path, image=image)()


def start_environment(
    env: PythonEnvironment,
    keys: Sequence[str],
    store: ElfStore,
    *,
    ld_library_path: Sequence[str] = (),
    image: BaseImage | None = None,
) -> Callable[[], dict[str, NativeReport]]:
    """`analyse_environment`, returning once the ELF reads are handed to the workers: call the
    result to wait for them and walk."""
    environment = environment_digest(env)
    reports: dict[str, NativeReport] = {}
    todo: list[tuple[str, str | None]] = []
    for key in keys:
        cache_key = report_key(environment, key, ld_library_path, image)
        if not env.distributions[key].files:
            cache_key = None  # no RECORD: its files come from a walk of folders, which no stamp covers
        cached = store.cache.get(KIND, cache_key)
        if cached is not MISSING and all(store.stamp(path) == stamp for path, stamp in cached[1]):
            reports[key] = from_row(cached[0])
            for where in cached[2] if image is not None and len(cached) > 2 else ():
                image.fs.report_loop(where)  # met by the walk when it ran: the report says so again
        else:
            todo.append((key, cache_key))
    examined: dict[str, set[str]] = {key: set() for key, _ in todo}
    shipped = {key: shipped_elf(env.distributions[key], examined[key]) for key, _ in todo}
    fetched = store.start_prefetch([path for key, _ in todo for path in shipped[key][0]])

    def walk() -> dict[str, NativeReport]:
        fetched()
        for key, cache_key in todo:
            if key in reports:
                continue
            store.consulted = examined[key]
            met = len(image.fs.loops_met) if image is not None else 0
            try:
                reports[key] = analyse_distribution(
                    env.distributions[key],
                    owner_of=env.owner_of,
                    search_roots=env.site_packages,
                    ld_library_path=ld_library_path,
                    image=image,
                    store=store,
                    shipped=shipped[key],
                )
            finally:
                consulted, store.consulted = store.consulted, None
            if cache_key is not None:
                stamps = [[path, store.stamp(path)] for path in sorted(consulted) if not _in_image(path, image)]
                loops = sorted(set(image.fs.loops_met[met:])) if image is not None else []
                store.cache.put(KIND, cache_key, [to_row(reports[key]), stamps, loops])
        return reports

    return walk


def environment_digest(env: PythonEnvironment) -> str:
    """What is installed, by stat of every RECORD: a wheel added, removed or reinstalled
    changes it."""
    digest = hashlib.blake2b(digest_size=12)
    for key in sorted(env.distributions):
        record = env.distributions[key].dist_info / "RECORD"
        try:
            status = os.stat(record)
            stamp = f"{status.st_size}|{status.st_mtime_ns}|{status.st_ino}"
        except OSError:
            stamp = "-"
        digest.update(f"{key}|{record}|{stamp}\n".encode())
    return digest.hexdigest()


def _in_image(path: str, image: BaseImage | None) -> bool:
    """A path of the image's files as copied out for this run (a new folder each time): the
    walk's key names the image file itself, which stands for all of them."""
    return image is not None and path.startswith(str(image.fs.root).rstrip("/") + "/")


def report_key(environment: str, key: str, ld_library_path: Sequence[str], image: BaseImage | None) -> str | None:
    """None: this walk is not cached (its base image is a folder)."""
    if image is None:
        place = "no-image"
    else:
        label = Path(image.label)
        if label.is_dir():
            return None
        try:
            status = os.stat(label)
        except OSError:
            return None
        place = f"{label}|{status.st_size}|{status.st_mtime_ns}|{status.st_ino}"
    return "|".join((environment, key, ":".join(ld_library_path), place))


def to_row(report: NativeReport) -> list[Any]:
    needs = [
        [n.soname, n.status.value, n.tier.value, list(n.chain), n.found_at, n.provider, n.rule, list(n.tried)]
        for n in report.needs
    ]
    findings = [[f.kind.value, f.path, f.line, f.message] for f in report.findings]
    return [report.owner, needs, findings]


def from_row(row: list[Any]) -> NativeReport:
    owner, needs, findings = row
    return NativeReport(
        owner,
        tuple(
            NativeNeed(soname, LibraryStatus(status), Tier(tier), tuple(chain), found_at, provider, rule, tuple(tried))
            for soname, status, tier, chain, found_at, provider, rule, tried in needs
        ),
        tuple(Finding(FindingKind(kind), path, line, message) for kind, path, line, message in findings),
    )
