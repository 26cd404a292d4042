"""The installed distributions of a Python environment, read from dist-info files as text.

Nothing from the audited environment is imported or executed: METADATA is parsed as email
headers, RECORD as CSV, and module names are derived from the file paths RECORD lists.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from email.parser import HeaderParser
from pathlib import Path

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from depaudit import consulted
from depaudit.findings import Finding, FindingKind
from depaudit.reading import open_regular
from depaudit.python.model import Distribution, TargetPython

# `mod.cpython-311-x86_64-linux-gnu.so`, `mod.abi3.so`, `mod.so`: the module is `mod`.
_EXTENSION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\.[^./]+)?\.so$")
_PYTHON_DIR = re.compile(r"^python(\d+)\.(\d+)t?$")  # `t`: free-threaded builds
_SITE_DIRS = ("site-packages", "dist-packages")
# Folders whose files are never importable under their own path.
_NOT_MODULE_DIRS = (".dist-info", ".egg-info", ".data", ".libs")
# torch's RECORD is ~2 MB; past this a metadata file is hostile, and only its start is read.
MAX_METADATA_BYTES = 64 << 20
_NUL_ENTRY = "{name} names a path with a NUL byte, which no file can have: the entry is skipped; reinstall the distribution"


@dataclass(frozen=True)
class PythonEnvironment:
    site_packages: tuple[Path, ...]
    distributions: Mapping[str, Distribution]  # by canonical key, sorted
    findings: tuple[Finding, ...]
    _modules: Mapping[str, tuple[str, ...]] = field(repr=False, default_factory=dict)
    _order: tuple[str, ...] = field(repr=False, default=())  # keys as read: the first reader of a file owns it

    def get(self, key_or_name: str) -> Distribution | None:
        return self.distributions.get(canonicalize_name(key_or_name))

    def providers(self, module: str, names: Sequence[str] = ()) -> tuple[Distribution, ...]:
        """Who provides `module`: the longest importable prefix decides (namespace packages).

        For `from google import protobuf` the submodules named are more specific than the
        namespace package itself, so they are tried first.
        """
        keys = {key for name in names for key in self._modules.get(f"{module}.{name}", ())}
        parts = module.split(".")
        for end in range(len(parts), 0, -1):
            if keys:
                break
            keys = set(self._modules.get(".".join(parts[:end]), ()))
        return tuple(self.distributions[key] for key in sorted(keys))

    def owner_of(self, path: Path) -> str | None:
        """The key of the distribution whose RECORD lists `path` (absolute), if any."""
        owner = self._files.get(os.path.normpath(os.path.abspath(path)))
        if owner is None:
            owner = self._files.get(os.path.realpath(path))
        return owner

    def relative_owner(self, relative: str) -> str | None:
        """The name (as its METADATA spells it) of the distribution whose RECORD lists `relative`,
        a path relative to its site-packages folder: how the native stage shows a wheel's file."""
        key = self._relative_files.get(relative)
        return self.distributions[key].name if key is not None else None

    @cached_property
    def _relative_files(self) -> dict[str, str]:
        files: dict[str, str] = {}
        for key in self._order or self.distributions:
            for relative in self.distributions[key].files:
                files.setdefault(relative, key)
        return files

    @cached_property
    def _files(self) -> dict[str, str]:
        """Every file a RECORD lists → its distribution; built when first asked (only the ELF
        walks ask, and a warm scan has them all from the cache)."""
        files: dict[str, str] = {}
        for key in self._order or self.distributions:
            dist = self.distributions[key]
            # Index both spellings of the folder: callers may hold either (lib64 → lib symlinks).
            bases = {os.path.normpath(dist.site_packages), os.path.realpath(dist.site_packages)}
            for base in bases:
                # Entries are normal and relative (see _keep): joining by hand keeps them normal.
                prefix = base.rstrip("/") + "/"
                for relative in dist.files:
                    files.setdefault(prefix + relative if relative != "." else base, key)
        return files


