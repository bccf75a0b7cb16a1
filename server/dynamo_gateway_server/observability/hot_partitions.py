"""Partition awareness: hot partition keys and monotonically increasing write keys, per table.

HotPartitionDetector keeps a bounded top-k of partition keys (hashed) per table
with the Space-Saving algorithm over windows of N requests, and reports at the end
of each window the top keys' shares and whether one exceeded the configured share.
SequentialKeyDetector notices writes whose partition keys keep increasing
(timestamps, counters), which pile onto one partition at a time. Pure and bounded;
must not import gRPC, OpenTelemetry, metrics or logging setup.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any


@dataclass
class _SpaceSaving:
    """At most `capacity` counters; any key above 1/capacity of the traffic is guaranteed to be kept."""

    capacity: int
    counts: dict[str, int] = field(default_factory=dict)
    # Over-estimate of each count (what the evicted key had); count - error is a lower bound.
    errors: dict[str, int] = field(default_factory=dict)
    total: int = 0

    def add(self, key: str) -> None:
        self.total += 1
        if key in self.counts:
            self.counts[key] += 1
        elif len(self.counts) < self.capacity:
            self.counts[key] = 1
            self.errors[key] = 0
        else:
            smallest = min(self.counts, key=self.counts.__getitem__)
            floor = self.counts.pop(smallest)
            del self.errors[smallest]
            self.counts[key] = floor + 1
            self.errors[key] = floor


@dataclass(frozen=True)
class HotKey:
    key_hash: str
    # The guaranteed share of the window's requests (Space-Saving's lower bound).
    share: float


@dataclass(frozen=True)
class WindowReport:
    table: str
    requests: int
    top: tuple[HotKey, ...]
    # The keys above the threshold (empty on a healthy table).
    hot: tuple[HotKey, ...]


class HotPartitionDetector:
    """Counts requests per (table, hashed partition key); report() at the end of each window."""

    def __init__(self, window: int, share: float, top_k: int, max_tables: int = 500) -> None:
        self.window = window
        self.share = share
        self.top_k = top_k
        self._max_tables = max_tables
        # Enough counters that every key above the threshold, and the top k, are tracked.
        self._capacity = max(2 * top_k, math.ceil(2 / share)) if share > 0 else 2 * top_k
        self._tables: collections.OrderedDict[str, _SpaceSaving] = collections.OrderedDict()

    def record(self, table: str, key_hash: str) -> WindowReport | None:
        """Counts one request; returns the window's report when this request completed a window."""
        if self.window <= 0:
            return None
        counts = self._tables.get(table)
        if counts is None:
            counts = self._tables[table] = _SpaceSaving(self._capacity)
            if len(self._tables) > self._max_tables:
                self._tables.popitem(last=False)
        counts.add(key_hash)
        if counts.total < self.window:
            return None
        del self._tables[table]  # the next request starts a fresh window
        ranked = sorted(counts.counts, key=lambda key: (-counts.counts[key], key))[: self.top_k]
        top = tuple(HotKey(key, (counts.counts[key] - counts.errors[key]) / counts.total) for key in ranked)
        return WindowReport(table, counts.total, top, tuple(key for key in top if key.share > self.share))


def _comparable(value: dict[str, Any]) -> tuple[str, Any] | None:
    if "N" in value:
        try:
            return ("N", Decimal(value["N"]))
        except InvalidOperation:
            return None
    if "S" in value:
        return ("S", value["S"])
    if "B" in value:
        return ("B", bytes(value["B"]))
    return None


@dataclass
class _Sequence:
    last: tuple[str, Any] | None = None
    # 1 where a write's key was greater than the one before, over the last `window` writes.
    increases: collections.deque[int] = field(default_factory=collections.deque)
    # sum(increases), kept as writes come and go rather than summed on every write.
    rises: int = 0
    warned: bool = False


class SequentialKeyDetector:
    """Flags a table once when nearly all of its last `window` writes had increasing partition keys."""

    # Out-of-order arrival of concurrent writers still reads as sequential; random keys rise half the time.
    SHARE = 0.9

    def __init__(self, window: int, max_tables: int = 500) -> None:
        self.window = window
        self._max_tables = max_tables
        self._tables: collections.OrderedDict[str, _Sequence] = collections.OrderedDict()

    def record(self, table: str, partition: dict[str, Any]) -> bool:
        """Counts one write; True exactly when this write makes the table look sequential again."""
        if self.window <= 1:
            return False
        value = _comparable(partition)
        state = self._tables.get(table)
        if state is None:
            state = self._tables[table] = _Sequence(increases=collections.deque(maxlen=self.window))
            if len(self._tables) > self._max_tables:
                self._tables.popitem(last=False)
        previous, state.last = state.last, value
        if previous is None or value is None or previous[0] != value[0]:
            return False
        increases = state.increases
        if len(increases) == self.window:
            state.rises -= increases[0]  # the deque drops it on append
        rose = int(value[1] > previous[1])
        increases.append(rose)
        state.rises += rose
        sequential = len(increases) == self.window and state.rises >= self.SHARE * self.window
        if sequential and not state.warned:
            state.warned = True
            return True
        if not sequential and state.rises < self.window / 2:
            state.warned = False  # the pattern is gone; warn again if it comes back
        return False
