"""RpcMetricsInterceptor: the gRPC server metrics (started, handled by code, in flight, messages, time).

Counts only methods the server has (an unknown method name is the caller's text,
so it would make label values unbounded). Must not import the servicer or the backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from ..observability.metrics import Metrics
from ._handlers import method_type, split_method, wrap_handler


class _CountingContext:
    """The servicer context, with write() counted as a message sent."""

    def __init__(self, context: Any, on_write: Callable[[], None]) -> None:
        self._context = context
        self._on_write = on_write

    async def write(self, message: Any) -> None:
        await self._context.write(message)
        self._on_write()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _code_name(context: Any, default: grpc.StatusCode) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # some grpc versions hand back the numeric code
        return next((known.name for known in grpc.StatusCode if known.value[0] == code), default.name)
    return default.name


class RpcMetricsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        m = self._metrics
        service, method = split_method(handler_call_details.method)
        labels = (service, method, method_type(handler))
        sent = m.rpc_sent.labels(*labels)

        @contextlib.asynccontextmanager
        async def around(context: Any) -> AsyncIterator[Any]:
            m.rpc_started.labels(*labels).inc()
            if not handler.request_streaming:
                m.rpc_received.labels(*labels).inc()
            in_flight = m.rpc_in_flight.labels(*labels)
            in_flight.inc()
            started = time.perf_counter()
            code = grpc.StatusCode.OK.name
            try:
                yield _CountingContext(context, sent.inc) if handler.response_streaming else context
                if not handler.response_streaming:
                    sent.inc()
                code = _code_name(context, grpc.StatusCode.OK)
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED.name
                raise
            except grpc.aio.AbortError:
                code = _code_name(context, grpc.StatusCode.UNKNOWN)
                raise
            except Exception:
                code = grpc.StatusCode.UNKNOWN.name  # what grpc answers for an uncaught exception
                raise
            finally:
                in_flight.dec()
                m.rpc_handled.labels(*labels, code).inc()
                m.rpc_seconds.labels(*labels).observe(time.perf_counter() - started)

        return wrap_handler(handler, around, on_message=lambda _: sent.inc())  # type: ignore[return-value]
