"""Per-distribution knowledge (rules/python/packages.toml): what static analysis cannot settle."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from depaudit.evidence import NeedKind, Tier
from depaudit.packages.rules import RulesError, rules_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_KEYS = {
    "source", "needs", "ignore", "when-files", "versions", "tier", "checked", "cites", "large", "cuda", "wheels",
    "cuda-from", "builds",
}
_CITE_KEYS = {"file", "text"}
_CUDA_FROM_KEYS = {"file", "pattern"}
_BUILD_KEYS = {"needs", "wheels"}
MAX_BUILD_FILE_BYTES = 1 << 20  # a build-info module is a few hundred bytes
_KINDS = {kind.value: kind for kind in NeedKind}
_TIERS = {tier.value: tier for tier in Tier}


@dataclass(frozen=True)
class Citation:
    """A literal `text` found in `file` (its path inside the checked wheel): the code the entry rests on."""

    file: str
    text: str


@dataclass(frozen=True)
class CudaFrom:
    """Where a build writes the CUDA major it targets: the first group of `pattern`, searched
    (multi-line) in the text of `file`, a path inside the wheel. Read as text, never imported."""

    file: str
    pattern: re.Pattern[str]

    def major(self, text: str) -> str | None:
        found = self.pattern.search(text)
        return found.group(1) if found is not None and found.group(1).isdigit() else None


@dataclass(frozen=True)
class Build:
    """The needs of a build for one CUDA major, where they differ from the entry's own."""

    needs: tuple[tuple[NeedKind, str], ...]
    wheels: tuple[tuple[tuple[NeedKind, str], str], ...]


@dataclass(frozen=True)
class PackageRule:
    distribution: str  # canonical key
    source: str
    needs: tuple[tuple[NeedKind, str], ...]  # (kind, name)
    ignore: frozenset[tuple[NeedKind, str]]
    when_files: tuple[str, ...]
    versions: SpecifierSet | None
    checked: Version  # the release whose wheel the citations were read in
    cites: tuple[Citation, ...]
    large: bool = False  # that wheel is too big for CI to download: its citations were checked by hand
    tier: Tier = Tier.REQUIRED  # the strongest tier the rule gives its needs
    # The CUDA major the build targets: it names the `{cuda_major}` packages (libcudnn9-cuda-N) of
    # every need of the distribution, whatever CUDA the image has.
    cuda: str | None = None
    # need → the distribution that ships it for this build (the wheel's own extras say which).
    wheels: tuple[tuple[tuple[NeedKind, str], str], ...] = ()
    # Where a build says its CUDA major, and the needs of each major other than `cuda`'s: one
    # release may be built for several (a CUDA 12 build of a CUDA 13 default).
    cuda_from: CudaFrom | None = None
    builds: tuple[tuple[str, Build], ...] = ()

    def for_build(self, major: str | None) -> PackageRule:
        """The rule for a build of CUDA `major` (None: the build does not say; the entry as written).
        A major with no build of its own keeps the entry's needs, its packages named for that major."""
        if major is None or major == self.cuda or self.cuda_from is None:
            return self
        source = f"{self.source}; this build is for CUDA {major}, as its {self.cuda_from.file} says"
        build = dict(self.builds).get(major)
        if build is None:
            return replace(self, cuda=major, source=source)
        return replace(self, cuda=major, needs=build.needs, wheels=build.wheels, source=source)

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
        checked = _checked(path.name, name, entry.get("checked"), versions)
        large = entry.get("large", False)
        if not isinstance(large, bool):
            raise RulesError(f"{path.name}: [{name}] large must be true or false (got {large!r})")
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
            checked=checked,
            cites=_cites(path.name, name, entry.get("cites")),
            large=large,
            tier=_TIERS[tier],
            cuda=_cuda(path.name, name, entry.get("cuda")),
            wheels=_wheels(path.name, name, entry.get("wheels", {})),
            cuda_from=_cuda_from(path.name, name, entry.get("cuda-from")),
            builds=_builds(path.name, name, entry.get("builds", {})),
        )
        _check_wheels(path.name, name, rules[key].needs, rules[key].wheels)
        if rules[key].builds and rules[key].cuda_from is None:
            raise RulesError(f"{path.name}: [{name}] builds needs cuda-from, where a build writes its CUDA major")
    return rules


def _check_wheels(file: str, name: str, needs: tuple[tuple[NeedKind, str], ...], wheels: tuple[tuple[tuple[NeedKind, str], str], ...]) -> None:
    stray = [need for need, _ in wheels if need not in needs]
    if stray:
        raise RulesError(f"{file}: [{name}] wheels names {stray[0][0].value}:{stray[0][1]}, which is not among its needs")


