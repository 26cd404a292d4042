"""A full soname / executable → package index for one distro, built from its Contents file.

`depaudit index` builds it once from a `Contents-<arch>` file (what apt-file downloads) and,
optionally, a `Packages` file or dpkg status file for Depends and for telling transitional
packages apart; scans then use it for everything the curated rules do not name.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from depaudit.paths import default_cache_dir
from depaudit.reading import open_regular
from depaudit.packages.compressed import UnreadableInput, text_lines
from depaudit.packages.sizes import PackageSizes, read_sizes

FORMAT_VERSION = 1
_LOADER_DIRS = frozenset(
    ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib", "usr/lib", "lib64", "usr/lib64")
)
_BIN_DIRS = ("usr/bin", "bin", "usr/sbin", "sbin", "usr/games")
_SONAME = re.compile(r"^(lib[^/]*\.so\.[^/]+|ld-linux[^/]*\.so\.\d+|lib[^/]*-[\d.]+\.so)$")
_POLICY = re.compile(r"^lib(.+)\.so\.([^.]+)$")
_NOT_RUNTIME = ("-dev", "-dbg", "-dbgsym", "-doc", "-udeb")


@dataclass(frozen=True)
class IndexEntry:
    package: str  # the chosen provider
    alternatives: tuple[str, ...] = ()  # other packages shipping the same name, in preference order


@dataclass(frozen=True)
class PackageIndex:
    distro: str
    source: str  # the files it was built from
    sonames: Mapping[str, IndexEntry] = field(repr=False)
    executables: Mapping[str, IndexEntry] = field(repr=False)
    depends: Mapping[str, tuple[str, ...]] = field(repr=False)  # package → runtime Depends
    sizes: PackageSizes | None = field(default=None, repr=False)  # from the Packages file, when one was given

    def to_json(self) -> dict[str, object]:
        def table(entries: Mapping[str, IndexEntry]) -> dict[str, list[str]]:
            return {name: [e.package, *e.alternatives] for name, e in sorted(entries.items())}

        return {
            "format": FORMAT_VERSION,
            "distro": self.distro,
            "source": self.source,
            "sonames": table(self.sonames),
            "executables": table(self.executables),
            "depends": {p: list(d) for p, d in sorted(self.depends.items())},
            **({"sizes": self.sizes.to_json()} if self.sizes is not None else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PackageIndex:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"index format {data.get('format')!r}, expected {FORMAT_VERSION}")

        def table(raw: object) -> dict[str, IndexEntry]:
            assert isinstance(raw, dict)
            return {name: IndexEntry(packages[0], tuple(packages[1:])) for name, packages in raw.items()}

        depends = data["depends"]
        assert isinstance(depends, dict)
        return cls(
            distro=str(data["distro"]),
            source=str(data["source"]),
            sonames=table(data["sonames"]),
            executables=table(data["executables"]),
            depends={p: tuple(d) for p, d in depends.items()},
            sizes=PackageSizes.from_json(data["sizes"]) if isinstance(data.get("sizes"), dict) else None,  # type: ignore[arg-type]
        )


def contents_entries(lines: Iterable[str]) -> Iterator[tuple[str, list[str]]]:
    """(path without leading '/', [package, ...]) per line of a Contents file."""
    for line in lines:
        path, _, locations = line.rstrip("\n").rpartition(" ")
        path = path.rstrip().lstrip("/")
        if not path or not locations or path == "FILE":
            continue  # old Contents files open with a prose header
        yield path, [location.rsplit("/", 1)[-1] for location in locations.split(",")]


def read_control(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Paragraphs of a Packages or dpkg status file."""
    fields: dict[str, str] = {}
    key = ""
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            if fields:
                yield fields
            fields, key = {}, ""
        elif line[0] in " \t" and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    if fields:
        yield fields


def parse_depends(value: str) -> tuple[str, ...]:
    """`libc6 (>= 2.34), libasound2 | libasound2t64` → ('libc6', 'libasound2'): first alternatives."""
    names = []
    for group in value.split(","):
        first = group.split("|", 1)[0].strip()
        name = re.split(r"[\s(\[<]", first, maxsplit=1)[0].split(":", 1)[0]
        if name:
            names.append(name)
    return tuple(names)


