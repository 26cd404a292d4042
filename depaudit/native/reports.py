"""A distribution's whole native walk, kept in the result cache between runs.

The walk of a wheel depends on more than its own files: a library may resolve into another
wheel, or into the base image. So its key names the whole environment (every distribution's
RECORD by stat), the loader's LD_LIBRARY_PATH, and the base image; a base image given as a
folder is never cached, since no cheap stat says whether a file deep inside it changed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from depaudit.findings import Finding, FindingKind
from depaudit.image.model import BaseImage
from depaudit.native.model import LibraryStatus, NativeNeed, NativeReport, Tier
from depaudit.python.environment import PythonEnvironment

KIND = "native"


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
