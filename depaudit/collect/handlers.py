"""What an `except` handler catches, and whether it survives that failure, read with libcst."""

from __future__ import annotations

import libcst as cst
from libcst.helpers import get_full_name_for_node

from depaudit.collect.hint_calls import BARE_EXCEPT


def caught_names(handler: cst.ExceptHandler | cst.ExceptStarHandler) -> tuple[str, ...]:
    """The exception names a handler catches (their last dotted part); BARE_EXCEPT for `except:`."""
    if handler.type is None:
        return (BARE_EXCEPT,)
    types = handler.type.elements if isinstance(handler.type, cst.Tuple) else [handler.type]
    names = (get_full_name_for_node(item.value if isinstance(item, cst.BaseElement) else item) for item in types)
    return tuple(name.rsplit(".", 1)[-1] for name in names if name)


def handler_escapes(handler: cst.ExceptHandler | cst.ExceptStarHandler, *, continues: bool) -> bool:
    """Whether the handler's body raises (or, with `continues`, continues a loop to its next
    candidate), not counting the functions, classes and lambdas it only defines."""
    escapes = _Escapes(continues)
    handler.body.visit(escapes)
    return escapes.found


class _Escapes(cst.CSTVisitor):
    def __init__(self, continues: bool) -> None:
        self.continues = continues
        self.found = False

    def visit_Raise(self, node: cst.Raise) -> bool:
        self.found = True
        return False

    def visit_Continue(self, node: cst.Continue) -> bool:
        self.found = self.found or self.continues
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False