def load_environment(site_packages: Sequence[Path]) -> PythonEnvironment:
    """Every dist-info / egg-info distribution of the folders; the first folder wins a name."""
    roots = tuple(Path(os.path.abspath(folder)) for folder in site_packages)
    target = infer_target(roots)  # what the closure evaluates markers against, as scan does
    distributions: dict[str, Distribution] = {}
    names: dict[str, set[str]] = {}  # the modules each distribution provides
    findings: list[Finding] = []
    for root in roots:
        try:
            entries = sorted(consulted.listdir(root))
        except OSError as error:
            message = f"cannot list site-packages: {error.strerror}"
            findings.append(Finding(FindingKind.UNREADABLE_FILE, root.as_posix(), None, message))
            continue
        here: dict[str, str] = {}
        for entry in entries:
            if not entry.endswith((".dist-info", ".egg-info")) or not _usable_entry(root, entry, findings):
                continue
            read = _read_distribution(root, entry, findings, target)
            if read is None:
                continue
            dist, provided = read
            if dist.key in here:
                findings.append(_stale_duplicate(entry, here[dist.key], dist.name))
                continue
            here[dist.key] = entry
            if dist.key not in distributions:  # an earlier folder shadows it, like sys.path
                distributions[dist.key] = dist
                names[dist.key] = provided | set(dist.top_level)

    modules: dict[str, set[str]] = {}
    for key, provided in names.items():
        for name in provided:
            modules.setdefault(name, set()).add(key)
    return PythonEnvironment(
        site_packages=roots,
        distributions=dict(sorted(distributions.items())),
        findings=tuple(sorted(findings)),
        _modules={name: tuple(sorted(keys)) for name, keys in modules.items()},
        _order=tuple(distributions),
    )


def infer_target(site_packages: Sequence[Path]) -> TargetPython:
    """The image's Python version from `lib/pythonX.Y/site-packages`; else the running one."""
    for folder in site_packages:
        parts = Path(folder).parts
        for part, following in zip(parts, parts[1:]):
            match = _PYTHON_DIR.match(part)
            if match and following in _SITE_DIRS:
                version = f"{match.group(1)}.{match.group(2)}"
                return TargetPython(python_version=version, python_full_version=f"{version}.0")
    info = sys.version_info
    return TargetPython(
        python_version=f"{info.major}.{info.minor}",
        python_full_version=f"{info.major}.{info.minor}.{info.micro}",
    )


def _usable_entry(root: Path, entry: str, findings: list[Finding]) -> bool:
    """A metadata folder inside this site-packages; a dist-info that is a folder at all."""
    path = root / entry
    real = os.path.realpath(path)
    if not _within(real, os.path.realpath(root)):
        message = f"a symbolic link out of site-packages (to {real}): never read; remove the link"
        findings.append(Finding(FindingKind.UNSAFE_MEMBER, entry, None, message))
        return False
    if entry.endswith(".dist-info") and not consulted.is_dir(path):
        message = "a file named like a metadata folder, which pip never writes: ignored; remove it"
        findings.append(Finding(FindingKind.BAD_METADATA, entry, None, message))
        return False
    return True


def _within(real: str, folder: str) -> bool:
    return real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)


def _stale_duplicate(entry: str, kept: str, name: str) -> Finding:
    return Finding(
        FindingKind.BAD_METADATA,
        entry,
        None,
        f"a second metadata folder for {name} in the same site-packages; {kept} is used, "
        "this one is ignored: remove the stale one",
    )


class _Reader:
    """Reads one metadata folder's files, turning every problem into a finding."""

    def __init__(self, root: Path, findings: list[Finding]) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.findings = findings

    def text(self, path: Path, *, required: bool) -> str | None:
        real = os.path.realpath(path)
        if consulted.lexists(path) and not _within(real, self.real_root):
            message = f"{path.name} is a symbolic link out of site-packages (to {real}): never read; reinstall the distribution"
            self.findings.append(Finding(FindingKind.UNSAFE_MEMBER, self.rel(path), None, message))
            return None
        try:
            with open_regular(path) as stream:
                data = stream.read(MAX_METADATA_BYTES + 1)
        except FileNotFoundError:
            if required:
                self.problem(path, f"{path.name} is missing")
            return None
        except OSError as error:
            self.findings.append(
                Finding(FindingKind.UNREADABLE_FILE, self.rel(path), None, f"cannot read {path.name}: {error.strerror}")
            )
            return None
        if len(data) > MAX_METADATA_BYTES:
            data = data[:MAX_METADATA_BYTES]
            self.problem(path, f"{path.name} is larger than {MAX_METADATA_BYTES >> 20} MiB, far beyond any real one: only its start is read")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.problem(path, f"{path.name} is not UTF-8; undecodable bytes were replaced")
            return data.decode("utf-8", errors="replace")

    def problem(self, path: Path, message: str, line: int | None = None) -> None:
        self.findings.append(Finding(FindingKind.BAD_METADATA, self.rel(path), line, message))

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


