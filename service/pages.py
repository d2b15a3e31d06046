"""OpenAI's cursor pages (`limit`, `order`, `after`, `before`) over a list already in creation order: the
shape the SDKs' `SyncCursorPage` reads and follows (`has_more`, then `after` = the last id)."""

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, Query

from ragserve.errors import InvalidRequestError

__all__ = ["Page", "PageDep"]

_T = TypeVar("_T")


class Page:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        order: Literal["asc", "desc"] = "desc",
        after: Annotated[str | None, Query(max_length=64)] = None,
        before: Annotated[str | None, Query(max_length=64)] = None,
    ) -> None:
        self.limit = limit
        self.order = order
        self.after = after
        self.before = before

    def of(
        self, items: Sequence[_T], id_of: Callable[[_T], str], render: Callable[[_T], dict[str, Any]]
    ) -> dict[str, Any]:
        """`items` oldest first; the page of them, rendered."""
        ordered = list(items) if self.order == "asc" else list(reversed(items))
        ids = [id_of(item) for item in ordered]
        start, end = 0, len(ordered)
        if self.after is not None:
            start = self._position(ids, self.after, "after") + 1
        if self.before is not None:
            end = self._position(ids, self.before, "before")
        window = ordered[start:end]
        if self.before is not None and self.after is None:
            window = window[-self.limit :]
            has_more = len(ordered[start:end]) > self.limit
        else:
            has_more = len(window) > self.limit
            window = window[: self.limit]
        data = [render(item) for item in window]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }

    @staticmethod
    def _position(ids: list[str], cursor: str, param: str) -> int:
        try:
            return ids.index(cursor)
        except ValueError:
            raise InvalidRequestError(f"{param}: {cursor!r} is not an id in this list", param=param) from None


PageDep = Annotated[Page, Depends(Page)]
