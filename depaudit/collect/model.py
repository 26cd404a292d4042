"""Data that the collect stage hands to the later stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from depaudit.findings import Finding


class ImportScope(str, Enum):
    THIRD_PARTY = "third-party"
    LOCAL = "local"  # a module of the service itself, or a relative import
    STDLIB = "stdlib"


@dataclass(frozen=True)
class Service:
    name: str  # the folder name
    root: Path  # absolute path of the service folder
    display_root: Path  # paths in the report are relative to this (the scanned PATH)
    files: tuple[Path, ...]  # absolute paths of its .py files, sorted
    requirement_files: tuple[Path, ...]  # requirements*.txt directly in the folder, sorted
    elf_files: tuple[Path, ...]  # files in the folder with the ELF magic or named *.so*, sorted
    # An entry-script service: `files` is the script alone until its local imports are followed.
    entry: Path | None = None
    source_roots: tuple[Path, ...] = ()  # sys.path entries besides the entry script's folder

    @property
    def sys_path(self) -> tuple[Path, ...]:
        """Where its local modules are found: the script's folder first, as Python does."""
        if self.entry is None:
            return (self.root,)
        return tuple(dict.fromkeys((self.entry.parent, *self.source_roots)))


@dataclass(frozen=True)
class GuardedImport:
    """A local import inside a try that survives its failure, as evidence names it."""

    file: str  # display path
    line: int
    module: str
    names: tuple[str, ...]

    @property
    def statement(self) -> str:
        return f"from {self.module} import {', '.join(self.names)}" if self.names else f"import {self.module}"


@dataclass(frozen=True, order=True)
class ImportRecord:
    file: str  # posix path relative to Service.display_root
    line: int
    module: str  # absolute dotted name: "a.b" for `import a.b` and `from a.b import c`
    names: tuple[str, ...]  # for `from a import b, c`: ("b", "c"); empty otherwise
    scope: ImportScope
    guarded: bool  # inside try whose handler catches ImportError/ModuleNotFoundError/Exception/bare
    lazy: bool  # inside a function (or lambda) body
    dynamic: bool = False  # importlib.import_module("x") / __import__("x")
    type_checking: bool = False  # under `if TYPE_CHECKING:`: never runs, so never a need
    fallback: bool = False  # found by the line-level fallback of an unparsable file
    # The guarded local import the record's file runs behind, when only such imports reach that
    # file: `guarded` is then true because of it. Not part of the order.
    via: GuardedImport | None = field(default=None, compare=False)

    @property
    def top_level(self) -> str:
        return self.module.split(".", 1)[0]


@dataclass(frozen=True, order=True)
class CallRecord:
    """A call the service's code makes of a name a third-party import binds: `torchaudio.load(x)`
    after `import torchaudio`, `AudioSegment.from_file(x)` after `from pydub import AudioSegment`."""

    file: str  # posix path relative to Service.display_root
    line: int
    target: str  # absolute dotted: "torchaudio.load", "pydub.AudioSegment.from_file"
    guarded: bool  # inside a try whose handler survives the call's failure, or a file only a guarded import runs


@dataclass(frozen=True)
class ServiceImports:
    service: Service
    imports: tuple[ImportRecord, ...]  # sorted
    findings: tuple[Finding, ...]  # sorted
    files: tuple[Path, ...] = ()  # the source files read: an entry service's local closure
    elf_files: tuple[Path, ...] = ()  # local extension modules an entry service imports
    calls: tuple[CallRecord, ...] = ()  # sorted


@dataclass(frozen=True)
class FoundImport:
    """An import as the visitor sees it; its scope is decided once the file's place is known."""

    line: int
    module: str  # absolute, or with leading dots when it could not be resolved
    names: tuple[str, ...]
    relative: bool
    guarded: bool = False
    lazy: bool = False
    dynamic: bool = False
    type_checking: bool = False


@dataclass(frozen=True)
class FoundCall:
    """A call as the visitor sees it, its callee named through the file's imports."""

    line: int
    target: str  # absolute dotted
    guarded: bool = False


def resolve_relative(name: str, level: int, package: str) -> str:
    """The absolute name of a relative import, as importlib computes it.

    When the file has no package inside the service (a script at its root), or the dots
    climb above the top-level package, the dotted text is kept as written.
    """
    bits = package.rsplit(".", level - 1) if package else []
    if len(bits) < level:
        return "." * level + name
    return f"{bits[0]}.{name}" if name else bits[0]


def dynamic_target(text: str | None, anchor: str | None) -> tuple[str, bool] | None:
    """What `import_module(text, anchor)` / `__import__(text)` (anchor None) imports, and whether
    relatively; None for a name that is no literal or only dots: reported as nothing rather than
    guessed. Both import visitors (libcst's and the `ast` twin) ask this."""
    if text is None or not text.strip("."):
        return None
    module = text.lstrip(".")
    level = len(text) - len(module)
    if level:
        return (resolve_relative(module, level, anchor) if anchor is not None else text), True
    return module, False
