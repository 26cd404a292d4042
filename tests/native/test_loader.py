"""Loader emulation on real gcc-built objects: each test names the rule it proves."""

from __future__ import annotations

import os
from pathlib import Path

from depaudit.findings import Finding, FindingKind
from depaudit.native.distribution import analyse_distribution, elf_candidates
from depaudit.native.loader import resolve_needs
from depaudit.evidence import Tier
from depaudit.native.model import LibraryStatus, NativeNeed, NativeReport
from depaudit.python.environment import load_environment

EXT = ".cpython-311-x86_64-linux-gnu.so"
BUNDLED, OTHER, SYSTEM = LibraryStatus.BUNDLED, LibraryStatus.OTHER_WHEEL, LibraryStatus.SYSTEM
REQ, OPT = Tier.REQUIRED, Tier.OPTIONAL


def _ext(scenario: str) -> str:
    return f"pkga/_{scenario}{EXT}"


def _report(scene) -> NativeReport:
    dist = scene.env.distributions["pkga"]
    return analyse_distribution(dist, owner_of=scene.env.owner_of, search_roots=[scene.site_packages])


def _needs(scene) -> dict[tuple[str, LibraryStatus], NativeNeed]:
    return _report(scene).strongest()


def test_origin_rpath_finds_the_wheels_own_libs_folder(loader_scene) -> None:
    assert _needs(loader_scene)[("libbundled-abc123.so.1", BUNDLED)] == NativeNeed(
        "libbundled-abc123.so.1",
        BUNDLED,
        REQ,
        (_ext("auditwheel_layout"),),
        "pkga.libs/libbundled-abc123.so.1",
        None,
        "DT_RPATH",
    )


def test_origin_rpath_into_another_wheel_is_other_wheel_with_its_provider(loader_scene) -> None:
    assert _needs(loader_scene)[("libfakeblas.so.12", OTHER)] == NativeNeed(
        "libfakeblas.so.12",
        OTHER,
        REQ,
        (_ext("torch_layout"), "pkga/lib/libpkga_cuda.so"),
        "nvidia/fakeblas/lib/libfakeblas.so.12",
        "nvidia-fakeblas",
        "DT_RPATH",
    )


def test_a_library_the_environment_lacks_is_a_system_need_with_its_chain(loader_scene) -> None:
    # Also needed by the dlopen-ed plugin with a shorter chain: the required evidence wins.
    assert [n for n in _report(loader_scene).strongest().values() if n.soname == "libsystemonly.so.1"] == [
        NativeNeed(
            "libsystemonly.so.1",
            SYSTEM,
            REQ,
            (_ext("auditwheel_layout"), "pkga.libs/libbundled-abc123.so.1"),
            None,
            None,
            None,
            ("pkga.libs",),  # no path of its own; its loader's DT_RPATH
        )
    ]


def test_runpath_is_used_for_the_object_itself_but_not_inherited(loader_scene) -> None:
    needs = _needs(loader_scene)
    assert needs[("librunchild.so.1", BUNDLED)] == NativeNeed(
        "librunchild.so.1",
        BUNDLED,
        REQ,
        (_ext("runpath_not_inherited"),),
        "pkga.libs/librunchild.so.1",
        None,
        "DT_RUNPATH",
    )
    # librunchild has no search path of its own; ld.so does not lend it the loader's RUNPATH.
    assert needs[("libgrand.so.1", SYSTEM)] == NativeNeed(
        "libgrand.so.1", SYSTEM, REQ, (_ext("runpath_not_inherited"), "pkga.libs/librunchild.so.1"), None, None
    )


def test_rpath_of_the_loader_is_inherited_by_a_child_without_runpath(loader_scene) -> None:
    assert _needs(loader_scene)[("libgrand.so.1", BUNDLED)] == NativeNeed(
        "libgrand.so.1",
        BUNDLED,
        REQ,
        (_ext("rpath_inherited"), "pkga.libs/librpchild.so.1"),
        "pkga.libs/libgrand.so.1",
        None,
        f"DT_RPATH of {_ext('rpath_inherited')}",
    )


