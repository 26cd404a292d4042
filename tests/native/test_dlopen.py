"""dlopen evidence in ELF bytes: systemd's .note.dlopen, and soname strings of extension modules."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from depaudit.native.loader import resolve_needs
from depaudit.native.model import LibraryStatus, NativeNeed, Tier
from helpers import have_gcc

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed: cannot build ELF fixtures")

NOTE_AND_PROBE = r"""
#include <stdint.h>
struct note { uint32_t namesz, descsz, type; char name[4]; char desc[64]; };
/* As systemd's ELF_NOTE_DLOPEN macro emits it: an FDO note whose payload is JSON. */
__attribute__((used, section(".note.dlopen"), aligned(4)))
static const struct note dlopen_note = {4, 64, 0x407c0c0a, "FDO",
    "[{\"soname\":[\"libbar.so.2\"],\"priority\":\"required\"}]"};
__attribute__((used)) static const char *probed[] = {"libavutil.so.58", "libavutil.so.57"};
int entry(void) { return 0; }
"""


def _build(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "src.c").write_text(source)
    out = folder / name
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(out), str(folder / "src.c")], check=True)
    return out


def test_note_dlopen_and_probed_sonames(tmp_path: Path) -> None:
    extension = _build(tmp_path / "pkg", "_media.cpython-311-x86_64-linux-gnu.so", NOTE_AND_PROBE)
    library = _build(tmp_path / "pkg.libs", "libhelper.so.1", NOTE_AND_PROBE.replace("entry", "helper"))
    report = resolve_needs(
        "pkg",
        [extension],
        display=lambda p: p.relative_to(tmp_path).as_posix(),
        owner_of=lambda _p: "pkg",
        search_roots=[tmp_path],
    )
    needs = {n.soname: n for n in report.needs}
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
