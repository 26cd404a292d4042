"""What a lock audit cannot audit is a finding naming it; the rest is audited."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from depaudit.cache import code_version
from depaudit.codes import finding_code
from depaudit.findings import Finding, FindingKind
from depaudit.lock.environment import lock_environment
from depaudit.lock.tags import wheel_target
from depaudit.native.reads import read_by_the_scan
from depaudit.python.environment import load_environment
from depaudit.options import InputError
from depaudit.scan import ScanOptions, run_scan
from lock_wheels import DEMO_WHEEL, Wheels, sha256_of

PY311 = wheel_target("3.11", "ubuntu-22.04")
TARGET_311 = (
    "CPython 3.11 on manylinux_2_35_x86_64 (tags cp311-cp311, cp311-abi3, py3-none; manylinux_2_35_x86_64 down to "
    "manylinux1, or any)"
)


def _audit(lock: Path, wheels: Wheels, cache: Path, target=PY311, *more: Path):  # type: ignore[no-untyped-def]
    return lock_environment(lock, target, find_links=[wheels.folder, *more], cache=cache, reads=read_by_the_scan)


def _installed(site: Path) -> list[str]:
    return sorted(load_environment([site]).distributions)


def test_a_hash_the_lock_does_not_accept_refuses_the_wheel(wheels: Wheels, tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text(f"demo==1.0 --hash=sha256:{'0' * 64}\ndemo-user==2.0\n")
    audit = _audit(lock, wheels, tmp_path / "cache")
    message = (
        f"{DEMO_WHEEL} ({wheels.demo}) has sha256 {sha256_of(wheels.demo)}, which the lock does not accept for "
        "demo 1.0 (requirements.txt:1): the wheel is not used"
    )
    assert audit.findings == (Finding(FindingKind.LOCK_HASH_MISMATCH, "requirements.txt", None, message),)
    assert _installed(audit.site_packages) == ["demo-user"]  # the rest is audited
    assert not (tmp_path / "cache" / "wheel-trees" / code_version() / sha256_of(wheels.demo)[:2]).exists()  # never laid out


def test_the_hash_the_lock_gives_lets_the_wheel_in(wheels: Wheels, tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text(f"demo==1.0 --hash=sha256:{'0' * 64} --hash=sha256:{sha256_of(wheels.demo)}\ndemo-user==2.0\n")
    audit = _audit(lock, wheels, tmp_path / "cache")
    assert audit.findings == ()
    assert _installed(audit.site_packages) == ["demo", "demo-user"]


def _sdist(folder: Path, name: str, version: str) -> Path:
    """A real sdist: a tar.gz with PKG-INFO, never built by the audit; in a folder of its own."""
    folder.mkdir()
    with tarfile.open(folder / f"{name}-{version}.tar.gz", "w:gz") as archive:
        data = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        info = tarfile.TarInfo(f"{name}-{version}/PKG-INFO")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return folder


def test_an_sdist_only_pin_is_named_with_the_target_and_the_rest_is_audited(wheels: Wheels, tmp_path: Path) -> None:
    sdists = _sdist(tmp_path / "sdists", "sdonly", "3.0")
    lock = tmp_path / "requirements.txt"
    lock.write_text("sdonly==3.0\ndemo==1.0\n")
    audit = _audit(lock, wheels, tmp_path / "cache", PY311, sdists)
    message = f"sdonly 3.0 (requirements.txt:1) has no wheel for {TARGET_311}: only an sdist (sdonly-3.0.tar.gz), which depaudit never builds; it is not audited"
    assert audit.findings == (Finding(FindingKind.LOCK_NO_WHEEL, "requirements.txt", None, message),)
    assert _installed(audit.site_packages) == ["demo"]


def test_a_pin_without_a_build_for_the_images_python_is_named_with_its_tags(wheels: Wheels, tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text("demo==1.0\ndemo-user==2.0\n")
    audit = _audit(lock, wheels, tmp_path / "cache", wheel_target("3.10", "ubuntu-22.04"))
    message = (
        "demo 1.0 (requirements.txt:1) has no wheel for CPython 3.10 on manylinux_2_35_x86_64 (tags cp310-cp310, "
        "cp310-abi3, py3-none; manylinux_2_35_x86_64 down to manylinux1, or any): its wheels are for other targets "
        f"({DEMO_WHEEL}); it is not audited"
    )
    assert audit.findings == (Finding(FindingKind.LOCK_NO_WHEEL, "requirements.txt", None, message),)
    assert _installed(audit.site_packages) == ["demo-user"]  # py3-none-any: any CPython 3


def test_a_pin_of_nothing_on_offer_says_where_it_was_looked_for(wheels: Wheels, tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text("nowhere==1.0\n")
    audit = _audit(lock, wheels, tmp_path / "cache")
    message = f"nowhere 1.0 (requirements.txt:1) has no wheel for {TARGET_311}: none was found in the wheel folders, the lock or the index; it is not audited"
    assert audit.findings == (Finding(FindingKind.LOCK_NO_WHEEL, "requirements.txt", None, message),)


def test_a_pin_built_from_a_checkout_is_named_and_never_looked_up_by_its_name(wheels: Wheels, tmp_path: Path) -> None:
    """`demo` from git: the wheel folder's demo 1.0 is other code, and is not audited in its place."""
    lock = tmp_path / "pylock.toml"
    lock.write_text(
        'lock-version = "1.0"\ncreated-by = "test"\n\n[[packages]]\nname = "demo"\nversion = "1.0"\n'
        'vcs = { type = "git", url = "https://git.example/demo.git", commit-id = "feed" }\n'
    )
    audit = _audit(lock, wheels, tmp_path / "cache")
    message = "demo 1.0 (pylock.toml: packages[1]) installs from a git checkout of https://git.example/demo.git at feed: no wheel to read, and depaudit never builds one; it is not audited"
    assert audit.findings == (Finding(FindingKind.LOCK_NO_WHEEL, "pylock.toml", None, message),)
    assert _installed(audit.site_packages) == []


