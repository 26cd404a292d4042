"""The apt-get install change per family Dockerfile, rendered as a patch `git apply` takes: the
edit itself is depaudit.dockerfile.edit."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from depaudit.dockerfile.edit import patch_dockerfile, split_lines
from depaudit.plan.model import FamilyPlan
from depaudit.reading import read_regular


def read_text(path: Path) -> str:
    # surrogateescape: undecodable bytes come back out exactly as they went in
    return read_regular(path).decode("utf-8", errors="surrogateescape")


def unified_diff(old: str, new: str, path: str) -> str:
    """A diff `git apply` accepts, `\\ No newline at end of file` included."""
    if old == new:
        return ""
    out = []
    for line in difflib.unified_diff(
        split_lines(old), split_lines(new), f"a/{path}", f"b/{path}", n=3
    ):
        if line.startswith(("---", "+++")):
            out.append(line.rstrip("\n") + "\n")
        elif line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


def family_patches(families: Sequence[FamilyPlan], *, prune: bool) -> list[tuple[FamilyPlan, Path, str, str]]:
    """(plan, Dockerfile, old text, new text) for every family whose Dockerfile would change. A
    Dockerfile that cannot be read now is left out: the scan reported it when it could not."""
    changes = []
    for family in families:
        if family.source is None:
            continue
        remove = [item.package for item in (*family.unused, *family.redundant)] if prune else []
        try:
            old = read_text(family.source)
        except OSError:
            continue
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
