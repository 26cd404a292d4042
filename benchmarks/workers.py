"""The in-process programs that benchmarks/compare.py times, one per comparison tool.

Each runs as its own process (`python benchmarks/workers.py NAME ARGS...`) so that its figure
is a whole process, interpreter start included, as for the command-line tools it is set beside.
Imports are made inside each program: a worker pays only for the modules its tool needs.
Each prints one line of counts, which compare.py shows so a run that did nothing stands out.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

_ELF_MAGIC = b"\x7fELF"
_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB = 0, 1, 5
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules"})


def _lines(list_file: str) -> list[str]:
    return [line for line in Path(list_file).read_text(encoding="utf-8").splitlines() if line]


def _walk_files(root: str) -> Iterator[str]:
    """Regular files below root, symlinks not followed (as scanelf -R does by default)."""
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    yield entry.path


def _python_files(root: str) -> list[str]:
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS]
        found.extend(os.path.join(folder, name) for name in files if name.endswith(".py"))
    return sorted(found)


# --- the floor: DT_NEEDED with os.pread and struct, nothing else -------------------------


def _dt_needed(fd: int) -> list[str] | None:
    """DT_NEEDED of an open file, or None when it is not ELF. Reads only the ELF header, the
    program headers, PT_DYNAMIC and the bytes of the needed strings: what ld.so reads."""
    head = os.pread(fd, 64, 0)
    if len(head) < 52 or head[:4] != _ELF_MAGIC:
        return None
    order = "<" if head[5] == 1 else ">"
    if head[4] == 2:  # ELFCLASS64
        (phoff,) = struct.unpack_from(order + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
        phdr, dyn = order + "IIQQQQ", order + "qQ"  # p_type p_flags p_offset p_vaddr p_paddr p_filesz

        def fields(entry: tuple[int, ...]) -> tuple[int, int, int, int]:
            return entry[0], entry[2], entry[3], entry[5]
    else:
        (phoff,) = struct.unpack_from(order + "I", head, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 42)
        phdr, dyn = order + "IIIII", order + "iI"  # p_type p_offset p_vaddr p_paddr p_filesz

        def fields(entry: tuple[int, ...]) -> tuple[int, int, int, int]:
            return entry[0], entry[1], entry[2], entry[4]

    table = os.pread(fd, phentsize * phnum, phoff)
    loads: list[tuple[int, int, int]] = []
    dynamic: tuple[int, int] | None = None
    for index in range(len(table) // phentsize):
        kind, offset, vaddr, filesz = fields(struct.unpack_from(phdr, table, index * phentsize))
        if kind == _PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif kind == _PT_DYNAMIC:
            dynamic = (offset, filesz)
    if dynamic is None:
        return []
    needed_offsets: list[int] = []
    strtab = None
    entries = os.pread(fd, dynamic[1], dynamic[0])
    entries = entries[: len(entries) - len(entries) % struct.calcsize(dyn)]
    for tag, value in struct.iter_unpack(dyn, entries):
        if tag == _DT_NULL:
            break
        if tag == _DT_NEEDED:
            needed_offsets.append(value)
        elif tag == _DT_STRTAB:
            strtab = next((value - v + o for v, o, size in loads if v <= value < v + size), None)
    if strtab is None or not needed_offsets:
        return []
    return _strings(fd, strtab, needed_offsets)


def _strings(fd: int, strtab: int, offsets: list[int]) -> list[str]:
    # The needed names sit close together in .dynstr: one read covers them all, as a rule.
    low, high = min(offsets), max(offsets) + 256
    window = os.pread(fd, high - low, strtab + low)
    names = []
    for offset in offsets:
        start = offset - low
        end = window.find(b"\0", start)
        while end < 0:  # a name longer than the window: read on
            window += os.pread(fd, 4096, strtab + low + len(window))
            end = window.find(b"\0", start)
        names.append(window[start:end].decode("utf-8", "replace"))
    return names


def _floor(paths: Iterator[str] | list[str]) -> tuple[int, int]:
    elf_files = needed = 0
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            names = _dt_needed(fd)
        except (OSError, struct.error):
            names = None
        finally:
            os.close(fd)
        if names is not None:
            elf_files += 1
            needed += len(names)
    return elf_files, needed


def floor_walk(root: str) -> str:
    elf_files, needed = _floor(_walk_files(root))
    return f"{elf_files} ELF files, {needed} DT_NEEDED"


def floor_paths(list_file: str) -> str:
    elf_files, needed = _floor(_lines(list_file))
    return f"{elf_files} ELF files, {needed} DT_NEEDED"


# --- pyelftools and auditwheel's lddtree ----------------------------------------------


def pyelftools(list_file: str) -> str:
    from elftools.elf.dynamic import DynamicSegment
    from elftools.elf.elffile import ELFFile

    needed = 0
    paths = _lines(list_file)
    for path in paths:
        with open(path, "rb") as stream:
            for segment in ELFFile(stream).iter_segments():
                if isinstance(segment, DynamicSegment):
                    needed += len(list(segment.iter_tags("DT_NEEDED")))
    return f"{len(paths)} ELF files, {needed} DT_NEEDED"


def lddtree(list_file: str, limit: str = "0") -> str:
    from auditwheel.lddtree import ldd  # type: ignore[import-not-found]  # in the tools venv only

    paths = _lines(list_file)
    if int(limit):
        paths = paths[: int(limit)]
    libraries = sum(len(ldd(Path(path)).libraries) for path in paths)
    return f"{len(paths)} ELF files, {libraries} libraries in their trees"


# --- imports of a source tree ---------------------------------------------------------


def _ast_count(files: list[str], kinds: tuple[str, ...]) -> tuple[int, int]:
    """(nodes of these ast kinds, files ast cannot parse) over the files."""
    import ast

    types = tuple(getattr(ast, kind) for kind in kinds)
    found = errors = 0
    for path in files:
        try:
            tree = ast.parse(Path(path).read_bytes(), path)
        except (SyntaxError, ValueError):
            errors += 1
            continue
        found += sum(isinstance(node, types) for node in ast.walk(tree))
    return found, errors


def ast_imports(root: str) -> str:
    files = _python_files(root)
    imports, errors = _ast_count(files, ("Import", "ImportFrom"))
    return f"{len(files)} files, {imports} import statements, {errors} unparsable"


def libcst_imports(root: str) -> str:
    import libcst

    class Imports(libcst.CSTVisitor):
        def __init__(self) -> None:
            self.count = 0

        def visit_Import(self, node: libcst.Import) -> None:
            self.count += 1

        def visit_ImportFrom(self, node: libcst.ImportFrom) -> None:
            self.count += 1

    files, visitor, errors = _python_files(root), Imports(), 0
    for path in files:
        try:
            libcst.parse_module(Path(path).read_bytes()).visit(visitor)
        except Exception:  # noqa: BLE001  # libcst's syntax, decoding and recursion errors alike
            errors += 1
    return f"{len(files)} files, {visitor.count} import statements, {errors} unparsable"


# --- parsing the files the hint prefilter kept ----------------------------------------


def libcst_calls(list_file: str) -> str:
    import libcst

    class Calls(libcst.CSTVisitor):
        def __init__(self) -> None:
            self.count = 0

        def visit_Call(self, node: libcst.Call) -> None:
            self.count += 1

    files, visitor, errors = _lines(list_file), Calls(), 0
    for path in files:
        try:
            libcst.parse_module(Path(path).read_bytes()).visit(visitor)
        except Exception:  # noqa: BLE001  # as above
            errors += 1
    return f"{len(files)} files, {visitor.count} calls, {errors} unparsable"


def ast_calls(list_file: str) -> str:
    files = _lines(list_file)
    calls, errors = _ast_count(files, ("Call",))
    return f"{len(files)} files, {calls} calls, {errors} unparsable"


def depaudit_hints(list_file: str, route: str) -> str:
    """depaudit's hint reader on each file, by the route a service's file takes (`libcst`: the
    `ast` cut, then libcst) or a wheel's (`ast`: the walk of the `ast` tree)."""
    from depaudit.collect import hints

    read = hints.file_hints if route == "libcst" else hints.installed_file_hints
    files, found, errors = _lines(list_file), 0, 0
    for path in files:
        try:
            found += len(read(Path(path).read_bytes()))
        except Exception:  # noqa: BLE001  # as above
            errors += 1
    return f"{len(files)} files, {found} hints, {errors} unparsable"