def _cuda_from(file: str, name: str, value: object) -> CudaFrom | None:
    """`cuda-from = { file = "pkg/build_info.py", pattern = "^cuda_version = '(\\d+)" }`."""
    if value is None:
        return None
    shape = f"{file}: [{name}] cuda-from must be {{ file = \"path/in/the/wheel\", pattern = \"a regex whose group 1 is the major\" }}"
    if not isinstance(value, dict) or set(value) != _CUDA_FROM_KEYS or not all(isinstance(v, str) and v for v in value.values()):
        raise RulesError(f"{shape} (got {value!r})")
    try:
        pattern = re.compile(value["pattern"], re.MULTILINE)
    except re.error as error:
        raise RulesError(f"{shape} (got {value['pattern']!r}: {error})") from error
    if pattern.groups < 1:
        raise RulesError(f"{shape} (got {value['pattern']!r}: no group)")
    return CudaFrom(value["file"], pattern)


def _builds(file: str, name: str, value: object) -> tuple[tuple[str, Build], ...]:
    """`[NAME.builds."12"]` with `needs` and `wheels`: what a build for that CUDA major needs instead."""
    if not isinstance(value, dict):
        raise RulesError(f"{file}: [{name}] builds must be tables named by CUDA major")
    builds = []
    for major, table in value.items():
        where = f"{name}.builds.{major}"
        if not major.isdigit() or not isinstance(table, dict) or set(table) - _BUILD_KEYS or "needs" not in table:
            raise RulesError(f"{file}: [{where}] must be a CUDA major's table of needs (and wheels)")
        needs = tuple(_need(file, where, item) for item in table["needs"])
        wheels = _wheels(file, where, table.get("wheels", {}))
        _check_wheels(file, where, needs, wheels)
        builds.append((major, Build(needs, wheels)))
    return tuple(builds)


def _cuda(file: str, name: str, value: object) -> str | None:
    if value is None or (isinstance(value, str) and value.isdigit()):
        return value
    raise RulesError(f"{file}: [{name}] cuda must be a CUDA major such as \"13\" (got {value!r})")


def _wheels(file: str, name: str, value: object) -> tuple[tuple[tuple[NeedKind, str], str], ...]:
    """`wheels = { "soname:libx.so.1" = "distribution" }`: each key one of the entry's needs' form."""
    if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
        raise RulesError(f"{file}: [{name}] wheels must be a table of \"soname:NAME\" = \"distribution\"")
    return tuple((_need(file, name, key), canonicalize_name(dist)) for key, dist in value.items())


def _need(file: str, name: str, item: object) -> tuple[NeedKind, str]:
    kind, _, value = str(item).partition(":")
    if kind not in _KINDS or not value:
        raise RulesError(f"{file}: [{name}] {item!r} must be 'soname:NAME' or 'program:NAME'")
    return _KINDS[kind], value


def _checked(file: str, name: str, value: object, versions: SpecifierSet | None) -> Version:
    """`checked = "NAME==VERSION"`: this distribution, one exact release, inside the entry's `versions`."""
    problem = f"{file}: [{name}] checked must be '{name}==VERSION', the release the citations were read in (got {value!r})"
    if not isinstance(value, str):
        raise RulesError(problem)
    dist, separator, version = value.partition("==")
    if not separator or canonicalize_name(dist.strip()) != canonicalize_name(name):
        raise RulesError(problem)
    try:
        release = Version(version.strip())
    except InvalidVersion:
        raise RulesError(problem) from None
    if versions is not None and release not in versions:
        raise RulesError(f"{file}: [{name}] checked {value!r} is outside the entry's versions {str(versions)!r}")
    return release


def _cites(file: str, name: str, value: object) -> tuple[Citation, ...]:
    """`cites = [{ file = "path/in/the/wheel", text = "literal" }, ...]`: at least one."""
    shape = f"{file}: [{name}] cites must be a non-empty list of {{ file = \"path/in/the/wheel\", text = \"...\" }}"
    if not isinstance(value, list) or not value:
        raise RulesError(shape)
    cites = []
    for item in value:
        if not isinstance(item, dict) or set(item) != _CITE_KEYS:
            raise RulesError(f"{shape} (got {item!r})")
        path, text = item["file"], item["text"]
        if not isinstance(path, str) or not isinstance(text, str) or not text:
            raise RulesError(f"{shape} (got {item!r})")
        # A relative path inside the wheel: nothing a test would look up outside it.
        parts = PurePosixPath(path).parts
        if not parts or path.startswith("/") or "\\" in path or ".." in parts:
            raise RulesError(f"{file}: [{name}] cites: {path!r} is not a relative path inside the wheel")
        cites.append(Citation(path, text))
    return tuple(cites)
