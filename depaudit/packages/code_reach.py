"""How surely a service runs the code of a distribution it reaches: per module, as module reach
says, else once per distribution (its top-level code runs at import, the rest may not)."""

from __future__ import annotations

from depaudit.evidence import EvidenceStep, StepKind, Tier
from depaudit.native.hints import FileHint, runs_at_import
from depaudit.python.model import Distribution
from depaudit.python.modules import ModuleReach
from depaudit.python.reach import Reached


class DistributionCode:
    """One reached distribution: how surely its Python code, and its extension modules' walks, run."""

    def __init__(self, item: Reached, dist: Distribution, modules: ModuleReach | None, direct: bool) -> None:
        self.item = item
        self.modules = modules
        self.imported: tuple[Tier, tuple[EvidenceStep, ...]] | None = None
        self.unimported = False  # module reach walks none of its modules
        if modules is not None:
            found = modules.distribution_tier(item.key, dist.modules)
            if found is None and direct:
                found = (item.tier, ())  # the service imports it itself (a namespace package: no module file)
            if found is None:
                self.unimported = True
                # Imported only inside a function of a reached module (torchaudio's load imports
                # torchcodec), or not at all: declared by a Requires-Dist on the way, loaded some
                # way no import statement shows, if at all.
                found = modules.lazy_tier(item.key)
            if found is None:
                step = EvidenceStep(StepKind.MODULE, f"no module the service reaches imports {dist.label}")
                found = (item.tier.weakest(Tier.OPTIONAL), (step,))
            self.imported = found

    @property
    def tier(self) -> Tier:
        """How surely some of its code runs: what a rule about the whole distribution holds to."""
        return self.item.tier if self.imported is None else self.imported[0]

    @property
    def steps(self) -> tuple[EvidenceStep, ...]:
        return () if self.imported is None else self.imported[1]

    def once_imported(self, walked: Tier, tier: Tier) -> Tier:
        """How sure a walk record is once the distribution is imported at all. `walked`: as the
        walk found it; `tier`: as sure as its module is in this service, the distribution's own
        tier counted in. A module as sure as the distribution is loaded whenever it is."""
        if self.imported is None or self.unimported or tier.rank > self.imported[0].rank:
            return tier
        return walked

    def of(self, hint: FileHint) -> tuple[Tier, tuple[EvidenceStep, ...]]:
        """How surely the code at a hint runs, with the module steps to its file."""
        if self.modules is None:
            return (self.item.tier if runs_at_import(hint) else Tier.HINT), ()  # HINT: only if that feature runs
        reached = self.modules.file_tier(hint.file)
        if hint.hint.lazy and (called := self.modules.calls.function_tier(hint.file, hint.hint.line)) is not None:
            # In a function body one of the service's calls runs: as sure as that call. A which()
            # there only asks (pydub's get_encoder_name tries avconv, then ffmpeg): a hint.
            if _probes(hint):
                return Tier.HINT, called.steps
            return called.tier if reached is None else called.tier.weakest(reached[0]), called.steps
        if reached is None:
            if self.unimported:
                # Nothing of it is walked: the old per-distribution reading, at most optional.
                return (self.tier if runs_at_import(hint) else Tier.HINT), self.steps
            return Tier.HINT, ()  # its module is not reached: only if something loads it some other way
        if _probes(hint) and not runs_at_import(hint):
            return Tier.HINT, reached[1]
        if hint.hint.lazy:
            # In a function of a reached module that no followed call runs: it may be called some
            # way the call walk does not see (a callback, an object passed in), so what it loads or
            # starts is kept, as an import there is: optional, never required.
            return Tier.OPTIONAL, (*reached[1], _NOT_KNOWN_CALLED)
        return reached[0], reached[1]


_NOT_KNOWN_CALLED = EvidenceStep(StepKind.MODULE, "inside a function not known to be called")


def _probes(hint: FileHint) -> bool:
    """`shutil.which` below a package's top level asks whether a program is there and adapts
    (PIL.ImageShow registers the viewers it finds): weak evidence, as it always was."""
    return hint.hint.call.rsplit(".", 1)[-1] == "which"
