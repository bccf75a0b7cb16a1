"""The last moment before the gateway stops listening: new calls are refused, never cancelled.

When a grpc.aio server stops, gRPC's core cancels every call it holds but has not handed
to the server yet, without a status a caller can act on (a write's caller cannot tell
whether it happened). Under steady load that queue is rarely empty: callers keep sending
on the connections they have until the server's GOAWAY, which only stopping sends, and a
busy event loop takes calls up late. So, just before stopping, the gateway closes this
gate:
- each new call is answered at once with UNAVAILABLE and RetryInfo (NotTakenError: nothing
  was done; send it again once the listener has closed, when the caller's channel reaches
  another replica);
- a call taken up earlier that finishes while the gate is closed keeps its answer until the
  server has begun to stop (`hold_answer`, never past its caller's deadline): its caller's
  next call then goes to another replica instead of into the queue that stopping cancels.
The server stops once no call has been refused for QUIET_S while the event loop kept time (a
loop running late may have calls waiting in gRPC's queue that it has not seen yet), or
LONGEST_S after the gate closed. Calls still running then finish within the grace period.
Must not import gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from .resilience import response_margin_s

QUIET_S = 0.05
LONGEST_S = 1.0
# Refused callers come back this long after the latest stop: a retry that lands as the server
# stops would wait in gRPC's queue and be cancelled with it.
RETRY_MARGIN_S = 0.3
_POLL_S = 0.01
# A look that comes this much later than asked means the loop was busy: not a quiet moment.
_LATE_S = 3 * _POLL_S


class NotTakenError(Exception):
    """A call that arrived after the gate closed: the gateway did nothing with it."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("the gateway is shutting down and did not take this call: send it again")
        self.retry_after_s = retry_after_s


class ShutdownGate:
    """Open while serving; closed for the last moment before the server stops."""

    def __init__(self) -> None:
        self.closed = False
        self.refused = 0
        self._closed_at = 0.0  # time.monotonic()
        self._last_refused = 0.0
        self._stopping: asyncio.Event | None = None  # made in close(), inside the loop

    def refuse(self) -> NotTakenError:
        """The refusal for a call that found the gate closed. It asks the caller to wait until the
        listener has surely closed: a caller asked back sooner would only be refused again."""
        now = self._last_refused = time.monotonic()
        self.refused += 1
        return NotTakenError(max(0.0, self._closed_at + LONGEST_S - now) + RETRY_MARGIN_S)

    async def close(self, quiet_s: float = QUIET_S, longest_s: float = LONGEST_S) -> None:
        """Closes the gate; returns after a quiet spell of quiet_s, or after longest_s."""
        self._stopping = asyncio.Event()
        self.closed = True
        started = self._closed_at = quiet_from = looked = time.monotonic()
        while (now := time.monotonic()) - started < longest_s:
            if now - looked > _LATE_S:
                quiet_from = now
            quiet_from = max(quiet_from, self._last_refused)
            if now - quiet_from >= quiet_s:
                return
            looked = now + _POLL_S
            await asyncio.sleep(_POLL_S)

    def stopping(self) -> None:
        """The server has begun to stop (its GOAWAY is on the way): held answers go out."""
        if self._stopping is not None:
            self._stopping.set()

    async def hold_answer(self, time_remaining_s: float | None = None) -> None:
        """For a call finishing while the gate is closed: returns once the server is stopping, or
        once the caller's budget, less the margin kept for answers, runs out (`time_remaining_s`:
        the call's; None, no deadline). An answer held past its caller's deadline would leave a
        caller not knowing whether its call happened, which is what the gate is for."""
        if self._stopping is None:
            return
        if time_remaining_s is None:
            await self._stopping.wait()
            return
        budget = time_remaining_s - response_margin_s(time_remaining_s)
        if budget > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(budget):
                    await self._stopping.wait()
