"""Paths inside an unpacked image resolve inside it, never on this machine."""

from __future__ import annotations

import os
from pathlib import Path

from depaudit.findings import FindingKind
from depaudit.image.ldconf import ld_so_conf_dirs
from depaudit.image.open import distro_of
from depaudit.image.rootfs import RootfsDir


def test_resolution_stays_in_the_root(tmp_path: Path) -> None:
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/real.so").write_text("x")
    os.symlink("usr/lib", tmp_path / "lib")
    os.symlink("/usr/lib/real.so", tmp_path / "usr/lib/absolute.so")
    os.symlink("../../../../../../usr/lib/real.so", tmp_path / "usr/lib/climbing.so")
    os.symlink("/etc/hostname", tmp_path / "usr/lib/host.so")  # exists on this machine, not in the image
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    fs = RootfsDir(tmp_path)
    assert fs.resolve("/lib/real.so") == "/usr/lib/real.so"
    assert fs.resolve("/lib/absolute.so") == "/usr/lib/real.so"
    assert fs.resolve("/usr/lib/climbing.so") == "/usr/lib/real.so"
    assert fs.resolve("/../../lib/./real.so") == "/usr/lib/real.so"
    assert fs.resolve("/lib", follow_final=False) == "/lib"
    assert fs.resolve("/usr/lib/host.so") is None
    assert fs.read_text("/usr/lib/host.so") is None
    assert fs.host_path("/lib/absolute.so") == tmp_path / "usr/lib/real.so"
    assert fs.resolve("/a") is None
    assert [(f.kind, f.path) for f in fs.findings] == [(FindingKind.SYMLINK_LOOP, "/a")]


def test_ld_so_conf_includes_relative_patterns_and_cycles(tmp_path: Path) -> None:
    (tmp_path / "etc/ld.so.conf.d").mkdir(parents=True)
    (tmp_path / "etc/ld.so.conf").write_text("/first\ninclude ld.so.conf.d/*.conf\ninclude /etc/ld.so.conf\n")
    (tmp_path / "etc/ld.so.conf.d/b.conf").write_text("/b1 /b2,/b3\nhwcap 0 x\n")
    (tmp_path / "etc/ld.so.conf.d/a.conf").write_text("# comment\n/a//lib/\n/first\n")
    assert ld_so_conf_dirs(RootfsDir(tmp_path)) == ["/first", "/a/lib", "/b1", "/b2", "/b3"]


def test_distro_from_os_release() -> None:
    assert distro_of('PRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\nVERSION_ID="22.04"\n') == "ubuntu-22.04"
    assert distro_of('ID=debian\nVERSION_ID="12"\n') == "debian-12"
    assert distro_of("ID=alpine\n") is None


def test_dpkg_status_d_as_distroless_images_keep_it(tmp_path: Path) -> None:
    from depaudit.image.dpkg import read_dpkg

    (tmp_path / "var/lib/dpkg/status.d").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status.d/libssl3").write_text("Package: libssl3\nVersion: 3.0.11-1\nArchitecture: amd64\n")
    (tmp_path / "var/lib/dpkg/status.d/base").write_text(
        "Package: base-files\nVersion: 12.4\n\nPackage: tzdata\nStatus: purge ok not-installed\nVersion: 2024a\n"
    )
    assert read_dpkg(RootfsDir(tmp_path)).installed == {"libssl3": "3.0.11-1", "base-files": "12.4"}
