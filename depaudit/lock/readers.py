"""Lock files read as data: a fully pinned requirements.txt (pip-requirements-parser), a
pylock.toml (PEP 751) and a uv.lock (tomllib). Each pin is `name == version` for the target;
whatever cannot say that exactly is a `lock-unreadable` finding, and the rest is read on."""

from __future__ import annotations

import tomllib
import urllib.parse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion

from depaudit.findings import Finding, FindingKind
from depaudit.lock.model import LockedFile, LockRead, Pin
from depaudit.paths import project_root, within
from depaudit.python.model import TargetPython
from depaudit.reading import read_regular

MAX_LOCK_BYTES = 64 << 20


def read_lock(path: Path, target: TargetPython) -> LockRead:
    """The pins of the lock at `path`, by its name: `uv.lock`, `pylock.toml` / `pylock.*.toml`,
    else a requirements file."""
    name = path.name
    if name == "uv.lock":
        return _toml_lock(path, target, _uv_pins)
    if name == "pylock.toml" or (name.startswith("pylock.") and name.endswith(".toml")):
        return _toml_lock(path, target, _pylock_pins)
    return _requirements(path, target)


def _unreadable(where: str, line: int | None, message: str) -> Finding:
    return Finding(FindingKind.LOCK_UNREADABLE, where, line, message)


def _applies(marker: object, target: TargetPython, groups: frozenset[str] | None = None, said: Callable[[str], None] | None = None) -> bool:
    """Does the marker hold for the target? `groups`: a pylock's, whose markers may also test
    `extras` (none is asked for) and `dependency_groups` (its default groups). One that cannot
    be evaluated is audited rather than silently left out, and `said` is told why."""
    if marker is None or marker == "":
        return True
    try:
        if not isinstance(marker, (str, Marker)):
            raise InvalidMarker(f"a marker is a string, not {type(marker).__name__}")
        parsed = marker if isinstance(marker, Marker) else Marker(marker)
        if groups is not None:
            environment = {**target.marker_environment(), "extras": frozenset(), "dependency_groups": groups}
            return bool(parsed.evaluate(environment, context="lock_file"))
        return bool(parsed.evaluate(target.marker_environment()))
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName) as error:
        if said is not None:
            first = str(error).splitlines()[0] if str(error) else type(error).__name__  # packaging draws a caret below
            said(f"cannot evaluate its marker {marker!r} ({first}): it is audited as if the marker held")
        return True


def _requirements(path: Path, target: TargetPython) -> LockRead:
    """`name==version` lines (with `--hash=sha256:` options or not), following `-r`; `-c` files
    give versions for what the pinned wheels require and the file leaves out."""
    from pip_requirements_parser import RequirementsFile  # type: ignore[import-untyped]

    pins: dict[str, Pin] = {}
    constraints: dict[str, Pin] = {}
    findings: list[Finding] = []
    pending: list[tuple[Path, bool, str | None, int | None]] = [(path, False, None, None)]  # file, a -c file, included where
    seen: set[Path] = set()
    root = path.parent
    project = project_root(root)
    while pending:
        current, constraining, included_from, line = pending.pop(0)
        if included_from is not None and not within(current, project):
            # Never read: its lines would be quoted in the report, and a lock in a pull request
            # could publish a file of the CI machine so (`-r /etc/passwd`).
            findings.append(_unreadable(included_from, line, f"included file {current.as_posix()} lies outside the project ({project}): not read"))
            continue
        real = current.resolve()
        if real in seen:
            continue
        seen.add(real)
        shown = _shown(current, root)
        try:
            parsed = RequirementsFile.from_file(str(current), include_nested=False)
        except Exception as error:  # the parser raises its own, OS and decoding errors alike
            findings.append(_unreadable(shown, None, f"cannot read the lock: {error}"))
            continue
        for invalid in parsed.invalid_lines:
            findings.append(_unreadable(shown, invalid.line_number, f"cannot understand `{' '.join(str(invalid.line).split())}`"))
        for option in parsed.options:
            for flag, nested in (("requirements", constraining), ("constraints", True)):
                for included in option.options.get(flag, []):
                    if "://" in included:
                        findings.append(_unreadable(shown, option.line_number, f"remote file {included} is not fetched"))
                    else:
                        pending.append((current.parent / included, nested, shown, option.line_number))
        into = constraints if constraining else pins
        for requirement in parsed.requirements:
            where = f"{shown}:{requirement.line_number}"
            pin = _exact(requirement, where, findings, shown)
            if pin is None or not _applies(requirement.marker, target):
                continue
            previous = into.get(canonicalize_name(pin.name))
            if previous is not None and previous.version != pin.version:
                findings.append(
                    _unreadable(shown, requirement.line_number, f"{pin.name} is pinned twice, to {previous.version} ({previous.where}) and {pin.version}: the first is used")
                )
                continue
            into.setdefault(canonicalize_name(pin.name), pin)
    return LockRead(tuple(pins.values()), tuple(sorted(findings)), constraints, closed=False)


