"""What the gateway makes up itself in a request (tokens, the time), so a recording can be replayed.

A replayed call must match its recording although the gateway drew a new ClientRequestToken,
a new version-log token or a later "now" for it. While recording or replaying (`track()`
turns it on for the process), each value the gateway makes up is noted for the task that
made it (one RPC, or one ParallelScan segment): the recorder stores them beside the request,
and the replayer treats the n-th of them in a recording and in the live call as the same
value (backends/replay.py). Off, `noted()` costs one global read.

The wall clock the TTL stages use (`wall_time`) is, after a recorded or replayed answer, the
time that answer was recorded, so that hiding expired items gives the same answer on replay.
Must not import gRPC.
"""

from __future__ import annotations

import contextvars
import time

_tracking = False
_noted: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("dgw_made_here", default=())
_answered_at: contextvars.ContextVar[float | None] = contextvars.ContextVar("dgw_answered_at", default=None)


def track() -> None:
    """Notes made-up values from now on (the recorder and the replayer turn it on)."""
    global _tracking
    _tracking = True


def noted(value: str) -> str:
    """`value`, which the gateway made up, noted for this task when tracking."""
    if _tracking:
        # A new tuple each time: a task started later sees what was noted before it, never after.
        _noted.set((*_noted.get(), value))
    return value


def start_afresh() -> None:
    """This task's calls from here on are a sequence of their own (a ParallelScan worker's next
    segment), however many the task made before."""
    if _tracking:
        _noted.set(())
        _answered_at.set(None)


def made_so_far() -> tuple[str, ...]:
    """The values this task made up so far, in the order it made them."""
    return _noted.get()


def wall_time() -> float:
    """Epoch seconds: now, or when the last recorded (or replayed) answer of this task came."""
    at = _answered_at.get()
    return time.time() if at is None else at


def answered_at(at: float) -> None:
    """Sets the time `wall_time` gives this task from here on (the recorder and the replayer)."""
    _answered_at.set(at)
