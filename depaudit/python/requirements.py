"""Requirements files of a service, cross-checked against what it imports and what is installed."""

from __future__ import annotations

import configparser
import os
import stat
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.utils import canonicalize_name

from depaudit import consulted
from depaudit.findings import Finding, FindingKind
from depaudit.python.environment import PythonEnvironment
from depaudit.python.model import DeclaredRequirement, TargetPython
from depaudit.paths import project_root, shown_path, within
from depaudit.reading import read_regular

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

_NO_NAME = "cannot tell which distribution this line installs; name it (`name @ url` or `#egg=name`)"


@dataclass(frozen=True)
class _Pending:
    path: Path
    included_from: str | None = None  # display path of the file holding the -r / -c line
    line: int | None = None
    constraints: bool = False  # a -c file: read nothing from it, only check that it exists


def read_requirements(
    files: Sequence[Path], display_root: Path, target: TargetPython
) -> tuple[list[DeclaredRequirement], list[Finding]]:
    """Declared requirements, following `-r` includes; `-c` constraints declare nothing.

    Each requirement is reported where it is written (file relative to `display_root`, line).
    Sorted by (file, line, key); one per (key, file, line).
    """
    declared: dict[tuple[str, str, int | None], DeclaredRequirement] = {}
    findings: list[Finding] = []
    visited: set[Path] = set()
    pending = [_Pending(Path(f)) for f in files]
    project = project_root(display_root)
    while pending:
        item = pending.pop(0)
        if item.included_from is not None and not within(item.path, project):
            # Never read, so nothing of it reaches a report: a pull request cannot publish a
            # host file through the CI artifact by including it.
            kind = "constraints" if item.constraints else "included"
            message = f"{kind} file {item.path.as_posix()} lies outside the project ({project}): not read"
            findings.append(Finding(FindingKind.UNSAFE_MEMBER, item.included_from, item.line, message))
            continue
        shown = shown_path(item.path, display_root, resolve=True)
        if not _exists(item, shown, findings):
            continue
        if item.constraints:
            continue  # constraints pin versions; they declare no dependency
        real = item.path.resolve()
        if real in visited:
            continue  # included twice, or an include cycle
        visited.add(real)
        try:
            from pip_requirements_parser import RequirementsFile  # type: ignore[import-untyped]  # only when there is a file

            parsed = RequirementsFile.from_file(str(item.path), include_nested=False)
        except Exception as error:  # the parser raises its own, OS and decoding errors alike
            findings.append(Finding(FindingKind.UNREADABLE_FILE, shown, None, f"cannot read requirements: {error}"))
            continue
        pending.extend(_includes(parsed, item.path, shown, findings))
        for invalid in parsed.invalid_lines:
            findings.append(Finding(FindingKind.BAD_REQUIREMENT, shown, invalid.line_number, _invalid_message(invalid)))
        for requirement in parsed.requirements:
            if requirement.is_constraint:
                continue
            name = requirement.name or _local_project_name(requirement, item.path.parent, project)
            if not name:
                findings.append(Finding(FindingKind.BAD_REQUIREMENT, shown, requirement.line_number, _NO_NAME))
                continue
            key = canonicalize_name(name)
            declared.setdefault(
                (key, shown, requirement.line_number),
                DeclaredRequirement(
                    key=key,
                    text=str(requirement.req) if requirement.req else name,
                    file=shown,
                    line=requirement.line_number,
                    applies=_applies(requirement.marker, target),
                ),
            )
    ordered = sorted(declared.values(), key=lambda d: (d.file, d.line or 0, d.key))
    return ordered, sorted(findings)


class RequirementFiles:
    """`read_requirements`, once per scan for each set of files: the services of a monorepo
    often share one requirements file, and parsing one of 100 lines takes ~14 ms."""

    def __init__(self) -> None:
        self._read: dict[tuple[tuple[Path, ...], Path, TargetPython], tuple[list[DeclaredRequirement], list[Finding]]] = {}

    def read(
        self, files: tuple[Path, ...], display_root: Path, target: TargetPython
    ) -> tuple[list[DeclaredRequirement], list[Finding]]:
        key = (files, display_root, target)
        if key not in self._read:
            self._read[key] = read_requirements(files, display_root, target)
        declared, findings = self._read[key]
        return list(declared), list(findings)


