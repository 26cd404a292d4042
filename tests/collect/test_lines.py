"""Lines taken from `ast` are the lines libcst's PositionProvider gives, or it is asked instead."""

from __future__ import annotations

import sys
import textwrap

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper

from depaudit.collect import hint_visitor, hints, import_visitor, imports
from depaudit.collect.lines import lines

TRICKY = textwrap.dedent(
    '''\
    import os, sys
    from ctypes.util import find_library as _find
    import subprocess as sp

    @register(name=str(1))
    def tool(path=os.path.join("a", "b")):
        """import nothing here"""
        value = f"{len(path)} {str(f'{abs(1)}')}"
        return sp.run(
            ["ffmpeg", path])(check=True)

    if sys.platform == "win32":
        import winreg
        ctypes.WinDLL(find("x"))(open("a"))
    elif sys.platform == "darwin":
        os.system("brew install x")
    else:
        _find(str("z") and "zbar") or _find("zbar")

    try:
        import numpy
    except ImportError:
        numpy = None

    handler = lambda: __import__("json")
    print(importlib.import_module("yaml"), (lambda: os.popen("lsblk"))())
    x = [shutil.which("git") for _ in range(3)] if flag() else {k: os.execvp("tar", []) for k in ()}
    '''
).encode()


def _both(visitor: type, positioned: type, source: bytes, *args: str) -> tuple[list[int], list[int]]:
    module = cst.parse_module(source)
    fast = visitor(*args)
    module.visit(fast)
    found = lines(source, fast.counter)
    assert found is not None
    slow = positioned(*args)
    MetadataWrapper(module, unsafe_skip_copy=True).visit(slow)
    items = getattr(fast, "found", None) or fast.hints
    reference = getattr(slow, "found", None) or slow.hints
    return [found[item.line] for item in items], [item.line for item in reference]


def test_import_lines_agree_with_position_provider() -> None:
    fast, slow = _both(import_visitor._ImportVisitor, import_visitor._PositionedImportVisitor, TRICKY, "pkg")
    assert fast == slow == [1, 1, 2, 3, 13, 21, 25, 26]


def test_hint_lines_agree_with_position_provider_across_a_skipped_platform_block() -> None:
    fast, slow = _both(hint_visitor._HintVisitor, hint_visitor._PositionedHintVisitor, TRICKY)
    assert fast == slow == [9, 18, 26, 27, 27]


def test_a_count_ast_does_not_share_gives_no_lines() -> None:
    source = b"import os\nos.system('ls')\n"
    visitor = import_visitor._ImportVisitor("")
    cst.parse_module(source).visit(visitor)
    assert lines(source, visitor.counter) == {0: 1}
    visitor.counter.meet()  # one node more than `ast` sees: the ordinals can no longer be trusted
    assert lines(source, visitor.counter) is None


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="`type X = ...` is valid syntax for ast on 3.12+")
def test_syntax_only_libcst_reads_falls_back_to_position_provider() -> None:
    source = b"type Vector = list[float]\n\nimport numpy\nos.system('ls')\n"
    assert lines(source, import_visitor._ImportVisitor("").counter) is None
    assert [(f.line, f.module) for f in imports._parse(source, "")] == [(3, "numpy")]
    assert [(h.line, h.candidates) for h in hints.scan_hints(source)] == [(4, ("ls",))]
