"""A path-like field of a request, refused for what no honest path holds (over HTTP: test_public_surface)."""

import pytest
from pydantic import BaseModel, ValidationError

from ragserve.service.paths import MAX_PATH_CHARS, RequestPath


class _Body(BaseModel):
    path: RequestPath


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("/srv/a\x00b", "NUL"),
        ("/srv/\ud800", "unicode"),
        ("/srv/a\nb", "control character"),
        ("/srv/a\x7fb", "control character"),
        ("../etc", "'..'"),
        ("/srv/docs/../../etc", "'..'"),
        ("C:\\docs\\..\\secrets", "'..'"),
        ("", "at least 1"),
        ("/" + "a" * MAX_PATH_CHARS, "at most"),
    ],
)
def test_a_path_is_refused_saying_why(value: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        _Body(path=value)


@pytest.mark.parametrize("value", ["/srv/docs", "docs/manuals", "/srv/Bücher/..hidden", "/srv/a..b"])
def test_a_plain_path_is_kept_as_sent(value: str) -> None:
    assert _Body(path=value).path == value
