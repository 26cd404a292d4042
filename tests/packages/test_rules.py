"""The distro rules: exact package names, validation, and a check against a real dpkg database."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from depaudit.packages.classify import PackageAnswer, SystemStatus, classify_soname
from depaudit.packages.rules import RulesError, known_distros, load_rules

WHITELIST = {
    # soname: (ubuntu-22.04 package, debian-12 package)
    "libGL.so.1": ("libgl1", "libgl1"),
    "libglib-2.0.so.0": ("libglib2.0-0", "libglib2.0-0"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "libglib2.0-0"),
    "libgobject-2.0.so.0": ("libglib2.0-0", "libglib2.0-0"),
    "libX11.so.6": ("libx11-6", "libx11-6"),
    "libXext.so.6": ("libxext6", "libxext6"),
    "libXrender.so.1": ("libxrender1", "libxrender1"),
    "libSM.so.6": ("libsm6", "libsm6"),
    "libICE.so.6": ("libice6", "libice6"),
    "libxcb.so.1": ("libxcb1", "libxcb1"),
    "libz.so.1": ("zlib1g", "zlib1g"),
    "libexpat.so.1": ("libexpat1", "libexpat1"),
    "libgomp.so.1": ("libgomp1", "libgomp1"),
    "libstdc++.so.6": ("libstdc++6", "libstdc++6"),
    "libgcc_s.so.1": ("libgcc-s1", "libgcc-s1"),
    # where the two distros differ
    "libavcodec.so.58": ("libavcodec58", None),
    "libavcodec.so.59": (None, "libavcodec59"),
    "libtiff.so.5": ("libtiff5", None),
    "libtiff.so.6": (None, "libtiff6"),
    "libjpeg.so.8": ("libjpeg-turbo8", None),
    "libjpeg.so.62": (None, "libjpeg62-turbo"),
}


def test_known_distros() -> None:
    assert known_distros() == ("debian-12", "ubuntu-22.04")


@pytest.mark.parametrize("index,distro", [(0, "ubuntu-22.04"), (1, "debian-12")])
def test_soname_table(index: int, distro: str) -> None:
    rules = load_rules(distro)
    actual = {soname: rules.sonames[soname].package if soname in rules.sonames else None for soname in WHITELIST}
    assert actual == {soname: packages[index] for soname, packages in WHITELIST.items()}


@pytest.mark.parametrize("distro", ["ubuntu-22.04", "debian-12"])
def test_classification(distro: str) -> None:
    rules = load_rules(distro)
    assert classify_soname(rules, "libGL.so.1") == PackageAnswer(SystemStatus.MISSING, "libgl1")
    assert classify_soname(rules, "libz.so.1") == PackageAnswer(SystemStatus.BASE_IMAGE, "zlib1g")
    assert classify_soname(rules, "libc.so.6") == PackageAnswer(SystemStatus.LIBC, "libc6")
    assert classify_soname(rules, "libcuda.so.1") == PackageAnswer(SystemStatus.DRIVER, None)
    assert classify_soname(rules, "libnvidia-ml.so.1") == PackageAnswer(SystemStatus.DRIVER, None)
    assert classify_soname(rules, "libunknown.so.9") == PackageAnswer(SystemStatus.UNMAPPED, None)


def _write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "x-1.toml").write_text(
        'distro = "x-1"\ncodename = "x"\nsource = "test"\nlibc_package = "libc6"\n'
        'present = []\ndriver = []\n' + body
    )
    return tmp_path


def test_validation_errors(tmp_path: Path) -> None:
    assert load_rules("x-1", _write(tmp_path, '[sonames]\n"libx.so.1" = "libx1"\n')).sonames["libx.so.1"].package == "libx1"
    with pytest.raises(RulesError, match=r"x-1.toml: unknown key 'extra'"):
        load_rules("x-1", _write(tmp_path, 'extra = 1\n[sonames]\n'))
    with pytest.raises(RulesError, match=r"x-1.toml: sonames.'libx.so.1' must be a package name"):
        load_rules("x-1", _write(tmp_path, '[sonames]\n"libx.so.1" = 3\n'))
    with pytest.raises(RulesError, match=r"unknown key 'pkg'"):
        load_rules("x-1", _write(tmp_path, '[sonames]\n"libx.so.1" = { pkg = "x" }\n'))
    with pytest.raises(RulesError, match=r"missing key\(s\) sonames"):
        load_rules("x-1", _write(tmp_path, ""))
    with pytest.raises(RulesError, match=r"unknown distro 'nope' \(known: x-1\)"):
        load_rules("nope", tmp_path)


def _os_release() -> dict[str, str]:
    try:
        lines = Path("/etc/os-release").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in lines if "=" in line)


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="no dpkg database on this machine")
@pytest.mark.skipif(
    _os_release().get("VERSION_CODENAME") != "bookworm", reason="this machine is not Debian 12: its dpkg -S answers differ"
)
def test_debian12_rules_agree_with_dpkg_on_this_machine() -> None:
    rules = load_rules("debian-12")
    paths: dict[str, list[str]] = {}
    for soname in rules.sonames:
        for folder in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"):
            path = Path(folder) / soname
            if path.exists():
                # Library symlinks are often made by ldconfig, not shipped: ask for the real file too.
                paths[soname] = [str(path), str(path.resolve())]
                break
    query = sorted({p for candidates in paths.values() for p in candidates})
    output = subprocess.run(["dpkg", "-S", *query], capture_output=True, text=True).stdout
    owner = {}
    for line in output.splitlines():
        packages, _, path = line.partition(": ")
        owner[path] = packages.split(",")[0].split(":")[0].strip()
    checked = {
        soname: (rules.sonames[soname].package, next(owner[p] for p in candidates if p in owner))
        for soname, candidates in paths.items()
        if any(p in owner for p in candidates)
    }
    assert len(checked) >= 60, f"only {len(checked)} entries could be checked"
    wrong = {soname: pair for soname, pair in checked.items() if pair[0] != pair[1]}
    assert wrong == {}
