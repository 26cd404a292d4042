"""Import names → installed distributions, from real dist-info folders."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement

from depaudit.findings import Finding, FindingKind
from depaudit.python.environment import PythonEnvironment, infer_target, load_environment
from depaudit.python.model import TargetPython

EXT = ".cpython-311-x86_64-linux-gnu.so"
ELF = b"\x7fELF"
WriteDist = Callable[..., Path]


@pytest.fixture()
def site(tmp_path: Path, dist: WriteDist) -> Path:
    sp = tmp_path / "lib" / "python3.10" / "site-packages"
    dist(sp, "six", "1.16.0", files={"six.py": "", "__pycache__/six.cpython-310.pyc": b""})
    dist(sp, "requests", "2.31.0", files={"requests/__init__.py": "", "requests/api.py": ""})
    dist(sp, "cffi", "1.16.0", files={f"_cffi_backend{EXT}": ELF, "cffi/__init__.py": ""})
    dist(sp, "protobuf", "4.25.0", files={"google/protobuf/__init__.py": "", "google/protobuf/message.py": ""})
    dist(sp, "google-cloud-storage", "2.14.0", files={"google/cloud/storage/__init__.py": ""})
    dist(
        sp,
        "opencv-python",
        "4.14.0.94",
        files={"cv2/__init__.py": "", "cv2/cv2.abi3.so": ELF, "opencv_python.libs/libQt5Core-1a2b.so.5": ELF},
    )
    dist(sp, "opencv-python-headless", "4.14.0.94", files={"cv2/__init__.py": "", "cv2/cv2.abi3.so": ELF})
    dist(sp, "simplejson-speedups", "1.0", files={f"_speedups{EXT}": ELF})  # an extension module only
    dist(sp, "PyYAML", "6.0.1", top_level=["yaml", "_yaml"])  # RECORD names no module file
    dist(sp, "tool", "1.0", files={"tool/__init__.py": ""}, record_only=["../../../bin/tool", "../../../bin/runme.py"])
    return sp


def _keys(env: PythonEnvironment, module: str, names: tuple[str, ...] = ()) -> list[str]:
    return [d.key for d in env.providers(module, names)]


def test_a_plain_module_a_package_and_extension_modules(site: Path) -> None:
    env = load_environment([site])
    assert _keys(env, "six") == ["six"]
    assert _keys(env, "requests") == ["requests"]
    assert _keys(env, "requests.api") == ["requests"]
    assert _keys(env, "requests.not_a_file") == ["requests"]  # the longest known prefix
    assert _keys(env, "_cffi_backend") == ["cffi"]
    assert _keys(env, "_speedups") == ["simplejson-speedups"]
    assert _keys(env, "cv2.cv2") == ["opencv-python", "opencv-python-headless"]
    assert _keys(env, "nothing") == []
    assert env.providers("six")[0].label == "six 1.16.0"


def test_a_name_shipped_by_two_distributions_gives_both(site: Path) -> None:
    env = load_environment([site])
    assert _keys(env, "cv2") == ["opencv-python", "opencv-python-headless"]


def test_a_distribution_known_only_by_top_level_txt(site: Path) -> None:
    env = load_environment([site])
    assert _keys(env, "yaml") == ["pyyaml"]
    assert _keys(env, "_yaml") == ["pyyaml"]
    assert env.get("PyYAML").top_level == ("_yaml", "yaml")


def test_namespace_packages_resolve_by_the_longest_prefix(site: Path) -> None:
    env = load_environment([site])
    assert _keys(env, "google.protobuf") == ["protobuf"]
    assert _keys(env, "google.protobuf.message") == ["protobuf"]
    assert _keys(env, "google.cloud.storage") == ["google-cloud-storage"]
    assert _keys(env, "google.cloud.storage.blob") == ["google-cloud-storage"]
    assert _keys(env, "google.cloud") == ["google-cloud-storage"]
    # `from google import protobuf`: the imported name is the more specific module.
    assert _keys(env, "google", ("protobuf",)) == ["protobuf"]
    assert _keys(env, "google.cloud", ("storage",)) == ["google-cloud-storage"]
    assert _keys(env, "google", ("protobuf", "cloud")) == ["google-cloud-storage", "protobuf"]
    assert _keys(env, "google", ("nothing_here",)) == ["google-cloud-storage", "protobuf"]
    assert _keys(env, "google") == ["google-cloud-storage", "protobuf"]


def test_folders_that_hold_no_modules_and_entries_outside_site_packages(site: Path) -> None:
    env = load_environment([site])
    tool = env.distributions["tool"]
    assert tool.files == (
        "tool/__init__.py",
        "tool-1.0.dist-info/METADATA",
        "tool-1.0.dist-info/INSTALLER",
        "tool-1.0.dist-info/RECORD",
    )
    assert tool.top_level == ("tool",)
    assert _keys(env, "runme") == []
    assert env.distributions["opencv-python"].top_level == ("cv2",)  # not `opencv_python`
    assert env.distributions["six"].top_level == ("six",)  # not `__pycache__`
    assert _keys(env, "opencv_python") == []
    assert _keys(env, "tool-1") == []


def test_a_distribution_as_loaded(site: Path) -> None:
    env = load_environment([site])
    cffi = env.get("CFFI")
    assert cffi is not None
    assert (cffi.name, cffi.key, cffi.version) == ("cffi", "cffi", "1.16.0")
    assert cffi.site_packages == site
    assert cffi.dist_info == site / "cffi-1.16.0.dist-info"
    assert cffi.files == (
        f"_cffi_backend{EXT}",
        "cffi/__init__.py",
        "cffi-1.16.0.dist-info/METADATA",
        "cffi-1.16.0.dist-info/INSTALLER",
        "cffi-1.16.0.dist-info/RECORD",
    )
    assert cffi.requires == ()
    assert cffi.top_level == ("_cffi_backend", "cffi")
    assert list(env.distributions) == sorted(env.distributions)
    assert env.site_packages == (site,)
    assert env.findings == ()


def test_owner_of_maps_files_to_their_distribution(site: Path, tmp_path: Path) -> None:
    env = load_environment([site])
    assert env.owner_of(site / "cv2" / "cv2.abi3.so") == "opencv-python"  # the first of two owners
    assert env.owner_of(site / "opencv_python.libs" / "libQt5Core-1a2b.so.5") == "opencv-python"
    assert env.owner_of(site / "cv2" / ".." / "six.py") == "six"
    assert env.owner_of(site / "six-1.16.0.dist-info" / "METADATA") == "six"
    assert env.owner_of(site / "unlisted.so") is None
    assert env.owner_of(site.parent / "bin" / "tool") is None  # dropped: outside site-packages
    # The same folder under another spelling (lib64 → lib) is matched through its real path.
    link = tmp_path / "lib64"
    link.symlink_to(tmp_path / "lib")
    assert env.owner_of(link / "python3.10" / "site-packages" / "six.py") == "six"
    via_link = load_environment([link / "python3.10" / "site-packages"])
    assert via_link.owner_of(site / "six.py") == "six"
    assert via_link.owner_of(link / "python3.10" / "site-packages" / "six.py") == "six"


def test_the_first_site_packages_wins(tmp_path: Path, dist: WriteDist) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    dist(first, "six", "1.16.0", files={"six.py": ""})
    dist(second, "six", "1.10.0", files={"six.py": "", "six_legacy.py": ""})
    dist(second, "only-here", "2.0", files={"only_here.py": ""})
    env = load_environment([first, second])
    assert env.get("Six").version == "1.16.0"
    assert env.get("Six").site_packages == first
    assert _keys(env, "six_legacy") == []  # the shadowed copy provides nothing
    assert env.owner_of(second / "six.py") is None
    assert _keys(env, "only_here") == ["only-here"]
    assert env.site_packages == (first, second)
    assert env.findings == ()


def test_two_metadata_folders_for_one_name_in_one_folder(tmp_path: Path, dist: WriteDist) -> None:
    dist(tmp_path, "six", "1.10.0", files={"six.py": ""})
    dist(tmp_path, "six", "1.16.0", files={"six.py": ""})
    env = load_environment([tmp_path])
    assert env.get("six").version == "1.10.0"
    assert env.findings == (
        Finding(
            FindingKind.BAD_METADATA,
            "six-1.16.0.dist-info",
            None,
            "a second metadata folder for six in the same site-packages; six-1.10.0.dist-info is used, "
            "this one is ignored: remove the stale one",
        ),
    )


def test_broken_metadata_is_a_finding_and_the_distribution_stays_usable(tmp_path: Path, dist: WriteDist) -> None:
    dist(tmp_path, "good", files={"good.py": ""})
    info = dist(tmp_path, "broken", "2.0", files={"broken/__init__.py": ""}, top_level=["broken"])
    (info / "RECORD").unlink()
    (info / "METADATA").write_text("garbage without headers\n")
    env = load_environment([tmp_path])
    assert env.findings == (
        Finding(FindingKind.BAD_METADATA, "broken-2.0.dist-info", None, "METADATA has no Name: field; named after its folder"),
        Finding(FindingKind.BAD_METADATA, "broken-2.0.dist-info/RECORD", None, "RECORD is missing"),
    )
    broken = env.get("broken")
    assert (broken.name, broken.version, broken.files, broken.top_level) == ("broken", "2.0", (), ("broken",))
    assert _keys(env, "broken") == ["broken"]  # from top_level.txt
    assert _keys(env, "good") == ["good"]


def test_missing_undecodable_and_unreadable_metadata(tmp_path: Path, dist: WriteDist) -> None:
    gone = dist(tmp_path, "gone", "1.0", files={"gone.py": ""})
    (gone / "METADATA").unlink()
    latin = dist(tmp_path, "latin", "3.0", files={"latin.py": ""})
    (latin / "METADATA").write_bytes(b"Name: latin\nVersion: 3.0\nSummary: caf\xe9\n")
    odd = dist(tmp_path, "odd", "1.0", files={"odd.py": ""})
    (odd / "METADATA").unlink()
    (odd / "METADATA").mkdir()  # reading it fails with an OS error, not "missing"
    noversion = dist(tmp_path, "noversion", "5.1", files={"noversion.py": ""})
    (noversion / "METADATA").write_text("Metadata-Version: 2.1\nName: noversion\n")
    env = load_environment([tmp_path])
    assert env.findings == (
        Finding(FindingKind.BAD_METADATA, "gone-1.0.dist-info/METADATA", None, "METADATA is missing"),
        Finding(FindingKind.BAD_METADATA, "latin-3.0.dist-info/METADATA", None, "METADATA is not UTF-8; undecodable bytes were replaced"),
        Finding(FindingKind.BAD_METADATA, "noversion-5.1.dist-info", None, "METADATA has no Version: field; version taken from its folder"),
        Finding(FindingKind.UNREADABLE_FILE, "odd-1.0.dist-info/METADATA", None, "cannot read METADATA: Is a directory"),
    )
    assert [(d.key, d.version) for d in env.distributions.values()] == [
        ("gone", "1.0"),
        ("latin", "3.0"),
        ("noversion", "5.1"),
        ("odd", "1.0"),
    ]
    assert _keys(env, "gone") == ["gone"]  # RECORD still read
    assert _keys(env, "odd") == ["odd"]


def test_an_invalid_requires_dist_is_reported_once(tmp_path: Path, dist: WriteDist) -> None:
    dist(tmp_path, "app", requires=["numpy>=1", "bad name!!"])
    env = load_environment([tmp_path])
    assert env.get("app").requires == ("numpy>=1", "bad name!!")
    with pytest.raises(InvalidRequirement) as raised:
        Requirement("bad name!!")
    reason = str(raised.value).splitlines()[0]  # packaging's wording varies across its versions
    assert env.findings == (
        Finding(
            FindingKind.BAD_METADATA,
            "app-1.0.dist-info/METADATA",
            None,
            f"Requires-Dist `bad name!!` is not a valid requirement ({reason}); it is not followed",
        ),
    )


def test_a_garbled_record_keeps_what_came_before(tmp_path: Path, dist: WriteDist) -> None:
    info = dist(tmp_path, "garbled", files={"garbled.py": ""})
    (info / "RECORD").write_text("garbled.py,,\n" + "x" * 200_000 + ",,\nlost.py,,\n")
    env = load_environment([tmp_path])
    assert env.get("garbled").files == ("garbled.py",)
    assert env.findings == (
        Finding(
            FindingKind.BAD_METADATA,
            "garbled-1.0.dist-info/RECORD",
            None,
            "garbled RECORD (field larger than field limit (131072)); only the entries before the error are used",
        ),
    )


def test_record_entries_read_alike_however_the_file_is_written(tmp_path: Path, dist: WriteDist) -> None:
    """Quoted or CRLF lines read like plain ones; odd entries are normalised, entries that
    climb out of site-packages dropped."""
    entries = ["pkg/__init__.py", "./pkg/a.py", "pkg//b.py", "pkg\\c.py", "pkg/./d.py", "pkg/sub/", "../../../bin/tool", "pkg/.hidden", ""]
    expected = ("pkg/__init__.py", "pkg/a.py", "pkg/b.py", "pkg/c.py", "pkg/d.py", "pkg/sub", "pkg/.hidden")
    layouts = {
        "plain": "".join(f"{entry},sha256=x,1\n" for entry in entries),
        "crlf": "".join(f"{entry},sha256=x,1\r\n" for entry in entries),
        "quoted": "".join(f'"{entry}",sha256=x,1\n' for entry in entries),
    }
    for layout, text in layouts.items():
        root = tmp_path / layout
        info = dist(root, "pkg", files={"pkg/__init__.py": ""})
        (info / "RECORD").write_text(text, newline="")
        loaded = load_environment([root])
        assert loaded.get("pkg").files == expected, layout
        assert loaded.findings == (), layout


def test_egg_info_folders_and_files(tmp_path: Path) -> None:
    egg = tmp_path / "legacy-1.2-py3.10.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: Legacy\nVersion: 1.2\n")
    (egg / "installed-files.txt").write_text("../legacy/__init__.py\n../legacy/_fast.abi3.so\nPKG-INFO\n../../../../bin/legacy\n")
    (egg / "requires.txt").write_text('six>=1\n\n[:sys_platform == "win32"]\npywin32\n\n[fast]\ncython\n\n[gpu:platform_machine == "x86_64"]\ncupy\n')
    (egg / "top_level.txt").write_text("legacy\n")
    sourced = tmp_path / "sourced-0.1-py3.10.egg-info"
    sourced.mkdir()
    (sourced / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: sourced\nVersion: 0.1\n")
    (sourced / "SOURCES.txt").write_text("setup.py\nsrc/sourced/__init__.py\nsrc/sourced.egg-info/PKG-INFO\n")
    (tmp_path / "sourced").mkdir()
    (tmp_path / "sourced" / "__init__.py").write_text("")
    (tmp_path / "bare-2.0-py3.10.egg-info").write_text("Metadata-Version: 1.0\nName: bare\nVersion: 2.0\n")
    env = load_environment([tmp_path])

    legacy = env.get("legacy")
    assert (legacy.name, legacy.version) == ("Legacy", "1.2")
    assert legacy.files == (
        "legacy/__init__.py",
        "legacy/_fast.abi3.so",
        "legacy-1.2-py3.10.egg-info/PKG-INFO",
    )
    assert legacy.requires == (
        "six>=1",
        'pywin32; (sys_platform == "win32")',
        'cython; extra == "fast"',
        'cupy; (platform_machine == "x86_64") and extra == "gpu"',
    )
    assert _keys(env, "legacy._fast") == ["legacy"]
    assert env.get("sourced").files == ("sourced/__init__.py",)
    assert _keys(env, "sourced") == ["sourced"]
    assert env.get("bare").version == "2.0"
    assert env.get("bare").files == ()
    assert env.findings == ()


def test_an_unlistable_folder_is_a_finding(tmp_path: Path) -> None:
    env = load_environment([tmp_path / "absent"])
    assert env.distributions == {}
    assert env.findings == (
        Finding(
            FindingKind.UNREADABLE_FILE,
            (tmp_path / "absent").as_posix(),
            None,
            "cannot list site-packages: No such file or directory",
        ),
    )


def test_target_python_comes_from_the_site_packages_path(tmp_path: Path) -> None:
    assert infer_target([tmp_path / "lib" / "python3.10" / "site-packages"]) == TargetPython(
        python_version="3.10", python_full_version="3.10.0"
    )
    assert infer_target([Path("/usr/local/lib/python3.12/dist-packages")]).python_version == "3.12"
    assert infer_target([Path("/opt/venv/lib/python3.13t/site-packages")]).python_version == "3.13"
    # The first folder that tells decides; a `pythonX.Y` folder elsewhere does not count.
    assert infer_target([Path("/srv/python3.8/deps"), Path("/venv/lib/python3.9/site-packages")]).python_version == "3.9"
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert infer_target([Path("/srv/python3.8/deps")]).python_version == running
    assert infer_target([]).python_full_version.startswith(running + ".")
