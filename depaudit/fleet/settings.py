"""The command line's options as the config sets them: `format = "json"` in `[tool.depaudit]`
does what `--format json` does; a flag on the command line wins over the config. (What the
scan audits against — site-packages, python, distro, base-image, env — are fleet keys, set per
family too: see config.py.)"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from depaudit.options import FAIL_ON, FORMATS

# config key → (the RunSettings field, the flag it stands for, what it holds)
SETTING_KEYS: dict[str, tuple[str, str, str]] = {
    "format": ("format", "--format", "choice"),
    "output": ("output", "--output", "path"),
    "output-dir": ("output_dir", "--output-dir", "path"),
    "fail-on": ("fail_on", "--fail-on", "choice"),
    "write": ("write", "--write", "bool"),
    "prune": ("prune", "--prune", "bool"),
    "hoist": ("hoist", "--hoist", "bool"),
    "jobs": ("jobs", "--jobs", "count"),
    "cache-dir": ("cache_dir", "--cache-dir", "path"),
    "cache": ("cache", "--no-cache (cache = false)", "bool"),
    "module-reach": ("module_reach", "--no-module-reach (module-reach = false)", "bool"),
    "quiet": ("quiet", "-q", "bool"),
    "verbose": ("verbose", "-v", "bool"),
    "progress": ("progress", "--no-progress (progress = false)", "bool"),
    "color": ("color", "--no-color (color = false)", "bool"),
}
_CHOICES = {"format": FORMATS, "fail-on": FAIL_ON}


class SettingError(Exception):
    """A setting of the wrong type or value: the message names the key."""


@dataclass(frozen=True)
class RunSettings:
    """What the config sets of the command line's options; None where it says nothing."""

    format: str | None = None
    output: Path | None = None
    output_dir: Path | None = None
    fail_on: str | None = None
    write: bool | None = None
    prune: bool | None = None
    hoist: bool | None = None
    jobs: int | None = None
    cache_dir: Path | None = None
    cache: bool | None = None
    module_reach: bool | None = None
    quiet: bool | None = None
    verbose: bool | None = None
    progress: bool | None = None
    color: bool | None = None

    def given(self) -> dict[str, Any]:
        """The fields the config sets."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def read_settings(data: Mapping[str, Any], where: str, root: Path) -> RunSettings:
    """The settings among the top-level keys of the config; paths relative to `root`."""
    values: dict[str, Any] = {}
    for key, (name, _flag, kind) in SETTING_KEYS.items():
        if key in data:
            values[name] = _value(data[key], kind, key, where, root)
    if values.get("quiet") and values.get("verbose"):
        raise SettingError(f"{where} quiet, verbose: choose one")
    return RunSettings(**values)


def _value(value: Any, kind: str, key: str, where: str, root: Path) -> Any:
    if kind == "bool":
        if not isinstance(value, bool):
            raise SettingError(f"{where} {key}: expected true or false, got {value!r}")
        return value
    if kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SettingError(f"{where} {key}: expected a number of processes, 1 or more, got {value!r}")
        return value
    if not isinstance(value, str) or not value:
        raise SettingError(f"{where} {key}: expected a non-empty string, got {value!r}")
    if kind == "choice":
        if value not in _CHOICES[key]:
            raise SettingError(f"{where} {key}: expected one of {', '.join(_CHOICES[key])}, got {value!r}")
        return value
    if "\0" in value:
        raise SettingError(f"{where} {key}: {value[:80]!r} cannot name a file (a NUL byte)")
    return root / value
