"""Runs one command (a vLLM server) as its only child and stays its parent, so the command stops cleanly
however the process that started the keeper ends.

    python -m ragserve.engine.keeper PARENT_PID COMMAND [ARG ...]

The two ways a vLLM could outlive what started it, and how the keeper ends each:
- The API that started it is SIGKILLed: the kernel sends the keeper SIGUSR1 (its parent-death signal), and
  the keeper sends SIGTERM to its process group, as `VllmProcess.stop` does.
- A supervisor SIGKILLs its own children when it exits: Ray's workers do
  (`kill_child_processes_on_worker_exit`). That used to be the vLLM server, killed before it could stop its
  engine core, which was left running. Now it is the keeper, whose death sends the command SIGTERM (the
  command's parent-death signal); vLLM, still alive, shuts its engine core down.

SIGTERM, SIGINT and SIGHUP to the keeper do nothing: they come to the whole group (`VllmProcess.stop`), so the
command has them too, and the keeper waits for it. The keeper then ends as the command ended: with its exit
code, or killed by the same signal. Only the standard library: it starts before, and beside, every vLLM.
On a system without prctl (not Linux) the keeper only waits.
"""

import ctypes
import os
import signal
import subprocess
import sys
from contextlib import suppress
from types import FrameType

__all__ = ["main"]

_PR_SET_PDEATHSIG = 1
_PARENT_GONE = signal.SIGUSR1


def _on_parent_death(sig: int) -> bool:
    """Asks the kernel for `sig` when this process's parent dies; False where it cannot."""
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)
    return prctl is not None and prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0


def _stop_the_group(_sig: int, _frame: FrameType | None) -> None:
    os.killpg(os.getpgrp(), signal.SIGTERM)


def _child_setup(keeper: int) -> None:
    """In the command, before it starts: SIGTERM when the keeper dies, even if it died a moment ago."""
    if _on_parent_death(signal.SIGTERM) and os.getppid() != keeper:
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: python -m ragserve.engine.keeper PARENT_PID COMMAND [ARG ...]", file=sys.stderr)
        return 2
    parent, command = int(argv[0]), argv[1:]
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda _sig, _frame: None)
    signal.signal(_PARENT_GONE, _stop_the_group)
    keeper = os.getpid()
    # The handlers are Python's, not SIG_IGN, so the command starts with the default ones.
    child = subprocess.Popen(command, preexec_fn=lambda: _child_setup(keeper))  # noqa: PLW1509 - no threads
    if _on_parent_death(_PARENT_GONE) and os.getppid() != parent:
        _stop_the_group(_PARENT_GONE, None)  # the parent died before the kernel was asked to tell us
    code = child.wait()
    if code < 0:  # killed by a signal: end the same way, so our parent sees what the command saw
        with suppress(OSError, ValueError):  # SIGKILL and SIGSTOP have no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(keeper, -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
