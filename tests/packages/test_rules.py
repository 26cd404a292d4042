"""The distro rules: exact package names, validation, and a check against a real dpkg database."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from depaudit.evidence import NeedStatus
from depaudit.packages.classify import PackageAnswer, classify_soname
from depaudit.packages.index import IndexEntry, PackageIndex
from depaudit.packages.rules import RulesError, known_distros, load_rules, rules_dir

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


# soname: (ubuntu-22.04 jammy, ubuntu-24.04 noble): where noble's t64 rename and FFmpeg 6.1 differ.
UBUNTU = {
    "libc.so.6": ("libc6", "libc6"),
    "libm.so.6": ("libc6", "libc6"),
    "libpthread.so.0": ("libc6", "libc6"),
    "ld-linux-x86-64.so.2": ("libc6", "libc6"),
    "libstdc++.so.6": ("libstdc++6", "libstdc++6"),
    "libgcc_s.so.1": ("libgcc-s1", "libgcc-s1"),
    "libgomp.so.1": ("libgomp1", "libgomp1"),
    "libgfortran.so.5": ("libgfortran5", "libgfortran5"),
    "libGL.so.1": ("libgl1", "libgl1"),
    "libEGL.so.1": ("libegl1", "libegl1"),
    "libGLX.so.0": ("libglx0", "libglx0"),
    "libGLdispatch.so.0": ("libglvnd0", "libglvnd0"),
    "libglib-2.0.so.0": ("libglib2.0-0", "libglib2.0-0t64"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "libglib2.0-0t64"),
    "libgobject-2.0.so.0": ("libglib2.0-0", "libglib2.0-0t64"),
    "libgio-2.0.so.0": ("libglib2.0-0", "libglib2.0-0t64"),
    "libX11.so.6": ("libx11-6", "libx11-6"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libx11-xcb1"),
    "libXext.so.6": ("libxext6", "libxext6"),
    "libXrender.so.1": ("libxrender1", "libxrender1"),
    "libSM.so.6": ("libsm6", "libsm6"),
    "libICE.so.6": ("libice6", "libice6"),
    "libxcb.so.1": ("libxcb1", "libxcb1"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon0"),
    "libasound.so.2": ("libasound2", "libasound2t64"),
    "libpulse.so.0": ("libpulse0", "libpulse0"),
    "libportaudio.so.2": ("libportaudio2", "libportaudio2"),
    "libsndfile.so.1": ("libsndfile1", "libsndfile1"),
    "libespeak-ng.so.1": ("libespeak-ng1", "libespeak-ng1"),
    "libavcodec.so.58": ("libavcodec58", None),
    "libavcodec.so.60": (None, "libavcodec60"),
    "libavformat.so.58": ("libavformat58", None),
    "libavformat.so.60": (None, "libavformat60"),
    "libavutil.so.56": ("libavutil56", None),
    "libavutil.so.58": (None, "libavutil58"),
    "libswscale.so.5": ("libswscale5", None),
    "libswscale.so.7": (None, "libswscale7"),
    "libswresample.so.3": ("libswresample3", None),
    "libswresample.so.4": (None, "libswresample4"),
    "libjpeg.so.8": ("libjpeg-turbo8", "libjpeg-turbo8"),
    "libpng16.so.16": ("libpng16-16", "libpng16-16t64"),
    "libtiff.so.5": ("libtiff5", None),
    "libtiff.so.6": (None, "libtiff6"),
    "libwebp.so.7": ("libwebp7", "libwebp7"),
    "libssl.so.3": ("libssl3", "libssl3t64"),
    "libcrypto.so.3": ("libssl3", "libssl3t64"),
    "libmagic.so.1": ("libmagic1", "libmagic1t64"),
    "libz.so.1": ("zlib1g", "zlib1g"),
    "libexpat.so.1": ("libexpat1", "libexpat1"),
    "libffi.so.8": ("libffi8", "libffi8"),
    "libxml2.so.2": ("libxml2", "libxml2"),
    "libnsl.so.1": ("libc6", "libc6"),  # Ubuntu's glibc 2.39 still ships it (noble Contents-amd64)
    "libnss_hesiod.so.2": ("libc6", "libc6"),
    "libtesseract.so.4": ("libtesseract4", None),
    "libtesseract.so.5": (None, "libtesseract5"),
    "libpoppler.so.118": ("libpoppler118", None),
    "libpoppler.so.134": (None, "libpoppler134"),
    "libopenblas.so.0": ("libopenblas0-pthread", "libopenblas0-pthread"),
    "libespeak.so.1": ("libespeak1", "libespeak1"),
}


def test_known_distros() -> None:
    assert known_distros() == ("debian-12", "ubuntu-22.04", "ubuntu-24.04")


@pytest.mark.parametrize("index,distro", [(0, "ubuntu-22.04"), (1, "ubuntu-24.04")])
def test_jammy_and_noble_table(index: int, distro: str) -> None:
    assert len([s for s, packages in UBUNTU.items() if packages[index]]) >= 40
    sonames = load_rules(distro).sonames
    actual = {soname: sonames[soname].package if soname in sonames else None for soname in UBUNTU}
    assert actual == {soname: packages[index] for soname, packages in UBUNTU.items()}


@pytest.mark.parametrize("distro", ["ubuntu-22.04", "ubuntu-24.04"])
def test_ubuntu_entries_say_where_they_were_checked(distro: str) -> None:
    # The file's source is the archive check (tests/packages/test_index_ubuntu.py); an entry's own
    # source either notes what else in that archive ships the file, or leaves it to NVIDIA's repository.
    rules = load_rules(distro)
    assert rules.source.startswith(f"{rules.codename}'s archive (archive.ubuntu.com, ")
    archive = f"{rules.codename} + {rules.codename}-updates Contents-amd64 ("
    own = {rule.source for rule in [*rules.sonames.values(), *rules.executables.values()]} - {rules.source}
    nvidia = {source for source in own if source.startswith("NVIDIA CUDA repository package naming")}
    assert all("unchecked" in source for source in nvidia)
    assert sorted(source for source in own - nvidia if not source.startswith(archive)) == []


def test_programs_are_named_on_every_distro() -> None:
    expected = {"ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "tesseract": "tesseract-ocr", "espeak-ng": "espeak-ng",
                "pdftoppm": "poppler-utils", "sox": "sox", "git": "git", "curl": "curl"}
    for distro in known_distros():
        programs = load_rules(distro).executables
        assert {name: programs[name].package for name in expected} == expected, distro


@pytest.mark.parametrize("index,distro", [(0, "ubuntu-22.04"), (1, "debian-12")])
def test_soname_table(index: int, distro: str) -> None:
    rules = load_rules(distro)
    actual = {soname: rules.sonames[soname].package if soname in rules.sonames else None for soname in WHITELIST}
    assert actual == {soname: packages[index] for soname, packages in WHITELIST.items()}


@pytest.mark.parametrize("distro", ["ubuntu-22.04", "ubuntu-24.04", "debian-12"])
def test_classification(distro: str) -> None:
    rules = load_rules(distro)
    assert classify_soname(rules, "libGL.so.1") == PackageAnswer(NeedStatus.MISSING, "libgl1")
    assert classify_soname(rules, "libz.so.1") == PackageAnswer(NeedStatus.BASE_IMAGE, "zlib1g")
    assert classify_soname(rules, "libc.so.6") == PackageAnswer(NeedStatus.LIBC, "libc6")
    cuda, ml = classify_soname(rules, "libcuda.so.1"), classify_soname(rules, "libnvidia-ml.so.1")
    assert (cuda.status, cuda.package, cuda.driver and cuda.driver.capability) == (NeedStatus.DRIVER, None, "compute")
    assert (ml.status, ml.package, ml.driver and ml.driver.capability) == (NeedStatus.DRIVER, None, "utility")
    assert classify_soname(rules, "libunknown.so.9") == PackageAnswer(NeedStatus.UNMAPPED, None)
    # A DT_NEEDED by file name: without an index, the package of the soname it stands for.
    assert classify_soname(rules, "libgomp.so.1.0.0") == PackageAnswer(NeedStatus.MISSING, "libgomp1")
    assert classify_soname(rules, "libunknown.so.9.0.0") == PackageAnswer(NeedStatus.UNMAPPED, None)
    # An index lists files: a name it lacks is a file no package ships, whatever its soname's package.
    index = PackageIndex(distro, "test", {"libgomp.so.1": IndexEntry("libgomp1")}, {}, {})
    assert classify_soname(rules, "libgomp.so.1.0.0", index=index) == PackageAnswer(NeedStatus.UNMAPPED, None)
    index = PackageIndex(distro, "test", {"libgomp.so.1.0.0": IndexEntry("libgomp1")}, {}, {})
    assert classify_soname(rules, "libgomp.so.1.0.0", index=index) == PackageAnswer(NeedStatus.MISSING, "libgomp1")


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


@pytest.mark.parametrize(
    "body,message",
    [
        ('[sonames]\n"libx.so.1" = ""\n', r"sonames.'libx.so.1' must be a package name"),
        ('[sonames]\n"libx.so.1" = { source = "s" }\n', r"sonames.'libx.so.1' must be a package name"),
        ('[sonames]\n[executables]\nffmpeg = 1\n', r"executables.'ffmpeg' must be a package name"),
        ('[sonames]\n[depends]\nlibx1 = "libc6"\n', r"depends.'libx1' must be a list of package names"),
        ('python_runtime = [3]\n[sonames]\n', r"'python_runtime' must be a list of strings"),
        ("[sonames]\n[sonames.x]\n[[oops]]\n", r"unknown key 'oops'"),
        ('[sonames]\n"libx.so.13" = { package = "libx-{cuda}", cuda = 13 }\n',
         r"sonames.'libx.so.13': cuda must be the CUDA major \(\"13\"\) of a package named with \{cuda\}"),
        ('[sonames]\n"libx.so.13" = { package = "libx13", cuda = "13" }\n',
         r"sonames.'libx.so.13': cuda must be the CUDA major \(\"13\"\) of a package named with \{cuda\}"),
    ],
    ids=["empty-package", "table-without-package", "executables", "depends", "python-runtime", "unknown-table",
         "cuda-not-a-major", "cuda-without-template"],
)
def test_validation_names_the_table_and_key(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RulesError, match=r"x-1.toml: " + message):
        load_rules("x-1", _write(tmp_path, body))


@pytest.mark.parametrize(
    "header,message",
    [
        ('present = "libc6"', r"'present' must be a list"),
        ("present = [1]", r"'present' must be a list of strings"),
        ('driver = ["libcuda.so*", 2]', r"'driver' must be a list of strings"),
        ("codename = 22", r"'codename' must be a str"),
        ('distro = "x-2"', r"'distro' is 'x-2', but the file is named for 'x-1'"),
    ],
    ids=["present-string", "present-ints", "driver-mixed", "codename-int", "distro-mismatch"],
)
def test_validation_of_top_level_types(tmp_path: Path, header: str, message: str) -> None:
    lines = {"distro": '"x-1"', "codename": '"x"', "source": '"test"', "libc_package": '"libc6"', "present": "[]", "driver": "[]"}
    key = header.split(" = ")[0]
    lines[key] = header.split(" = ", 1)[1]
    (tmp_path / "x-1.toml").write_text("".join(f"{k} = {v}\n" for k, v in lines.items()) + "[sonames]\n")
    with pytest.raises(RulesError, match=r"x-1.toml: " + message):
        load_rules("x-1", tmp_path)


def test_unreadable_or_outside_files_are_rules_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_bytes(b'distro = "\xff"\n')
    with pytest.raises(RulesError, match=r"bad.toml: cannot read"):
        load_rules("bad", tmp_path)
    (tmp_path / "broken.toml").write_text("distro = \n")
    with pytest.raises(RulesError, match=r"broken.toml: cannot read"):
        load_rules("broken", tmp_path)
    inner = tmp_path / "inner"
    inner.mkdir()
    with pytest.raises(RulesError, match=r"unknown distro '../bad' \(known: none\)"):
        load_rules("../bad", inner)  # a distro name never reaches a file outside the folder


def test_rules_dir_holds_the_shipped_files() -> None:
    folder = rules_dir()
    assert (folder / "ubuntu-22.04.toml").is_file() and (folder / "debian-12.toml").is_file()
    # per-entry sources survive loading; entries without one carry the file's
    rules = load_rules("debian-12")
    assert rules.sonames["libportaudio.so.2"].source.startswith("bookworm main Contents-amd64")
    assert rules.sonames["libGL.so.1"].source == rules.source


def _os_release() -> dict[str, str]:
    try:
        lines = Path("/etc/os-release").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in lines if "=" in line)


_NEEDS_BOOKWORM_DPKG = pytest.mark.skipif(
    shutil.which("dpkg") is None or _os_release().get("VERSION_CODENAME") != "bookworm",
    reason="needs Debian 12 (bookworm) with its dpkg database: other systems' dpkg -S answers differ",
)


@_NEEDS_BOOKWORM_DPKG
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


@_NEEDS_BOOKWORM_DPKG
def test_every_glibc_soname_of_this_machine_is_libc() -> None:
    # The versioned libraries libc6 ships are exactly what the rules must call `libc`.
    listed = subprocess.run(["dpkg", "-L", "libc6"], capture_output=True, text=True, check=True).stdout.split()
    shipped = {Path(p).name for p in listed if "/x86_64-linux-gnu/" in p and ".so." in Path(p).name}
    assert len(shipped) >= 15
    for distro in ("debian-12", "ubuntu-22.04"):
        rules = load_rules(distro)
        assert {s: rules.sonames[s].package if s in rules.sonames else None for s in shipped} == {s: "libc6" for s in shipped}
