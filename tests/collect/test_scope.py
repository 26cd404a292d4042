"""Which imports are the service's own, the standard library's, or a third party's."""

from __future__ import annotations

from pathlib import Path

from depaudit.collect.imports import collect_imports
from depaudit.collect.model import ImportRecord, ImportScope, Service

T, L, S = ImportScope.THIRD_PARTY, ImportScope.LOCAL, ImportScope.STDLIB


def rows(result) -> list[tuple[str, int, str, tuple[str, ...], ImportScope]]:
    return [(r.file, r.line, r.module, r.names, r.scope) for r in result.imports]


def test_root_modules_packages_and_script_siblings_are_local(collect) -> None:
    result = collect(
        {
            "main.py": "import helpers\nimport core.db\nfrom core import db\nimport shared.util\nimport requests\n",
            "helpers.py": "",
            "core/__init__.py": "",
            "core/db.py": "import sibling_of_db\nimport db_neighbour\n",
            "core/db_neighbour.py": "",
            "shared/util.py": "",  # a namespace package: no __init__.py
            "scripts/run.py": "import sibling\nimport tools\nimport core\nimport helpers\nimport other\n",
            "scripts/sibling.py": "",
            "scripts/tools/__init__.py": "",
            "docs/notes.txt": "",
            "main_data/readme.md": "",
        }
    )
    assert rows(result) == [
        ("svc/core/db.py", 1, "sibling_of_db", (), T),
        ("svc/core/db.py", 2, "db_neighbour", (), L),  # its own folder is sys.path[0] when run as a script
        ("svc/main.py", 1, "helpers", (), L),
        ("svc/main.py", 2, "core.db", (), L),
        ("svc/main.py", 3, "core", ("db",), L),
        ("svc/main.py", 4, "shared.util", (), L),
        ("svc/main.py", 5, "requests", (), T),
        ("svc/scripts/run.py", 1, "sibling", (), L),
        ("svc/scripts/run.py", 2, "tools", (), L),
        ("svc/scripts/run.py", 3, "core", (), L),
        ("svc/scripts/run.py", 4, "helpers", (), L),
        ("svc/scripts/run.py", 5, "other", (), T),
    ]


def test_a_sibling_is_local_only_for_files_in_its_folder(collect) -> None:
    result = collect({"main.py": "import sibling\n", "scripts/run.py": "import sibling\n", "scripts/sibling.py": ""})
    assert rows(result) == [("svc/main.py", 1, "sibling", (), T), ("svc/scripts/run.py", 1, "sibling", (), L)]


def test_folders_without_python_and_skipped_folders_are_not_local(collect) -> None:
    result = collect(
        {
            "main.py": "import docs\nimport venv_pkg\nimport cached\nimport fast\nimport libvendor\n",
            "docs/index.md": "",
            "env/pyvenv.cfg": "",
            "env/venv_pkg/__init__.py": "",
            "__pycache__/cached.py": "",
            "fast.cpython-311-x86_64-linux-gnu.so": b"\x7fELF",  # an extension module built in place
            "libvendor.so": b"\x7fELF",  # a shared library, not a module
        }
    )
    assert [(r.module, r.scope) for r in result.imports] == [
        ("docs", T),
        ("venv_pkg", T),
        ("cached", T),
        ("fast", L),
        ("libvendor", T),
    ]


def test_stdlib_and_future(collect) -> None:
    result = collect({"app.py": "from __future__ import annotations\nimport json, os.path, xml.etree.ElementTree\nimport jsonschema\n"})
    assert [(r.module, r.scope) for r in result.imports] == [
        ("__future__", S),
        ("json", S),
        ("os.path", S),
        ("xml.etree.ElementTree", S),
        ("jsonschema", T),
    ]


def test_relative_imports_resolve_against_the_files_package(collect) -> None:
    result = collect(
        {
            "core/__init__.py": "from . import db\nfrom .db import connect\n",
            "core/db.py": "from .models import User\nfrom .. import toplevel\n",
            "core/sub/deep.py": "from ..db import connect\nfrom ... import beyond\nfrom .. import db\n",
            "main.py": "from . import helpers\nfrom .helpers import x\n",
        }
    )
    assert rows(result) == [
        ("svc/core/__init__.py", 1, "core", ("db",), L),
        ("svc/core/__init__.py", 2, "core.db", ("connect",), L),
        ("svc/core/db.py", 1, "core.models", ("User",), L),
        ("svc/core/db.py", 2, "..", ("toplevel",), L),  # above the top-level package: kept as written
        ("svc/core/sub/deep.py", 1, "core.db", ("connect",), L),
        ("svc/core/sub/deep.py", 2, "...", ("beyond",), L),
        ("svc/core/sub/deep.py", 3, "core", ("db",), L),
        ("svc/main.py", 1, ".", ("helpers",), L),  # a script at the root has no package
        ("svc/main.py", 2, ".helpers", ("x",), L),
    ]


def test_paths_are_relative_to_the_display_root(tmp_path: Path) -> None:
    root = tmp_path / "fleet" / "svc"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("import requests\n")
    service = Service("svc", root, tmp_path, (root / "pkg" / "mod.py",), (), ())
    assert collect_imports(service).imports == (
        ImportRecord("fleet/svc/pkg/mod.py", 1, "requests", (), T, guarded=False, lazy=False),
    )
