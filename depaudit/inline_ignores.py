"""`# depaudit: ignore[CODE] reason` comments in service source: how a file's lines are read for
them (suppress.py), and which of its lines could hold one (what memo_edit.py compares)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from depaudit import consulted

# `# depaudit: ignore[DA101]`, `# depaudit: ignore[DA101, DA102] vendored at run time`
INLINE = re.compile(r"#\s*depaudit:\s*ignore\[([A-Za-z0-9,\s]+)\]\s*(.*)$")
KIND = "inline"  # the facts kind (consulted.note_facts) of a file's inline comments


def source_lines(path: Path) -> list[str]:
    """A source file's lines as suppress.py reads them ([] when unreadable now: its results were
    reported when it was read), its inline comments noted as all that is taken from it."""
    try:
        with consulted.sourcing():
            lines = consulted.read_text(path, errors="replace").splitlines()
    except OSError:
        lines = []
    consulted.note_facts(path, KIND, inline_comments(lines))
    return lines


def inline_comments(lines: Sequence[str]) -> tuple[tuple[int, str], ...]:
    """Every line (by its index) an inline comment could be read from. The report reads those
    of them its results point at; the same lines at the same places, the same comments."""
    return tuple((index, line) for index, line in enumerate(lines) if "depaudit" in line and INLINE.search(line))
