"""Requirements files of a service, cross-checked against what it imports and what is installed."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.utils import canonicalize_name
from pip_requirements_parser import RequirementsFile

from depaudit.findings import Finding, FindingKind
from depaudit.python.environment import PythonEnvironment
from depaudit.python.model import DeclaredRequirement, TargetPython


def read_requirements(
    files: Sequence[Path], display_root: Path, target: TargetPython
) -> tuple[list[DeclaredRequirement], list[Finding]]:
    """Declared requirements, following `-r` includes; `-c` constraints declare nothing."""
    declared: dict[tuple[str, str, int | None], DeclaredRequirement] = {}
    findings: list[Finding] = []
    visited: set[Path] = set()
    # (file, the file that includes it, the line of the -r option)
    pending: list[tuple[Path, Path | None, int | None]] = [(Path(f), None, None) for f in files]
    while pending:
        path, included_from, include_line = pending.pop(0)
        real = path.resolve()
        if real in visited:
            continue
        visited.add(real)
        shown = _display(path, display_root)
        if not path.is_file():
            where = (_display(included_from, display_root), include_line) if included_from else (shown, None)
            findings.append(Finding(FindingKind.BAD_REQUIREMENT, where[0], where[1], f"included file {shown} does not exist"))
            continue
        try:
            parsed = RequirementsFile.from_file(str(path), include_nested=False)
        except Exception as error:  # the parser raises its own and OS errors alike: one finding
            findings.append(Finding(FindingKind.UNREADABLE_FILE, shown, None, f"cannot read requirements: {error}"))
            continue
        for option in parsed.options:
            for include in option.options.get("requirements", []):
                pending.append((path.parent / include, path, option.line_number))
        for invalid in parsed.invalid_lines:
            message = " ".join(str(invalid.error_message).split())
            findings.append(Finding(FindingKind.BAD_REQUIREMENT, shown, invalid.line_number, message))
        for requirement in parsed.requirements:
            if requirement.is_constraint:
                continue
            if not requirement.name:
                findings.append(
                    Finding(
                        FindingKind.BAD_REQUIREMENT,
                        shown,
                        requirement.line_number,
                        "cannot tell which distribution this line installs; name it (`name @ url` or `#egg=name`)",
                    )
                )
                continue
            key = canonicalize_name(requirement.name)
            item = DeclaredRequirement(
                key=key,
                text=str(requirement.req) if requirement.req else requirement.name,
                file=shown,
                line=requirement.line_number,
                applies=_applies(requirement.marker, target),
            )
            declared.setdefault((key, shown, requirement.line_number), item)
    return list(declared.values()), sorted(findings)


def check_declarations(
    declared: Sequence[DeclaredRequirement],
    imported: Mapping[str, tuple[str, int]],
    needed: Collection[str],
    env: PythonEnvironment,
    *,
    has_requirements: bool,
) -> list[Finding]:
    """Declared vs imported vs installed: undeclared imports, unused and absent requirements."""
    findings: list[Finding] = []
    applying = [d for d in declared if d.applies]
    declared_keys = {d.key for d in declared}
    if has_requirements:
        for key, (file, line) in sorted(imported.items()):
            if key not in declared_keys:
                name = env.distributions[key].name if key in env.distributions else key
                findings.append(
                    Finding(
                        FindingKind.UNDECLARED_IMPORT,
                        file,
                        line,
                        f"imports {name}, which no requirements file of the service declares; add it",
                    )
                )
    for requirement in applying:
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


def _applies(marker: object, target: TargetPython) -> bool:
    if marker is None:
        return True
    try:
        return bool(marker.evaluate(target.marker_environment()))  # type: ignore[attr-defined]
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return True  # cannot tell: treat as declared rather than hide it


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
