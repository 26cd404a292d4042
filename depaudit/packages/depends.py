"""Which packages others already pull in: the runtime Depends closure over rules and index."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from depaudit.packages.index import PackageIndex
from depaudit.packages.rules import DistroRules


def depends_of(package: str, rules: DistroRules, index: PackageIndex | None = None) -> tuple[str, ...]:
    """Curated Depends first; the index (the distro's own, built from its Packages) for the rest."""
    if package in rules.depends:
        return rules.depends[package]
    return index.depends.get(package, ()) if index is not None else ()


def pulled_in(chosen: Iterable[str], rules: DistroRules, index: PackageIndex | None = None) -> dict[str, str]:
    """Every package installed as a dependency of `chosen`, with the chosen package that pulls it in.

    A package both chosen and pulled in by another chosen one is reported too: it is redundant.
    """
    roots = sorted(set(chosen))
    via: dict[str, str] = {}
    for root in roots:
        queue = deque(depends_of(root, rules, index))
        seen = {root}
        while queue:
            package = queue.popleft()
            if package in seen:
                continue
            seen.add(package)
            via.setdefault(package, root)
            queue.extend(depends_of(package, rules, index))
    return via
