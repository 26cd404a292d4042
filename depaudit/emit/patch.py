"""The apt-get install change per family Dockerfile: a patch in the file's own style.

Bytes outside the lines we add or remove stay as they are: line endings (CRLF), the missing
final newline, indentation, continuation backslashes, comments. Packages are merged into the
last stage's first `apt-get install` list; a file without one gets a new RUN with the usual
apt hygiene. Heredoc and exec-form RUNs are never edited.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from depaudit.fleet.dockerfile import AptInstall, apt_installs, instructions
from depaudit.plan.model import FamilyPlan

_NEW_RUN = (
    "RUN apt-get update && apt-get install -y --no-install-recommends \\{eol}"
    "{packages}"
    "    && rm -rf /var/lib/apt/lists/*{eol}"
)


def read_text(path: Path) -> str:
    # surrogateescape: undecodable bytes come back out exactly as they went in
    return path.read_bytes().decode("utf-8", errors="surrogateescape")


def patch_dockerfile(text: str, add: Sequence[str], remove: Sequence[str] = ()) -> str:
    lines = text.splitlines(keepends=True)
    eol = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    every = apt_installs(text)
    installs = [i for i in every if not i.in_heredoc and not i.instruction.heredoc]
    if remove and installs:
        lines = _remove(lines, installs, set(remove))
        text = "".join(lines)
        every = apt_installs(text)
        installs = [i for i in every if not i.in_heredoc and not i.instruction.heredoc]
    # A package a heredoc installs is installed: never add it again.
    wanted = [p for p in dict.fromkeys(add) if not any(p == q.name for i in every for q in i.packages)]
    if not wanted:
        return "".join(lines)
    if installs:
        return "".join(_insert(lines, installs[0], wanted, eol))
    return "".join(_new_run(lines, text, wanted, eol))


def _insert(lines: list[str], install: AptInstall, add: list[str], eol: str) -> list[str]:
    package_lines = sorted({p.line for p in install.packages})
    one_per_line = len(package_lines) == len(install.packages) and len(package_lines) > 1
    if one_per_line:
        # A column of `    pkg \` lines: new lines in the same style, at their sorted place.
        names = [p.name for p in install.packages]
        column_sorted = names == sorted(names)
        template = lines[package_lines[0] - 1]
        indent = template[: len(template) - len(template.lstrip())]
        for package in sorted(add, reverse=True):
            position = package_lines[-1]  # after the last package line
            if column_sorted:
                later = [p.line for p in install.packages if p.name > package]
                position = (min(later) - 1) if later else package_lines[-1]
            if position == package_lines[-1] and not lines[position - 1].rstrip("\r\n").endswith("\\"):
                # the last package line ends the command: continue it, then add ours as the last
                lines[position - 1] = lines[position - 1].rstrip("\r\n") + " \\" + eol
                lines.insert(position, f"{indent}{package}{eol}")
            else:
                lines.insert(position, f"{indent}{package} \\{eol}")
        return lines
    # Inline packages: append ours after the last package token, on its line.
    last = install.packages[-1] if install.packages else None
    number = last.line if last else install.instruction.line
    line = lines[number - 1]
    token = re.compile(rf"(?<![\w.+-]){re.escape(last.name)}(=\S+)?(?![\w.+-])") if last else None
    match = None
    for found in token.finditer(line) if token else ():
        match = found
    if match is None:
        return lines
    lines[number - 1] = line[: match.end()] + "".join(f" {p}" for p in sorted(add)) + line[match.end() :]
    return lines


def _remove(lines: list[str], installs: list[AptInstall], remove: set[str]) -> list[str]:
    drop: set[int] = set()
    for install in installs:
        keep = [p for p in install.packages if p.name not in remove]
        if not keep:
            continue  # emptying a list would break the RUN: leave it for a person
        for package in install.packages:
            if package.name not in remove:
                continue
            text = lines[package.line - 1]
            body = text.rstrip("\r\n")
            ending = text[len(body) :]
            stripped = body.strip().rstrip("\\").strip()
            if stripped == package.name or stripped.split("=", 1)[0] == package.name:
                drop.add(package.line - 1)  # the package has its own line
            else:
                pattern = re.compile(rf"\s+{re.escape(package.name)}(=\S+)?(?![\w.+-])")
                lines[package.line - 1] = pattern.sub("", body, count=1) + ending
    return [line for index, line in enumerate(lines) if index not in drop]


def _new_run(lines: list[str], text: str, add: list[str], eol: str) -> list[str]:
    parsed = instructions(text)
    final_stage = max((i for i, ins in enumerate(parsed) if ins.keyword == "FROM"), default=None)
    if final_stage is None:
        return lines
    stage = parsed[final_stage:]
    runs = [ins for ins in stage if ins.keyword == "RUN"]
    after = (runs[-1] if runs else stage[0]).end_line
    if lines and after == len(lines) and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += eol  # the file had no final newline: ours starts on a line of its own
    block = _NEW_RUN.format(eol=eol, packages="".join(f"        {p} \\{eol}" for p in sorted(add)))
    return [*lines[:after], block, *lines[after:]]


def unified_diff(old: str, new: str, path: str) -> str:
    """A diff `git apply` accepts, `\\ No newline at end of file` included."""
    if old == new:
        return ""
    out = []
    for line in difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}", n=3
    ):
        if line.startswith(("---", "+++")):
            out.append(line.rstrip("\n") + "\n")
        elif line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


def write_atomic(path: Path, text: str) -> None:
    """The new file appears whole or not at all; its mode is kept."""
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(text.encode("utf-8", errors="surrogateescape"))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def family_patches(families: Sequence[FamilyPlan], *, prune: bool) -> list[tuple[FamilyPlan, Path, str, str]]:
    """(plan, Dockerfile, old text, new text) for every family whose Dockerfile would change."""
    changes = []
    for family in families:
        if family.source is None:
            continue
        remove = [item.package for item in (*family.unused, *family.redundant)] if prune else []
        old = read_text(family.source)
        new = patch_dockerfile(old, [item.package for item in family.add], remove)
        if new != old:
            changes.append((family, family.source, old, new))
    return changes


def diff_path(path: Path) -> str:
    """Relative to where depaudit runs, so that `git apply` there takes the patch."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()
