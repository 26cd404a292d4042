"""Locks read as data: what each format pins for the target, and what it cannot say exactly."""

from __future__ import annotations

from pathlib import Path

from depaudit.findings import Finding, FindingKind
from depaudit.lock.model import LockedFile, Pin
from depaudit.lock.readers import read_lock
from depaudit.python.model import TargetPython

TARGET = TargetPython(python_version="3.11", python_full_version="3.11.0")
H1, H2, H3 = "1" * 64, "2" * 64, "3" * 64

UV_LOCK = f'''
version = 1
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [
    {{ name = "demo-user" }},
    {{ name = "colorama", marker = "sys_platform == 'win32'" }},
    {{ name = "requests", extra = ["socks"] }},
]

[[package]]
name = "colorama"
version = "0.4.6"
source = {{ registry = "https://pypi.org/simple" }}
wheels = [{{ url = "https://files.example/colorama-0.4.6-py2.py3-none-any.whl", hash = "sha256:{H3}", size = 25335 }}]

[[package]]
name = "demo"
version = "1.0"
source = {{ registry = "https://pypi.org/simple" }}
sdist = {{ url = "https://files.example/demo-1.0.tar.gz", hash = "sha256:{H2}", size = 1000 }}
wheels = [{{ url = "https://files.example/demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", hash = "sha256:{H1}", size = 2000 }}]

[[package]]
name = "demo-user"
version = "2.0"
source = {{ registry = "https://pypi.org/simple" }}
dependencies = [{{ name = "demo" }}]
wheels = [{{ url = "https://files.example/demo_user-2.0-py3-none-any.whl", hash = "sha256:{H3}", size = 100 }}]

[[package]]
name = "pysocks"
version = "1.7.1"
source = {{ registry = "https://pypi.org/simple" }}
wheels = [{{ url = "https://files.example/PySocks-1.7.1-py3-none-any.whl", hash = "sha256:{H3}", size = 16725 }}]

[[package]]
name = "requests"
version = "2.32.3"
source = {{ registry = "https://pypi.org/simple" }}
wheels = [{{ url = "https://files.example/requests-2.32.3-py3-none-any.whl", hash = "sha256:{H3}", size = 64928 }}]

[package.optional-dependencies]
socks = [{{ name = "pysocks" }}]
security = [{{ name = "colorama" }}]
'''

PYLOCK = f'''
lock-version = "1.0"
created-by = "pip"
requires-python = ">=3.11"

[[packages]]
name = "demo"
version = "1.0"

[[packages.wheels]]
name = "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
url = "https://files.example/demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
hashes = {{ sha256 = "{H1}" }}

[[packages]]
name = "colorama"
version = "0.4.6"
marker = "sys_platform == 'win32'"

[[packages]]
name = "local-wheel"
version = "0.1"

[[packages.wheels]]
path = "wheels/local_wheel-0.1-py3-none-any.whl"
hashes = {{ sha256 = "{H2}" }}

[[packages]]
name = "no-version"
'''


