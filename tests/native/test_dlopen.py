"""dlopen evidence in ELF bytes: systemd's .note.dlopen, and soname strings of extension modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.native.loader import resolve_needs
from depaudit.evidence import Tier
from depaudit.native.model import LibraryStatus, NativeNeed
from helpers import build_probing_so, have_gcc

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")


def test_note_dlopen_and_probed_sonames(tmp_path: Path) -> None:
    extension = build_probing_so(tmp_path / "pkg", "_media.cpython-311-x86_64-linux-gnu.so")
    library = build_probing_so(tmp_path / "pkg.libs", "libhelper.so.1")
    report = resolve_needs(
        "pkg",
        [extension],
        display=lambda p: p.relative_to(tmp_path).as_posix(),
        owner_of=lambda _p: "pkg",
        search_roots=[tmp_path],
    )
    needs = {soname: n for (soname, _), n in report.strongest().items()}
    assert needs["libbar.so.2"] == NativeNeed(
        "libbar.so.2", LibraryStatus.SYSTEM, Tier.REQUIRED, ("pkg/_media.cpython-311-x86_64-linux-gnu.so",),
        None, None, ".note.dlopen (required)",
    )
    assert [(n.soname, n.tier, n.rule) for n in report.needs if n.soname.startswith("libavutil")] == [
        ("libavutil.so.57", Tier.HINT, "soname string in read-only data"),
        ("libavutil.so.58", Tier.HINT, "soname string in read-only data"),
    ]
    # A plain library's strings are not read (only its notes): weak evidence has a budget.
    plain = resolve_needs(
        "pkg", [library], display=lambda p: p.name, owner_of=lambda _p: "pkg", search_roots=[tmp_path]
    )
    assert sorted(n.soname for n in plain.needs) == ["libbar.so.2"]
