"""Plain-text tables for the console report: columns padded to their widest cell, one column
folded to the width left. rich's Table measured every cell several times (0.5 s for a
14-service monorepo's report); this lays the same content out in a few milliseconds, and rich
only colours the result."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

_INDENT = "  "
_GAP = "  "
_NARROWEST_FOLD = 24  # below this a folded column is unreadable: the line runs past the width


@dataclass(frozen=True)
class Cell:
    text: str
    style: str = ""  # a rich style for the console; ignored in plain text


@dataclass(frozen=True)
class Styled:
    """Lines of text and the spans (start, end, style) to colour, offsets into "\\n".join(lines)."""

    lines: tuple[str, ...]
    spans: tuple[tuple[int, int, str], ...] = ()


def grid(headers: Sequence[str], rows: Sequence[Sequence[Cell]], width: int) -> Styled:
    """The table: a header line, a rule, and each row on one line or more, its last column
    wrapped to what the others leave of `width`."""
    fold = len(headers) - 1
    widths = [max([len(h), *(len(row[i].text) for row in rows)]) for i, h in enumerate(headers)]
    others = sum(w for i, w in enumerate(widths) if i != fold)
    room = width - len(_INDENT) - len(_GAP) * (len(headers) - 1) - others
    widths[fold] = max(min(widths[fold], room), min(widths[fold], _NARROWEST_FOLD))
    lines = [_line(headers, widths), _INDENT + "─" * (sum(widths) + len(_GAP) * (len(headers) - 1))]
    spans: list[tuple[int, int, str]] = []
    offset = sum(len(line) + 1 for line in lines)
    for row in rows:
        folded = _wrap(row[fold].text, widths[fold])
        for number, part in enumerate(folded):
            cells = [part if i == fold else (cell.text if number == 0 else "") for i, cell in enumerate(row)]
            line = _line(cells, widths)
            if number == 0:
                column = len(_INDENT)
                for i, cell in enumerate(row):
                    if cell.style and i != fold:
                        spans.append((offset + column, offset + column + len(cell.text), cell.style))
                    column += widths[i] + len(_GAP)
            lines.append(line)
            offset += len(line) + 1
    return Styled(tuple(lines), tuple(spans))


def wrap_title(title: str, width: int) -> list[str]:
    return _wrap(title, width)


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    padded = [cell if i == len(cells) - 1 else cell.ljust(widths[i]) for i, cell in enumerate(cells)]
    return (_INDENT + _GAP.join(padded)).rstrip()


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False, replace_whitespace=False, drop_whitespace=True) or [""]
