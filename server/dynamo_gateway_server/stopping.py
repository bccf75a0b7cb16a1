"""The last moment before the gateway stops listening: new calls are refused, never cancelled.

When a grpc.aio server stops, gRPC's core cancels every call it holds but has not handed
to the server yet, without a status a caller can act on (a write's caller cannot tell
whether it happened). Under steady load that queue is rarely empty: callers keep sending
on the connections they have until the server's GOAWAY, which only stopping sends, and a
busy event loop takes calls up late. So, just before stopping, the gateway closes this
gate: each new call is answered at once with UNAVAILABLE and RetryInfo (NotTakenError:
nothing was done; send it again once the listener has closed, when the caller's channel
reaches another replica). The server stops when no call taken up earlier is still running
and none has been refused for QUIET_S (so the loop is free and has emptied gRPC's queue),
or LONGEST_S after the gate closed.
Must not import gRPC.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

QUIET_S = 0.05
LONGEST_S = 1.0
# Refused callers come back this long after the latest stop: a retry that lands as the server
# stops would wait in gRPC's queue and be cancelled with it.
RETRY_MARGIN_S = 0.3
_POLL_S = 0.01


class NotTakenError(Exception):
    """A call that arrived after the gate closed: the gateway did nothing with it."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("the gateway is shutting down and did not take this call: send it again")
        self.retry_after_s = retry_after_s


class ShutdownGate:
    """Open while serving; closed for the last moment before the server stops.

    in_flight counts the calls taken up and not yet answered (the in-flight limiter's count;
    0 when limits are off, and then only the quiet spell counts)."""

    def __init__(self, in_flight: Callable[[], int] = lambda: 0) -> None:
        self.closed = False
        self.refused = 0
        self._in_flight = in_flight
        self._closed_at = 0.0  # time.monotonic()
        self._last_busy = 0.0  # when a call was last refused or seen running

    def refuse(self) -> NotTakenError:
        """The refusal for a call that found the gate closed. It asks the caller to wait until the
        listener has surely closed: a caller asked back sooner would only be refused again."""
        now = self._last_busy = time.monotonic()
        self.refused += 1
        return NotTakenError(max(0.0, self._closed_at + LONGEST_S - now) + RETRY_MARGIN_S)

    async def close(self, quiet_s: float = QUIET_S, longest_s: float = LONGEST_S) -> None:
        """Closes the gate; returns once the gateway has been idle for quiet_s, or after longest_s."""
        self.closed = True
        started = self._closed_at = self._last_busy = time.monotonic()
        while (now := time.monotonic()) - started < longest_s:
            if self._in_flight():
                self._last_busy = now
            elif now - self._last_busy >= quiet_s:
                return
            await asyncio.sleep(_POLL_S)
