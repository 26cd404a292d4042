"""What the packages stage hands to the plan: each service's needs, answered for the target distro."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from depaudit.evidence import EvidenceStep, NeedKind, NeedStatus, StepKind, Tier
from depaudit.findings import Finding
from depaudit.python.model import ResolvedImport


@dataclass(frozen=True)
class Need:
    kind: NeedKind
    name: str  # the soname or program
    status: NeedStatus
    package: str | None  # apt package on the target distro, where one applies
    tier: Tier
    chain: tuple[EvidenceStep, ...]  # from the service to the package (or the file it resolved to)
    found_at: str | None = None  # the file it resolved to (environment-relative, or an image path)
    rule: str | None = None  # the loader rule that found it
    tried: tuple[str, ...] = ()  # where the loader looked, when nothing was found

    @property
    def fails(self) -> bool:
        """A required library the image lacks: the service dies at import."""
        return self.tier is Tier.REQUIRED and self.status.fails

    @property
    def fix(self) -> str | None:
        """For a driver file the image's capabilities do not mount: what to add, on which line."""
        if self.status is not NeedStatus.CAPABILITY:
            return None
        return next((step.label for step in self.chain if step.kind is StepKind.DRIVER), None)

    @property
    def origin(self) -> EvidenceStep | None:
        """Where the service's own evidence starts: its import, its call, or its own ELF object."""
        return next((step for step in self.chain if step.kind is not StepKind.SERVICE), None)

    @property
    def path(self) -> tuple[EvidenceStep, ...]:
        """The steps between the service and the need itself: how the service comes to need it."""
        steps = self.chain[1:] if self.chain and self.chain[0].kind is StepKind.SERVICE else self.chain
        for end in range(len(steps) - 1, -1, -1):
            if steps[end].kind is StepKind.NEED:
                return steps[:end]
        return steps


@dataclass(frozen=True)
class ServiceReport:
    name: str
    imports: tuple[ResolvedImport, ...]
    needs: tuple[Need, ...]
    findings: tuple[Finding, ...]
    base_image: str | None = None  # what it was audited against: an image or a profiled reference
    families: tuple[str, ...] = ()  # family images its Dockerfile's FROM chain goes through
    # The folder its findings' and its own evidence's paths are relative to (the scanned PATH),
    # absolute: what SARIF needs to name those files from the repository root.
    display_root: Path | None = None


def strongest_needs(needs: Iterable[Need]) -> tuple[Need, ...]:
    """One need per file it resolves to (or per package, when it resolves nowhere): the
    strongest, shortest evidence wins. A wheel's library seen from its own walk and from a
    dependent's is one library."""
    best: dict[tuple[str, str | None, str | None], Need] = {}
    for need in needs:
        # An object already loaded is another answer than the walk that loads it: both stay.
        if need.found_at and need.status is not NeedStatus.LOADED:
            key: tuple[str, str | None, str | None] = (need.name, need.found_at, None)
        else:
            key = (need.name, need.status.value, need.package)
        current = best.get(key)
        if current is None or _stronger(need, current):
            best[key] = need
    return tuple(sorted(best.values(), key=lambda n: (n.status.rank, n.tier.rank, n.name)))


def _stronger(need: Need, other: Need) -> bool:
    """Surer, else shorter evidence, else the evidence first as text: the order of (tier rank,
    chain length, each step's text), its texts made only for the steps where two chains differ
    (they share the service's own steps, often as the same objects)."""
    mine, theirs = (need.tier.rank, len(need.chain)), (other.tier.rank, len(other.chain))
    if mine != theirs:
        return mine < theirs
    for step, known in zip(need.chain, other.chain):
        if step is not known:
            text, known_text = str(step), str(known)
            if text != known_text:
                return text < known_text
    return False
