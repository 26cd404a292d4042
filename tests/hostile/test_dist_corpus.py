"""Hostile and broken dist-info folders, through the whole scan: each becomes its exact findings,
nothing outside site-packages is ever opened, and a good distribution beside it is still audited.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from packaging.requirements import InvalidRequirement, Requirement

from depaudit.evidence import chain_text
from depaudit.findings import Finding, FindingKind
from depaudit.python.model import TargetPython
from helpers import deadline

if TYPE_CHECKING:
    from depaudit.packages.model import ServiceReport
    from depaudit.report import ScanReport
    from helpers import OpenedFiles
    from hostile.conftest import ElfParts, Scene

EXT = ".cpython-311-x86_64-linux-gnu.so"
GOOD_NEED = "libhostile-goodneed.so.1"
NATIVE_NEED = "libhostile-nativeneed.so.1"  # what hostile/_native needs
SECRET_NEED = "libhostile-secret.so.1"  # what the library outside site-packages needs
INFO = "hostile-1.0.dist-info"
TARGET = TargetPython(python_version="3.11", python_full_version="3.11.0")  # the scene's lib/python3.11


@pytest.fixture()
def site(scene: Scene, elf_parts: ElfParts) -> Scene:
    """`good` (an extension module needing GOOD_NEED) beside whatever the test breaks."""
    scene.dist("good", files={"good/__init__.py": b"", f"good/_good{EXT}": elf_parts.good})
    return scene


def _hostile(scene: Scene, parts: ElfParts, **kwargs: object) -> Path:
    """`hostile`: a package whose extension module needs NATIVE_NEED."""
    files = {"hostile/__init__.py": b"", f"hostile/_native{EXT}": parts.native, **kwargs.pop("files", {})}  # type: ignore[dict-item]
    return scene.dist("hostile", files=files, **kwargs)  # type: ignore[arg-type]


def _scan(scene: Scene, *imports: str, good: bool = True) -> tuple[ScanReport, ServiceReport]:
    scene.service_imports(*(["good"] if good else []), *imports)
    with deadline(30):
        return scene.scan()


def _chains(service: ServiceReport, name: str) -> list[tuple[str, ...]]:
    return [chain_text(need.chain) for need in service.needs if need.name == name]


def _good_still_audited(service: ServiceReport) -> None:
    assert [i.distribution for i in service.imports if i.record.module == "good"] == ["good"]
    assert any("good 1.0" in chain and f"good/_good{EXT}" in chain for chain in _chains(service, GOOD_NEED))


def _invalid_reason(text: str) -> str:
    with pytest.raises(InvalidRequirement) as raised:
        Requirement(text)
    return str(raised.value).splitlines()[0]  # packaging's wording varies across its versions


def _marker_reason(text: str) -> str:
    marker = Requirement(text).marker
    assert marker is not None
    with pytest.raises(Exception) as raised:
        marker.evaluate(TARGET.marker_environment())
    return str(raised.value).splitlines()[0]


def _outside(scene: Scene, parts: ElfParts) -> Path:
    """A valid library next to site-packages (lib/python3.11/outside/), never to be read."""
    target = scene.site_packages.parent / "outside" / "libhostile-outside.so.1"
    target.parent.mkdir(parents=True)
    shutil.copyfile(parts.outside, target)
    return target


# RECORD ------------------------------------------------------------------------------------


def test_missing_record_walks_the_top_level_folders_instead(site: Scene, elf_parts: ElfParts) -> None:
    info = _hostile(site, elf_parts, top_level=["hostile"])
    (info / "RECORD").unlink()
    report, service = _scan(site, "hostile")
    assert report.findings == (Finding(FindingKind.BAD_METADATA, f"{INFO}/RECORD", None, "RECORD is missing"),)
    assert service.findings == ()
    assert [i.distribution for i in service.imports if i.record.module == "hostile"] == ["hostile"]
    # Its extension module was found by walking hostile/ (top_level.txt): its need is not lost.
    assert any(f"hostile/_native{EXT}" in chain for chain in _chains(service, NATIVE_NEED))
    _good_still_audited(service)


def test_missing_record_and_no_top_level_txt(site: Scene, elf_parts: ElfParts) -> None:
    info = _hostile(site, elf_parts)
    (info / "RECORD").unlink()
    report, service = _scan(site, "hostile")
    assert report.findings == (Finding(FindingKind.BAD_METADATA, f"{INFO}/RECORD", None, "RECORD is missing"),)
    assert [f.kind for f in service.findings] == [FindingKind.MISSING_MODULE]  # nothing names it: the service dies at import
    assert _chains(service, NATIVE_NEED) == []  # nothing names its files: they are not guessed
    _good_still_audited(service)


def test_garbled_record_keeps_the_rows_before_the_error(site: Scene, elf_parts: ElfParts) -> None:
    info = _hostile(site, elf_parts)
    (info / "RECORD").write_bytes(f"hostile/__init__.py,,\nhostile/_native{EXT},,\nhostile/a\rb.py,,\nhostile/lost.py,,\n".encode())
    report, service = _scan(site, "hostile")
    reason = "new-line character seen in unquoted field"
    assert report.findings == (
        Finding(
            FindingKind.BAD_METADATA,
            f"{INFO}/RECORD",
            None,
            f"garbled RECORD ({reason}); only the entries before the error are used",
        ),
    )
    assert service.findings == ()
    assert any(f"hostile/_native{EXT}" in chain for chain in _chains(service, NATIVE_NEED))
    _good_still_audited(service)


def test_nul_bytes_in_record(site: Scene, elf_parts: ElfParts) -> None:
    info = _hostile(site, elf_parts)
    rows = ["hostile/__init__.py,,", "hostile/evil\0.so,,", f"hostile/_native{EXT},,", "\0\0\0", "hostile/tool\0,,"]
    (info / "RECORD").write_bytes(("\n".join(rows) + "\n").encode())
    report, service = _scan(site, "hostile")
    message = "RECORD names a path with a NUL byte, which no file can have: the entry is skipped; reinstall the distribution"
    assert report.findings == tuple(Finding(FindingKind.BAD_METADATA, f"{INFO}/RECORD", line, message) for line in (2, 4, 5))
    assert service.findings == ()
    assert any(f"hostile/_native{EXT}" in chain for chain in _chains(service, NATIVE_NEED))
    _good_still_audited(service)


def test_record_paths_that_climb_out_of_site_packages_are_never_read(
    site: Scene, elf_parts: ElfParts, opened_files: OpenedFiles
) -> None:
    outside = _outside(site, elf_parts)
    entries = [
        "../outside/libhostile-outside.so.1",
        "hostile/../../outside/libhostile-outside.so.1",
        "hostile\\..\\..\\outside\\libhostile-outside.so.1",
        outside.as_posix(),
        "../../../bin/hostile-tool",  # what pip writes for console scripts: not importable, not read
    ]
    _hostile(site, elf_parts, record=["hostile/__init__.py", f"hostile/_native{EXT}", *entries])
    with opened_files.watching(form="real") as opened:
        report, service = _scan(site, "hostile")
    assert (report.findings, service.findings) == ((), ())
    assert str(outside) not in opened
    assert any(path.endswith(f"hostile/_native{EXT}") for path in opened), "the tripwire saw nothing: broken"
    assert SECRET_NEED not in {need.name for need in service.needs}
    _good_still_audited(service)


def test_record_that_is_a_fifo_does_not_hang_the_scan(site: Scene, elf_parts: ElfParts) -> None:
    info = _hostile(site, elf_parts, top_level=["hostile"])
    (info / "RECORD").unlink()
    os.mkfifo(info / "RECORD")
    report, service = _scan(site, "hostile")
    assert report.findings == (
        Finding(FindingKind.UNREADABLE_FILE, f"{INFO}/RECORD", None, "cannot read RECORD: not a regular file but a pipe, socket or device"),
    )
    _good_still_audited(service)


def test_a_record_past_the_size_bound_is_read_up_to_it(
    site: Scene, elf_parts: ElfParts, monkeypatch: pytest.MonkeyPatch
) -> None:
    import depaudit.python.environment as environment

    monkeypatch.setattr(environment, "MAX_METADATA_BYTES", 1 << 20)  # 64 MiB in earnest: too slow to write here
    info = _hostile(site, elf_parts)
    padding = "".join(f"hostile/pad{i:05d}.txt,,\n" for i in range(60_000))
    (info / "RECORD").write_text(f"hostile/__init__.py,,\nhostile/_native{EXT},,\n{padding}")
    report, service = _scan(site, "hostile")
    message = "RECORD is larger than 1 MiB, far beyond any real one: only its start is read"
    assert report.findings == (Finding(FindingKind.BAD_METADATA, f"{INFO}/RECORD", None, message),)
    assert any(f"hostile/_native{EXT}" in chain for chain in _chains(service, NATIVE_NEED))
    _good_still_audited(service)


# METADATA and the folder itself ------------------------------------------------------------


def test_metadata_that_links_out_of_site_packages_is_never_read(
    site: Scene, elf_parts: ElfParts, opened_files: OpenedFiles
) -> None:
    secret = site.root / "secret-metadata"
    secret.write_text("Metadata-Version: 2.1\nName: stolen\nVersion: 6.6.6\nRequires-Dist: good\n")
    info = _hostile(site, elf_parts)
    (info / "METADATA").unlink()
    os.symlink(secret, info / "METADATA")
    with opened_files.watching(form="real") as opened:
        report, service = _scan(site, "hostile")
    message = f"METADATA is a symbolic link out of site-packages (to {secret}): never read; reinstall the distribution"
    assert report.findings == (Finding(FindingKind.UNSAFE_MEMBER, f"{INFO}/METADATA", None, message),)
    assert str(secret) not in opened
    # Still a distribution, named after its folder; nothing from the stolen file (no `stolen`).
    assert [i.distribution for i in service.imports if i.record.module == "hostile"] == ["hostile"]
    assert any(f"hostile/_native{EXT}" in chain for chain in _chains(service, NATIVE_NEED))
    _good_still_audited(service)


def test_a_dist_info_folder_that_links_out_of_site_packages_is_never_read(
    site: Scene, elf_parts: ElfParts, opened_files: OpenedFiles
) -> None:
    elsewhere = site.root / "elsewhere" / "evil-1.0.dist-info"
    elsewhere.mkdir(parents=True)
    (elsewhere / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n")
    (elsewhere / "RECORD").write_text("evil.py,,\n")
    os.symlink(elsewhere, site.site_packages / "evil-1.0.dist-info")
    with opened_files.watching(form="real") as opened:
        report, service = _scan(site)
    message = f"a symbolic link out of site-packages (to {elsewhere}): never read; remove the link"
    assert report.findings == (Finding(FindingKind.UNSAFE_MEMBER, "evil-1.0.dist-info", None, message),)
    assert not [path for path in opened if path.startswith(str(elsewhere))]
    assert report.distribution_count == 1  # good only
    assert service.findings == ()
    _good_still_audited(service)


def test_metadata_that_is_not_utf8_is_still_followed(site: Scene, elf_parts: ElfParts) -> None:
    info = _hostile(site, elf_parts)
    (info / "METADATA").write_bytes(b"Metadata-Version: 2.1\nName: hostile\nVersion: 1.0\nSummary: caf\xe9 \xff\nRequires-Dist: good\n")
    report, service = _scan(site, "hostile", good=False)
    message = "METADATA is not UTF-8; undecodable bytes were replaced"
    assert report.findings == (Finding(FindingKind.BAD_METADATA, f"{INFO}/METADATA", None, message),)
    # The Requires-Dist after the bad bytes is followed: good is reached through hostile.
    assert [chain[:4] for chain in _chains(service, GOOD_NEED)] == [
        ("svc", "svc/app.py:1 import hostile", "hostile 1.0", "good 1.0 (Requires-Dist: good)")
    ]
    assert len(_chains(service, NATIVE_NEED)) == 1


def test_an_empty_dist_info_folder(site: Scene) -> None:
    (site.site_packages / "empty-2.0.dist-info").mkdir()
    report, service = _scan(site)
    assert report.findings == (
        Finding(FindingKind.BAD_METADATA, "empty-2.0.dist-info/METADATA", None, "METADATA is missing"),
        Finding(FindingKind.BAD_METADATA, "empty-2.0.dist-info/RECORD", None, "RECORD is missing"),
    )
    assert report.distribution_count == 2  # empty (named after its folder) and good
    assert service.findings == ()
    _good_still_audited(service)


def test_metadata_folders_that_are_not_folders_or_have_no_name(site: Scene) -> None:
    (site.site_packages / "afile-1.0.dist-info").write_text("Name: afile\n")
    (site.site_packages / ".dist-info").mkdir()
    (site.site_packages / "-.dist-info").mkdir()
    report, service = _scan(site)
    nameless = "no distribution name, neither in a Name: field nor in the folder's name: ignored; remove it"
    missing = [
        Finding(FindingKind.BAD_METADATA, f"{folder}/{name}", None, f"{name} is missing")
        for folder in ("-.dist-info", ".dist-info")
        for name in ("METADATA", "RECORD")
    ]
    assert report.findings == tuple(
        sorted(
            [
                Finding(FindingKind.BAD_METADATA, "-.dist-info", None, nameless),
                Finding(FindingKind.BAD_METADATA, ".dist-info", None, nameless),
                Finding(
                    FindingKind.BAD_METADATA,
                    "afile-1.0.dist-info",
                    None,
                    "a file named like a metadata folder, which pip never writes: ignored; remove it",
                ),
                *missing[:1],
                *missing[2:3],
            ]
        )
    )
    assert report.distribution_count == 1
    _good_still_audited(service)


# Requires-Dist -----------------------------------------------------------------------------


def test_markers_that_cannot_be_evaluated_are_reported_and_not_followed(site: Scene, elf_parts: ElfParts) -> None:
    bad = ['helper; python_version ~= "x"', 'helper; platform_release ~= "5"']
    _hostile(site, elf_parts, requires=[*bad, 'good; python_version >= "3"'])
    site.dist("helper", files={"helper/__init__.py": b"", "helper/libhelper.so.1": elf_parts.outside.read_bytes()})
    report, service = _scan(site, "hostile", good=False)
    assert report.findings == tuple(
        Finding(
            FindingKind.BAD_METADATA,
            f"{INFO}/METADATA",
            None,
            f"Requires-Dist `{text}` has a marker that cannot be evaluated ({_marker_reason(text)}); it is not followed",
        )
        for text in sorted(bad)
    )
    assert SECRET_NEED not in {need.name for need in service.needs}  # helper is not in the closure
    assert any("good 1.0 (Requires-Dist: good; python_version >= \"3\")" in chain for chain in _chains(service, GOOD_NEED))


def test_requires_dist_lines_that_are_not_requirements(site: Scene, elf_parts: ElfParts) -> None:
    bad = ["bad name!!", "", "x; os_name ==", "y; python_verzion == '3'", "z[; extra"]
    _hostile(site, elf_parts, requires=[*bad, "good"])
    report, service = _scan(site, "hostile", good=False)
    expected = [
        Finding(
            FindingKind.BAD_METADATA,
            f"{INFO}/METADATA",
            None,
            f"Requires-Dist `{text}` is not a valid requirement ({_invalid_reason(text)}); it is not followed",
        )
        for text in bad
    ]
    assert report.findings == tuple(sorted(expected))
    assert service.findings == ()
    assert any("good 1.0 (Requires-Dist: good)" in chain for chain in _chains(service, GOOD_NEED))


def test_a_requires_dist_cycle_ends_and_both_are_audited(site: Scene, elf_parts: ElfParts) -> None:
    _hostile(site, elf_parts, requires=["cyclic"])
    site.dist("cyclic", files={"cyclic/__init__.py": b"", "cyclic/libcyclic.so.1": elf_parts.outside.read_bytes()}, requires=["hostile"])
    report, service = _scan(site, "hostile")
    assert (report.findings, service.findings) == ((), ())
    assert _chains(service, SECRET_NEED) == [
        ("svc", "svc/app.py:2 import hostile", "hostile 1.0", "cyclic 1.0 (Requires-Dist: cyclic)", "cyclic/libcyclic.so.1", SECRET_NEED)
    ]
    assert any(f"hostile/_native{EXT}" in chain for chain in _chains(service, NATIVE_NEED))


def test_two_distributions_claiming_one_module(site: Scene, elf_parts: ElfParts) -> None:
    shared = {"shared/__init__.py": b"", f"shared/_native{EXT}": elf_parts.native}
    site.dist("alpha", files=shared)
    site.dist("beta", files={**shared, "shared/libbeta.so.1": elf_parts.outside.read_bytes()})
    report, service = _scan(site, "shared")
    assert (report.findings, service.findings) == ((), ())
    assert [i.distribution for i in service.imports if i.record.module == "shared"] == ["alpha"]
    # Both are imported (either may have written the files): beta's own library counts too.
    assert [chain[2] for chain in _chains(service, SECRET_NEED)] == ["beta 1.0"]
    assert [chain[2:] for chain in _chains(service, NATIVE_NEED)] == [("alpha 1.0", f"shared/_native{EXT}", NATIVE_NEED)]
    _good_still_audited(service)