def test_rpath_inheritance_skips_a_loader_with_runpath_and_keeps_climbing(loader_scene) -> None:
    need = _needs(loader_scene)[("libgreat.so.1", BUNDLED)]
    assert (need.chain, need.found_at, need.rule) == (
        (_ext("rpath_through_runpath_loader"), "pkga.libs/libmidrun.so.1", "pkga.libs/libleaf.so.1"),
        "pkga.great/libgreat.so.1",
        f"DT_RPATH of {_ext('rpath_through_runpath_loader')}",
    )


def test_a_library_found_only_because_it_was_loaded_first_says_so(loader_scene) -> None:
    # The root finds it by its RUNPATH; libsecond, with no search path, only through load order.
    assert [(n.chain, n.rule) for n in _report(loader_scene).needs if n.soname == "libfirst.so.1"] == [
        (
            (_ext("load_order"),),
            "DT_RUNPATH; pkga.libs/libsecond.so.1 finds it only because it was loaded first (load order)",
        )
    ]


def test_an_absolute_rpath_is_never_searched_on_this_machine(loader_scene) -> None:
    # This machine may well have /usr/lib/x86_64-linux-gnu/libz.so.1; the image may not.
    assert _needs(loader_scene)[("libz.so.1", SYSTEM)] == NativeNeed(
        "libz.so.1",
        SYSTEM,
        REQ,
        (_ext("host_rpath_ignored"),),
        None,
        None,
        None,
        ("/usr/lib/x86_64-linux-gnu",),  # where ld.so would look in the image
    )
    assert ("libz.so.1", BUNDLED) not in _needs(loader_scene)


def test_origin_of_a_library_reached_through_a_symlink_is_the_symlinks_folder(loader_scene) -> None:
    needs = _needs(loader_scene)
    assert needs[("libvialink.so.1", BUNDLED)].found_at == "pkga.libs/libvialink.so.1"
    # Its "$ORIGIN" RPATH means pkga.libs (where the link is), not pkga/vendor/deep.
    assert needs[("libsibling.so.1", BUNDLED)] == NativeNeed(
        "libsibling.so.1",
        BUNDLED,
        REQ,
        (_ext("symlinked_origin"), "pkga.libs/libvialink.so.1"),
        "pkga.libs/libsibling.so.1",
        None,
        "DT_RPATH",
    )


def test_platform_and_lib_tokens_expand_like_glibc_on_x86_64(loader_scene) -> None:
    assert _needs(loader_scene)[("libplat.so.1", BUNDLED)] == NativeNeed(
        "libplat.so.1",
        BUNDLED,
        REQ,
        (_ext("dst_tokens"),),
        "pkga.plat/x86_64/lib/x86_64-linux-gnu/libplat.so.1",
        None,
        "DT_RPATH",
    )


def test_libraries_that_need_each_other_end_the_walk(loader_scene) -> None:
    needs = _needs(loader_scene)
    assert needs[("libcyca.so.1", BUNDLED)].chain == (_ext("cycle"),)
    assert needs[("libcycb.so.1", BUNDLED)].chain == (_ext("cycle"), "pkga.libs/libcyca.so.1")


def test_a_candidate_of_the_wrong_elf_class_is_skipped_and_the_search_goes_on(loader_scene) -> None:
    assert _needs(loader_scene)[("libwide.so.1", BUNDLED)] == NativeNeed(
        "libwide.so.1", BUNDLED, REQ, (_ext("skips_32bit"),), "pkga.libs/libwide.so.1", None, "DT_RPATH"
    )


def test_what_no_extension_module_reaches_is_optional(loader_scene) -> None:
    assert _needs(loader_scene)[("libplugdep.so.1", SYSTEM)] == NativeNeed(
        "libplugdep.so.1", SYSTEM, OPT, ("pkga/plugins/libplugin_dlopened.so",), None, None, None, ("pkga.libs",)
    )


