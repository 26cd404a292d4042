"""The runtime closure of distributions: Requires-Dist followed with markers for the target."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from depaudit.python.environment import PythonEnvironment
from depaudit.python.model import RequirementEdge, TargetPython


def requires_closure(
    env: PythonEnvironment, roots: Iterable[str], target: TargetPython
) -> dict[str, tuple[RequirementEdge, ...]]:
    """Every installed distribution reached from `roots`, with the edges from its nearest root.

    Breadth-first, so each path is a shortest one; roots map to `()`. Extras are followed only
    where a requirement asks for them (`Requires-Dist: a[x]`). Requirements that are not
    installed are skipped: `missing_requirements` reports them.
    """
    paths: dict[str, tuple[RequirementEdge, ...]] = {}
    queue: deque[tuple[str, frozenset[str]]] = deque()
    expanded: set[tuple[str, frozenset[str]]] = set()
    for root in sorted({canonicalize_name(r) for r in roots}):
        if env.get(root) is not None:
            paths[root] = ()
            queue.append((root, frozenset()))
    while queue:
        key, extras = queue.popleft()
        if (key, extras) in expanded:
            continue
        expanded.add((key, extras))
        dist = env.distributions[key]
        for text, requirement in _applicable(dist.requires, extras, target):
            child = canonicalize_name(requirement.name)
            if env.get(child) is None:
                continue
            if child not in paths:
                paths[child] = (*paths[key], RequirementEdge(key, child, text))
            queue.append((child, frozenset(requirement.extras)))
    return paths


def missing_requirements(
    env: PythonEnvironment, keys: Iterable[str], target: TargetPython
) -> list[tuple[str, str]]:
    """(distribution, requirement) pairs whose requirement applies but is not installed."""
    missing = []
    for key in sorted(keys):
        dist = env.distributions[key]
        for text, requirement in _applicable(dist.requires, frozenset(), target):
            if env.get(requirement.name) is None:
                missing.append((key, text))
    return missing


def _applicable(
    requires: Iterable[str], extras: frozenset[str], target: TargetPython
) -> list[tuple[str, Requirement]]:
    applicable = []
    for text in requires:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue  # reported once as bad_metadata when the environment is read
        if requirement.marker is None:
            applicable.append((text, requirement))
            continue
        for extra in sorted(extras) or [""]:
            try:
                if requirement.marker.evaluate(target.marker_environment(extra=extra)):
                    applicable.append((text, requirement))
                    break
            except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
                break
    return applicable