def test_a_wheel_the_lock_names_by_its_url_is_the_one_audited(wheels: Wheels, tmp_path: Path) -> None:
    """`demo @ file://…`: that file, hash-checked; where it is missing, no other wheel of demo 1.0
    (the wheel folder has one, of another name) is audited in its place."""
    lock = tmp_path / "requirements.txt"
    lock.write_text(f"demo @ {wheels.demo.as_uri()} --hash=sha256:{sha256_of(wheels.demo)}\n")
    named = _audit(lock, wheels, tmp_path / "cache")
    assert named.findings == ()
    assert _installed(named.site_packages) == ["demo"]
    missing = tmp_path / "gone" / "demo-1.0-py3-none-any.whl"
    lock.write_text(f"demo @ {missing.as_uri()}\n")
    audit = _audit(lock, wheels, tmp_path / "cache")
    message = f"demo 1.0: cannot read demo-1.0-py3-none-any.whl: [Errno 2] No such file or directory: '{missing}'"
    assert audit.findings == (Finding(FindingKind.UNREADABLE_FILE, "requirements.txt", None, message),)
    assert _installed(audit.site_packages) == []


def test_findings_of_one_lock_with_a_line_and_without_are_ordered_whole_file_first(wheels: Wheels, tmp_path: Path) -> None:
    """The reader names a line (`-e` of a folder), the audit a pin (no line): one sorted list."""
    lock = tmp_path / "requirements.txt"
    lock.write_text("nowhere==1.0\n-e ./libs/local\ndemo==1.0\n")
    audit = _audit(lock, wheels, tmp_path / "cache")
    assert [(f.kind, f.line) for f in audit.findings] == [(FindingKind.LOCK_NO_WHEEL, None), (FindingKind.LOCK_NO_WHEEL, 2)]
    assert audit.findings[1].message.startswith("`-e ./libs/local` installs from the path ./libs/local, editable")
    assert _installed(audit.site_packages) == ["demo"]


