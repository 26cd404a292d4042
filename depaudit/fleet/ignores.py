"""`[[ignore]]` entries of the config: which results a fleet has decided to live with, and why.

    [[ignore]]
    code = "DA302"              # a finding code (README: Finding codes)
    package = "libgl1"          # an apt package, or the soname / program of a need
    family = "family-vision"    # a family Dockerfile's plan
    service = "ocr"             # one service's results
    file = "ocr/legacy/*.py"    # a glob on the file a result is at (as the report shows it)
    reason = "kept for the debugging shell"

Every key but `reason` narrows the entry; an entry needs a reason and at least one other key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

IGNORE_KEYS = ("code", "package", "family", "service", "file", "reason")


class IgnoreError(Exception):
    """An `[[ignore]]` entry that cannot be used: the message names the entry and key."""


@dataclass(frozen=True)
class IgnoreRule:
    """One decision to live with some results."""

    reason: str
    origin: str  # where it was written: "depaudit.toml [[ignore]] 2", "svc/main.py:3"
    codes: tuple[str, ...] = ()  # empty: any code
    package: str | None = None
    family: str | None = None
    service: str | None = None
    file: str | None = None  # a glob (fnmatch) on the result's file
    line: int | None = None  # an inline comment: results at this line of `file` only


def read_ignores(value: Any, where: str, known_codes: frozenset[str]) -> tuple[IgnoreRule, ...]:
    """The `ignore` array of tables."""
    if not isinstance(value, list):
        raise IgnoreError(f"{where} ignore: expected an array of tables ([[ignore]]), got {type(value).__name__}")
    return tuple(_rule(entry, f"{where} [[ignore]] {number}", known_codes) for number, entry in enumerate(value, 1))


def _rule(entry: Any, where: str, known_codes: frozenset[str]) -> IgnoreRule:
    if not isinstance(entry, Mapping):
        raise IgnoreError(f"{where}: expected a table, got {type(entry).__name__}")
    unknown = sorted(set(entry) - set(IGNORE_KEYS))
    if unknown:
        raise IgnoreError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(IGNORE_KEYS)})")
    for key, item in entry.items():
        if not isinstance(item, str) or not item.strip():
            raise IgnoreError(f"{where} {key}: expected a non-empty string, got {item!r}")
    if "reason" not in entry:
        raise IgnoreError(f"{where}: give a `reason`: a suppression says why")
    if set(entry) == {"reason"}:
        raise IgnoreError(f"{where}: say what it ignores: one or more of code, package, family, service, file")
    code = entry.get("code")
    if code is not None and code not in known_codes:
        raise IgnoreError(f"{where} code: {code!r} is not a depaudit finding code (see the README's table)")
    return IgnoreRule(
        reason=entry["reason"].strip(),
        origin=where,
        codes=(code,) if code else (),
        package=entry.get("package"),
        family=entry.get("family"),
        service=entry.get("service"),
        file=entry.get("file"),
    )
