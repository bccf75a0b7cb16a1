"""RequestIdInterceptor: gives each RPC a request id (the caller's x-request-id, or a new one).

Every log line written while the RPC runs carries it; a DEBUG line records the
call with its metadata, credentials wrapped in SecretString. Must not import the
servicer or the backends.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from ..observability.request_context import (
    REQUEST_ID_METADATA,
    request_id_from,
    reset_request_id,
    set_request_id,
)
from ..observability.secrets import safe_metadata
from ._handlers import wrap_handler

log = logging.getLogger("dynamo_gateway_server.rpc")


class RequestIdInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        metadata = tuple(handler_call_details.invocation_metadata or ())

        @contextlib.asynccontextmanager
        async def around(context: Any) -> AsyncIterator[Any]:
            caller_id = next((str(v) for k, v in metadata if k == REQUEST_ID_METADATA), None)
            token = set_request_id(request_id_from(caller_id))
            try:
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("rpc started", extra={"method": method, "metadata": safe_metadata(metadata)})
                yield context
            finally:
                reset_request_id(token)

        return wrap_handler(handler, around)  # type: ignore[return-value]
