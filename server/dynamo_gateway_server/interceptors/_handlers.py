"""Wrapping a grpc.aio method handler's behavior in an async context, whatever its shape.

grpc.aio runs a response-streaming coroutine function by awaiting it (it writes
with context.write) and anything else by iterating it, so a wrapper must keep the
shape of what it wraps: that is all this module does.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

# A method handler, whatever its messages (the interceptors see every method); generic only in
# grpc's stubs.
if TYPE_CHECKING:
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
# Given the RPC's context, an async context manager that yields the context the behavior should get.
Around = Callable[[Any], AbstractAsyncContextManager[Any]]
# Called with each message a generator behavior yields.
OnMessage = Callable[[Any], None]


def wrap_handler(handler: Handler, around: Around, on_message: OnMessage | None = None) -> Handler:
    # Any: grpc's stubs type each behavior as optional and of one shape, a handler has exactly one.
    behavior: Any
    factory: Any
    if handler.request_streaming and handler.response_streaming:
        behavior, factory = handler.stream_stream, grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        behavior, factory = handler.stream_unary, grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        behavior, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    else:
        behavior, factory = handler.unary_unary, grpc.unary_unary_rpc_method_handler
    if not handler.response_streaming or inspect.iscoroutinefunction(behavior):

        async def awaited(request: Any, context: Any) -> Any:
            async with around(context) as wrapped:
                return await behavior(request, wrapped)

        wrapped_behavior: Any = awaited
    else:

        async def iterated(request: Any, context: Any) -> AsyncIterator[Any]:
            async with around(context) as wrapped:
                async for response in behavior(request, wrapped):
                    if on_message is not None:
                        on_message(response)
                    yield response

        wrapped_behavior = iterated
    wrapped: Handler = factory(
        wrapped_behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
    return wrapped


def split_method(method: str) -> tuple[str, str]:
    """'/pkg.Service/Method' -> ('pkg.Service', 'Method')."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


def method_type(handler: Handler) -> str:
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    if handler.response_streaming:
        return "server_stream"
    return "unary"
