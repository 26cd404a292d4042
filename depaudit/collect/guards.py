"""Which of a service's own files run only behind a guarded import.

`try: import helper` / `except ImportError: ...` survives whatever `import helper` fails on,
including the imports `helper.py` makes: each of them is guarded too, unless some other path
reaches `helper.py` with no guard on the way. The guard of the first guarded edge into that part
of the graph is what the evidence names.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from depaudit.collect.model import GuardedImport


@dataclass(frozen=True)
class LocalEdge:
    """One local import: the file that makes it, the file it runs, and whether a try guards it."""

    source: str  # file keys: any stable string per file (its path)
    target: str
    guarded: bool
    where: GuardedImport  # the import statement


def guarded_only(roots: Iterable[str], edges: Sequence[LocalEdge]) -> dict[str, GuardedImport]:
    """Files reached from `roots` only through a guarded edge → the guarded import that leads
    there. A file no root reaches at all (an import cycle) counts as a root: nothing is weakened
    on a guess."""
    following: dict[str, list[LocalEdge]] = {}
    for edge in edges:
        following.setdefault(edge.source, []).append(edge)
    nodes = {edge.source for edge in edges} | {edge.target for edge in edges}
    return guarded_within(roots, following, nodes)


def guarded_within(
    roots: Iterable[str], following: Mapping[str, Sequence[LocalEdge]], nodes: Iterable[str]
) -> dict[str, GuardedImport]:
    """`guarded_only` on a graph already given as each file's edges (in the order they were
    found), `nodes` holding every file an edge touches: a scan builds each file's edges once and
    hands every service the part its walk reached."""
    starts = set(roots)
    starts |= set(nodes) - _reach(starts, following, through_guards=True)
    free = _reach(starts, following, through_guards=False)
    behind: dict[str, GuardedImport] = {}
    todo = deque((edge.target, edge.where) for source in sorted(free) for edge in following.get(source, ()) if edge.guarded)
    while todo:
        target, where = todo.popleft()
        if target in free or target in behind:
            continue
        behind[target] = where
        todo.extend((edge.target, where) for edge in following.get(target, ()))
    return behind


def _reach(roots: Iterable[str], following: Mapping[str, Sequence[LocalEdge]], *, through_guards: bool) -> set[str]:
    """The files reachable from `roots`: through unguarded edges only, or through every edge."""
    seen = set(roots)
    todo = list(seen)
    while todo:
        for edge in following.get(todo.pop(), ()):
            if (through_guards or not edge.guarded) and edge.target not in seen:
                seen.add(edge.target)
                todo.append(edge.target)
    return seen