def _read_distribution(
    root: Path, entry: str, findings: list[Finding], target: TargetPython
) -> tuple[Distribution, set[str]] | None:
    """The distribution, and the dotted module names its files provide."""
    reader = _Reader(root, findings)
    info = root / entry
    egg = entry.endswith(".egg-info")
    bare = egg and not consulted.is_dir(info)  # distutils wrote egg-info as a single PKG-INFO file
    meta_path = info if bare else info / ("PKG-INFO" if egg else "METADATA")
    meta_text = reader.text(meta_path, required=True)
    headers = HeaderParser().parsestr(meta_text or "")
    folder_name, _, folder_version = entry.rsplit(".", 1)[0].partition("-")
    name = (headers.get("Name") or "").strip()
    version = (headers.get("Version") or "").strip()
    if meta_text is not None and not name:
        reader.problem(info, f"{meta_path.name} has no Name: field; named after its folder")
    if meta_text is not None and name and not version:
        reader.problem(info, f"{meta_path.name} has no Version: field; version taken from its folder")
    name = name or folder_name
    version = version or folder_version.split("-")[0] or "unknown"
    if not canonicalize_name(name):
        reader.problem(info, "no distribution name, neither in a Name: field nor in the folder's name: ignored; remove it")
        return None

    requires = _valid_requires(headers.get_all("Requires-Dist") or [], meta_path, reader, target)
    if egg and not bare and not requires:  # modern PKG-INFO repeats requires.txt; older ones lack it
        requires_txt = info / "requires.txt"
        egg_requires = _egg_requires(reader.text(requires_txt, required=False) or "")
        requires = _valid_requires(egg_requires, requires_txt, reader, target)
    if bare:
        files: list[str] = []
    elif egg:
        files = _egg_files(info, reader)
    else:
        files = _record_files(info, reader)
    top_level = set() if bare else _top_level_txt(reader.text(info / "top_level.txt", required=False) or "")
    provided = _module_names_of(files)
    top_level.update(module.split(".", 1)[0] for module in provided)
    dist = Distribution(
        name=name,
        key=canonicalize_name(name),
        version=version,
        site_packages=root,
        dist_info=info,
        files=tuple(files),
        requires=tuple(requires),
        top_level=tuple(sorted(top_level)),
    )
    return dist, provided


def _valid_requires(values: Sequence[str], source: Path, reader: _Reader, target: TargetPython) -> list[str]:
    """Keep every value (the closure skips bad ones), reporting each one it cannot follow once, here."""
    kept = []
    for value in values:
        text = str(value).strip()
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            reason = str(error).splitlines()[0]
            reader.problem(source, f"Requires-Dist `{text}` is not a valid requirement ({reason}); it is not followed")
        else:
            why = _unevaluable(requirement, target)
            if why is not None:
                reader.problem(source, f"Requires-Dist `{text}` has a marker that cannot be evaluated ({why}); it is not followed")
        kept.append(text)
    return kept


def _unevaluable(requirement: Requirement, target: TargetPython) -> str | None:
    """Why the closure cannot evaluate this marker (it then skips the requirement), if it cannot."""
    if requirement.marker is None:
        return None
    try:
        requirement.marker.evaluate(target.marker_environment())
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName) as error:
        return str(error).splitlines()[0] or type(error).__name__
    return None


