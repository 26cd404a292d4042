"""The call walk on module sources held in memory: how a callee is found, what its body reaches,
and where the walk stops (the scan-level tests with gcc-built wheels are in test_calls.py)."""

from __future__ import annotations

from textwrap import dedent

from depaudit.cache import ResultCache, content_key
from depaudit.evidence import Tier
from depaudit.python import calls
from depaudit.python.calls import CallGraph, CallStart
from depaudit.python.functions import module_defs
from depaudit.python.module_imports import ImportContext, ModuleImport


class _Tree:
    """Modules by dotted name, each a source text; packages are the names others start with."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.sources = {name: dedent(text).encode() for name, text in sources.items()}
        self.read: list[str] = []

    def _package(self, module: str) -> bool:
        return any(other.startswith(module + ".") for other in self.sources)

    def module_file(self, module: str) -> tuple[str, bool] | None:
        if module not in self.sources:
            return None
        path = module.replace(".", "/")
        return (f"{path}/__init__.py" if self._package(module) else f"{path}.py"), False

    def source(self, module: str) -> bytes | None:
        self.read.append(module)
        return self.sources.get(module)

    def digest(self, module: str) -> str | None:
        return content_key(self.sources[module]) if module in self.sources else None

    def absolute(self, module: str, imported: ModuleImport) -> str:
        if imported.level == 0:
            return imported.module
        package = module if self._package(module) else module.rpartition(".")[0]
        parts = package.split(".")
        base = parts[: len(parts) - (imported.level - 1)]
        return ".".join([*base, imported.module] if imported.module else base)


TREE = {
    "lib": "from ._impl import load, Reader\nfrom . import tools as t\nopen_file = load\n",
    "lib._impl": """
        import subprocess

        def load(path):
            return _decode(path)

        def _decode(path):
            try:
                import codec
            except ImportError:
                raise RuntimeError("install codec")
            try:
                import fancy
            except ImportError:
                fancy = None
            return codec.open(path)

        class Reader:
            def __init__(self, path):
                self.handle = self._start(path)

            @staticmethod
            def probe(path):
                from lib import probe_backend

            def _start(self, path):
                def later():
                    import never_called
                return subprocess.run(["reader", path])
    """,
    "lib.tools": "def convert(x):\n    import converter\n",
    "lib.probe_backend": "",
    "codec": "def open(path):\n    import codec_native\n",
}


def _imports(reach: calls.CallReach) -> list[tuple[str, str]]:
    return sorted((start.module, start.tier.value) for start in reach.imports)


def test_module_defs_reads_bindings_and_the_imports_and_calls_of_each_body() -> None:
    defs = module_defs(dedent(TREE["lib._impl"]).encode())
    assert sorted(defs.nodes) == ["Reader.__init__", "Reader._start", "Reader.probe", "_decode", "load"]
    decode = defs.function("_decode")
    assert decode is not None
    assert [(i.module, i.context) for i in decode.imports] == [("codec", ImportContext.MODULE), ("fancy", ImportContext.GUARDED)]
    assert [(c.name, c.guarded) for c in decode.calls] == [("RuntimeError", True), ("codec.open", False)]
    start = defs.function("Reader._start")
    assert start is not None
    assert [(i.module, i.context) for i in start.imports] == [("never_called", ImportContext.LAZY)]
    assert [c.name for c in start.calls] == ["subprocess.run"]
    lib = module_defs(TREE["lib"].encode())
    assert {name: (b.kind, b.target) for name, b in lib.bindings.items()} == {
        "load": ("from", "load"), "Reader": ("from", "Reader"), "t": ("from", "tools"), "open_file": ("alias", "load"),
    }


def test_a_callee_is_found_through_re_exports_aliases_classes_and_submodules() -> None:
    graph = CallGraph(_Tree(TREE))
    assert graph.in_module("lib", ["load"]) == ("lib._impl", "load")
    assert graph.in_module("lib", ["open_file"]) == ("lib._impl", "load")
    assert graph.in_module("lib", ["Reader"]) == ("lib._impl", "Reader.__init__")
    assert graph.in_module("lib", ["Reader", "probe"]) == ("lib._impl", "Reader.probe")
    assert graph.in_module("lib", ["t", "convert"]) == ("lib.tools", "convert")
    assert graph.in_module("lib", ["tools", "convert"]) == ("lib.tools", "convert")
    assert graph.in_module("lib", ["missing"]) is None
    assert graph.in_module("lib", ["load", "attribute"]) is None


def test_a_call_reaches_the_imports_of_the_bodies_it_runs_with_its_tier() -> None:
    graph = CallGraph(_Tree(TREE))
    reach = graph.reach([CallStart("lib.load", Tier.REQUIRED, "svc/main.py", 3)])
    # codec's import re-raises: as sure as the call; fancy's survives: optional; codec.open runs.
    assert _imports(reach) == [("codec", "required"), ("codec_native", "required"), ("fancy", "optional")]
    assert sorted(reach.functions) == [("codec", "open"), ("lib._impl", "_decode"), ("lib._impl", "load")]
    native = next(s for s in reach.imports if s.module == "codec_native")
    assert [str(step) for step in native.via] == [
        "svc/main.py:3 calls lib.load",
        "lib/_impl.py:5 calls lib._impl._decode",
        "lib/_impl.py:16 calls codec.open",
        "codec.py:2 import codec_native",
    ]
    guarded = graph.reach([CallStart("lib.load", Tier.OPTIONAL, "svc/main.py", 3)])
    assert {s.tier for s in guarded.imports} == {Tier.OPTIONAL}


def test_instantiation_runs_init_and_the_self_methods_it_calls_but_not_nested_functions() -> None:
    graph = CallGraph(_Tree(TREE))
    reach = graph.reach([CallStart("lib.Reader", Tier.REQUIRED, "svc/main.py", 1)])
    assert sorted(reach.functions) == [("lib._impl", "Reader.__init__"), ("lib._impl", "Reader._start")]
    assert reach.imports == []  # `never_called` is in a function `_start` only defines
    found = reach.function_tier("lib/_impl.py", 27)
    assert found is not None and (found.name, found.tier) == ("Reader._start", Tier.REQUIRED)
    assert reach.function_tier("lib/_impl.py", 22) is None  # probe: never called


def test_the_walk_stops_at_its_depth_and_says_where() -> None:
    chain = "".join(f"def f{n}():\n    f{n + 1}()\n\n" for n in range(10)) + "def f10():\n    import deep\n"
    graph = CallGraph(_Tree({"chain": chain}))
    reach = graph.reach([CallStart("chain.f0", Tier.REQUIRED, "svc/main.py", 1)])
    assert len(reach.functions) == calls.MAX_DEPTH
    assert reach.imports == []
    [limit] = reach.limits
    assert (limit.relative, limit.line) == ("chain.py", 3 * (calls.MAX_DEPTH - 1) + 1)
    assert f"followed {calls.MAX_DEPTH} deep" in limit.reason


def test_a_second_walk_on_the_same_cache_reads_no_source(tmp_path) -> None:
    cache = ResultCache(tmp_path)
    first = CallGraph(_Tree(TREE), cache).reach([CallStart("lib.load", Tier.REQUIRED, "svc/main.py", 3)])
    cache.save()
    tree = _Tree(TREE)
    again = CallGraph(tree, ResultCache(tmp_path)).reach([CallStart("lib.load", Tier.REQUIRED, "svc/main.py", 3)])
    assert tree.read == []
    assert (again.functions, again.imports) == (first.functions, first.imports)


def test_a_dispatch_table_of_lambdas_runs_what_every_lambda_calls() -> None:
    # pytesseract's image_to_string: `{A: lambda: run(...), B: lambda: {"t": run(...)}}[kind]()`.
    defs = module_defs(
        dedent(
            """\
            def image_to_string(image, kind):
                args = [image]
                return {
                    "bytes": lambda: run(*(args + [True])),
                    "dict": lambda: {"text": run(*args), "extra": extra()},
                    "string": lambda: run(*args),
                }[kind]()

            def callback(items):
                return sorted(items, key=lambda item: heavy(item))
            """
        ).encode()
    )
    table = defs.function("image_to_string")
    assert table is not None
    assert [(c.line, c.name, c.guarded) for c in table.calls] == [(4, "run", False)]  # extra(): one lambda only
    sort = defs.function("callback")
    assert sort is not None
    assert [c.name for c in sort.calls] == ["sorted"]  # a lambda that is only passed on: not known to run
