"""Waiting for something a real process does in its own time."""

import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str | Callable[[], str] = "the condition",
    period_s: float = 0.05,
) -> float:
    """Polls `condition` every `period_s` until it holds; the seconds that took. Fails after `timeout_s`,
    naming `what` (a callable: what it says then, such as the state that was waited on)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started >= timeout_s:
            raise AssertionError(f"waited {timeout_s} s for {what() if callable(what) else what}")
        time.sleep(period_s)
    return time.monotonic() - started
