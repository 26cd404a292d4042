"""The console tables: padded columns, the last one folded to the width, colours on the right cells."""

from __future__ import annotations

from depaudit.emit.grid import Cell, grid


def test_columns_are_padded_and_the_last_folds_to_the_width() -> None:
    rows = [
        [Cell("missing", "bold red"), Cell("libGL.so.1"), Cell("svc/app.py:3 import cv2 → opencv-python 4.10 → libQt5Gui.so.5")],
        [Cell("driver", "cyan"), Cell("libcuda.so.1"), Cell("short")],
    ]
    table = grid(("status", "library", "evidence"), rows, width=60)
    assert table.lines == (
        "  status   library       evidence",
        "  " + "─" * (7 + 2 + 12 + 2 + 35),  # the folded column gets what the others leave of 60
        "  missing  libGL.so.1    svc/app.py:3 import cv2 →",
        "                         opencv-python 4.10 → libQt5Gui.so.5",
        "  driver   libcuda.so.1  short",
    )
    text = "\n".join(table.lines)
    assert [(text[start:end], style) for start, end, style in table.spans] == [("missing", "bold red"), ("driver", "cyan")]


def test_a_width_too_small_keeps_the_folded_column_readable() -> None:
    table = grid(("a", "b"), [[Cell("x" * 50), Cell("one two three four five six seven eight nine ten")]], width=40)
    # Nothing is left of 40 columns: the folded one still gets 24, and the lines run past the width.
    assert [line[54:] for line in table.lines[2:]] == ["one two three four five", "six seven eight nine ten"]
