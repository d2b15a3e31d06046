"""Waiting for something a real process does in its own time."""

import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(
    condition: Callable[[], bool], timeout_s: float, what: str = "the condition", period_s: float = 0.05
) -> float:
    """Polls `condition` every `period_s` until it holds; the seconds that took. Fails after `timeout_s`,
    naming `what`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"waited {timeout_s} s for {what}"
        time.sleep(period_s)
    return time.monotonic() - started