# --- depaudit's own ELF stage, through its Python API ---------------------------------


def depaudit_elf(site_packages: str, cache_dir: str) -> str:
    """Every distribution's ELF files read and resolved as `depaudit scan` does: the native stage
    of depaudit/native/reports.py (per-walk cache, one parallel batch of ELF reads), or, in an
    older API, analyse_distribution per distribution. Prints the stage's own time (after the
    interpreter and the imports) for compare.py to read."""
    import time

    from depaudit.native import reports
    from depaudit.native.distribution import analyse_distribution
    from depaudit.python.environment import load_environment

    start = time.perf_counter()
    env = load_environment([Path(site_packages)])
    needs, wiring = 0, "analyse_environment"
    if hasattr(reports, "analyse_environment"):
        from depaudit.cache import ResultCache
        from depaudit.native.store import ElfStore
        from depaudit.parallel import Workers

        cache = ResultCache(Path(cache_dir))
        with Workers() as workers:
            found = reports.analyse_environment(env, sorted(env.distributions), ElfStore(cache, workers))
        cache.save()
        needs = sum(len(report.needs) for report in found.values())
    else:
        wiring = "analyse_distribution, no cache in this API"
        for dist in env.distributions.values():
            needs += len(analyse_distribution(dist, owner_of=env.owner_of, search_roots=env.site_packages).needs)
    seconds = time.perf_counter() - start
    return f"{len(env.distributions)} distributions, {needs} needs, {seconds:.3f} s in-process ({wiring})"


PROGRAMS: dict[str, Callable[..., str]] = {
    "floor-walk": floor_walk,
    "floor-paths": floor_paths,
    "pyelftools": pyelftools,
    "lddtree": lddtree,
    "ast-imports": ast_imports,
    "libcst-imports": libcst_imports,
    "libcst-calls": libcst_calls,
    "ast-calls": ast_calls,
    "depaudit-hints": depaudit_hints,
    "depaudit-elf": depaudit_elf,
}


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in PROGRAMS:
        raise SystemExit(f"usage: workers.py {{{','.join(PROGRAMS)}}} ARGS...")
    print(PROGRAMS[argv[0]](*argv[1:]))


if __name__ == "__main__":
    main(sys.argv[1:])
