"""Loader emulation on real gcc-built objects: each test names the rule it proves."""

from __future__ import annotations

from depaudit.findings import Finding, FindingKind
from depaudit.native.distribution import analyse_distribution, elf_candidates
from depaudit.native.model import LibraryStatus, NativeNeed, NativeReport, Tier

EXT = ".cpython-311-x86_64-linux-gnu.so"
BUNDLED, OTHER, SYSTEM = LibraryStatus.BUNDLED, LibraryStatus.OTHER_WHEEL, LibraryStatus.SYSTEM
REQ, OPT = Tier.REQUIRED, Tier.OPTIONAL


def _report(scene) -> NativeReport:
    dist = scene.env.distributions["pkga"]
    return analyse_distribution(dist, owner_of=scene.env.owner_of, search_roots=[scene.site_packages])


def _needs(scene) -> dict[tuple[str, LibraryStatus], NativeNeed]:
    return {(n.soname, n.status): n for n in _report(scene).needs}


def test_origin_rpath_finds_the_wheels_own_libs_folder(loader_scene) -> None:
    need = _needs(loader_scene)[("libbundled-abc123.so.1", BUNDLED)]
    assert need == NativeNeed(
        "libbundled-abc123.so.1",
        BUNDLED,
        REQ,
        (f"pkga/_core{EXT}",),
        "pkga.libs/libbundled-abc123.so.1",
        None,
        "DT_RPATH",
    )


def test_origin_rpath_into_another_wheel_is_other_wheel(loader_scene) -> None:
    need = _needs(loader_scene)[("libfakeblas.so.12", OTHER)]
    assert need == NativeNeed(
        "libfakeblas.so.12",
        OTHER,
        REQ,
        (f"pkga/_core{EXT}", "pkga.libs/libbundled-abc123.so.1"),
        "nvidia/fakeblas/lib/libfakeblas.so.12",
        "nvidia-fakeblas",
        "DT_RPATH",
    )


def test_a_library_the_environment_lacks_is_a_system_need_with_its_chain(loader_scene) -> None:
    need = _needs(loader_scene)[("libsystemonly.so.1", SYSTEM)]
    assert need == NativeNeed(
        "libsystemonly.so.1",
        SYSTEM,
        REQ,
        (f"pkga/_core{EXT}", "pkga.libs/libbundled-abc123.so.1"),
        None,
        None,
        None,
        ("nvidia/fakeblas/lib", "pkga.libs"),  # its own RPATH, then its loader's
    )


def test_runpath_is_used_for_the_object_itself_but_not_inherited(loader_scene) -> None:
    needs = _needs(loader_scene)
    assert needs[("librunchild.so.1", BUNDLED)].chain == (f"pkga/_runpath{EXT}",)
    assert needs[("librunchild.so.1", BUNDLED)].rule == "DT_RUNPATH"
    # librunchild has no search path of its own; ld.so does not lend it the loader's RUNPATH.
    assert needs[("libgrand.so.1", SYSTEM)] == NativeNeed(
        "libgrand.so.1", SYSTEM, REQ, (f"pkga/_runpath{EXT}", "pkga.libs/librunchild.so.1"), None, None
    )


def test_rpath_of_the_loader_is_inherited_by_a_child_without_runpath(loader_scene) -> None:
    assert _needs(loader_scene)[("libgrand.so.1", BUNDLED)] == NativeNeed(
        "libgrand.so.1",
        BUNDLED,
        REQ,
        (f"pkga/_rpath{EXT}", "pkga.libs/librpchild.so.1"),
        "pkga.libs/libgrand.so.1",
        None,
        f"DT_RPATH of pkga/_rpath{EXT}",
    )


def test_rpath_inheritance_skips_a_loader_with_runpath_and_keeps_climbing(loader_scene) -> None:
    need = _needs(loader_scene)[("libgreat.so.1", BUNDLED)]
    assert (need.chain, need.rule) == (
        (f"pkga/_chain{EXT}", "pkga.libs/libmidrun.so.1", "pkga.libs/libleaf.so.1"),
        f"DT_RPATH of pkga/_chain{EXT}",
    )


