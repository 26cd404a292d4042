"""Per-distribution knowledge (rules/python/packages.toml): what static analysis cannot settle."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from depaudit.evidence import NeedKind, Tier
from depaudit.packages.rules import RulesError, rules_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_KEYS = {"source", "needs", "ignore", "when-files", "versions", "tier"}
_KINDS = {kind.value: kind for kind in NeedKind}
_TIERS = {tier.value: tier for tier in Tier}


@dataclass(frozen=True)
class PackageRule:
    distribution: str  # canonical key
    source: str
    needs: tuple[tuple[NeedKind, str], ...]  # (kind, name)
    ignore: frozenset[tuple[NeedKind, str]]
    when_files: tuple[str, ...]
    versions: SpecifierSet | None
    tier: Tier = Tier.REQUIRED  # the strongest tier the rule gives its needs

    def applies(self, version: str, files: frozenset[str]) -> bool:
        if any(path not in files for path in self.when_files):
            return False
        if self.versions is None:
            return True
        try:
            return Version(version) in self.versions
        except InvalidVersion:
            return False


def python_rules_path() -> Path:
    return rules_dir() / "python" / "packages.toml"


def load_python_rules(path: Path | None = None) -> dict[str, PackageRule]:
    path = path or python_rules_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RulesError(f"{path.name}: cannot read: {error}") from error
    rules: dict[str, PackageRule] = {}
    for name, entry in data.items():
        unknown = set(entry) - _KEYS
        if unknown or not isinstance(entry.get("source"), str):
            raise RulesError(f"{path.name}: [{name}] needs a source and only {sorted(_KEYS)} (got {sorted(unknown)})")
        try:
            versions = SpecifierSet(entry["versions"]) if "versions" in entry else None
        except InvalidSpecifier as error:
            raise RulesError(f"{path.name}: [{name}] versions: {error}") from error
        key = canonicalize_name(name)
        tier = entry.get("tier", Tier.REQUIRED.value)
        if tier not in _TIERS:
            raise RulesError(f"{path.name}: [{name}] tier must be one of {sorted(_TIERS)} (got {tier!r})")
        rules[key] = PackageRule(
            distribution=key,
            source=entry["source"],
            needs=tuple(_need(path.name, name, item) for item in entry.get("needs", [])),
            ignore=frozenset(_need(path.name, name, item) for item in entry.get("ignore", [])),
            when_files=tuple(entry.get("when-files", [])),
            versions=versions,
            tier=_TIERS[tier],
        )
    return rules


def _need(file: str, name: str, item: object) -> tuple[NeedKind, str]:
    kind, _, value = str(item).partition(":")
    if kind not in _KINDS or not value:
        raise RulesError(f"{file}: [{name}] {item!r} must be 'soname:NAME' or 'program:NAME'")
    return _KINDS[kind], value
