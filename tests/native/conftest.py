"""A site-packages of real gcc-built shared objects, one per loader scenario."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from depaudit.python.environment import PythonEnvironment, load_environment
from helpers import build_so, have_gcc, make_dist

EXT = ".cpython-311-x86_64-linux-gnu.so"


@dataclass(frozen=True)
class LoaderScene:
    site_packages: Path
    env: PythonEnvironment


@pytest.fixture(scope="session")
def loader_scene(tmp_path_factory: pytest.TempPathFactory) -> LoaderScene:
    if not have_gcc():
        pytest.skip("gcc is not installed: cannot build ELF fixtures")
    root = tmp_path_factory.mktemp("loader")
    stubs = root / "build"  # link-time stand-ins for libraries the environment lacks
    sp = root / "site-packages"

    system_only = build_so(stubs / "libsystemonly.so.1", soname="libsystemonly.so.1")
    plugin_dep = build_so(stubs / "libplugdep.so.1", soname="libplugdep.so.1")
    host_z = build_so(stubs / "libz.so.1", soname="libz.so.1")

    # nvidia-fakeblas: a separate wheel, reached as torch reaches nvidia-cublas-cu12.
    blas = build_so(sp / "nvidia/fakeblas/lib/libfakeblas.so.12", soname="libfakeblas.so.12")

    # pkga: an auditwheel-repaired wheel with pkga.libs/.
    grand = build_so(sp / "pkga.libs/libgrand.so.1", soname="libgrand.so.1")
    bundled = build_so(
        sp / "pkga.libs/libbundled-abc123.so.1",
        soname="libbundled-abc123.so.1",
        needed=[system_only, blas],
        rpath="$ORIGIN/../nvidia/fakeblas/lib",
    )
    run_child = build_so(sp / "pkga.libs/librunchild.so.1", soname="librunchild.so.1", needed=[grand])
    rpath_child = build_so(sp / "pkga.libs/librpchild.so.1", soname="librpchild.so.1", needed=[grand])
    build_so(sp / f"pkga/_core{EXT}", needed=[bundled], rpath="$ORIGIN/../pkga.libs")
    build_so(sp / f"pkga/_runpath{EXT}", needed=[run_child], runpath="$ORIGIN/../pkga.libs")
    build_so(sp / f"pkga/_rpath{EXT}", needed=[rpath_child], rpath="${ORIGIN}/../pkga.libs")
    build_so(sp / f"pkga/_hostdir{EXT}", needed=[host_z], rpath="/usr/lib/x86_64-linux-gnu")
    build_so(
        sp / "pkga/plugins/libplugin.so",
        soname="libplugin.so",
        needed=[plugin_dep, system_only, bundled],
        rpath="$ORIGIN/../../pkga.libs",
    )
    # A RUNPATH object in the middle of an RPATH chain: glibc skips its (nulled) RPATH and keeps
    # climbing to the root's DT_RPATH.
    great = build_so(sp / "pkga.great/libgreat.so.1", soname="libgreat.so.1")  # only the root's RPATH names it
    leaf = build_so(sp / "pkga.libs/libleaf.so.1", soname="libleaf.so.1", needed=[great])
    mid = build_so(sp / "pkga.libs/libmidrun.so.1", soname="libmidrun.so.1", needed=[leaf], runpath="$ORIGIN")
    build_so(sp / f"pkga/_chain{EXT}", needed=[mid], rpath="$ORIGIN/../pkga.libs:$ORIGIN/../pkga.great")
    # libsecond finds libfirst only because the root loaded it first (RUNPATH is not inherited).
    first = build_so(sp / "pkga.libs/libfirst.so.1", soname="libfirst.so.1")
    second = build_so(sp / "pkga.libs/libsecond.so.1", soname="libsecond.so.1", needed=[first])
    build_so(sp / f"pkga/_loadorder{EXT}", needed=[first, second], runpath="$ORIGIN/../pkga.libs")
    (sp / "pkga.libs/libscript.so").write_text("/* GNU ld script */\nINPUT(-lgrand)\n")
    (sp / f"pkga/_broken{EXT}").write_bytes(bundled.read_bytes()[:100])

    built = [
        "pkga.libs/libgrand.so.1",
        "pkga.libs/libbundled-abc123.so.1",
        "pkga.libs/librunchild.so.1",
        "pkga.libs/librpchild.so.1",
        "pkga.libs/libscript.so",
        f"pkga/_core{EXT}",
        f"pkga/_runpath{EXT}",
        f"pkga/_rpath{EXT}",
        f"pkga/_hostdir{EXT}",
        f"pkga/_broken{EXT}",
        "pkga/plugins/libplugin.so",
        "pkga.great/libgreat.so.1",
        "pkga.libs/libleaf.so.1",
        "pkga.libs/libmidrun.so.1",
        f"pkga/_chain{EXT}",
        "pkga.libs/libfirst.so.1",
        "pkga.libs/libsecond.so.1",
        f"pkga/_loadorder{EXT}",
    ]
    make_dist(sp, "pkga", files={"pkga/__init__.py": ""}, existing=built, requires=["nvidia-fakeblas"])
    make_dist(sp, "nvidia-fakeblas", existing=["nvidia/fakeblas/lib/libfakeblas.so.12"])
    return LoaderScene(sp, load_environment([sp]))
