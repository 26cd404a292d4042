"""Import forms and their context flags, read with libcst from real files."""

from __future__ import annotations

from depaudit.collect.model import ImportRecord, ImportScope

T, L, S = ImportScope.THIRD_PARTY, ImportScope.LOCAL, ImportScope.STDLIB


def rec(line: int, module: str, names: tuple[str, ...] = (), scope: ImportScope = T, *, file: str = "svc/app.py", **flags: bool) -> ImportRecord:
    return ImportRecord(file=file, line=line, module=module, names=names, scope=scope, guarded=flags.pop("guarded", False), lazy=flags.pop("lazy", False), **flags)


def test_import_forms(collect) -> None:
    result = collect(
        {
            "app.py": """\
            import numpy
            import a.b
            import a.b as c, d
            from e.f import g, h as i
            from j import (
                k,
                l,
            )
            from m import *
            import os.path
            from __future__ import annotations
            """
        }
    )
    assert result.findings == ()
    assert result.imports == (
        rec(1, "numpy"),
        rec(2, "a.b"),
        rec(3, "a.b"),
        rec(3, "d"),
        rec(4, "e.f", ("g", "h")),
        rec(5, "j", ("k", "l")),
        rec(9, "m"),
        rec(10, "os.path", (), S),
        rec(11, "__future__", ("annotations",), S),
    )


def test_guarded_by_each_handler_form(collect) -> None:
    result = collect(
        {
            "app.py": """\
            try:
                import by_import_error
            except ImportError:
                pass
            try:
                import by_module_not_found
            except ModuleNotFoundError:
                pass
            try:
                import by_exception
            except Exception:
                pass
            try:
                import by_base_exception
            except builtins.BaseException:
                pass
            try:
                import by_bare
            except:
                pass
            try:
                import by_tuple
            except (ImportError, OSError) as error:
                pass
            try:
                import by_second_handler
            except KeyError:
                pass
            except (ValueError, ModuleNotFoundError):
                pass
            try:
                import by_star
            except* ImportError:
                pass
            try:
                import by_key_error
            except KeyError:
                pass
            try:
                import by_finally_only
            finally:
                pass
            try:
                import reraised
            except ImportError as error:
                message = "install reraised"
                raise RuntimeError(message) from error
            try:
                import reraised_when_strict
            except ImportError:
                if STRICT:
                    raise
            try:
                import defines_a_raiser
            except ImportError:
                def fail():
                    raise RuntimeError("later, if ever")
            """
        }
    )
    assert [(r.module, r.guarded) for r in result.imports] == [
        ("by_import_error", True),
        ("by_module_not_found", True),
        ("by_exception", True),
        ("by_base_exception", True),
        ("by_bare", True),
        ("by_tuple", True),
        ("by_second_handler", True),
        ("by_star", True),
        ("by_key_error", False),
        ("by_finally_only", False),
        ("reraised", False),  # the handler raises: the service still fails at this import
        ("reraised_when_strict", False),  # it may raise: not counted on to survive
        ("defines_a_raiser", True),  # the raise is in a function the handler only defines
    ]


def test_handler_else_and_finally_are_not_guarded_by_their_try(collect) -> None:
    result = collect(
        {
            "app.py": """\
            try:
                import body
            except ImportError:
                import handler
            else:
                import orelse
            finally:
                import final
            """
        }
    )
    assert result.imports == (
        rec(2, "body", guarded=True),
        rec(4, "handler"),
        rec(6, "orelse"),
        rec(8, "final"),
    )


def test_any_enclosing_guarding_try_counts(collect) -> None:
    result = collect(
        {
            "app.py": """\
            try:
                try:
                    import inner
                except KeyError:
                    import in_inner_handler
                def load():
                    import in_function
            except ImportError:
                pass
            try:
                pass
            except ImportError:
                try:
                    import guarded_again
                except ImportError:
                    pass
            """
        }
    )
    assert result.imports == (
        rec(3, "inner", guarded=True),
        rec(5, "in_inner_handler", guarded=True),
        rec(7, "in_function", guarded=True, lazy=True),
        rec(14, "guarded_again", guarded=True),
    )


def test_lazy_inside_functions_lambdas_and_methods_only(collect) -> None:
    result = collect(
        {
            "app.py": """\
            import eager

            class Model:
                import in_class_body

                def run(self):
                    import in_method
                    class Inner:
                        import in_class_in_function

            async def fetch():
                import in_async_function

            def outer():
                def inner():
                    from nested import x

            hook = lambda: __import__("in_lambda")

            @decorate(__import__("in_decorator"))
            def decorated(arg=__import__("in_default")):
                pass
            """
        }
    )
    assert result.imports == (
        rec(1, "eager"),
        rec(4, "in_class_body"),
        rec(7, "in_method", lazy=True),
        rec(9, "in_class_in_function", lazy=True),
        rec(12, "in_async_function", lazy=True),
        rec(16, "nested", ("x",), lazy=True),
        rec(18, "in_lambda", lazy=True, dynamic=True),
        rec(20, "in_decorator", dynamic=True),
        rec(21, "in_default", dynamic=True),
    )


