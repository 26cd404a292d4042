"""What both hint visitors (libcst's for a service's files, `ast`'s for a wheel's) do alike once
they hold the text of a call's arguments: join its parts, format it, name the program."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OTHER_PLATFORMS = ("darwin", "win32", "windows", "cygwin", "msys", "macos", "freebsd")


def bind(scope: dict[str, Any], name: str, value: object | None) -> None:
    """Set what `name` may hold, or forget it: a rebinding to what cannot be known means the
    old value no longer holds."""
    if value is None:
        scope.pop(name, None)
    else:
        scope[name] = value


def joined(parts: list[tuple[str, ...]]) -> tuple[str, ...] | None:
    """The texts the parts make, once per value of the one part that varies; None when two vary
    (which pairs go together is not known)."""
    if not all(parts):
        return None  # `"lib" + NAMES` where NAMES = (): no text (a crash of the whole file's walk, once)
    varying = [part for part in parts if len(part) > 1]
    if len(varying) > 1:
        return None
    count = len(varying[0]) if varying else 1
    return tuple("".join(part[index] if len(part) > 1 else part[0] for part in parts) for index in range(count))


def formatted(apply: Callable[[object], str], values: tuple[str, ...]) -> tuple[str, ...] | None:
    try:
        return tuple(apply(int(value) if value.isdigit() else value) for value in values)
    except (TypeError, ValueError, KeyError, IndexError):
        return None


def program(command: str) -> str:
    """The program a command line starts: its first word, without its folder."""
    return command.strip().split()[0].rsplit("/", 1)[-1]


def other_platform_values(values: tuple[str, ...] | None) -> bool:
    """Whether a platform value compared with these names another OS than Linux."""
    return bool(values) and all(v.lower() in OTHER_PLATFORMS or v == "nt" for v in values or ())
