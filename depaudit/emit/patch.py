"""The apt-get install change per family Dockerfile, rendered as a patch `git apply` takes: the
edit itself is depaudit.dockerfile.edit."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from depaudit.dockerfile.edit import patch_dockerfile, split_lines
from depaudit.dockerfile.model import Dockerfile
from depaudit.paths import root_relative, source_root
from depaudit.plan.model import FamilyPlan


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


def family_patches(families: Sequence[FamilyPlan], *, prune: bool) -> list[tuple[FamilyPlan, Dockerfile, str, str]]:
    """(plan, its Dockerfile, old text, new text) for every family whose Dockerfile would change.
    The old text is the one the scan read and planned from; a Dockerfile it could not read is
    left out (the scan reported it)."""
    changes = []
    for family in families:
        source = family.source
        if source is None or source.text is None:
            continue
        remove = [item.package for item in (*family.unused, *family.redundant)] if prune else []
        # surrogateescape text: undecodable bytes come back out exactly as they went in
        new = patch_dockerfile(source.text, [item.package for item in family.add], remove, source.context)
        if new != source.text:
            changes.append((family, source, source.text, new))
    return changes


def diff_path(path: Path, root: Path | None = None) -> str:
    """Relative to the repository root (depaudit.paths.source_root): `git apply` there takes the
    patch, and its paths are the SARIF report's URIs. A file outside it keeps its own path."""
    shown = root_relative(path, root or source_root())
    return path.as_posix() if shown is None else shown