def test_a_library_found_only_because_it_was_loaded_first_says_so(loader_scene) -> None:
    # The root finds it by its RUNPATH; libsecond, with no search path, only through load order.
    assert [(n.chain, n.rule) for n in _report(loader_scene).needs if n.soname == "libfirst.so.1"] == [
        (
            (f"pkga/_loadorder{EXT}",),
            "DT_RUNPATH; pkga.libs/libsecond.so.1 finds it only because it was loaded first (load order)",
        )
    ]


def test_an_absolute_rpath_is_never_searched_on_this_machine(loader_scene) -> None:
    # The host has /usr/lib/x86_64-linux-gnu/libz.so.1; the image may not.
    assert _needs(loader_scene)[("libz.so.1", SYSTEM)].chain == (f"pkga/_hostdir{EXT}",)


def test_what_no_extension_module_reaches_is_optional(loader_scene) -> None:
    assert _needs(loader_scene)[("libplugdep.so.1", SYSTEM)] == NativeNeed(
        "libplugdep.so.1", SYSTEM, OPT, ("pkga/plugins/libplugin.so",), None, None, None, ("pkga.libs",)
    )


def test_a_soname_reached_both_ways_keeps_the_required_evidence(loader_scene) -> None:
    keys = [key for key in _needs(loader_scene) if key[0] == "libsystemonly.so.1"]
    assert keys == [("libsystemonly.so.1", SYSTEM)]
    assert _needs(loader_scene)[keys[0]].tier is REQ


def test_bad_files_are_findings_and_the_rest_is_still_reported(loader_scene) -> None:
    report = _report(loader_scene)
    assert [(f.kind, f.path) for f in report.findings] == [
        (FindingKind.BAD_ELF, f"pkga/_broken{EXT}"),
        (FindingKind.NOT_ELF, "pkga.libs/libscript.so"),
    ]
    assert report.findings[1] == Finding(
        FindingKind.NOT_ELF,
        "pkga.libs/libscript.so",
        None,
        "not an ELF file: a GNU ld linker script, which the dynamic loader cannot load",
    )
    assert sorted({(n.soname, n.status.value) for n in report.needs}) == [
        ("libbundled-abc123.so.1", "bundled"),
        ("libc.so.6", "system"),
        ("libfakeblas.so.12", "other-wheel"),
        ("libfirst.so.1", "bundled"),
        ("libgrand.so.1", "bundled"),
        ("libgrand.so.1", "system"),
        ("libgreat.so.1", "bundled"),
        ("libleaf.so.1", "bundled"),
        ("libmidrun.so.1", "bundled"),
        ("libplugdep.so.1", "system"),
        ("librpchild.so.1", "bundled"),
        ("librunchild.so.1", "bundled"),
        ("libsecond.so.1", "bundled"),
        ("libsystemonly.so.1", "system"),
        ("libz.so.1", "system"),
    ]


def test_candidates_come_from_record_not_from_a_disk_walk(loader_scene, tmp_path) -> None:
    stray = loader_scene.site_packages / "pkga" / "_stray.so"
    stray.write_bytes(b"\x7fELF")  # on disk, but RECORD does not list it
    try:
        names = sorted(p.name for p in elf_candidates(loader_scene.env.distributions["pkga"]))
    finally:
        stray.unlink()
    assert names == sorted(
        [
            "libgrand.so.1",
            "libbundled-abc123.so.1",
            "librunchild.so.1",
            "librpchild.so.1",
            "libscript.so",
            f"_core{EXT}",
            f"_runpath{EXT}",
            f"_rpath{EXT}",
            f"_hostdir{EXT}",
            f"_broken{EXT}",
            "libplugin.so",
            "libgreat.so.1",
            "libleaf.so.1",
            "libmidrun.so.1",
            f"_chain{EXT}",
            "libfirst.so.1",
            "libsecond.so.1",
            f"_loadorder{EXT}",
        ]
    )
