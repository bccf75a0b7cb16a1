"""RequestDecodingInterceptor: the request size limit, and decoding failures as INVALID_ARGUMENT.

It takes the request decoding over from gRPC for the guarded services: the
handler is given no deserializer, so every interceptor before the servicer sees
the raw bytes, and this one, the innermost, first compares their size with
--max-request-bytes (RESOURCE_EXHAUSTED with details, where gRPC's own limit,
set a little higher, answers without any) and then decodes them, turning a
message protobuf cannot parse (garbage, or nested deeper than its 100 levels)
into INVALID_ARGUMENT instead of gRPC's INTERNAL. Only unary requests: every
guarded method has one. Must not import the servicer or the backends.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc
from google.protobuf import message

from .. import errors
from ..codec import InvalidRequestError
from ..security import statuses
from ._abort import abort
from ._handlers import split_method

log = logging.getLogger("dynamo_gateway_server.security")

# gRPC's own limit sits this far above ours, so a request a little too large gets our detailed answer.
GRPC_LIMIT_MARGIN_BYTES = 1024 * 1024


class RequestDecodingInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, max_request_bytes: int, services: Iterable[str]) -> None:
        self.max_request_bytes = max_request_bytes
        self._services = frozenset(services)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        service, _ = split_method(handler_call_details.method)
        if handler is None or handler.request_streaming or service not in self._services:
            return handler
        deserialize = handler.request_deserializer
        limit = self.max_request_bytes

        async def decode(raw: bytes, context: Any) -> Any:
            if len(raw) > limit:
                await abort(context, statuses.request_too_large(len(raw), limit))
            try:
                return deserialize(raw)
            except message.DecodeError as error:
                await abort(context, errors.from_invalid_request(_undecodable(error)))

        if not handler.response_streaming:
            unary = handler.unary_unary

            async def unary_unary(raw: bytes, context: Any) -> Any:
                return await unary(await decode(raw, context), context)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, request_deserializer=None, response_serializer=handler.response_serializer
            )
        stream = handler.unary_stream
        if inspect.iscoroutinefunction(stream):
            # A stream written with context.write: keep it a coroutine (see interceptors/_handlers.py).

            async def written(raw: bytes, context: Any) -> None:
                await stream(await decode(raw, context), context)

            behavior: Any = written
        else:

            async def iterated(raw: bytes, context: Any) -> AsyncIterator[Any]:
                async for response in stream(await decode(raw, context), context):
                    yield response

            behavior = iterated
        return grpc.unary_stream_rpc_method_handler(
            behavior, request_deserializer=None, response_serializer=handler.response_serializer
        )


def _undecodable(error: message.DecodeError) -> InvalidRequestError:
    if "MaxDepth" in str(error):
        description = "nests deeper than protobuf decodes (100 message levels; each map of a map takes 3)"
    else:
        description = "is not a valid protobuf message of this method's request type"
    return InvalidRequestError("request", description)