def test_dynamic_imports_with_a_literal_and_nothing_for_a_computed_name(collect) -> None:
    result = collect(
        {
            "app.py": """\
            import importlib
            import importlib as il
            from importlib import import_module
            from importlib import import_module as load

            importlib.import_module("onnxruntime")
            il.import_module("torch.nn")
            import_module("librosa")
            load("cv2")
            __import__("scipy.signal")
            importlib.import_module(name="keyword_form")
            importlib.import_module("concat" "enated")
            importlib.import_module(".plugins.x", "pkg")
            importlib.import_module("..sibling", package="pkg.sub")
            importlib.import_module(".mine", __package__)
            importlib.import_module(".nowhere")

            importlib.import_module(name_from_config)
            importlib.import_module(f"plugin_{kind}")
            importlib.import_module("plugin_" + kind)
            __import__(b"bytes")
            __import__()
            other.import_module("not_importlib")
            """
        }
    )
    assert result.imports == (
        rec(1, "importlib", (), S),
        rec(2, "importlib", (), S),
        rec(3, "importlib", ("import_module",), S),
        rec(4, "importlib", ("import_module",), S),
        rec(6, "onnxruntime", dynamic=True),
        rec(7, "torch.nn", dynamic=True),
        rec(8, "librosa", dynamic=True),
        rec(9, "cv2", dynamic=True),
        rec(10, "scipy.signal", dynamic=True),
        rec(11, "keyword_form", dynamic=True),
        rec(12, "concatenated", dynamic=True),
        rec(13, "pkg.plugins.x", (), L, dynamic=True),
        rec(14, "pkg.sibling", (), L, dynamic=True),
        rec(15, ".mine", (), L, dynamic=True),  # app.py is at the service root: no package
        rec(16, ".nowhere", (), L, dynamic=True),
    )


def test_import_module_is_dynamic_only_when_it_comes_from_importlib(collect) -> None:
    result = collect({"app.py": "from mylib import import_module\nimport_module('x')\n"})
    assert result.imports == (rec(1, "mylib", ("import_module",)),)


def test_type_checking_body_only(collect) -> None:
    result = collect(
        {
            "app.py": """\
            import typing
            from typing import TYPE_CHECKING

            if TYPE_CHECKING:
                import pandas
                try:
                    import polars
                except ImportError:
                    pass
            else:
                import yaml
            if typing.TYPE_CHECKING:
                from torch import Tensor
            if DEBUG:
                import debugpy
            elif TYPE_CHECKING:
                import mypy_extensions
            """
        }
    )
    assert result.imports == (
        rec(1, "typing", (), S),
        rec(2, "typing", ("TYPE_CHECKING",), S),
        rec(5, "pandas", type_checking=True),
        rec(7, "polars", guarded=True, type_checking=True),
        rec(11, "yaml"),
        rec(13, "torch", ("Tensor",), type_checking=True),
        rec(15, "debugpy"),
        rec(17, "mypy_extensions", type_checking=True),
    )


def test_a_file_two_services_reach_is_scoped_by_each_services_own_path(tmp_path) -> None:
    """One scan remembers each file's imports for the next service; whether `helpers` is a local
    module still depends on the service's own sys.path, not on the first service's."""
    from depaudit.collect.imports import ImportMemo, collect_imports
    from depaudit.collect.local import LocalFinder
    from depaudit.collect.services import entry_service

    (tmp_path / "shared").mkdir()
    (tmp_path / "shared/util.py").write_text("import helpers\n")
    (tmp_path / "with_helpers").mkdir()
    (tmp_path / "with_helpers/helpers.py").write_text("")
    for name in ("a", "b"):
        (tmp_path / f"{name}.py").write_text("import shared.util\n")
    memo, finder = ImportMemo(), LocalFinder()
    scopes = {}
    for name, roots in (("a", (tmp_path, tmp_path / "with_helpers")), ("b", (tmp_path,))):
        service = entry_service(name, tmp_path / f"{name}.py", roots, tmp_path, ())
        found = collect_imports(service, finder=finder, memo=memo)
        scopes[name] = [(r.file, r.module, r.scope) for r in found.imports if r.file == "shared/util.py"]
    assert scopes == {
        "a": [("shared/util.py", "helpers", ImportScope.LOCAL)],
        "b": [("shared/util.py", "helpers", ImportScope.THIRD_PARTY)],
    }
    assert len(memo.parsed) == 3  # a.py, b.py, shared/util.py: util.py was parsed once