def build_index(distro: str, contents: Path, packages: Path | None = None) -> PackageIndex:
    contents_lines = text_lines(contents)  # rejects a file that is not text before the long read
    transitional: set[str] = set()
    depends: dict[str, tuple[str, ...]] = {}
    sizes = None
    if packages is not None:
        paragraphs = list(read_control(text_lines(packages)))
        if not any(fields.get("Package") for fields in paragraphs):
            raise UnreadableInput(f"{packages}: names no package: not a Packages or dpkg status file")
        sizes = read_sizes(paragraphs)
        for fields in paragraphs:
            name = fields.get("Package")
            if not name:
                continue
            description = fields.get("Description", "").lower()
            if "transitional" in description.split("\n", 1)[0] or fields.get("Section", "").endswith("oldlibs"):
                transitional.add(name)
            runtime = ", ".join(v for v in (fields.get("Pre-Depends"), fields.get("Depends")) if v)
            depends.setdefault(name, parse_depends(runtime))

    # Ranked: ld.so's own folders, runtime over -dev/-dbg, real over transitional, the package
    # Debian's naming policy expects (libsystemd0 over libelogind0 for libsystemd.so.0), name.
    sonames: dict[str, list[tuple[tuple[int, bool, bool, bool, str], str]]] = {}
    executables: dict[str, list[tuple[tuple[int, bool, bool, bool, str], str]]] = {}
    for path, owners in contents_entries(contents_lines):
        folder, _, name = path.rpartition("/")
        if folder in _BIN_DIRS:
            target = executables
            place = _BIN_DIRS.index(folder)
        elif _SONAME.match(name) and any(part.startswith("lib") for part in folder.split("/")):
            # Not only /usr/lib: CUDA's packages ship in /usr/local/cuda-X.Y/targets/.../lib.
            target = sonames
            place = 0 if folder in _LOADER_DIRS else 1  # ld.so finds these without help
        else:
            continue
        policy = policy_package_name(name) if target is sonames else None
        for package in owners:
            rank = (place, package.endswith(_NOT_RUNTIME), package in transitional, package != policy, package)
            target.setdefault(name, []).append((rank, package))
    if not sonames and not executables:
        # Every distro's Contents lists libc6's sonames and coreutils' programs: this is another file.
        raise UnreadableInput(f"{contents}: lists no library and no program: not a Contents file")

    def choose(found: dict[str, list[tuple[tuple[int, bool, bool, bool, str], str]]]) -> dict[str, IndexEntry]:
        chosen = {}
        for name, candidates in found.items():
            ordered = list(dict.fromkeys(package for _, package in sorted(candidates)))
            chosen[name] = IndexEntry(ordered[0], tuple(ordered[1:]))
        return chosen

    source = contents.name + (f" + {packages.name}" if packages else "")
    return PackageIndex(distro, source, choose(sonames), choose(executables), depends, sizes)


def policy_package_name(soname: str) -> str | None:
    """Debian's library package naming: libfoo.so.3 → libfoo3; libfoo2.so.3 → libfoo2-3.

    Only a tie-breaker among real providers, or an answer marked `guessed`: never a fact."""
    match = _POLICY.match(soname)
    if match is None:
        return None
    stem, version = match.group(1).lower().replace("_", "-"), match.group(2).lower()
    return f"lib{stem}-{version}" if stem[-1].isdigit() else f"lib{stem}{version}"


def index_path(distro: str, cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "index" / f"{distro}.json.gz"


def save_index(index: PackageIndex, cache_dir: Path | None = None) -> Path:
    path = index_path(index.distro, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    with gzip.open(temporary, "wt", encoding="utf-8") as out:
        json.dump(index.to_json(), out)
    os.replace(temporary, path)  # concurrent scans never read a half-written index
    return path


def load_index(distro: str, cache_dir: Path | None = None) -> PackageIndex | None:
    """The index `depaudit index` built for this distro. Its readers trust that it describes
    `distro`: another distro's index names other packages, so it is never returned here."""
    path = index_path(distro, cache_dir)
    try:
        # open_regular: a FIFO or a device where the index should be would block the scan forever.
        with open_regular(path) as raw, gzip.open(raw, "rt", encoding="utf-8") as stream:
            index = PackageIndex.from_json(json.load(stream))
    except (OSError, ValueError, KeyError, AssertionError, EOFError):
        return None  # absent, from another depaudit version, or damaged: scans use the rules only
    return index if index.distro == distro else None
