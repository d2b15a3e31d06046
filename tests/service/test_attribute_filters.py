"""OpenAI's attribute filters, evaluated as documented in service/attribute_filters.py; and cursor pages."""

from typing import Any

import pytest
from pydantic import TypeAdapter

from ragserve.errors import InvalidRequestError
from ragserve.service.attribute_filters import AttributeFilter
from ragserve.service.pages import Page

FILTER: TypeAdapter[Any] = TypeAdapter(AttributeFilter)
FILE = {"year": 1999.0, "kind": "memo", "draft": False}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"type": "eq", "key": "kind", "value": "memo"}, True),
        ({"type": "ne", "key": "kind", "value": "memo"}, False),
        ({"type": "gt", "key": "year", "value": 1990}, True),
        ({"type": "lte", "key": "year", "value": 1990}, False),
        ({"type": "gt", "key": "kind", "value": 3}, False),  # across kinds: false
        ({"type": "lt", "key": "kind", "value": "zz"}, True),  # strings order as strings
        ({"type": "eq", "key": "draft", "value": 0}, False),  # a boolean is not a number
        ({"type": "eq", "key": "draft", "value": False}, True),
        ({"type": "in", "key": "kind", "value": ["memo", "spec"]}, True),
        ({"type": "nin", "key": "kind", "value": ["memo"]}, False),
        ({"type": "eq", "key": "missing", "value": "x"}, False),
        ({"type": "ne", "key": "missing", "value": "x"}, True),
        ({"type": "nin", "key": "missing", "value": ["x"]}, True),
        (
            {
                "type": "and",
                "filters": [
                    {"type": "eq", "key": "kind", "value": "memo"},
                    {
                        "type": "or",
                        "filters": [
                            {"type": "lt", "key": "year", "value": 1990},
                            {"type": "eq", "key": "draft", "value": False},
                        ],
                    },
                ],
            },
            True,
        ),
        ({"type": "or", "filters": [{"type": "eq", "key": "kind", "value": "spec"}]}, False),
    ],
)
def test_filters_match_attributes_as_documented(given: dict[str, Any], expected: bool) -> None:
    assert FILTER.validate_python(given).matches(FILE) is expected


def _page(**options: Any) -> dict[str, Any]:
    items = [{"id": f"f{i}"} for i in range(5)]  # oldest first
    return Page(**{"limit": 2, "order": "asc", "after": None, "before": None, **options}).of(
        items, lambda i: i["id"], dict
    )


def test_cursor_pages_follow_after_and_before_in_either_order() -> None:
    first = _page()
    assert [i["id"] for i in first["data"]] == ["f0", "f1"] and first["has_more"]
    assert [i["id"] for i in _page(after="f3")["data"]] == ["f4"] and not _page(after="f3")["has_more"]
    assert [i["id"] for i in _page(order="desc")["data"]] == ["f4", "f3"]
    assert [i["id"] for i in _page(before="f3")["data"]] == ["f1", "f2"]
    with pytest.raises(InvalidRequestError):
        _page(after="someone-elses")
