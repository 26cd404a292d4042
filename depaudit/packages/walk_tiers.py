"""Each walk record of a reached wheel with its tier in one service: module reach says how surely
each extension module (a walk's root object) is imported. A CUDA torch walk holds about a
thousand records over a few dozen roots, so the records are ranked once per scan for each way of
reaching those roots, and the services that reach them alike share the answer."""

from __future__ import annotations

from depaudit.evidence import EvidenceStep, Tier
from depaudit.native.elf import is_extension_module
from depaudit.native.model import LibraryStatus, NativeNeed, NativeReport
from depaudit.packages.code_reach import DistributionCode
from depaudit.python.modules import ModuleReach

Record = tuple[NativeNeed, Tier, tuple[EvidenceStep, ...]]
# How surely one root is imported, with the module steps to it; None: module reach says nothing.
RootTier = tuple[Tier, tuple[EvidenceStep, ...]] | None


class WalkTiers:
    """One scan's ranked walk records. Reports are kept by identity, each with its entry: the
    walks are the scan's own objects, alive as long as this memo."""

    def __init__(self) -> None:
        self._walks: dict[int, tuple[NativeReport, tuple[str, ...], dict[tuple[RootTier, ...], tuple[Record, ...]]]] = {}
        self._strongest: dict[int, tuple[NativeReport, tuple[Record, ...]]] = {}

    def of(self, native: NativeReport, modules: ModuleReach | None, python: DistributionCode) -> tuple[Record, ...]:
        """Each walk record of a reached distribution with its tier once the distribution is
        imported: an extension module's records are as sure as module reach says that module is
        imported, with the module steps to it. Of a distribution no reached module imports (numba
        under librosa's lazy_loader), every extension module is optional at most."""
        # Without module reach one record per library does: the walk's strongest, whichever root.
        if modules is None:
            if id(native) not in self._strongest:
                self._strongest[id(native)] = (native, tuple((need, need.tier, ()) for need in native.strongest().values()))
            return self._strongest[id(native)][1]
        if id(native) not in self._walks:
            self._walks[id(native)] = (native, tuple(dict.fromkeys(need.chain[0] for need in native.needs if need.chain)), {})
        _, roots, ranked = self._walks[id(native)]
        tiers = tuple(_root_tier(modules, python, root) for root in roots)
        if tiers not in ranked:
            ranked[tiers] = _ranked(native, dict(zip(roots, tiers)))
        return ranked[tiers]


def _root_tier(modules: ModuleReach, python: DistributionCode, root: str) -> RootTier:
    module = modules.extension_tier(python.item.key, root)
    if module is None and python.unimported and is_extension_module(root):
        module = (Tier.OPTIONAL, python.steps)
    return module


def _ranked(native: NativeReport, roots: dict[str, RootTier]) -> tuple[Record, ...]:
    # Each root is as sure as its module; then again only the strongest record of each library
    # goes on (the resolver answers each one, and only the strongest answer is kept).
    best: dict[tuple[str, LibraryStatus, str | None], tuple[tuple[int, int, int], NativeNeed, Tier, tuple[EvidenceStep, ...]]] = {}
    for need in native.needs:
        tier, steps = need.tier, ()
        module = roots[need.chain[0]] if need.chain else None
        if module is not None:
            tier, steps = tier.weakest(module[0]), module[1]
        # Ties go to the record surest within its own walk: what loads whenever the wheel is imported.
        rank = (tier.rank, need.tier.rank, len(steps) + len(need.chain))
        key = (need.soname, need.status, need.found_at)
        known = best.get(key)
        if known is None or rank < known[0] or (rank == known[0] and _text(steps, need) < _text(known[3], known[1])):
            best[key] = (rank, need, tier, steps)
    return tuple((need, tier, steps) for _, need, tier, steps in best.values())


def _text(steps: tuple[EvidenceStep, ...], need: NativeNeed) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The last tie-break between two walk records: their evidence as text (rarely needed)."""
    return tuple(map(str, steps)), need.chain