def test_bad_files_are_findings_and_the_rest_is_still_reported(loader_scene) -> None:
    report = _report(loader_scene)
    assert report.owner == "pkga"
    assert report.findings == (
        Finding(
            FindingKind.BAD_ELF,
            _ext("truncated"),
            None,
            "truncated ELF file: the program headers end at byte 568, past the end of the file (100 bytes)",
        ),
        Finding(
            FindingKind.NOT_ELF,
            "pkga.libs/liblinkerscript.so",
            None,
            "not an ELF file: a GNU ld linker script, which the dynamic loader cannot load",
        ),
    )
    assert [(n.soname, n.status.value, n.tier.value) for n in report.strongest().values()] == [
        ("libbundled-abc123.so.1", "bundled", "required"),
        ("libc.so.6", "system", "required"),
        ("libcyca.so.1", "bundled", "required"),
        ("libcycb.so.1", "bundled", "required"),
        ("libfakeblas.so.12", "other-wheel", "required"),
        ("libfirst.so.1", "bundled", "required"),
        ("libgrand.so.1", "bundled", "required"),
        ("libgrand.so.1", "system", "required"),
        ("libgreat.so.1", "bundled", "required"),
        ("libleaf.so.1", "bundled", "required"),
        ("libmidrun.so.1", "bundled", "required"),
        ("libpkga_cuda.so", "bundled", "required"),
        ("libplat.so.1", "bundled", "required"),
        ("libplugdep.so.1", "system", "optional"),
        ("librpchild.so.1", "bundled", "required"),
        ("librunchild.so.1", "bundled", "required"),
        ("libsecond.so.1", "bundled", "required"),
        ("libsibling.so.1", "bundled", "required"),
        ("libsystemonly.so.1", "system", "required"),
        ("libvialink.so.1", "bundled", "required"),
        ("libwide.so.1", "bundled", "required"),
        ("libz.so.1", "system", "required"),
    ]


def test_a_site_packages_named_through_a_symlink_keeps_providers_and_display(loader_scene, tmp_path) -> None:
    # $ORIGIN is a real path; the environment was named through a link: same answers.
    link = tmp_path / "sp-link"
    os.symlink(loader_scene.site_packages, link)
    env = load_environment([link])
    report = analyse_distribution(env.distributions["pkga"], owner_of=env.owner_of, search_roots=[link])
    assert report == _report(loader_scene)


def test_resolve_needs_on_a_hand_written_file_list(loader_scene) -> None:
    sp = loader_scene.site_packages
    (sp / "pkga/README").write_text("not ELF, not named like a library: skipped silently\n")
    prefixes = {sp / "nvidia/fakeblas": "nvidia-fakeblas", sp / "pkga": "pkga", sp / "pkga.libs": "pkga"}

    def owner_of(path: Path) -> str | None:
        return next((key for prefix, key in prefixes.items() if prefix in Path(path).parents), None)

    try:
        report = resolve_needs(
            "pkga",
            [sp / _ext("torch_layout"), sp / "pkga/lib/libpkga_cuda.so", sp / "pkga/README"],
            display=lambda path: Path(path).relative_to(sp).as_posix(),
            owner_of=owner_of,
            search_roots=[sp],
        )
    finally:
        (sp / "pkga/README").unlink()
    assert report == NativeReport(
        "pkga",
        (
            NativeNeed("libc.so.6", SYSTEM, REQ, (_ext("torch_layout"),), None, None, None, ("pkga/lib",)),
            NativeNeed(
                "libfakeblas.so.12",
                OTHER,
                REQ,
                (_ext("torch_layout"), "pkga/lib/libpkga_cuda.so"),
                "nvidia/fakeblas/lib/libfakeblas.so.12",
                "nvidia-fakeblas",
                "DT_RPATH",
            ),
            NativeNeed(
                "libpkga_cuda.so", BUNDLED, REQ, (_ext("torch_layout"),), "pkga/lib/libpkga_cuda.so", None, "DT_RPATH"
            ),
        ),
        (),
    )


def test_candidates_come_from_record_not_from_a_disk_walk(loader_scene) -> None:
    dist = loader_scene.env.distributions["pkga"]
    stray = loader_scene.site_packages / "pkga" / "_stray.so"
    stray.write_bytes(b"\x7fELF")  # on disk, but RECORD does not list it
    try:
        candidates = elf_candidates(dist)
    finally:
        stray.unlink()
    # Every built file RECORD lists, the linker script too (the loader reports it); not
    # __init__.py, not the dist-info's own METADATA and RECORD, not the stray file.
    expected = [f for f in dist.files if f != "pkga/__init__.py" and ".dist-info/" not in f]
    assert len(expected) == 32 and "pkga.libs/liblinkerscript.so" in expected
    assert [p.relative_to(loader_scene.site_packages).as_posix() for p in candidates] == expected
