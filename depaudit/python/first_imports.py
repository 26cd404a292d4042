"""What a distribution imports before anything of its own runs: the other distributions its
top-level package's `__init__.py` imports, unconditionally, ahead of its first import of itself.

Every module of a package runs the package's `__init__` first, so what that file imports before
it imports its own submodules is in the process before any of the package's extension modules is
loaded (torchvision's `__init__` does `import torch` before `from . import extension`). The
file is parsed with `ast`, never run; an unreadable or unparsable file says nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from depaudit.cache import MISSING, ResultCache, content_key
from depaudit.python.environment import PythonEnvironment
from depaudit.python.model import Distribution
from depaudit.reading import read_regular

# A statement that runs nested code (a conditional, a guard, a loop, a class body): an import
# inside it is not known to run, but one of the package's own imports there may.
_NESTED = (ast.If, ast.Try, ast.With, ast.For, ast.While, ast.ClassDef, ast.Match) + (
    (ast.TryStar,) if hasattr(ast, "TryStar") else ()
)


@dataclass(frozen=True)
class FirstImport:
    """An import that runs before any module of the distribution holding it."""

    file: str  # posix, relative to site-packages: `torchvision/__init__.py`
    line: int
    module: str  # what it imports: `torch`

    @property
    def statement(self) -> str:
        return f"import {self.module}"


class FirstImports:
    """Per distribution key: the distributions it imports first, each with the import. Read once
    per scan and environment."""

    def __init__(self, env: PythonEnvironment, cache: ResultCache | None = None) -> None:
        self.env = env
        self.cache = cache if cache is not None else ResultCache(None)
        self._memo: dict[str, dict[str, FirstImport]] = {}

    def of(self, key: str) -> dict[str, FirstImport]:
        if key not in self._memo:
            dist = self.env.distributions.get(key)
            self._memo[key] = {} if dist is None else self._read(dist)
        return self._memo[key]

    def _read(self, dist: Distribution) -> dict[str, FirstImport]:
        found: dict[str, FirstImport] = {}
        files = set(dist.files)
        for top in dist.top_level:
            relative = f"{top}/__init__.py"
            if relative not in files:
                continue
            for line, module in self._leading(dist, relative):
                for provider in self.env.providers(module):
                    if provider.key != dist.key:
                        found.setdefault(provider.key, FirstImport(relative, line, module))
        return found


    def _leading(self, dist: Distribution, relative: str) -> list[tuple[int, str]]:
        """`_leading_imports`, kept in the results cache by the file's content."""
        try:
            source = read_regular(dist.site_packages / relative)
        except (OSError, ValueError):
            return []
        key = f"{content_key(source)}|{' '.join(sorted(dist.top_level))}"
        row = self.cache.get(_KIND, key)
        if row is not MISSING:
            return [(line, module) for line, module in row]
        found = list(_leading_imports(source, relative, set(dist.top_level)))
        self.cache.put(_KIND, key, [[line, module] for line, module in found])
        return found


_KIND = "first-imports"  # an __init__'s content and its package's top-level names → its leading imports


def _leading_imports(source: bytes, relative: str, own: set[str]) -> Iterator[tuple[int, str]]:
    """(line, module) of the absolute imports at the top of a package `__init__`, up to its
    first import of the package's own modules."""
    try:
        tree = ast.parse(source, relative)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    for statement in tree.body:
        if isinstance(statement, _NESTED):
            if any(_imports_own(node, own) for node in ast.walk(statement)):
                return
            continue
        if not isinstance(statement, (ast.Import, ast.ImportFrom)):
            continue
        if _imports_own(statement, own):
            return
        modules = [alias.name for alias in statement.names] if isinstance(statement, ast.Import) else [statement.module or ""]
        for module in modules:
            yield statement.lineno, module


def _imports_own(node: ast.AST, own: set[str]) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".", 1)[0] in own
    if isinstance(node, ast.Import):
        return any(alias.name.split(".", 1)[0] in own for alias in node.names)
    return False