def test_a_uv_lock_is_walked_from_the_project_for_the_target(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text(UV_LOCK)
    read = read_lock(tmp_path / "uv.lock", TARGET)
    assert read.findings == () and read.closed
    # colorama: win32 only, and `security` is an extra nobody asks for; the project itself: no wheel.
    assert [(pin.name, pin.version) for pin in read.pins] == [("demo", "1.0"), ("demo-user", "2.0"), ("pysocks", "1.7.1"), ("requests", "2.32.3")]
    demo = read.pins[0]
    assert demo.hashes == frozenset({H1, H2})
    assert demo.files == (
        LockedFile("demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "https://files.example/demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", H1),
        LockedFile("demo-1.0.tar.gz", "https://files.example/demo-1.0.tar.gz", H2),
    )
    assert demo.where == "uv.lock: package[3]"


def test_a_pylock_keeps_the_packages_whose_marker_holds(tmp_path: Path) -> None:
    (tmp_path / "pylock.toml").write_text(PYLOCK)
    read = read_lock(tmp_path / "pylock.toml", TARGET)
    assert read.closed
    assert read.pins == (
        Pin(
            "demo", "1.0", "pylock.toml: packages[1]", frozenset({H1}),
            (LockedFile("demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "https://files.example/demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", H1),),
        ),
        Pin(
            "local-wheel", "0.1", "pylock.toml: packages[3]", frozenset({H2}),
            (LockedFile("local_wheel-0.1-py3-none-any.whl", "wheels/local_wheel-0.1-py3-none-any.whl", H2),),
        ),
    )
    assert read.findings == (
        Finding(FindingKind.LOCK_UNREADABLE, "pylock.toml", None, "packages[4] has no name or no version: a lock pins both"),
    )


def test_a_lock_that_is_no_toml_is_one_finding(tmp_path: Path) -> None:
    (tmp_path / "pylock.toml").write_text("[[packages]\nname = 'x'\n")
    read = read_lock(tmp_path / "pylock.toml", TARGET)
    assert read.pins == ()
    (finding,) = read.findings
    assert finding.kind is FindingKind.LOCK_UNREADABLE and finding.path == "pylock.toml"
    assert finding.message.startswith("cannot read the lock: ")


def test_a_requirements_lock_pins_exactly_or_says_why_not(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        f"-c constraints.txt\n"
        f"demo==1.0 --hash=sha256:{H1} --hash=sha256:{H2}\n"
        f"loose>=1.0\n"
        f"-r more.txt\n"
        f'winonly==1.0 ; sys_platform == "win32"\n'
        f"demo==1.1\n"
    )
    (tmp_path / "more.txt").write_text("Demo_User==2.0\n")
    (tmp_path / "constraints.txt").write_text("cffi==2.1.1\nlooser>=2\n")
    read = read_lock(tmp_path / "requirements.txt", TARGET)
    assert not read.closed
    assert read.pins == (
        Pin("demo", "1.0", "requirements.txt:2", frozenset({H1, H2})),
        Pin("Demo_User", "2.0", "more.txt:1"),
    )
    assert read.constraints == {"cffi": Pin("cffi", "2.1.1", "constraints.txt:1")}
    assert read.findings == (
        Finding(FindingKind.LOCK_UNREADABLE, "constraints.txt", 2, "`looser>=2` is not an exact pin (`looser==VERSION`): it is not audited"),
        Finding(FindingKind.LOCK_UNREADABLE, "requirements.txt", 3, "`loose>=1.0` is not an exact pin (`loose==VERSION`): it is not audited"),
        Finding(FindingKind.LOCK_UNREADABLE, "requirements.txt", 6, "demo is pinned twice, to 1.0 (requirements.txt:2) and 1.1: the first is used"),
    )


def test_a_requirements_lock_never_reads_an_include_outside_its_project(tmp_path: Path) -> None:
    project = tmp_path / "repo"
    (project / ".git").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (project / "requirements.txt").write_text(f"-r {secret}\n-c ../secret.txt\ndemo==1.0\n")
    read = read_lock(project / "requirements.txt", TARGET)
    assert read.pins == (Pin("demo", "1.0", "requirements.txt:3"),)
    message = f"included file {{}} lies outside the project ({project}): not read"
    assert read.findings == (
        Finding(FindingKind.LOCK_UNREADABLE, "requirements.txt", 1, message.format(secret.as_posix())),
        Finding(FindingKind.LOCK_UNREADABLE, "requirements.txt", 2, message.format((project / "../secret.txt").as_posix())),
    )
    assert "root:x" not in repr(read)


def test_a_pylock_installs_its_default_groups_and_no_extras(tmp_path: Path) -> None:
    """PEP 751 markers may test `dependency_groups` and `extras`: an image installs the lock as an
    installer does when asked for nothing, its `default-groups` and no extra."""
    (tmp_path / "pylock.toml").write_text('''
lock-version = "1.0"
created-by = "uv"
default-groups = ["serve"]
dependency-groups = ["serve", "dev"]
extras = ["gpu"]

[[packages]]
name = "always"
version = "1.0"

[[packages]]
name = "served"
version = "1.0"
marker = "'serve' in dependency_groups and python_version >= '3.8'"

[[packages]]
name = "dev-only"
version = "1.0"
marker = "'dev' in dependency_groups"

[[packages]]
name = "gpu-only"
version = "1.0"
marker = "'gpu' in extras"

[[packages]]
name = "not-for-dev"
version = "1.0"
marker = "'dev' not in dependency_groups or sys_platform == 'win32'"
''')
    read = read_lock(tmp_path / "pylock.toml", TARGET)
    assert read.findings == ()
    assert [pin.name for pin in read.pins] == ["always", "served", "not-for-dev"]


def test_a_pylock_package_from_a_checkout_a_directory_or_a_source_archive_is_built_from_it(tmp_path: Path) -> None:
    """PEP 751's other sources: nothing an index serves under that name is the same code, so the
    pin says what it installs from (the version may be left out); an archive that is a wheel is one."""
    (tmp_path / "pylock.toml").write_text(f'''
lock-version = "1.0"
created-by = "pip"

[[packages]]
name = "from-git"
vcs = {{ type = "git", url = "https://git.example/from-git.git", commit-id = "0123abcd" }}

[[packages]]
name = "from-dir"
version = "0.3"
directory = {{ path = "libs/from-dir" }}

[[packages]]
name = "from-tarball"
version = "1.2"
archive = {{ url = "https://files.example/from_tarball-1.2.tar.gz", hashes = {{ sha256 = "{H1}" }} }}

[[packages]]
name = "from-wheel-url"
version = "2.0"
archive = {{ url = "https://files.example/from_wheel_url-2.0-py3-none-any.whl", hashes = {{ sha256 = "{H2}" }} }}
''')
    read = read_lock(tmp_path / "pylock.toml", TARGET)
    assert read.findings == ()
    assert [(pin.shown(), pin.built_from) for pin in read.pins] == [
        ("from-git", "a git checkout of https://git.example/from-git.git at 0123abcd"),
        ("from-dir 0.3", "the directory libs/from-dir"),
        ("from-tarball 1.2", "the archive https://files.example/from_tarball-1.2.tar.gz"),
        ("from-wheel-url 2.0", None),
    ]
    assert read.pins[3].files == (LockedFile("from_wheel_url-2.0-py3-none-any.whl", "https://files.example/from_wheel_url-2.0-py3-none-any.whl", H2),)
    assert read.pins[3].hashes == frozenset({H2})


def test_a_uv_package_from_git_is_built_from_its_checkout(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text('''
version = 1

[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [{ name = "from-git" }]

[[package]]
name = "from-git"
version = "0.9"
source = { git = "https://git.example/from-git.git?rev=main#0123abcd" }
''')
    read = read_lock(tmp_path / "uv.lock", TARGET)
    assert [(pin.shown(), pin.built_from, pin.files) for pin in read.pins] == [
        ("from-git 0.9", "a git checkout of https://git.example/from-git.git?rev=main#0123abcd", ()),
    ]


def test_a_requirements_line_that_names_its_file_pins_that_file_or_says_what_it_builds_from(tmp_path: Path) -> None:
    """`name @ URL`, a bare URL or path, `-e`: a wheel is that file (its version the file name's,
    its digest the URL's fragment); anything else pip builds from source: a DA601, never a DA603,
    and no version is looked up by the name."""
    wheel_url = "https://files.example/demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    (tmp_path / "requirements.txt").write_text(
        f"demo @ {wheel_url}#sha256={H1.upper()}\n"
        "from-git @ git+https://git.example/from-git.git@v1.2\n"
        "by-user @ git+ssh://git@git.example/by-user.git\n"
        "tarball @ https://files.example/tarball-1.2.tar.gz\n"
        "-e git+https://git.example/ed.git#egg=ed\n"
        "-e ./libs/local\n"
        f"https://files.example/bare-2.0-py3-none-any.whl --hash=sha256:{H2}\n"
        "other @ https://files.example/bare-2.0-py3-none-any.whl\n"
    )
    read = read_lock(tmp_path / "requirements.txt", TARGET)
    assert read.pins == (
        Pin("demo", "1.0", "requirements.txt:1", frozenset({H1}), (LockedFile("demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", wheel_url, H1),), exact_files=True),
        Pin("from-git", "", "requirements.txt:2", built_from="a git checkout of https://git.example/from-git.git at v1.2"),
        Pin("by-user", "", "requirements.txt:3", built_from="a git checkout of ssh://git@git.example/by-user.git"),
        Pin("tarball", "", "requirements.txt:4", built_from="the archive https://files.example/tarball-1.2.tar.gz"),
        Pin("ed", "", "requirements.txt:5", built_from="a git checkout of https://git.example/ed.git, editable"),
        Pin(
            "bare", "2.0", "requirements.txt:7", frozenset({H2}),
            (LockedFile("bare-2.0-py3-none-any.whl", "https://files.example/bare-2.0-py3-none-any.whl", H2),), exact_files=True,
        ),
    )
    assert read.findings == (
        Finding(FindingKind.LOCK_NO_WHEEL, "requirements.txt", 6, "`-e ./libs/local` installs from the path ./libs/local, editable: no wheel to read, and depaudit never builds one; it is not audited"),
        Finding(FindingKind.LOCK_UNREADABLE, "requirements.txt", 8, "`other @ https://files.example/bare-2.0-py3-none-any.whl` names other but its wheel is of bare: it is not audited"),
    )


def test_a_marker_that_cannot_be_evaluated_is_said_and_its_package_audited(tmp_path: Path) -> None:
    (tmp_path / "pylock.toml").write_text('''
lock-version = "1.0"
created-by = "test"

[[packages]]
name = "flagged"
version = "1.0"
marker = true

[[packages]]
name = "garbled"
version = "1.0"
marker = "python_version >>> '3'"
''')
    read = read_lock(tmp_path / "pylock.toml", TARGET)
    assert [pin.name for pin in read.pins] == ["flagged", "garbled"]
    assert [f.message for f in read.findings] == [
        "packages[1] (flagged): cannot evaluate its marker True (a marker is a string, not bool): it is audited as if the marker held",
        "packages[2] (garbled): cannot evaluate its marker \"python_version >>> '3'\" (Expected a marker variable or quoted string): "
        "it is audited as if the marker held",
    ]
    (tmp_path / "uv.lock").write_text(UV_LOCK.replace('{ name = "demo-user" },', '{ name = "demo-user", marker = 3 },'))
    read = read_lock(tmp_path / "uv.lock", TARGET)
    assert "demo-user" in [pin.name for pin in read.pins]
    assert [f.message for f in read.findings] == [
        "package[1]'s dependency on demo-user: cannot evaluate its marker 3 (a marker is a string, not int): it is audited as if the marker held"
    ]