def _exact(requirement: Any, where: str, findings: list[Finding], shown: str) -> Pin | None:
    """A `name==version` requirement as a pin, or one that names its file (`_linked`); a
    finding for anything else."""
    line = requirement.line_number
    text = " ".join(str(requirement.line or requirement.req or "").split())
    if requirement.link is not None and requirement.link.url:
        return _linked(requirement, where, findings, shown, text)
    req = requirement.req
    if req is None or not requirement.name:
        findings.append(_unreadable(shown, line, f"`{text}` names no distribution by version: a lock pins `name==version`"))
        return None
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
        findings.append(_unreadable(shown, line, f"`{text}` is not an exact pin (`{req.name}==VERSION`): it is not audited"))
        return None
    return Pin(req.name, specs[0].version, where, _hashes(requirement))


def _hashes(requirement: Any) -> frozenset[str]:
    return frozenset(value.partition(":")[2].lower() for value in requirement.hash_options if value.lower().startswith("sha256:"))


def _linked(requirement: Any, where: str, findings: list[Finding], shown: str, text: str) -> Pin | None:
    """A line that names what to install rather than a version (`name @ URL`, a bare URL or
    path, `-e`): a wheel's URL or path is that file, its version the file name's, and nothing
    else is offered for it (pip installs that file); anything else is built by pip from source,
    a DA601 naming it, never looked up on an index by its name."""
    link, line = requirement.link, requirement.line_number
    url = link.url.split("#", 1)[0]
    hashes = _hashes(requirement)
    if link.hash_name == "sha256" and link.hash:
        hashes |= {link.hash.lower()}
    if link.is_wheel:
        try:
            name, version, _, _ = parse_wheel_filename(link.filename)
        except (InvalidWheelFilename, InvalidVersion):
            findings.append(_unreadable(shown, line, f"`{text}` names a wheel whose file name does not parse: it is not audited"))
            return None
        if requirement.name and canonicalize_name(requirement.name) != name:
            findings.append(_unreadable(shown, line, f"`{text}` names {requirement.name} but its wheel is of {name}: it is not audited"))
            return None
        locked = LockedFile(link.filename, url, next(iter(hashes)) if len(hashes) == 1 else None)
        return Pin(requirement.name or str(name), str(version), where, hashes, (locked,), exact_files=True)
    if link.is_vcs:
        kind, _, rest = url.partition("+")
        # The revision follows an `@` in the path; one in the host part is a user (git@host).
        parts = urllib.parse.urlsplit(rest)
        path, at, revision = parts.path.rpartition("@") if "@" in parts.path else (parts.path, "", "")
        location = urllib.parse.urlunsplit(parts._replace(path=path))
        source = f"a {kind} checkout of {location}" + (f" at {revision}" if at else "")
    elif "://" in url and not url.startswith("file:"):
        source = f"the archive {url}"
    else:
        source = f"the path {url}"
    if requirement.is_editable:
        source += ", editable"
    if not requirement.name:
        findings.append(Finding(FindingKind.LOCK_NO_WHEEL, shown, line, f"`{text}` installs from {source}: no wheel to read, and depaudit never builds one; it is not audited"))
        return None
    return Pin(requirement.name, "", where, hashes, built_from=source)