def test_what_a_pinned_wheel_requires_comes_from_the_constraints_or_is_named(wheels: Wheels, tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text("demo-user==2.0\n")  # requires demo==1.0 (and colorama on win32 only)
    unpinned = _audit(lock, wheels, tmp_path / "cache")
    message = "demo is required by demo-user 2.0 (requirements.txt:1) but the lock pins no version of it: it is not audited"
    assert unpinned.findings == (Finding(FindingKind.LOCK_UNREADABLE, "requirements.txt", None, message),)
    assert _installed(unpinned.site_packages) == ["demo-user"]
    (tmp_path / "constraints.txt").write_text("demo==1.0\n")
    lock.write_text("-c constraints.txt\ndemo-user==2.0\n")
    constrained = _audit(lock, wheels, tmp_path / "cache")
    assert constrained.findings == ()
    assert _installed(constrained.site_packages) == ["demo", "demo-user"]


def test_a_scan_from_a_lock_reports_its_findings_with_their_codes(wheels: Wheels, tmp_path: Path) -> None:
    sdists = _sdist(tmp_path / "sdists", "sdonly", "3.0")
    service = tmp_path / "services" / "svc"
    service.mkdir(parents=True)
    (service / "main.py").write_text("import demo\n")
    lock = tmp_path / "requirements.txt"
    lock.write_text("sdonly==3.0\ndemo==1.0\n")
    report = run_scan(
        ScanOptions((tmp_path / "services",), distro="ubuntu-22.04", lock=lock, find_links=(wheels.folder, sdists), python_version="3.11")
    )
    lock_findings = [(finding_code(f.kind), f.path) for f in report.findings if f.kind.value.startswith("lock_")]
    assert lock_findings == [("DA601", "requirements.txt")]
    (service_report,) = report.services
    assert "libsystemonly.so.1" in {need.name for need in service_report.needs}  # demo's extension module was walked


def _rootfs(root: Path, python: str | None) -> Path:
    """A minimal unpacked base image: Ubuntu 24.04, with a python3.X program or none."""
    rootfs = root / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc/os-release").write_text('ID=ubuntu\nVERSION_ID="24.04"\n')
    (rootfs / "usr/bin").mkdir(parents=True)
    if python is not None:
        (rootfs / "usr/bin" / f"python{python}").write_bytes(b"\x7fELF")  # never run: its name says the version
    return rootfs


def test_the_target_is_the_base_images_python_and_distro(wheels: Wheels, tmp_path: Path) -> None:
    service = tmp_path / "services" / "svc"
    service.mkdir(parents=True)
    (service / "main.py").write_text("import demo\n")
    lock = tmp_path / "requirements.txt"
    lock.write_text("demo==1.0\ndemo-user==2.0\n")
    with_311 = run_scan(ScanOptions((tmp_path / "services",), rootfs=_rootfs(tmp_path / "a", "3.11"), lock=lock, find_links=(wheels.folder,)))
    assert with_311.environments[0].source == f"the wheels of {lock} for Python 3.11 on ubuntu-24.04, from --lock"
    assert [f for f in with_311.findings if f.kind.value.startswith("lock_")] == []
    # No Python in the image: Ubuntu 24.04's python3 is 3.12, and demo has no cp312 wheel.
    without = run_scan(ScanOptions((tmp_path / "services",), rootfs=_rootfs(tmp_path / "b", None), lock=lock, find_links=(wheels.folder,)))
    assert without.environments[0].source == f"the wheels of {lock} for Python 3.12 on ubuntu-24.04, from --lock"
    (finding,) = [f for f in without.findings if f.kind.value.startswith("lock_")]
    assert finding.message.startswith("demo 1.0 (requirements.txt:1) has no wheel for CPython 3.12 on manylinux_2_39_x86_64 ")
    assert without.distribution_count == 1  # demo-user, py3-none-any: the rest is audited


def test_a_lock_of_which_nothing_could_be_audited_is_a_usage_error_saying_why(wheels: Wheels, tmp_path: Path) -> None:
    service = tmp_path / "services" / "svc"
    service.mkdir(parents=True)
    (service / "main.py").write_text("import demo\n")
    lock = tmp_path / "requirements.txt"
    lock.write_text("demo==1.0\n")
    options = ScanOptions((tmp_path / "services",), distro="ubuntu-22.04", lock=lock, find_links=(wheels.folder,), python_version="3.10")
    with pytest.raises(InputError) as raised:
        run_scan(options)
    assert str(raised.value) == (
        f"nothing could be audited of the wheels of {lock} for Python 3.10 on ubuntu-22.04, from --lock, yet svc imports demo "
        "(svc/main.py:1): demo 1.0 (requirements.txt:1) has no wheel for CPython 3.10 on manylinux_2_35_x86_64 (tags cp310-cp310, "
        f"cp310-abi3, py3-none; manylinux_2_35_x86_64 down to manylinux1, or any): its wheels are for other targets ({DEMO_WHEEL}); "
        "it is not audited"
    )
