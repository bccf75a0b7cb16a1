"""The gateway's own limits on callers: RPCs in flight (per server and per caller) and request bytes.

InFlightLimiter counts RPCs per server and per caller and says no at once when a
limit is reached: callers are never queued. RequestTooLarge and
ConcurrencyLimitExceeded are the refusals errors.py renders. (DynamoDB's own
input rules are input_rules.py's.) Must not import gRPC.
"""

from __future__ import annotations

import collections

# ---------------------------------------------------------------- refusals before decoding


class RequestTooLarge(Exception):
    """The request's bytes are over --max-request-bytes."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the request is {size} bytes; this gateway takes at most {limit}")
        self.size = size
        self.limit = limit


class ConcurrencyLimitExceeded(Exception):
    """No slot left for this RPC: `scope` says whose limit, "server" or "caller"."""

    def __init__(self, scope: str, limit: int) -> None:
        whose = "this caller's" if scope == "caller" else "this gateway's"
        super().__init__(f"{whose} limit of {limit} RPCs in flight is reached; try again shortly")
        self.scope = scope
        self.limit = limit


# ---------------------------------------------------------------- in-flight RPCs


class InFlightLimiter:
    """RPCs in flight, in all and per caller; enter() refuses at once instead of queueing."""

    def __init__(self, max_total: int, max_per_caller: int) -> None:
        # 0: no limit.
        self.max_total = max_total
        self.max_per_caller = max_per_caller
        self.total = 0
        self._per_caller: collections.Counter[str] = collections.Counter()

    def enter(self, caller: str) -> str | None:
        """Takes a slot; None on success, else which limit refused: "server" or "caller"."""
        if self.max_total and self.total >= self.max_total:
            return "server"
        if self.max_per_caller and self._per_caller[caller] >= self.max_per_caller:
            return "caller"
        self.total += 1
        self._per_caller[caller] += 1
        return None

    def leave(self, caller: str) -> None:
        self.total -= 1
        self._per_caller[caller] -= 1
        if self._per_caller[caller] <= 0:
            del self._per_caller[caller]  # bounded by callers in flight, not callers ever seen

    def in_flight(self, caller: str) -> int:
        return self._per_caller.get(caller, 0)
