"""Files libcst cannot parse or that cannot be read: a finding each, and the rest goes on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from depaudit.collect.imports import collect_imports
from depaudit.collect.model import ImportRecord, ImportScope, Service
from depaudit.collect.services import discover_services
from depaudit.findings import Finding, FindingKind

T, L, S = ImportScope.THIRD_PARTY, ImportScope.LOCAL, ImportScope.STDLIB


def fb(file: str, line: int, module: str, names: tuple[str, ...] = (), scope: ImportScope = T) -> ImportRecord:
    """A record of the line-level fallback."""
    return ImportRecord(file, line, module, names, scope, guarded=False, lazy=False, fallback=True)


def parsed(file: str, line: int, module: str, scope: ImportScope = T, **flags: bool) -> ImportRecord:
    return ImportRecord(file, line, module, (), scope, guarded=flags.pop("guarded", False), lazy=flags.pop("lazy", False), **flags)


def test_a_syntax_error_is_a_finding_and_its_imports_are_still_read(collect) -> None:
    result = collect(
        {
            "broken.py": (
                "import numpy\n"
                "from PIL import Image, ImageOps as Ops\n"
                "try:\n"
                "    import yaml\n"
                "except ImportError:\n"
                "    pass\n"
                "def f(:\n"
                "    import cv2\n"
                "from . import helpers\n"
            ),
            "good.py": "import soundfile\n",
        }
    )
    assert result.findings == (
        Finding(
            FindingKind.PARSE_ERROR,
            "svc/broken.py",
            7,  # Python's own message and line: libcst's said line 9
            "Python 3 cannot parse this file: invalid syntax; its imports were read line by line",
        ),
    )
    # The fallback sees no context: yaml is neither guarded nor is cv2 lazy.
    assert result.imports == (
        fb("svc/broken.py", 1, "numpy"),
        fb("svc/broken.py", 2, "PIL", ("Image", "ImageOps")),
        fb("svc/broken.py", 4, "yaml"),
        fb("svc/broken.py", 8, "cv2"),
        fb("svc/broken.py", 9, ".", ("helpers",), L),
        parsed("svc/good.py", 1, "soundfile"),
    )


def test_a_python2_file(collect) -> None:
    result = collect(
        {
            "legacy.py": (
                "import urllib2, simplejson as json\n"
                "import os; import sys\n"
                "try:\n"
                "    import cPickle as pickle\n"
                "except ImportError, e:\n"
                "    import pickle\n"
                "print 'done'\n"
            ),
            "pkg/__init__.py": "",
            "pkg/old.py": "from .models import Thing\nexec 'x = 1'\n",
            "helpers.py": "",
        }
    )
    assert [(f.kind, f.path, f.line) for f in result.findings] == [
        (FindingKind.PARSE_ERROR, "svc/legacy.py", 5),  # the first of its two Python 2 lines
        (FindingKind.PARSE_ERROR, "svc/pkg/old.py", 2),
    ]
    assert [f.message for f in result.findings] == [
        "Python 3 cannot parse this file: multiple exception types must be parenthesized; its imports were read line by line",
        "Python 3 cannot parse this file: Missing parentheses in call to 'exec'. Did you mean exec(...)?; its imports "
        "were read line by line",
    ]
    assert result.imports == (
        fb("svc/legacy.py", 1, "simplejson"),
        fb("svc/legacy.py", 1, "urllib2"),
        fb("svc/legacy.py", 2, "os", (), S),
        fb("svc/legacy.py", 2, "sys", (), S),
        fb("svc/legacy.py", 4, "cPickle"),
        fb("svc/legacy.py", 6, "pickle", (), S),
        fb("svc/pkg/old.py", 1, "pkg.models", ("Thing",), L),
    )


def test_python2_except_comma_alone_is_parsed_by_libcst(collect) -> None:
    # libcst accepts `except E, e:` (as the tuple `E, e`), so no fallback is needed and the
    # guard is still seen.
    result = collect({"app.py": "try:\n    import cPickle\nexcept ImportError, e:\n    pass\n"})
    assert result.findings == ()
    assert result.imports == (parsed("svc/app.py", 2, "cPickle", guarded=True),)


def test_latin1_source_with_a_coding_cookie_parses(collect) -> None:
    source = "# -*- coding: latin-1 -*-\nNAME = 'café'\ntry:\n    import requests\nexcept ImportError:\n    pass\n"
    result = collect({"app.py": source.encode("latin-1")})
    assert result.findings == ()
    assert result.imports == (parsed("svc/app.py", 4, "requests", guarded=True),)


def test_a_utf8_bom_is_honoured_by_the_parser_and_by_the_fallback(collect) -> None:
    result = collect({"ok.py": b"\xef\xbb\xbfimport requests\n", "bad.py": b"\xef\xbb\xbfimport numpy\nprint 'x'\n"})
    assert [(f.kind, f.path) for f in result.findings] == [(FindingKind.PARSE_ERROR, "svc/bad.py")]
    assert result.imports == (fb("svc/bad.py", 1, "numpy"), parsed("svc/ok.py", 1, "requests"))


def test_undecodable_bytes(collect) -> None:
    result = collect({"app.py": b"import requests\nx = '\xff\xfe'\nfrom caf\xe9 import x\n"})
    assert result.findings == (
        Finding(
            FindingKind.PARSE_ERROR,
            "svc/app.py",
            2,
            "Python 3 cannot parse this file: byte 0xff on line 2 is not utf-8: declare the file's encoding "
            "(# -*- coding: latin-1 -*-) or save it as UTF-8; its imports were read line by line",
        ),
    )
    # The undecodable byte becomes U+FFFD: line 3 is no longer an import statement.
    assert result.imports == (fb("svc/app.py", 1, "requests"),)


def test_an_unknown_encoding_and_a_nul_byte(collect) -> None:
    result = collect({"cookie.py": "# coding: klingon\nimport numpy\n", "nul.py": b"import torch\x00\n"})
    assert result.findings == (
        Finding(
            FindingKind.PARSE_ERROR,
            "svc/cookie.py",
            1,
            "Python 3 cannot parse this file: unknown encoding: klingon in its coding line; its imports were read line by line",
        ),
        Finding(
            FindingKind.PARSE_ERROR,
            "svc/nul.py",
            1,
            "Python 3 cannot parse this file: it holds a NUL byte: is it a binary file?; its imports were read line by line",
        ),
    )
    assert result.imports == (fb("svc/cookie.py", 2, "numpy"), fb("svc/nul.py", 1, "torch"))


def test_a_dangling_symlink_is_unreadable_and_the_rest_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "svc"
    root.mkdir()
    (root / "app.py").write_text("import numpy\n")
    (root / "x.py").symlink_to(root / "gone.py")
    (root / "z.py").write_text("import scipy\n")
    services, findings = discover_services(root)
    assert findings == []
    assert [p.name for p in services[0].files] == ["app.py", "x.py", "z.py"]
    result = collect_imports(services[0])
    assert result.findings == (Finding(FindingKind.UNREADABLE_FILE, "svc/x.py", None, "cannot read: No such file or directory"),)
    assert result.imports == (parsed("svc/app.py", 1, "numpy"), parsed("svc/z.py", 1, "scipy"))


def test_a_folder_named_like_a_module_is_unreadable(tmp_path: Path) -> None:
    root = tmp_path / "svc"
    (root / "x.py").mkdir(parents=True)
    (root / "app.py").write_text("import numpy\n")
    service = Service("svc", root, tmp_path, (root / "app.py", root / "x.py"), (), ())
    result = collect_imports(service)
    assert result.findings == (Finding(FindingKind.UNREADABLE_FILE, "svc/x.py", None, "cannot read: Is a directory"),)
    assert result.imports == (parsed("svc/app.py", 1, "numpy"),)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission(tmp_path: Path) -> None:
    root = tmp_path / "svc"
    root.mkdir()
    (root / "app.py").write_text("import numpy\n")
    (root / "secret.py").write_text("import x\n")
    (root / "secret.py").chmod(0)
    try:
        result = collect_imports(discover_services(root)[0][0])
    finally:
        (root / "secret.py").chmod(0o644)
    assert result.findings == (Finding(FindingKind.UNREADABLE_FILE, "svc/secret.py", None, "cannot read: Permission denied"),)
    assert result.imports == (parsed("svc/app.py", 1, "numpy"),)


def test_one_service_with_every_kind_of_bad_file_still_yields_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "services" / "stt"
    (root / "core").mkdir(parents=True)
    (root / "main.py").write_text("import core.audio\ntry:\n    import sounddevice\nexcept OSError:\n    pass\n")
    (root / "core" / "__init__.py").write_text("")
    (root / "core" / "audio.py").write_text("def load():\n    import soundfile\n")
    (root / "core" / "broken.py").write_text("import librosa\nif x\n")
    (root / "core" / "latin.py").write_bytes(b"# coding: latin-1\nimport numpy  # \xe9\n")
    (root / "core" / "gone.py").symlink_to(root / "nowhere.py")
    services, findings = discover_services(tmp_path / "services")
    assert findings == []
    result = collect_imports(services[0])
    assert [(f.kind, f.path, f.line) for f in result.findings] == [
        (FindingKind.PARSE_ERROR, "stt/core/broken.py", 2),
        (FindingKind.UNREADABLE_FILE, "stt/core/gone.py", None),
    ]
    assert result.imports == (
        parsed("stt/core/audio.py", 2, "soundfile", lazy=True),
        fb("stt/core/broken.py", 1, "librosa"),
        parsed("stt/core/latin.py", 2, "numpy"),
        parsed("stt/main.py", 1, "core.audio", L),
        parsed("stt/main.py", 3, "sounddevice"),
    )
