"""OpenAI's filters on file attributes (vector store search, the file_search tool): comparisons, joined by
`and` and `or`, evaluated against each file's attributes in a store.

A comparison with an attribute the file lacks is false, except `ne` and `nin`, which it meets. `gt`, `gte`,
`lt` and `lte` compare numbers with numbers and strings with strings; across kinds they are false.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MAX_DEPTH", "AttributeFilter", "Attributes", "ComparisonFilter", "CompoundFilter"]

MAX_DEPTH = 8  # compound filters inside compound filters
AttributeValue = Annotated[str, Field(max_length=512)] | bool | float
Attributes = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=64)], AttributeValue], Field(max_length=16)
]
_Scalar = str | bool | float


class ComparisonFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]
    key: Annotated[str, Field(min_length=1, max_length=64)]
    value: (
        Annotated[str, Field(max_length=512)]
        | bool
        | float
        | Annotated[list[Annotated[str, Field(max_length=512)] | float], Field(max_length=256)]
    )

    def matches(self, attributes: dict[str, _Scalar]) -> bool:
        if self.key not in attributes:
            return self.type in ("ne", "nin")
        found = attributes[self.key]
        if self.type in ("in", "nin"):
            listed = self.value if isinstance(self.value, list) else [self.value]
            inside = any(_same(found, v) for v in listed)
            return inside if self.type == "in" else not inside
        if isinstance(self.value, list):
            return False
        if self.type in ("eq", "ne"):
            return _same(found, self.value) == (self.type == "eq")
        return _ordered(found, self.value, self.type)


class CompoundFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["and", "or"]
    filters: Annotated[list["AttributeFilter"], Field(min_length=1, max_length=64)]

    def matches(self, attributes: dict[str, _Scalar]) -> bool:
        results = (f.matches(attributes) for f in self.filters)
        return all(results) if self.type == "and" else any(results)

    def depth(self) -> int:
        return 1 + max((f.depth() for f in self.filters if isinstance(f, CompoundFilter)), default=0)


AttributeFilter = Annotated[ComparisonFilter | CompoundFilter, Field(union_mode="left_to_right")]
CompoundFilter.model_rebuild()


def _same(a: _Scalar, b: _Scalar) -> bool:
    """Equal and of one kind: a boolean is not the number 1, as in JSON."""
    return isinstance(a, bool) == isinstance(b, bool) and isinstance(a, str) == isinstance(b, str) and a == b


def _ordered(a: _Scalar, b: _Scalar, op: str) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) != isinstance(b, str):
        return False
    if op == "gt":
        return a > b  # type: ignore[operator]
    if op == "gte":
        return a >= b  # type: ignore[operator]
    if op == "lt":
        return a < b  # type: ignore[operator]
    return a <= b  # type: ignore[operator]
