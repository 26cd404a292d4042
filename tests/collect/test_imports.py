"""Imports and their context, read with libcst from real files."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from depaudit.collect.imports import collect_imports
from depaudit.collect.model import ImportScope
from depaudit.collect.services import discover_services
from depaudit.findings import Finding, FindingKind

T, L, S = ImportScope.THIRD_PARTY, ImportScope.LOCAL, ImportScope.STDLIB


def _service(tmp_path: Path, files: dict[str, str | bytes]):
    root = tmp_path / "svc"
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content))
    services, findings = discover_services(root)
    assert findings == []
    return collect_imports(services[0])


def _rows(result) -> list[tuple]:
    """(line, module, scope, guarded, lazy, dynamic, type_checking) per import."""
    return [
        (r.line, r.module, r.scope.value, r.guarded, r.lazy, r.dynamic, r.type_checking)
        for r in result.imports
    ]


def test_guarded_imports_and_what_is_not_guarded(tmp_path: Path) -> None:
    result = _service(
        tmp_path,
        {
            "app.py": """\
            try:
                import a1
            except ImportError:
                import h1
            else:
                import e1
            finally:
                import f1
            try:
                import a2
            except (OSError, ModuleNotFoundError) as error:
                pass
            try:
                import a3
            except:
                pass
            try:
                import a4
            except Exception:
                pass
            try:
                import n1
            except KeyError:
                pass
            try:
                try:
                    import a5
                except KeyError:
                    pass
            except builtins.BaseException:
                pass
            """
        },
    )
    guarded = {module: g for _, module, _, g, *_ in _rows(result)}
    assert guarded == {
        "a1": True,
        "h1": False,
        "e1": False,
        "f1": False,
        "a2": True,
        "a3": True,
        "a4": True,
        "n1": False,
        "a5": True,
    }


def test_lazy_dynamic_type_checking_and_forms(tmp_path: Path) -> None:
    result = _service(
        tmp_path,
        {
            "app.py": """\
            import os.path
            import numpy.linalg as la
            from typing import TYPE_CHECKING
            import importlib
            from importlib import import_module as load

            if TYPE_CHECKING:
                import pandas
            else:
                import yaml

            class Model:
                import torch

                def run(self):
                    import cv2
                    return lambda: __import__("scipy")

            importlib.import_module("onnxruntime")
            load("librosa")
            importlib.import_module(name_from_config)
            __import__(f"plugin_{x}")
            """
        },
    )
    assert _rows(result) == [
        (1, "os.path", "stdlib", False, False, False, False),
        (2, "numpy.linalg", "third-party", False, False, False, False),
        (3, "typing", "stdlib", False, False, False, False),
        (4, "importlib", "stdlib", False, False, False, False),
        (5, "importlib", "stdlib", False, False, False, False),
        (8, "pandas", "third-party", False, False, False, True),
        (10, "yaml", "third-party", False, False, False, False),
        (13, "torch", "third-party", False, False, False, False),
        (16, "cv2", "third-party", False, True, False, False),
        (17, "scipy", "third-party", False, True, True, False),
        (19, "onnxruntime", "third-party", False, False, True, False),
        (20, "librosa", "third-party", False, False, True, False),
    ]


def test_local_modules_relative_imports_and_siblings(tmp_path: Path) -> None:
    result = _service(
        tmp_path,
        {
            "main.py": "import helpers\nimport core.db\nfrom core import db\nimport requests\n",
            "helpers.py": "",
            "core/__init__.py": "from . import db\nfrom .db import connect\nfrom .. import toplevel\n",
            "core/db.py": "",
            "scripts/run.py": "import sibling\nimport core\n",
            "scripts/sibling.py": "import json\n",
        },
    )
    rows = [(r.file, r.line, r.module, r.names, r.scope) for r in result.imports]
    assert rows == [
        ("svc/core/__init__.py", 1, "core", ("db",), L),
        ("svc/core/__init__.py", 2, "core.db", ("connect",), L),
        ("svc/core/__init__.py", 3, "", ("toplevel",), L),  # the service root itself
        ("svc/main.py", 1, "helpers", (), L),
        ("svc/main.py", 2, "core.db", (), L),
        ("svc/main.py", 3, "core", ("db",), L),
        ("svc/main.py", 4, "requests", (), T),
        ("svc/scripts/run.py", 1, "sibling", (), L),
        ("svc/scripts/run.py", 2, "core", (), L),
        ("svc/scripts/sibling.py", 1, "json", (), S),
    ]


def test_a_syntax_error_is_a_finding_and_imports_are_still_read(tmp_path: Path) -> None:
    result = _service(
        tmp_path,
        {
            "broken.py": "import numpy\nfrom PIL import Image, ImageOps\ndef f(:\n    import cv2\n",
            "good.py": "import soundfile\n",
        },
    )
    assert [(f.kind, f.path, f.line) for f in result.findings] == [(FindingKind.PARSE_ERROR, "svc/broken.py", 4)]
    assert result.findings[0].message == (
        "libcst could not parse this file: Syntax Error @ 4:1. parser error: error at 4:4: "
        "expected one of ), *, **, NAME; its imports were read line by line"
    )
    rows = [(r.file, r.line, r.module, r.names, r.fallback, r.guarded, r.lazy) for r in result.imports]
    assert rows == [
        ("svc/broken.py", 1, "numpy", (), True, False, False),
        ("svc/broken.py", 2, "PIL", ("Image", "ImageOps"), True, False, False),
        ("svc/broken.py", 4, "cv2", (), True, False, False),
        ("svc/good.py", 1, "soundfile", (), False, False, False),
    ]


def test_python2_file_falls_back_to_line_reading(tmp_path: Path) -> None:
    result = _service(
        tmp_path,
        {"legacy.py": "import urllib2, simplejson as json\ntry:\n    import cPickle\nexcept ImportError, e:\n    pass\nprint 'done'\n"},
    )
    assert [f.kind for f in result.findings] == [FindingKind.PARSE_ERROR]
    assert [(r.line, r.module) for r in result.imports] == [(1, "simplejson"), (1, "urllib2"), (3, "cPickle")]


def test_latin1_source_with_a_coding_cookie_parses(tmp_path: Path) -> None:
    source = "# -*- coding: latin-1 -*-\nimport requests\nNAME = 'caf\xe9'\n".encode("latin-1")
    result = _service(tmp_path, {"app.py": source})
    assert result.findings == ()
    assert [(r.line, r.module) for r in result.imports] == [(2, "requests")]


def test_undecodable_bytes_are_a_parse_error(tmp_path: Path) -> None:
    result = _service(tmp_path, {"app.py": b"import requests\nx = '\xff\xfe'\n"})
    assert [(f.kind, f.path) for f in result.findings] == [(FindingKind.PARSE_ERROR, "svc/app.py")]
    assert [(r.line, r.module, r.fallback) for r in result.imports] == [(1, "requests", True)]


def test_an_unreadable_file_is_a_finding_and_the_rest_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "svc"
    root.mkdir()
    (root / "app.py").write_text("import numpy\n")
    os.symlink(root / "gone.py", root / "dangling.py")
    services, _ = discover_services(root)
    result = collect_imports(services[0])
    assert result.findings == (
        Finding(FindingKind.UNREADABLE_FILE, "svc/dangling.py", None, "cannot read: No such file or directory"),
    )
    assert [r.module for r in result.imports] == ["numpy"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_a_finding(tmp_path: Path) -> None:
    root = tmp_path / "svc"
    root.mkdir()
    (root / "app.py").write_text("import numpy\n")
    (root / "secret.py").write_text("import x\n")
    (root / "secret.py").chmod(0)
    result = collect_imports(discover_services(root)[0][0])
    assert [(f.kind, f.path) for f in result.findings] == [(FindingKind.UNREADABLE_FILE, "svc/secret.py")]
