"""A memo entry keeps its renderings as the bytes a report file holds, and reads its pickled
report only when asked: a warm run that writes a kept rendering never decodes, encodes or
unpickles the report."""

from __future__ import annotations

import pickle
from pathlib import Path

from depaudit import memo
from depaudit.atomic import write_atomic
from depaudit.consulted import Stamps

NO_INPUTS = Stamps((), (), (), ())


def _saved(cache: Path, texts: dict[str, str], report: object) -> None:
    entry = memo.Entry(memo._entry(cache, "key"), "key", NO_INPUTS, "", {})
    entry._report, entry._changed = report, True
    for kind, text in texts.items():
        entry.keep_text(kind, text)
    entry.keep_verdicts({"missing": True})
    entry.save()


def test_a_kept_rendering_is_the_report_files_bytes(tmp_path: Path) -> None:
    text = '{\n  "name": "caf\u00e9 \u2192 libx.so.1"\n}\n'
    _saved(tmp_path, {"json": text}, {"report": 1})
    entry = memo.recall(tmp_path, "key")
    assert entry is not None
    assert entry.data("json") == text.encode("utf-8")
    assert entry.text("json") == text
    assert entry._pickled is None  # the report is not read for a rendering
    written = tmp_path / "report.json"
    write_atomic(written, entry.data("json") or b"")
    write_atomic(tmp_path / "from-text.json", text, errors="backslashreplace")
    assert written.read_bytes() == (tmp_path / "from-text.json").read_bytes()
    entry.save()  # nothing changed: nothing written, and the report can still be read
    assert entry.report == {"report": 1}
    assert entry._stored is None  # read: the file is let go


def test_a_rendering_with_a_lone_surrogate_goes_through_the_writers_escapes(tmp_path: Path) -> None:
    text = "file \udcff.py\n"  # a file name that is no UTF-8, as os gives it back
    _saved(tmp_path, {"markdown": text}, {"report": 2})
    entry = memo.recall(tmp_path, "key")
    assert entry is not None
    assert entry.data("markdown") is None
    assert entry.text("markdown") == text


def test_the_report_is_read_on_demand_and_kept_when_the_entry_is_rewritten(tmp_path: Path) -> None:
    _saved(tmp_path, {"json": "{}\n"}, {"report": 3})
    entry = memo.recall(tmp_path, "key")
    assert entry is not None
    entry.keep_text("markdown", "# report\n")  # a new rendering: the entry is written again
    entry.save()
    again = memo.recall(tmp_path, "key")
    assert again is not None
    assert again.report == {"report": 3}
    assert again.text("markdown") == "# report\n" and again.text("json") == "{}\n"
    assert pickle.loads(again._stored_report()) == {"report": 3}


def test_an_older_memos_text_renderings_are_a_miss(tmp_path: Path) -> None:
    path = memo._entry(tmp_path, "key")
    memo._write(path, "key", NO_INPUTS, ({"missing": True}, {"json": "{}\n"}, {}), pickle.dumps({}))  # type: ignore[arg-type]
    assert memo.recall(tmp_path, "key") is None
