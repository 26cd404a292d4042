"""The fast indented writer gives json.dumps(indent=2, ensure_ascii=False)'s text, byte for byte."""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from typing import Any

import pytest

from depaudit.emit.indented import dumps_indented


class _Kind(str, enum.Enum):
    SONAME = "soname"


class _Rank(enum.IntEnum):
    FIRST = 1


CASES: list[Any] = [
    {},
    [],
    (),
    "",
    0,
    None,
    True,
    [[], {}, [[]], {"a": {}}],
    {"é \u2028 \x00 \x1f \" \\ / \t\n": ["ünïcode", "日本", "\ud83d\ude00", "\udc80"]},
    {"numbers": [1, -2, 10**40, 2.5, -0.0, 1e100, 1e-7, 0.1 + 0.2, float("nan"), float("inf"), -float("inf")]},
    {1: "int key", 2.5: "float key", True: "true key", None: "null key", False: "false key"},
    {"tuples": ("a", ("b", ("c",)), ())},
    {"enums": [_Kind.SONAME, _Rank.FIRST, {_Kind.SONAME: _Rank.FIRST}]},
    OrderedDict([("z", 1), ("a", [OrderedDict()])]),
    {"deep": [[[[{"x": [[[]]]}]]]]},
]


@pytest.mark.parametrize("value", CASES, ids=range(len(CASES)))
def test_the_text_is_json_dumps_own(value: Any) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2, ensure_ascii=False)


def test_what_json_cannot_write_is_refused_as_json_refuses_it() -> None:
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        dumps_indented({"a": {1, 2}})
    with pytest.raises(TypeError, match="keys must be str, int, float, bool or None, not tuple"):
        dumps_indented({(1, 2): "x"})
