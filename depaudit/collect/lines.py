"""Line numbers of the nodes a libcst visitor reports, taken from the stdlib's `ast`.

libcst's PositionProvider renders the whole tree while tracking positions: more than half of
the cost of reading a file. Both parsers see the same calls and import statements in the same
order (source order, an outer call before the calls in its arguments), so a visitor only counts
those nodes as it meets them; the k-th it met is the k-th of `ast`'s, sorted by position, and
`ast` knows its line. A count or a name on which the two parsers disagree (syntax one of them
takes and the other does not) gives no answer, and the caller asks PositionProvider instead.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import libcst as cst
from libcst.helpers import get_full_name_for_node

from depaudit.collect.units import counted_nodes, dotted_name


@dataclass
class NodeCounter:
    """What a visitor keeps: how many calls and import statements it met in source order, and
    for each one it reports, the name `ast` must agree on."""

    seen: int = 0
    reported: dict[int, str | None] = field(default_factory=dict)

    def meet(self) -> int:
        """Called on entering every cst.Call, cst.Import and cst.ImportFrom."""
        self.seen += 1
        return self.seen - 1

    def skip(self, node: cst.CSTNode) -> None:
        """The visitor does not enter `node`: count what it holds all the same."""
        node.visit(_Skipped(self))

    def report(self, node: cst.CSTNode) -> int:
        """The ordinal of the node just met, which the visitor reports; read back by `lines`."""
        ordinal = self.seen - 1
        self.reported[ordinal] = _cst_name(node)
        return ordinal


def lines(source: bytes, counter: NodeCounter, nodes: Sequence[ast.AST] | None = None) -> dict[int, int] | None:
    """ordinal → line of each reported node; None when `ast` and libcst disagree. `nodes`: the
    source's calls and import statements as `counted_nodes` gives them, where the caller has
    them from a tree it parsed already (their lines are then theirs: a cut's lines in the file);
    else `source` is parsed here."""
    if nodes is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        nodes = counted_nodes(tree)
    if len(nodes) != counter.seen:
        return None
    found = {}
    for ordinal, name in counter.reported.items():
        node = nodes[ordinal]
        if name != _ast_name(node):
            return None
        found[ordinal] = node.lineno  # type: ignore[attr-defined]
    return found


# Nodes that hold no call and no import statement: a walk that looks for those need not enter
# them. Whitespace, newlines and names are four fifths of what libcst's walk meets.
_HOLD_NO_CALL = (
    cst.SimpleWhitespace, cst.ParenthesizedWhitespace, cst.TrailingWhitespace, cst.EmptyLine, cst.Newline,
    cst.Comment, cst.Name, cst.SimpleString, cst.Integer, cst.Float, cst.Imaginary, cst.Comma, cst.Dot,
    cst.AssignEqual, cst.Colon, cst.Semicolon, cst.LeftParen, cst.RightParen, cst.Pass,
)


class CallVisitor(cst.CSTVisitor):
    """A visitor for calls and imports, whose walk passes over the nodes that cannot hold one."""

    def on_visit(self, node: cst.CSTNode) -> bool:
        return not isinstance(node, _HOLD_NO_CALL) and super().on_visit(node)


class _Skipped(CallVisitor):
    def __init__(self, counter: NodeCounter) -> None:
        super().__init__()
        self.counter = counter

    def visit_Call(self, node: cst.Call) -> None:
        self.counter.meet()

    def visit_Import(self, node: cst.Import) -> None:
        self.counter.meet()

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.counter.meet()


def _cst_name(node: cst.CSTNode) -> str | None:
    if isinstance(node, cst.Call):
        return "call " + (get_full_name_for_node(node.func) or "?")
    return "import" if isinstance(node, cst.Import) else "from"


def _ast_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        return "call " + (dotted_name(node.func) or "?")  # the same name libcst gives it
    return "import" if isinstance(node, ast.Import) else "from"
