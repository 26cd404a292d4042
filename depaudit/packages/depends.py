"""Which packages others already pull in: the runtime Depends closure over rules and index."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from depaudit.packages.index import PackageIndex
from depaudit.packages.rules import DistroRules
from depaudit.packages.sizes import PackageSizes


def depends_of(
    package: str,
    rules: DistroRules,
    index: PackageIndex | None = None,
    sizes: PackageSizes | None = None,
    present: frozenset[str] = frozenset(),
    *,
    maybe: bool = False,
) -> tuple[str, ...]:
    """Curated Depends first; then what the Packages data's Depends surely install (a group of
    alternatives counts only where the image has one of them); the index's first alternatives
    for the rest."""
    if package in rules.depends:
        return rules.depends[package]
    if sizes is not None and package in sizes.depends:
        return sizes.possible(package) if maybe else sizes.resolved(package, present)
    return index.depends.get(package, ()) if index is not None else ()


def pulled_in(
    chosen: Iterable[str],
    rules: DistroRules,
    index: PackageIndex | None = None,
    sizes: PackageSizes | None = None,
    present: Iterable[str] = (),
) -> dict[str, str]:
    """Every package installed as a dependency of `chosen`, with the chosen package that pulls it
    in: the nearest one (fewest Depends steps), the first by name among as near ones.

    A chosen package that another chosen one pulls in is reported too: it is redundant. Of
    chosen packages that pull each other in (libc6 and libgcc-s1 do), the first by name is not:
    something must stay for the others to be pulled in.
    """
    roots = sorted(set(chosen))
    fixed = frozenset(present)
    depths = {root: depths_from(root, rules, index, sizes, fixed) for root in roots}
    best: dict[str, tuple[int, str]] = {}
    for root in roots:
        for package, depth in depths[root].items():
            if package == root:
                continue
            if package in depths and package < root and root in depths[package]:
                continue  # a cycle of chosen packages: the first by name stays
            if package not in best or (depth, root) < best[package]:
                best[package] = (depth, root)
    return {package: root for package, (_, root) in best.items()}


def depths_from(
    root: str,
    rules: DistroRules,
    index: PackageIndex | None = None,
    sizes: PackageSizes | None = None,
    present: frozenset[str] = frozenset(),
    *,
    maybe: bool = False,
) -> dict[str, int]:
    """Each package in `root`'s Depends closure, with the fewest steps to it (`maybe`: every
    package it may bring, any alternative of a group)."""
    depths: dict[str, int] = {}
    queue = deque((package, 1) for package in depends_of(root, rules, index, sizes, present, maybe=maybe))
    while queue:
        package, depth = queue.popleft()
        if package in depths:
            continue
        depths[package] = depth
        queue.extend((further, depth + 1) for further in depends_of(package, rules, index, sizes, present, maybe=maybe))
    return depths