def check_declarations(
    declared: Sequence[DeclaredRequirement],
    imported: Mapping[str, tuple[str, int]],
    needed: Collection[str],
    env: PythonEnvironment,
    *,
    has_requirements: bool,
) -> list[Finding]:
    """Declared vs imported vs installed: undeclared imports, unused and absent requirements.

    `imported` maps each imported distribution key to its first import (file, line); `needed`
    holds the Requires-Dist closure of the imported distributions. Without any requirements
    file a service declares nothing, so undeclared imports are not reported then.
    """
    findings: list[Finding] = []
    declared_keys = {d.key for d in declared}  # a marker-guarded declaration still declares
    if has_requirements:
        for key, (file, line) in sorted(imported.items()):
            if key not in declared_keys:
                dist = env.get(key)
                name = dist.name if dist is not None else key
                findings.append(
                    Finding(
                        FindingKind.UNDECLARED_IMPORT,
                        file,
                        line,
                        f"imports {name}, which no requirements file of the service declares; add it",
                    )
                )
    for requirement in declared:
        if not requirement.applies:
            continue
        if env.get(requirement.key) is None:
            findings.append(
                Finding(
                    FindingKind.NOT_INSTALLED,
                    requirement.file,
                    requirement.line,
                    f"{requirement.text} is declared but not installed in the scanned environment",
                )
            )
        elif requirement.key not in imported and requirement.key not in needed:
            findings.append(
                Finding(
                    FindingKind.UNUSED_REQUIREMENT,
                    requirement.file,
                    requirement.line,
                    f"{requirement.text} is declared but never imported, nor needed by what is imported; "
                    "remove it if nothing loads it by other means",
                )
            )
    return sorted(findings)


def _exists(item: _Pending, shown: str, findings: list[Finding]) -> bool:
    problem = _not_readable(item.path)
    if problem is None:
        return True
    if item.included_from is None:
        findings.append(Finding(FindingKind.UNREADABLE_FILE, shown, None, f"requirements file {problem}"))
    else:
        kind = "constraints" if item.constraints else "included"
        findings.append(Finding(FindingKind.BAD_REQUIREMENT, item.included_from, item.line, f"{kind} file {shown} {problem}"))
    return False


def _not_readable(path: Path) -> str | None:
    """Why a requirements file cannot be read, or None. A FIFO would block the parser forever;
    a name past the system's limit (`-r` followed by garbage) raises where a stat is expected."""
    consulted.note_read(path)  # the parser reads it next, when it is there
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except (OSError, ValueError) as error:
        return f"cannot be read: {getattr(error, 'strerror', None) or error}"
    return None if stat.S_ISREG(mode) else "is not a regular file"


def _includes(parsed: Any, path: Path, shown: str, findings: list[Finding]) -> list[_Pending]:
    """`-r` and `-c` options, relative to the including file as pip reads them."""
    found = []
    for option in parsed.options:
        for flag, constraints in (("requirements", False), ("constraints", True)):
            for target in option.options.get(flag, []):
                if "://" in target:
                    findings.append(
                        Finding(
                            FindingKind.BAD_REQUIREMENT,
                            shown,
                            option.line_number,
                            f"remote file {target} is not fetched; its requirements are not checked",
                        )
                    )
                    continue
                found.append(_Pending(path.parent / target, shown, option.line_number, constraints))
    return found


def _invalid_message(invalid: Any) -> str:
    reason = str(invalid.error_message).strip().splitlines()[0] if invalid.error_message else "unknown error"
    for prefix in ("pip_requirements_parser: error: ", "Invalid requirement: : ", "Invalid requirement: "):
        reason = reason.removeprefix(prefix)
    return f"cannot understand `{' '.join(str(invalid.line).split())}`: {reason}"


def _local_project_name(requirement: Any, folder: Path, boundary: Path) -> str | None:
    """The name of a local project folder (`-e ./libs/core`), from its static metadata only;
    never read when the folder lies outside the project (`boundary`)."""
    if requirement.link is None:
        return None
    location = str(requirement.link.url).split("#", 1)[0].removeprefix("file://")
    if "://" in location or location.startswith(("git+", "hg+", "svn+", "bzr+")):
        return None  # remote: only `#egg=` or `name @` can name it
    project = folder / location
    if "\0" in location or not within(project, boundary):
        return None
    try:
        data = tomllib.loads(read_regular(project / "pyproject.toml").decode("utf-8"))
        name = data.get("project", {}).get("name")
        if isinstance(name, str) and name:
            return name
    except (OSError, ValueError, tomllib.TOMLDecodeError):  # ValueError: a NUL in the path, or not UTF-8
        pass
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read_string(read_regular(project / "setup.cfg").decode("utf-8"))
    except (OSError, ValueError, configparser.Error):  # ValueError: a UnicodeDecodeError
        return None
    return config.get("metadata", "name", fallback=None) or None


def _applies(marker: Marker | None, target: TargetPython) -> bool:
    if marker is None:
        return True
    try:
        return bool(marker.evaluate(target.marker_environment()))
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return True  # cannot tell: treat as declared rather than hide it
