"""InFlightLimitInterceptor: bounds the RPCs in flight, per server and per caller, without queueing.

One more RPC than a limit allows is answered RESOURCE_EXHAUSTED at once, with
RetryInfo, instead of waiting behind the others: a queue would only turn
overload into timeouts and memory. Counts only the guarded services (not health
checks, which must answer while the gateway is busy). Runs after authentication,
so the per-caller count knows the caller. Must not import the servicer or the backends.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc

from ..security import statuses
from ..security.identity import current_caller
from ..security.limits import InFlightLimiter
from ._abort import abort
from ._handlers import split_method, wrap_handler

log = logging.getLogger("dynamo_gateway_server.security")


class InFlightLimitInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, limiter: InFlightLimiter, services: Iterable[str]) -> None:
        self.limiter = limiter
        self._services = frozenset(services)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        service, _ = split_method(handler_call_details.method)
        limiter = self.limiter
        if (
            handler is None
            or service not in self._services
            or not (limiter.max_total or limiter.max_per_caller)
        ):
            return handler

        @contextlib.asynccontextmanager
        async def around(context: Any) -> AsyncIterator[Any]:
            caller = current_caller().principal
            refused = limiter.enter(caller)
            if refused is not None:
                limit = limiter.max_total if refused == "server" else limiter.max_per_caller
                log.warning(
                    "concurrency limit reached", extra={"scope": refused, "limit": limit, "caller": caller}
                )
                await abort(context, statuses.concurrency_limited(refused, limit))
            try:
                yield context
            finally:
                limiter.leave(caller)

        return wrap_handler(handler, around)  # type: ignore[return-value]
