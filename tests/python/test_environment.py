"""Import names → installed distributions, from real dist-info folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from depaudit.findings import Finding, FindingKind
from depaudit.python.environment import infer_target, load_environment
from helpers import make_dist

EXT = ".cpython-311-x86_64-linux-gnu.so"


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    sp = tmp_path / "lib" / "python3.10" / "site-packages"
    make_dist(sp, "six", "1.16.0", files={"six.py": ""})
    make_dist(sp, "requests", "2.31.0", files={"requests/__init__.py": "", "requests/api.py": ""})
    make_dist(sp, "cffi", "1.16.0", files={f"_cffi_backend{EXT}": b"\x7fELF", "cffi/__init__.py": ""})
    make_dist(sp, "protobuf", "4.25.0", files={"google/protobuf/__init__.py": ""})
    make_dist(sp, "google-cloud-storage", "2.14.0", files={"google/cloud/storage/__init__.py": ""})
    make_dist(sp, "opencv-python", "4.14.0.94", files={"cv2/__init__.py": "", "cv2/cv2.abi3.so": b"\x7fELF"})
    make_dist(sp, "opencv-python-headless", "4.14.0.94", files={"cv2/__init__.py": ""})
    make_dist(sp, "PyYAML", "6.0.1", top_level=["yaml", "_yaml"])  # no RECORD entries for modules
    make_dist(sp, "tool", "1.0", files={"tool/__init__.py": ""}, existing=["../../../bin/tool"])
    return sp


def _keys(env, module: str, names: tuple[str, ...] = ()) -> list[str]:
    return [d.key for d in env.providers(module, names)]


def test_providers(site: Path) -> None:
    env = load_environment([site])
    assert _keys(env, "six") == ["six"]
    assert _keys(env, "requests.api") == ["requests"]
    assert _keys(env, "_cffi_backend") == ["cffi"]
    assert _keys(env, "cv2") == ["opencv-python", "opencv-python-headless"]
    assert _keys(env, "yaml") == ["pyyaml"]
    assert _keys(env, "nothing") == []


def test_namespace_packages_resolve_by_the_longest_prefix(site: Path) -> None:
    env = load_environment([site])
    assert _keys(env, "google.protobuf.message") == ["protobuf"]
    assert _keys(env, "google.cloud.storage") == ["google-cloud-storage"]
    assert _keys(env, "google", ("protobuf",)) == ["protobuf"]
    assert _keys(env, "google") == ["google-cloud-storage", "protobuf"]


def test_record_entries_outside_site_packages_are_dropped(site: Path) -> None:
    env = load_environment([site])
    assert "../../../bin/tool" not in env.distributions["tool"].files
    assert "tool/__init__.py" in env.distributions["tool"].files


def test_owner_of_maps_files_to_their_distribution(site: Path) -> None:
    env = load_environment([site])
    assert env.owner_of(site / "cv2" / "cv2.abi3.so") == "opencv-python"
    assert env.owner_of(site / "cv2" / ".." / "six.py") == "six"
    assert env.owner_of(site / "unlisted.so") is None


def test_the_first_site_packages_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    make_dist(first, "six", "1.16.0", files={"six.py": ""})
    make_dist(second, "six", "1.10.0", files={"six.py": ""})
    env = load_environment([first, second])
    assert env.get("Six").version == "1.16.0"


def test_broken_metadata_is_a_finding_and_the_distribution_stays_usable(tmp_path: Path) -> None:
    make_dist(tmp_path, "good", files={"good.py": ""})
    info = make_dist(tmp_path, "broken", "2.0", files={"broken/__init__.py": ""}, top_level=["broken"])
    (info / "RECORD").unlink()
    (info / "METADATA").write_text("garbage without headers\n")
    env = load_environment([tmp_path])
    assert env.findings == (
        Finding(FindingKind.BAD_METADATA, "broken-2.0.dist-info", None, "METADATA has no Name: field; named after its folder"),
        Finding(FindingKind.BAD_METADATA, "broken-2.0.dist-info/RECORD", None, "RECORD is missing"),
    )
    assert env.get("broken").version == "2.0"
    assert _keys(env, "broken") == ["broken"]  # from top_level.txt
    assert _keys(env, "good") == ["good"]


def test_target_python_comes_from_the_site_packages_path(site: Path) -> None:
    assert infer_target([site]).python_version == "3.10"
