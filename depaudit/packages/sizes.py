"""What a package costs an image: its Installed-Size, and those of the Depends it brings along.

From a distro's Packages data: each package's Installed-Size (KiB), its Pre-Depends and Depends
as groups of alternatives, and the virtual packages it Provides. `added()` resolves an install
the way `apt-get install --no-install-recommends` does on a system that has some packages
already: a group is met by any alternative (or a provider of one) that is there or chosen, else
the first alternative that is a real package is chosen, else the first provider of a virtual one.
Versions are not compared: on a consistent system what is there satisfies what needs it.

Embedded for every package the rules name and their Depends closures (rules/sizes/); an index
built by `depaudit index` with a Packages file adds the rest.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from depaudit import consulted
from depaudit.packages.rules import rules_dir


@dataclass(frozen=True)
class PackageSizes:
    installed: Mapping[str, int] = field(default_factory=dict)  # package → Installed-Size, KiB
    depends: Mapping[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)  # Pre-Depends + Depends
    provides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # virtual package → who provides it

    def merged(self, other: PackageSizes | None) -> PackageSizes:
        """These, with `other`'s for the packages these lack."""
        if other is None:
            return self
        provides = {name: tuple(dict.fromkeys((*other.provides.get(name, ()), *found))) for name, found in self.provides.items()}
        return PackageSizes(
            {**other.installed, **self.installed},
            {**other.depends, **self.depends},
            {**other.provides, **provides},
        )

    def knows(self, package: str) -> bool:
        return package in self.installed

    def kib(self, packages: Iterable[str]) -> int:
        return sum(self.installed.get(package, 0) for package in set(packages))

    def added(self, packages: Iterable[str], present: Iterable[str]) -> set[str]:
        """What installing `packages` adds to a system that has `present`: they and the Depends
        they pull in, less what is there."""
        have = set(present)
        provided = {virtual for package in have for virtual in self._virtuals(package)}
        chosen: set[str] = set()
        # A virtual name asked for is met by a provider that is there, else apt installs one.
        asked = [p for p in dict.fromkeys(packages) if p not in have and p not in provided]
        queue = deque(self._pick((p,)) or p for p in asked)
        while queue:
            package = queue.popleft()
            if package in chosen or package in have:
                continue
            chosen.add(package)
            provided.update(self._virtuals(package))
            for group in self.depends.get(package, ()):
                if any(name in have or name in chosen or name in provided for name in group):
                    continue
                pick = self._pick(group)
                if pick is not None and pick not in chosen:
                    queue.append(pick)
        return chosen

    def resolved(self, package: str, present: frozenset[str] = frozenset()) -> tuple[str, ...]:
        """What the package's Depends surely install: for each group, the member `present` has
        (an image's own package), else its one choice (a single real package, or a virtual one
        with a single provider). A group of alternatives names no one package apt surely picks:
        which one depends on what else the image has and the order apt meets them in."""
        picks = []
        for group in self.depends.get(package, ()):
            members = [p for name in group for p in ((name,) if name in self.installed else self.provides.get(name, ()))]
            there = next((p for p in members if p in present), None)
            if there is not None:
                picks.append(there)
            elif len(set(members)) == 1:
                picks.append(members[0])
        return tuple(picks)

    def possible(self, package: str) -> tuple[str, ...]:
        """Whatever the package's Depends may install: every alternative, every provider."""
        found = []
        for group in self.depends.get(package, ()):
            for name in group:
                found += [name] if name in self.installed else self.provides.get(name, ())
        return tuple(dict.fromkeys(found))

    def providers(self, virtual: str) -> tuple[str, ...]:
        """Who provides a virtual package (none for a real one)."""
        return () if virtual in self.installed else self.provides.get(virtual, ())

    def closure(self, packages: Iterable[str]) -> set[str]:
        """The packages and everything they pull in on an empty system."""
        return self.added(packages, ())

    def _pick(self, group: tuple[str, ...]) -> str | None:
        for name in group:
            if name in self.installed:
                return name
        for name in group:
            providers = self.provides.get(name, ())
            if providers:
                return providers[0]
        return None

    def _virtuals(self, package: str) -> tuple[str, ...]:
        return self._provided_by.get(package, ())

    @cached_property
    def _provided_by(self) -> dict[str, tuple[str, ...]]:
        """Package → the virtual packages it provides (cached_property writes past the frozen
        __setattr__: the class has no __slots__)."""
        reverse: dict[str, list[str]] = {}
        for virtual, providers in self.provides.items():
            for provider in providers:
                reverse.setdefault(provider, []).append(virtual)
        return {p: tuple(v) for p, v in reverse.items()}

    def restricted(self, packages: Iterable[str]) -> PackageSizes:
        """Only what resolving these packages can reach (every alternative and provider of their
        Depends, followed to the end), and every virtual name those provide."""
        reached: set[str] = set()
        queue = deque(packages)
        while queue:
            package = queue.popleft()
            if package in reached:
                continue
            reached.add(package)
            for group in self.depends.get(package, ()):
                for name in group:
                    queue.append(name)
                    queue.extend(self.provides.get(name, ()))
        return PackageSizes(
            {p: self.installed[p] for p in sorted(reached) if p in self.installed},
            {p: self.depends[p] for p in sorted(reached) if p in self.depends},
            {v: tuple(p for p in found if p in reached) for v, found in sorted(self.provides.items())
             if any(p in reached for p in found)},  # every name a reached package provides: a list may use it
        )

    def to_json(self) -> dict[str, object]:
        return {
            "installed": dict(sorted(self.installed.items())),
            "depends": {p: [list(group) for group in groups] for p, groups in sorted(self.depends.items())},
            "provides": {v: list(found) for v, found in sorted(self.provides.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PackageSizes:
        installed, depends, provides = data.get("installed", {}), data.get("depends", {}), data.get("provides", {})
        assert isinstance(installed, dict) and isinstance(depends, dict) and isinstance(provides, dict)
        return cls(
            {str(p): int(size) for p, size in installed.items()},
            {str(p): tuple(tuple(group) for group in groups) for p, groups in depends.items()},
            {str(v): tuple(found) for v, found in provides.items()},
        )


def parse_groups(value: str) -> tuple[tuple[str, ...], ...]:
    """`libc6 (>= 2.34), libasound2 | libasound2t64, foo:any` → (('libc6',), ('libasound2', 'libasound2t64'), ('foo',))."""
    groups = []
    for group in value.split(","):
        names = []
        for alternative in group.split("|"):
            name = re.split(r"[\s(\[<]", alternative.strip(), maxsplit=1)[0].split(":", 1)[0]
            if name:
                names.append(name)
        if names:
            groups.append(tuple(names))
    return tuple(groups)


def read_sizes(paragraphs: Iterable[Mapping[str, str]]) -> PackageSizes:
    """From the paragraphs of Packages files: the first paragraph of a package wins (list the
    newer pocket first, as apt prefers the newer version)."""
    installed: dict[str, int] = {}
    depends: dict[str, tuple[tuple[str, ...], ...]] = {}
    provides: dict[str, list[str]] = {}
    for fields in paragraphs:
        name = fields.get("Package")
        if not name or name in installed:
            continue
        size = fields.get("Installed-Size", "0").strip()
        installed[name] = int(size) if size.isdigit() else 0
        runtime = ", ".join(v for v in (fields.get("Pre-Depends"), fields.get("Depends")) if v)
        depends[name] = parse_groups(runtime)
        for group in parse_groups(fields.get("Provides", "")):
            for virtual in group:
                provides.setdefault(virtual, []).append(name)
    return PackageSizes(installed, depends, {v: tuple(found) for v, found in provides.items()})


def sizes_dir() -> Path:
    return rules_dir() / "sizes"


def load_sizes(distro: str, directory: Path | None = None) -> PackageSizes:
    """The sizes embedded for `distro` (none: empty)."""
    path = (directory or sizes_dir()) / f"{distro}.json.gz"
    try:
        consulted.note_read(path)
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            return PackageSizes.from_json(json.load(stream))
    except (OSError, ValueError, AssertionError, EOFError):
        return PackageSizes()


def change_size(kib: int | None, change: str) -> str | None:
    """How a plan line's figure reads: `+4.2 MB` added, `−0.1 MB` freed, `0 MB`; None without one
    (a package the data does not know, a build-only line)."""
    if kib is None or change == "build_only":
        return None
    if kib == 0:
        return "0 MB"
    return f"{'+' if change == 'add' else '−'}{megabytes(kib)}"


def megabytes(kib: int) -> str:
    """As people read image sizes: `221 MB`, `3.4 MB`, `0.2 MB`; nothing is `0 MB`."""
    if kib == 0:
        return "0 MB"
    mb = kib * 1024 / 1e6
    return f"{mb:.0f} MB" if mb >= 10 else f"{mb:.1f} MB"
