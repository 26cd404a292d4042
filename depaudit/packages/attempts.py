"""Libraries a package's own code loads by path: a file it ships (`load_library(_path("libx"))`),
or one of several builds tried in turn. torchcodec loads the first `libtorchcodec_core{9..4}.so`
whose FFmpeg major is there and raises when none is: what it needs is "any one of" those builds
with their loader closures, so the build this image can be given decides the packages, as surely
as the load runs. A path we cannot match to a shipped file yields nothing: never a guess.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from depaudit.evidence import EvidenceStep, NeedStatus, StepKind
from depaudit.native.hints import FileHint
from depaudit.native.model import NativeNeed
from depaudit.packages.model import Need


@dataclass(frozen=True)
class Attempts:
    """The loads of one pass of a loop (or one load), and per candidate the files that pass loads."""

    hints: tuple[FileHint, ...]  # in line order
    passes: tuple[tuple[str, ...], ...]  # per candidate: the shipped files its loads open, in order
    names: tuple[str, ...]  # per candidate: the name the first load is given

    @property
    def must_load(self) -> bool:
        """The code raises when no pass loads: one of them is as sure as the code."""
        return self.hints[0].hint.loop != 0


def group_attempts(hints: Sequence[FileHint], shared: Sequence[str]) -> tuple[list[Attempts], list[FileHint]]:
    """The loads by path among `hints`, matched to `shared` (a distribution's shared objects,
    relative to its site-packages) and grouped by loop; and the other hints, untouched."""
    if not any(hint.hint.by_path for hint in hints):
        return [], list(hints)
    groups: dict[tuple[str, int], list[FileHint]] = {}
    rest: list[FileHint] = []
    for hint in hints:
        if not hint.hint.by_path or hint.hint.kind != "library":
            rest.append(hint)
        else:
            key = (hint.file, hint.hint.loop or -hint.hint.line)  # outside a loop each load is its own
            groups.setdefault(key, []).append(hint)
    found: list[Attempts] = []
    for members in groups.values():
        members.sort(key=lambda h: h.hint.line)
        count = len(members[0].hint.candidates)
        if any(len(h.hint.candidates) != count for h in members):
            members = members[:1]  # passes that do not pair up: the first load alone
        passes = tuple(
            tuple(f for f in (_shipped(h.hint.candidates[i], h.file, shared) for h in members) if f is not None)
            for i in range(count)
        )
        if any(passes):
            found.append(Attempts(tuple(members), passes, members[0].hint.candidates))
    return found, rest


def attempt_needs(
    attempts: Attempts,
    records: Sequence[NativeNeed],
    resolve: Callable[[NativeNeed, tuple[EvidenceStep, ...]], Need],
    prefix: tuple[EvidenceStep, ...],
) -> list[Need]:
    """The needs of the pass that decides: the first whose closure the image already meets, else
    the first whose missing libraries all have a package, else the first. `resolve` answers a
    walk record with the tier and prefix given."""
    answered: list[tuple[int, int, list[NativeNeed]]] = []
    for position, files in enumerate(attempts.passes):
        if not files:
            continue
        loaded = {posixpath.basename(f) for f in files}  # a later load of the pass finds these by name
        mine = [r for r in records if any(f in r.chain for f in files) and r.soname not in loaded]
        answered.append((alternative_rank([resolve(record, prefix) for record in mine]), position, mine))
    if not answered:
        return []
    rank, position, mine = min(answered, key=lambda a: (a[0], a[1]))
    step = _step(attempts, position, _WHY[rank])
    return [resolve(record, (*prefix, step)) for record in mine]


def alternative_rank(needs: Sequence[Need]) -> int:
    """How good one of several alternatives is for this image, the lowest first: 0 when the image
    already meets all its needs, 1 when every one it lacks has a package, else 2."""
    fails = [need for need in needs if need.status.fails]
    if not fails:
        return 0
    return 1 if all(need.status is NeedStatus.MISSING and need.package for need in fails) else 2


_WHY = (
    "the first this image already provides for",
    "the first this image can be given packages for",
    "the first, and no build can be given packages",
)


def _step(attempts: Attempts, position: int, why: str) -> EvidenceStep:
    first = attempts.hints[0]
    name = attempts.names[position]
    if len(attempts.passes) < 2:
        return EvidenceStep(StepKind.CALL, f"{first.hint.call}({name!r})", first.file, first.hint.line)
    how = "and raises if none does" if attempts.must_load else "inside a try that survives"
    label = f"{first.hint.call} loads the first of {', '.join(attempts.names)} that loads, {how}: {name} is {why}"
    return EvidenceStep(StepKind.CALL, label, first.file, first.hint.line)


def _shared_object(name: str) -> bool:
    return name.endswith(".so") or ".so." in name


def _shipped(candidate: str, hint_file: str, shared: Sequence[str]) -> str | None:
    """The shipped shared object a path names: by file name, or by stem as an extension finder
    adds the suffix (`libx7` → `libx7.so`, `_C` → `_C.cpython-311-x86_64-linux-gnu.so`); the
    one beside the loading file first, then in its top-level package."""
    wanted = posixpath.basename(candidate)
    if not wanted:
        return None
    matches = [f for f in shared if (b := posixpath.basename(f)) == wanted or (b.startswith(wanted + ".") and _shared_object(b))]
    if not matches:
        return None
    folder, top = posixpath.dirname(hint_file), hint_file.split("/", 1)[0]
    return min(matches, key=lambda f: (posixpath.dirname(f) != folder, f.split("/", 1)[0] != top, f))
