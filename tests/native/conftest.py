"""A site-packages of real gcc-built shared objects, one extension module per loader scenario.

Each `pkga/_<scenario>` extension module is named after the rule it proves; the libraries it
reaches live where real wheels put them (auditwheel's `pkga.libs/`, torch's `lib/` next to
`nvidia/*/lib` of another wheel).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from depaudit.python.environment import PythonEnvironment, load_environment
from helpers import build_elf32_so, build_so, elf_folder, make_dist

EXT = ".cpython-311-x86_64-linux-gnu.so"


@dataclass(frozen=True)
class LoaderScene:
    root: Path
    site_packages: Path
    stubs: Path  # link-time stand-ins for libraries the environment lacks (never searched)
    env: PythonEnvironment


def _ext(sp: Path, scenario: str, **kwargs: Any) -> str:
    relative = f"pkga/_{scenario}{EXT}"
    build_so(sp / relative, **kwargs)
    return relative


@pytest.fixture(scope="session")
def loader_scene(tmp_path_factory: pytest.TempPathFactory) -> LoaderScene:
    root = elf_folder(tmp_path_factory, "loader")
    stubs, sp = root / "build", root / "site-packages"
    built: list[str] = []

    def lib(relative: str, **kwargs: Any) -> Path:
        built.append(relative)
        return build_so(sp / relative, **kwargs)

    system_only = build_so(stubs / "libsystemonly.so.1", soname="libsystemonly.so.1")
    plugin_dep = build_so(stubs / "libplugdep.so.1", soname="libplugdep.so.1")
    host_z = build_so(stubs / "libz.so.1", soname="libz.so.1")

    # nvidia-fakeblas: another wheel, reached as torch reaches nvidia-cublas-cu12.
    blas = build_so(sp / "nvidia/fakeblas/lib/libfakeblas.so.12", soname="libfakeblas.so.12")

    # auditwheel layout: $ORIGIN/../pkga.libs; the bundled library needs one the wheel lacks.
    bundled = lib("pkga.libs/libbundled-abc123.so.1", soname="libbundled-abc123.so.1", needed=[system_only])
    built.append(_ext(sp, "auditwheel_layout", needed=[bundled], rpath="$ORIGIN/../pkga.libs"))

    # torch layout: pkga/lib/libpkga_cuda.so finds nvidia/fakeblas/lib through $ORIGIN/../../.
    cuda = lib("pkga/lib/libpkga_cuda.so", soname="libpkga_cuda.so", needed=[blas], rpath="$ORIGIN/../../nvidia/fakeblas/lib")
    built.append(_ext(sp, "torch_layout", needed=[cuda], rpath="$ORIGIN/lib"))

    # DT_RUNPATH serves the object itself only; DT_RPATH is lent to what it loads.
    grand = lib("pkga.libs/libgrand.so.1", soname="libgrand.so.1")
    run_child = lib("pkga.libs/librunchild.so.1", soname="librunchild.so.1", needed=[grand])
    rpath_child = lib("pkga.libs/librpchild.so.1", soname="librpchild.so.1", needed=[grand])
    built.append(_ext(sp, "runpath_not_inherited", needed=[run_child], runpath="$ORIGIN/../pkga.libs"))
    built.append(_ext(sp, "rpath_inherited", needed=[rpath_child], rpath="${ORIGIN}/../pkga.libs"))

    # A RUNPATH object in the middle of an RPATH chain: glibc skips its RPATH and keeps climbing
    # to the root's DT_RPATH, which alone names pkga.great.
    great = lib("pkga.great/libgreat.so.1", soname="libgreat.so.1")
    leaf = lib("pkga.libs/libleaf.so.1", soname="libleaf.so.1", needed=[great])
    mid = lib("pkga.libs/libmidrun.so.1", soname="libmidrun.so.1", needed=[leaf], runpath="$ORIGIN")
    built.append(
        _ext(sp, "rpath_through_runpath_loader", needed=[mid], rpath="$ORIGIN/../pkga.libs:$ORIGIN/../pkga.great")
    )

    # libsecond finds libfirst only because the root loaded it first (RUNPATH is not inherited).
    first = lib("pkga.libs/libfirst.so.1", soname="libfirst.so.1")
    second = lib("pkga.libs/libsecond.so.1", soname="libsecond.so.1", needed=[first])
    built.append(_ext(sp, "load_order", needed=[first, second], runpath="$ORIGIN/../pkga.libs"))

    # An absolute RPATH names a folder of the image, never of this machine (which has libz).
    built.append(_ext(sp, "host_rpath_ignored", needed=[host_z], rpath="/usr/lib/x86_64-linux-gnu"))

    # $ORIGIN of a library reached through a symlink is the symlink's folder (glibc's l_origin).
    sibling = lib("pkga.libs/libsibling.so.1", soname="libsibling.so.1")
    target = lib("pkga/vendor/deep/libvialink.so.1.0", soname="libvialink.so.1", needed=[sibling], rpath="$ORIGIN")
    os.symlink("../pkga/vendor/deep/libvialink.so.1.0", sp / "pkga.libs/libvialink.so.1")
    built.append("pkga.libs/libvialink.so.1")
    built.append(_ext(sp, "symlinked_origin", needed=[target], runpath="$ORIGIN/../pkga.libs"))

    # $PLATFORM and ${LIB} expand as on x86_64 Debian/Ubuntu.
    plat = lib("pkga.plat/x86_64/lib/x86_64-linux-gnu/libplat.so.1", soname="libplat.so.1")
    built.append(_ext(sp, "dst_tokens", needed=[plat], rpath="$ORIGIN/../pkga.plat/$PLATFORM/${LIB}"))

    # Two libraries that need each other: the walk must end.
    cyc_a = lib("pkga.libs/libcyca.so.1", soname="libcyca.so.1")
    cyc_b = lib("pkga.libs/libcycb.so.1", soname="libcycb.so.1", needed=[cyc_a])
    build_so(cyc_a, soname="libcyca.so.1", needed=[cyc_b])  # relink: now a needs b too
    built.append(_ext(sp, "cycle", needed=[cyc_a], rpath="$ORIGIN/../pkga.libs"))

    # A 32-bit file of the right name comes first in the RPATH: skipped, the search goes on.
    wide = lib("pkga.libs/libwide.so.1", soname="libwide.so.1")
    build_elf32_so(sp / "pkga.libs32/libwide.so.1", "libwide.so.1")
    built.append("pkga.libs32/libwide.so.1")
    built.append(_ext(sp, "skips_32bit", needed=[wide], rpath="$ORIGIN/../pkga.libs32:$ORIGIN/../pkga.libs"))

    # A plugin no extension module links (opencv's Qt platform plugin): loaded with dlopen.
    lib(
        "pkga/plugins/libplugin_dlopened.so",
        soname="libplugin_dlopened.so",
        needed=[plugin_dep, system_only, bundled],
        rpath="$ORIGIN/../../pkga.libs",
    )

    # Bad files: a GNU ld script named like a library, and a truncated extension module.
    (sp / "pkga.libs/liblinkerscript.so").write_text("/* GNU ld script */\nINPUT(-lgrand)\n")
    (sp / f"pkga/_truncated{EXT}").write_bytes(bundled.read_bytes()[:100])
    built += ["pkga.libs/liblinkerscript.so", f"pkga/_truncated{EXT}"]

    make_dist(sp, "pkga", files={"pkga/__init__.py": ""}, existing=built, requires=["nvidia-fakeblas"])
    make_dist(sp, "nvidia-fakeblas", existing=["nvidia/fakeblas/lib/libfakeblas.so.12"])
    return LoaderScene(root, sp, stubs, load_environment([sp]))
