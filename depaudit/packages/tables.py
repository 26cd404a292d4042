"""The top-level shape of a data file in rules/: known keys, each of its type, the required
ones present. One check for every loader (distro rules, profiles, driver files, CUDA data), so
each reports a mistake in the same words."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def check_keys(
    name: str, data: Mapping[str, Any], types: Mapping[str, type], required: Iterable[str], error: type[Exception]
) -> None:
    """Raise `error` naming the file (`name`) and the key: unknown, of another type, or missing."""
    for key, value in data.items():
        expected = types.get(key)
        if expected is None:
            raise error(f"{name}: unknown key {key!r}")
        if not isinstance(value, expected):
            raise error(f"{name}: {key!r} must be a {expected.__name__}")
    missing = sorted(key for key in required if key not in data)
    if missing:
        raise error(f"{name}: missing key(s) {', '.join(missing)}")
