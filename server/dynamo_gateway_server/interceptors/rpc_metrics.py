"""The gRPC server metrics of one method: started, handled by code, in flight, messages, time.

Counts only methods the server has (an unknown method name is the caller's text,
so it would make label values unbounded). The label children are looked up once
per method, not per call. Must not import the servicer or the backends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc

from ..observability.metrics import Metrics
from ._handlers import Handler, method_type

_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_OK = grpc.StatusCode.OK.name
_UNKNOWN = grpc.StatusCode.UNKNOWN.name
_CANCELLED = grpc.StatusCode.CANCELLED.name


class CountingContext:
    """The servicer context, with write() counted as a message sent."""

    def __init__(self, context: Any, on_write: Callable[[], None]) -> None:
        self._context = context
        self._on_write = on_write

    async def write(self, message: Any) -> None:
        await self._context.write(message)
        self._on_write()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def code_name(context: Any, default: str) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # some grpc versions hand back the numeric code
        return _STATUS_NAMES.get(code, default)
    return default


def outcome(context: Any, error: BaseException | None) -> str:
    """The grpc_code label of a call that ended with `error` (None: returned normally)."""
    if error is None:
        return code_name(context, _OK)
    if isinstance(error, asyncio.CancelledError):
        return _CANCELLED
    if isinstance(error, grpc.aio.AbortError):
        return code_name(context, _UNKNOWN)
    if isinstance(error, Exception):
        return _UNKNOWN  # what grpc answers for an uncaught exception
    return _OK  # GeneratorExit: the stream was closed early, not failed


class MethodMetrics:
    """The instruments of one method, their label children resolved once."""

    def __init__(self, metrics: Metrics, service: str, method: str, handler: Handler) -> None:
        labels = (service, method, method_type(handler))
        self.started = metrics.rpc_started.labels(*labels)
        self.received = None if handler.request_streaming else metrics.rpc_received.labels(*labels)
        self.in_flight = metrics.rpc_in_flight.labels(*labels)
        self.sent = metrics.rpc_sent.labels(*labels)
        self.seconds = metrics.rpc_seconds.labels(*labels)
        self._handled_family = metrics.rpc_handled
        self._labels = labels
        # Codes are a fixed enum, so this stays small.
        self._handled: dict[str, Any] = {}

    def start(self) -> float:
        self.started.inc()
        if self.received is not None:
            self.received.inc()
        self.in_flight.inc()
        return time.perf_counter()

    def finish(self, started: float, code: str) -> None:
        self.in_flight.dec()
        handled = self._handled.get(code)
        if handled is None:
            handled = self._handled[code] = self._handled_family.labels(*self._labels, code)
        handled.inc()
        self.seconds.observe(time.perf_counter() - started)