def _top_level_txt(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        name = line.strip().replace("/", ".")
        if name and all(part.isidentifier() for part in name.split(".")):
            names.add(name)
    return names


def _record_files(info: Path, reader: _Reader) -> list[str]:
    text = reader.text(info / "RECORD", required=True)
    if text is None:
        return []
    files: list[str] = []
    rows = csv.reader(io.StringIO(text))
    try:
        for row in rows:
            if row and row[0] and not _keep(row[0], reader.root, files):
                reader.problem(info / "RECORD", _NUL_ENTRY.format(name="RECORD"), rows.line_num)
    except csv.Error as error:
        # csv's own words, less its advice to programmers, which also differs between Pythons.
        reason = str(error).split(" - ", 1)[0]
        reader.problem(info / "RECORD", f"garbled RECORD ({reason}); only the entries before the error are used")
    return files


def _egg_files(info: Path, reader: _Reader) -> list[str]:
    files: list[str] = []
    installed = reader.text(info / "installed-files.txt", required=False)
    if installed is not None:
        for number, line in enumerate(installed.splitlines(), 1):
            if line.strip() and not _keep(posixpath.join(info.name, line.strip()), reader.root, files):
                reader.problem(info / "installed-files.txt", _NUL_ENTRY.format(name="installed-files.txt"), number)
        return files
    sources = reader.text(info / "SOURCES.txt", required=False)
    if sources is None:
        reader.problem(info, "neither installed-files.txt nor SOURCES.txt: its files are unknown")
        return files
    # SOURCES.txt is relative to the project's source tree: keep what landed in site-packages.
    for line in sources.splitlines():
        entry = line.strip()
        if "\0" in entry:
            continue  # names no file; SOURCES.txt lists the source tree, not what was installed
        for candidate in (entry, entry.partition("/")[2]):  # `src/pkg/x.py` → `pkg/x.py`
            if candidate and consulted.is_file(reader.root / candidate):
                _keep(candidate, reader.root, files)
                break
    return files


def _keep(entry: str, root: Path, files: list[str]) -> bool:
    """Add an entry that names a file inside site-packages; False for one no file can have."""
    if "\0" in entry:
        return False
    if entry and not entry.startswith((".", "/")) and "\\" not in entry and "/." not in entry and "//" not in entry and not entry.endswith("/"):
        files.append(entry)  # already normal, as pip writes nearly every entry: normpath is slow
        return True
    normal = posixpath.normpath(entry.replace("\\", "/"))
    if posixpath.isabs(normal):  # pip writes absolute paths for files outside the prefix
        base = root.as_posix()
        if not normal.startswith(base + "/"):
            return True
        normal = normal[len(base) + 1 :]
    if normal != ".." and not normal.startswith("../"):
        files.append(normal)  # entries that climb out (scripts in bin/) are not importable
    return True


def _egg_requires(text: str) -> list[str]:
    """requires.txt sections (`[extra]`, `[:marker]`, `[extra:marker]`) as Requires-Dist values."""
    requires: list[str] = []
    marker = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            extra, _, condition = line[1:-1].partition(":")
            parts = [f"({condition.strip()})"] if condition.strip() else []
            if extra.strip():
                parts.append(f'extra == "{extra.strip()}"')
            marker = " and ".join(parts)
            continue
        requires.append(f"{line}; {marker}" if marker else line)
    return requires


def _module_names_of(files: Sequence[str]) -> set[str]:
    """Every importable dotted prefix a file list provides (namespace packages included)."""
    names: set[str] = set()
    folders: dict[str, str | None] = {}  # folder → its dotted name; None: no import reaches it
    for relative in files:
        # The leaf first: most files of a wheel (headers, data) are no module at all.
        slash = relative.rfind("/")
        if relative.endswith(".py"):
            module = relative[slash + 1 : -3]
        elif relative.endswith(".so"):
            match = _EXTENSION.match(relative[slash + 1 :])
            if match is None:
                continue
            module = match.group(1)
        else:
            continue
        if not module.isidentifier() or (slash < 0 and module == "__init__"):
            continue
        folder = relative[:slash] if slash >= 0 else ""
        if folder not in folders:  # a wheel has thousands of files in a few hundred folders
            folders[folder] = _package_of(folder, names)
        dotted = folders[folder]
        if dotted is not None and module != "__init__":
            names.add(f"{dotted}.{module}" if dotted else module)
    return names


def _package_of(folder: str, names: set[str]) -> str | None:
    """The dotted name of a folder that holds a module, its prefixes added to `names`; None when
    no import can reach it (bytecode, metadata, a name that is no identifier)."""
    if not folder:
        return ""
    parts = folder.split("/")
    if any(p == "__pycache__" or p.endswith(_NOT_MODULE_DIRS) or not p.isidentifier() for p in parts):
        return None
    for end in range(1, len(parts) + 1):
        names.add(".".join(parts[:end]))
    return folder.replace("/", ".")
