"""Imports of a file libcst cannot parse (Python 2, half-edited code), read line by line.

It sees `import a, b as c` and `from a.b import c` at the start of a line (any indentation,
also after `;`-free one-liners). It cannot tell guards or function bodies apart, so its records
are neither guarded nor lazy, and it misses imports inside strings or split over lines with
backslashes or parentheses beyond the first line.
"""

from __future__ import annotations

import re

_IMPORT = re.compile(r"^\s*import\s+([\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*)")
_FROM = re.compile(r"^\s*from\s+(\.*[\w.]*)\s+import\s+\(?\s*([\w\s,*]+)")


def fallback_imports(text: str) -> list[tuple[int, str, tuple[str, ...], int]]:
    """(line, module, names, relative level) for each import statement found."""
    found: list[tuple[int, str, tuple[str, ...], int]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FROM.match(line)
        if match:
            target = match.group(1)
            level = len(target) - len(target.lstrip("."))
            names = tuple(n.split()[0] for n in match.group(2).split(",") if n.strip() and n.split()[0] != "*")
            found.append((number, target.lstrip("."), names, level))
            continue
        match = _IMPORT.match(line)
        if match:
            for part in match.group(1).split(","):
                found.append((number, part.split()[0], (), 0))
    return found