def _toml_lock(path: Path, target: TargetPython, pins_of: Any) -> LockRead:
    shown = path.name
    try:
        data = tomllib.loads(read_regular(path, MAX_LOCK_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        return LockRead((), (_unreadable(shown, None, f"cannot read the lock: {error}"),), closed=True)
    findings: list[Finding] = []
    pins: dict[str, Pin] = {}
    for pin in pins_of(data, shown, target, findings):
        pins.setdefault(canonicalize_name(pin.name), pin)
    return LockRead(tuple(pins.values()), tuple(sorted(findings)), closed=True)


def _pylock_pins(data: dict[str, Any], shown: str, target: TargetPython, findings: list[Finding]) -> list[Pin]:
    """PEP 751: `[[packages]]` with name, version, marker, `wheels` and `sdist` (each with a
    `name` or a `url`/`path`, and `hashes`), or one `vcs`, `directory` or `archive` source (for
    which the version may be left out); an archive that is a wheel is read as one."""
    pins = []
    # What an installer takes with no --group or --extra asked for, as uv's `pip sync` does.
    defaults = data.get("default-groups")
    groups = frozenset(g for g in defaults if isinstance(g, str)) if isinstance(defaults, list) else frozenset()
    for number, package in enumerate(_tables(data.get("packages")), 1):
        where = f"{shown}: packages[{number}]"
        name, version = package.get("name"), package.get("version")
        archive = package.get("archive")
        archived = _pylock_file(archive) if isinstance(archive, dict) else None
        wheel = archived if archived is not None and archived.filename.endswith(".whl") else None
        built_from = None if wheel is not None else _pylock_source(package)
        if not isinstance(name, str) or not (isinstance(version, str) or (built_from is not None and version is None)):
            findings.append(_unreadable(shown, None, f"packages[{number}] has no name or no version: a lock pins both"))
            continue
        if not _applies(package.get("marker"), target, groups, lambda why: findings.append(_unreadable(shown, None, f"packages[{number}] ({name}): {why}"))):
            continue
        pin = _pinned(name, version or "", where, package, _pylock_file)
        if wheel is not None:
            pin = replace(pin, hashes=pin.hashes | ({wheel.sha256} if wheel.sha256 else set()), files=(*pin.files, wheel), exact_files=True)
        pins.append(replace(pin, built_from=built_from))
    return pins


def _pylock_source(package: dict[str, Any]) -> str | None:
    """What a pylock package installs from when it is no index's wheel or sdist, in words."""
    vcs, directory, archive = (package.get(key) if isinstance(package.get(key), dict) else None for key in ("vcs", "directory", "archive"))
    if vcs is not None:
        kind = vcs.get("type") if isinstance(vcs.get("type"), str) else "VCS"
        where = vcs.get("url") or vcs.get("path") or "?"
        commit = vcs.get("commit-id")
        return f"a {kind} checkout of {where}" + (f" at {commit}" if isinstance(commit, str) else "")
    if directory is not None:
        return f"the directory {directory.get('path') or '?'}"
    if archive is not None:
        return f"the archive {archive.get('url') or archive.get('path') or '?'}"
    return None


def _pylock_file(entry: dict[str, Any]) -> LockedFile:
    url = entry.get("url") if isinstance(entry.get("url"), str) else None
    local = entry.get("path") if isinstance(entry.get("path"), str) else None
    filename = entry.get("name") if isinstance(entry.get("name"), str) else (url or local or "").rsplit("/", 1)[-1]
    hashes = entry.get("hashes") if isinstance(entry.get("hashes"), dict) else {}
    sha256 = hashes.get("sha256")
    return LockedFile(filename, url or local, sha256.lower() if isinstance(sha256, str) else None)


def _uv_pins(data: dict[str, Any], shown: str, target: TargetPython, findings: list[Finding]) -> list[Pin]:
    """uv's `[[package]]` tables: name, version, `source`, `wheels = [{url, hash}]`, `sdist`. A uv
    lock is universal (every platform's packages): what the target installs is walked from the
    project itself (a virtual, editable or directory source, which installs no wheel) through
    `dependencies` whose markers hold for the target; with no project in it, every package."""
    packages = _tables(data.get("package"))
    by_name: dict[str, list[int]] = {}
    roots = []
    for number, package in enumerate(packages):
        if isinstance(package.get("name"), str):
            by_name.setdefault(canonicalize_name(package["name"]), []).append(number)
        source = package.get("source") if isinstance(package.get("source"), dict) else {}
        if any(key in source for key in ("virtual", "editable", "directory")):
            roots.append(number)
    wanted = _uv_walk(packages, roots, by_name, target, lambda why: findings.append(_unreadable(shown, None, why))) if roots else set(range(len(packages)))
    pins = []
    for number, package in enumerate(packages):
        if number not in wanted or number in roots:
            continue
        name, version = package.get("name"), package.get("version")
        where = f"{shown}: package[{number + 1}]"
        if not isinstance(name, str) or not isinstance(version, str):
            findings.append(_unreadable(shown, None, f"package[{number + 1}] has no name or no version: a lock pins both"))
            continue
        source = package.get("source") if isinstance(package.get("source"), dict) else {}
        git = source.get("git")
        built_from = f"a git checkout of {git}" if isinstance(git, str) else None
        pins.append(replace(_pinned(name, version, where, package, _uv_file), built_from=built_from))
    return pins


def _uv_walk(packages: list[dict[str, Any]], roots: list[int], by_name: dict[str, list[int]], target: TargetPython, said: Callable[[str], None]) -> set[int]:
    """The packages the roots' `dependencies` reach for the target, as `uv sync --no-dev`
    installs them; an edge naming extras (`extra = [...]`) follows those optional dependencies."""
    reached: set[tuple[int, str]] = set()
    todo: list[tuple[int, str]] = [(number, "") for number in roots]
    while todo:
        item = todo.pop()
        if item in reached:
            continue
        reached.add(item)
        number, extra = item
        package = packages[number]
        if extra:
            optional = package.get("optional-dependencies")
            edges = _tables(optional.get(extra)) if isinstance(optional, dict) else []
        else:
            edges = _tables(package.get("dependencies"))
        for edge in edges:
            if not isinstance(edge.get("name"), str):
                continue
            if not _applies(edge.get("marker"), target, said=lambda why: said(f"package[{number + 1}]'s dependency on {edge['name']}: {why}")):
                continue
            version = edge.get("version")
            chosen = [c for c in by_name.get(canonicalize_name(edge["name"]), []) if version is None or packages[c].get("version") == version]
            for found in chosen[:1]:
                extras = edge.get("extra") if isinstance(edge.get("extra"), list) else []
                todo.extend([(found, ""), *((found, str(name)) for name in extras)])
    return {number for number, _ in reached}


def _uv_file(entry: dict[str, Any]) -> LockedFile:
    url = entry.get("url") if isinstance(entry.get("url"), str) else entry.get("path")
    text = entry.get("hash")
    sha256 = text.partition(":")[2].lower() if isinstance(text, str) and text.startswith("sha256:") else None
    filename = (url or "").rsplit("/", 1)[-1] if isinstance(url, str) else ""
    return LockedFile(filename, url if isinstance(url, str) else None, sha256)


def _tables(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _pinned(name: str, version: str, where: str, package: dict[str, Any], file_of: Callable[[dict[str, Any]], LockedFile]) -> Pin:
    """A lock's package as a pin: its wheels and sdist, read by the format's `file_of`, and
    the hashes they state."""
    files = [file_of(entry) for entry in _tables(package.get("wheels"))]
    sdist = package.get("sdist")
    if isinstance(sdist, dict):
        files.append(file_of(sdist))
    return Pin(name, version, where, frozenset(f.sha256 for f in files if f.sha256), tuple(files))
