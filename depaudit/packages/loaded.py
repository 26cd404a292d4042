"""Libraries the service's process has already loaded when an extension module needs them.

glibc's loader compares a DT_NEEDED name with the names of the objects already in the process
before it searches any folder: torchvision's `_C.so` needs `libc10.so`, which only torch ships and
no search path of torchvision's leads to, yet it loads, because torchvision's `__init__` imports
torch first and torch's `_C.so` has loaded `libc10.so` from torch/lib. One process per service:
a library some reached distribution loads counts for another one's need only when the first is
known to be imported before the second's extension modules load: the second's package
`__init__` imports it first, or the service's own imports come in that order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from depaudit.evidence import EvidenceStep, StepKind, Tier
from depaudit.native.model import LibraryStatus, NativeNeed
from depaudit.python.first_imports import FirstImport
from depaudit.python.model import Distribution
from depaudit.python.reach import Reached, ServiceReach

# Statuses of a need that the loader satisfied by loading a file: that file is now in the process.
_LOADS = (LibraryStatus.BUNDLED, LibraryStatus.OTHER_WHEEL, LibraryStatus.IMAGE)


@dataclass(frozen=True)
class EarlierLoad:
    """A library already in the process, and the import that put it there first."""

    found_at: str  # the loaded file, as the native stage shows it
    owner: str  # key of the distribution whose extension modules load it
    step: EvidenceStep  # the import that loads it, ahead of the need
    by_service_order: bool  # holds only because of the order of the service's own imports

    @property
    def rule(self) -> str:
        return f"already loaded by {self.owner}" + (" (the service's import order)" if self.by_service_order else "")


class ProcessOrder:
    """What the extension modules of the distributions a service reaches load, and which of them
    is known to be in the process before a given distribution's extension modules."""

    def __init__(
        self,
        reach: ServiceReach,
        walks: Mapping[str, Iterable[tuple[NativeNeed, Tier]]],  # per distribution key: its walk records, as sure once it is imported
        distributions: Mapping[str, Distribution],
        first_imports: Callable[[str], Mapping[str, FirstImport]],
    ) -> None:
        self.items = {item.key: item for item in reach.reached}
        self.distributions = distributions
        self.first_imports = first_imports
        self._first: dict[str, dict[str, FirstImport]] = {}
        # soname → (owner key, file): loaded whenever the owner is imported (a required walk from
        # one of its extension modules the service surely imports), so it is in the process if the owner is.
        self.loaded: dict[str, list[tuple[str, str]]] = {}
        for key in sorted(walks):
            for need, tier in walks[key]:
                if need.status in _LOADS and tier is Tier.REQUIRED and need.found_at is not None:
                    self.loaded.setdefault(need.soname, []).append((key, need.found_at))

    def earlier(self, key: str, soname: str, imported: Mapping[str, FirstImport] | None = None) -> EarlierLoad | None:
        """The load that satisfies distribution `key`'s need of `soname` before any search, if one
        is known. `imported`: distributions known to be imported before this load besides those
        `key`'s `__init__` imports first (a load in a function runs after its module's imports)."""
        for owner, found_at in self.loaded.get(soname, ()):
            if owner == key:
                continue  # its own extension modules load in an order the code does not say
            label = f"{self.distributions[owner].label} has loaded {found_at} first"
            first = self._imported_first(key).get(owner)
            if first is None and imported:
                first = self._through(imported).get(owner)
            if first is not None:
                direct = owner in self.first_imports(key) or (imported is not None and owner in imported)
                through = "" if direct else f", which imports {self.distributions[owner].name} first"
                step = EvidenceStep(StepKind.LOADED, f"{first.statement}{through}: {label}", first.file, first.line, owner)
                return EarlierLoad(found_at, owner, step, False)
            before = self._service_imports_first(owner, key)
            if before is not None:
                note = f"; only because the service imports it before {self.distributions[key].name}"
                step = EvidenceStep(StepKind.LOADED, f"{before.label}: {label}{note}", before.file, before.line, owner)
                return EarlierLoad(found_at, owner, step, True)
        return None

    def _through(self, before: Mapping[str, FirstImport]) -> dict[str, FirstImport]:
        """The distributions `before` names, and what each of their `__init__`s imports first."""
        found = dict(before)
        queue = deque(found)
        while queue:
            current = queue.popleft()
            for further in self.first_imports(current):
                if further not in found:
                    found[further] = found[current]
                    queue.append(further)
        return found

    def _imported_first(self, key: str) -> dict[str, FirstImport]:
        """Every distribution in the process before `key`'s own modules run, with the import of
        `key`'s `__init__` that brings it: what that import's `__init__` imports first, too."""
        if key in self._first:
            return self._first[key]
        found = self._first[key] = dict(self.first_imports(key))
        queue = deque(found)
        while queue:
            current = queue.popleft()
            for further in self.first_imports(current):
                if further != key and further not in found:
                    found[further] = found[current]
                    queue.append(further)
        return found

    def _service_imports_first(self, owner: str, key: str) -> EvidenceStep | None:
        """The service's unguarded import that reaches `owner`, on an earlier line of the same
        file than the import that reaches `key`."""
        loader, needing = self.items.get(owner), self.items.get(key)
        if loader is None or needing is None or loader.tier is not Tier.REQUIRED:
            return None
        first, then = _service_import(loader), _service_import(needing)
        if first is None or then is None or first.file != then.file or first.line is None or then.line is None:
            return None
        return first if first.line < then.line else None


def _service_import(item: Reached) -> EvidenceStep | None:
    """The import line in the service's code through which it reaches the distribution."""
    imports = [step for step in item.chain if step.kind is StepKind.IMPORT]
    return imports[-1] if imports else None
