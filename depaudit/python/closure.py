"""The runtime closure of distributions: Requires-Dist followed with markers for the target."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from depaudit.python.environment import PythonEnvironment
from depaudit.python.model import RequirementEdge, TargetPython


def requires_closure(
    env: PythonEnvironment, roots: Iterable[str], target: TargetPython
) -> dict[str, tuple[RequirementEdge, ...]]:
    """Every installed distribution reached from `roots`, with the edges from its nearest root.

    A root is a key or name, optionally with extras (`pkg[x]`). Breadth-first from the sorted
    roots, so each path is a shortest one and ties go to the first root and the first
    Requires-Dist; roots map to `()`. Requirements guarded by `extra == "x"` are followed
    only where `x` was requested for their distribution. Requirements that are not installed
    are skipped: `closure_missing` lists them.
    """
    return _walk(env, roots, target).paths


def closure_missing(env: PythonEnvironment, roots: Iterable[str], target: TargetPython) -> list[tuple[str, str]]:
    """(distribution key, Requires-Dist) pairs met in the closure of `roots` that are not installed."""
    return sorted(set(_walk(env, roots, target).missing))


def missing_requirements(
    env: PythonEnvironment, keys: Iterable[str], target: TargetPython
) -> list[tuple[str, str]]:
    """(distribution, requirement) pairs of `keys` themselves (no extras) that are not installed."""
    missing: list[tuple[str, str]] = []
    for key in sorted({str(canonicalize_name(k)) for k in keys}):
        dist = env.get(key)
        if dist is None:
            continue
        for text, requirement in _applicable(dist.requires, frozenset(), target):
            if env.get(requirement.name) is None:
                missing.append((key, text))
    return missing


@dataclass
class _Walk:
    paths: dict[str, tuple[RequirementEdge, ...]] = field(default_factory=dict)
    missing: list[tuple[str, str]] = field(default_factory=list)


def _walk(env: PythonEnvironment, roots: Iterable[str], target: TargetPython) -> _Walk:
    walk = _Walk()
    queue: deque[tuple[str, frozenset[str]]] = deque()
    for key, extras in sorted(_root_specs(roots), key=lambda spec: (spec[0], sorted(spec[1]))):
        if env.get(key) is not None:
            walk.paths.setdefault(key, ())
            queue.append((key, extras))
    # A distribution is expanded again when reached with other extras: they may add requirements.
    expanded: set[tuple[str, frozenset[str]]] = set()
    while queue:
        key, extras = queue.popleft()
        if (key, extras) in expanded:
            continue
        expanded.add((key, extras))
        for text, requirement in _applicable(env.distributions[key].requires, extras, target):
            child = canonicalize_name(requirement.name)
            if env.get(child) is None:
                walk.missing.append((key, text))
                continue
            if child not in walk.paths:
                walk.paths[child] = (*walk.paths[key], RequirementEdge(key, child, text))
            queue.append((child, frozenset(canonicalize_name(e) for e in requirement.extras)))
    return walk


def _root_specs(roots: Iterable[str]) -> set[tuple[str, frozenset[str]]]:
    specs: set[tuple[str, frozenset[str]]] = set()
    for root in roots:
        try:
            requirement = Requirement(root)
        except InvalidRequirement:
            specs.add((canonicalize_name(root), frozenset()))
            continue
        extras = frozenset(str(canonicalize_name(extra)) for extra in requirement.extras)
        specs.add((canonicalize_name(requirement.name), extras))
    return specs


def _applicable(
    requires: Iterable[str], extras: frozenset[str], target: TargetPython
) -> list[tuple[str, Requirement]]:
    """The requirements whose marker holds for the target with one of `extras` (or none)."""
    applicable = []
    for text in requires:
        requirement = _requirement(text)
        if requirement is None:
            continue  # reported once as bad_metadata when the environment is read
        for extra in ["", *sorted(extras)]:
            holds = _holds(text, extra, target)
            if holds is None:
                break  # a marker the target cannot answer: not followed
            if holds:
                applicable.append((text, requirement))
                break
    return applicable


# Every service's closure walks the same Requires-Dist lines again: packaging's parser and
# marker evaluation were most of a warm scan's time.
@lru_cache(maxsize=None)
def _requirement(text: str) -> Requirement | None:
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


@lru_cache(maxsize=None)
def _holds(text: str, extra: str, target: TargetPython) -> bool | None:
    marker = _requirement(text).marker  # type: ignore[union-attr]  # only asked of parsed ones
    if marker is None:
        return True
    try:
        return marker.evaluate(target.marker_environment(extra=extra))
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return None
