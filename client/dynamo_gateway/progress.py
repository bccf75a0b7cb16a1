"""A one-line progress bar on stderr: items, megabytes, rate and time left.

Owns rendering only; callers report progress with advance(). Redraws at most every
`interval_s` (a terminal redraw per item would cost more than the work), and only
when enabled (by default: when the stream is a terminal). No dependencies.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

_BAR_WIDTH = 24


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


class Progress:
    """Progress toward `total` units (items, or bytes when `by_bytes`); total may be unknown (None)."""

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        by_bytes: bool = False,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.by_bytes = by_bytes
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.interval_s = interval_s
        self.clock = clock
        self.items = 0
        self.bytes = 0
        self._started = clock()
        self._drawn_at = float("-inf")
        # Work done before this run (a resumed export): counts toward the total, not the rate.
        self._items_before = 0
        self._bytes_before = 0

    def resume_from(self, items: int, written_bytes: int) -> None:
        self.items, self.bytes = items, written_bytes
        self._items_before, self._bytes_before = items, written_bytes

    def advance(self, items: int = 0, written_bytes: int = 0) -> None:
        self.items += items
        self.bytes += written_bytes
        if self.enabled and self.clock() - self._drawn_at >= self.interval_s:
            self._draw()

    def line(self) -> str:
        elapsed = max(self.clock() - self._started, 1e-9)
        rate = (self.items - self._items_before) / elapsed
        byte_rate = (self.bytes - self._bytes_before) / elapsed
        done = self.bytes if self.by_bytes else self.items
        parts = [self.label]
        if self.total:
            fraction = min(done / self.total, 1.0)
            filled = int(fraction * _BAR_WIDTH)
            parts.append(f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {fraction:6.1%}")
        parts.append(f"{self.items:,} items")
        parts.append(f"{self.bytes / 1e6:,.1f} MB")
        parts.append(f"{rate:,.0f} items/s")
        left = (self.total - done) if self.total else None
        speed = byte_rate if self.by_bytes else rate
        if left is not None and left > 0 and speed > 0:
            parts.append(f"ETA {_duration(left / speed)}")
        elif self.total:
            parts.append("ETA --:--")
        return "  ".join(parts)

    def _draw(self) -> None:
        self._drawn_at = self.clock()
        self.stream.write("\r" + self.line() + "\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
