"""RpcInterceptor: request id, RPC metrics, authentication, in-flight limits and request decoding in one wrapper.

Each of these used to be its own grpc.aio interceptor; every layer costs an
interceptor coroutine, a new method handler and a wrapper per call, which was most
of the gateway's per-RPC CPU. Here they run in the same order (outermost first:
request id, metrics, authentication, in-flight limit, decoding) inside one
context manager, and each method's wrapped handler is built once and reused: the
call's metadata comes from its context. Steps a gateway has switched off
(no credentials configured, no limits) cost nothing. Outermost of all, every RPC
but a health check gets a server span: recorded (tracing.py) when spans go
somewhere, else the cheap unrecorded span whose ids the log lines carry, the hot
path, which pays nothing for the other. Must not import the servicer or the backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import Token
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from .. import errors
from ..observability.metrics import Metrics
from ..observability.request_context import (
    REQUEST_ID_METADATA,
    request_id_from,
    reset_request_id,
    set_request_id,
)
from ..observability.secrets import safe_metadata
from ..observability.tracing import attach_unrecorded_span
from ..security.auth import Authenticator, Unauthenticated
from ..security.identity import current_caller, reset_caller, set_caller
from ..security.limits import ConcurrencyLimitExceeded, InFlightLimiter
from ..security.tls import peer_names
from ..stopping import ShutdownGate
from ._handlers import Handler, split_method, wrap_handler
from .abort import abort
from .request_decoding import decode
from .rpc_metrics import CountingContext, MethodMetrics, outcome
from .tracing import MethodSpans

rpc_log = logging.getLogger("dynamo_gateway_server.rpc")
security_log = logging.getLogger("dynamo_gateway_server.security")


@dataclass(frozen=True)
class RpcChecks:
    """What security asks of every RPC (built by SecurityLayer)."""

    authenticator: Authenticator
    open_services: frozenset[str]
    """Services any caller may use without credentials."""
    limiter: InFlightLimiter
    guarded_services: frozenset[str]
    """Services whose calls count against the limits and whose requests this decodes."""
    max_request_bytes: int
    gate: ShutdownGate
    """Closed just before the server stops: guarded calls are refused, not cancelled by gRPC."""


@dataclass(frozen=True)
class _Method:
    """What is fixed for one method: its name, metrics and which steps apply."""

    path: str
    metrics: MethodMetrics
    response_streaming: bool
    authenticated: bool
    limited: bool
    traced: bool
    """Gets an unrecorded span."""
    spans: MethodSpans | None
    """Records its spans (then `traced` is False)."""
    end: Callable[[_Call, Any, BaseException | None], None]
    """How its calls end: RpcInterceptor._end, after the outcome is put on a recorded span."""


class _Call:
    """What one RPC's steps took and must give back."""

    __slots__ = ("caller_token", "entered", "method", "request_token", "span", "started")

    def __init__(self, method: _Method) -> None:
        self.method = method
        self.span: tuple[trace.Span, Token[otel_context.Context]] | None = None
        self.request_token: Any = None
        self.started = 0.0
        self.caller_token: Any = None
        self.entered: str | None = None


class RpcInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: Metrics, checks: RpcChecks, tracer: trace.Tracer | None = None) -> None:
        """`tracer`: records each RPC's server span; None (spans go nowhere): each gets an unrecorded one."""
        self._metrics = metrics
        self._checks = checks
        self._tracer = tracer
        # Metadata keys the global propagator reads (W3C trace context and baggage by default).
        self._propagated = frozenset(propagate.get_global_textmap().fields)
        # method path -> (the handler grpc found, its wrapped twin); bounded by the server's methods.
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED itself
            return handler
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = self._wrapped[method] = (handler, self._wrap(method, handler))
        return cached[1]

    def _wrap(self, path: str, handler: Handler) -> Handler:
        checks = self._checks
        service, name = split_method(path)
        guarded = service in checks.guarded_services
        spanned = service != health.SERVICE_NAME
        tracer = self._tracer
        spans = MethodSpans(tracer, path, self._propagated) if spanned and tracer is not None else None
        method = _Method(
            path=path,
            metrics=MethodMetrics(self._metrics, service, name, handler),
            response_streaming=handler.response_streaming,
            authenticated=service not in checks.open_services,
            limited=guarded,
            traced=spanned and tracer is None,
            spans=spans,
            end=self._end if spans is None else self._end_recorded,
        )
        if not handler.request_streaming and not handler.response_streaming:
            return self._unary(method, handler, checks.max_request_bytes if guarded else None)
        if guarded and not handler.request_streaming:
            handler = _decoding(handler, checks.max_request_bytes)

        def around(context: Any) -> contextlib.AbstractAsyncContextManager[Any]:
            return self._around(method, context)

        sent = method.metrics.sent
        return wrap_handler(handler, around, on_message=lambda _: sent.inc())

    def _unary(self, method: _Method, handler: Handler, decode_limit: int | None) -> Handler:
        """The common case without a context manager: the same steps as _around, written out.

        With `decode_limit`, gRPC hands over the raw bytes and they are decoded here,
        innermost, after every check (as _decoding does for streams, one coroutine less)."""
        behavior: Any = handler.unary_unary  # grpc's stubs make it optional; a unary handler has it
        deserialize = handler.request_deserializer or _raw
        sent = method.metrics.sent
        begin, end = self._begin, method.end
        gate = self._checks.gate if method.limited else None

        async def unary_unary(request: Any, context: Any) -> Any:
            call = await begin(method, context)
            try:
                if decode_limit is not None:
                    request = await decode(request, context, deserialize, decode_limit)
                response = await behavior(request, context)
            except BaseException as error:
                end(call, context, error)
                if gate is not None and gate.closed and not isinstance(error, asyncio.CancelledError):
                    # See stopping.py: the caller's next call goes elsewhere.
                    await gate.hold_answer(context.time_remaining())
                raise
            sent.inc()
            end(call, context, None)
            if gate is not None and gate.closed:
                await gate.hold_answer(context.time_remaining())
            return response

        return grpc.unary_unary_rpc_method_handler(
            unary_unary,
            request_deserializer=None if decode_limit is not None else deserialize,
            response_serializer=handler.response_serializer,
        )

    @contextlib.asynccontextmanager
    async def _around(self, method: _Method, context: Any) -> AsyncIterator[Any]:
        call = await self._begin(method, context)
        try:
            yield CountingContext(context, method.metrics.sent.inc) if method.response_streaming else context
            if not method.response_streaming:
                method.metrics.sent.inc()
        except BaseException as error:
            method.end(call, context, error)
            raise
        method.end(call, context, None)

    async def _begin(self, method: _Method, context: Any) -> _Call:
        """Outermost first: span, request id, metrics, authentication, in-flight slot.

        A refusal (an abort) is ended here, so the caller only ends calls that began."""
        call = _Call(method)
        metadata = tuple(context.invocation_metadata() or ())
        # Asked twice below; one list beats a generator per question on every RPC.
        keys = [key for key, _ in metadata]
        if method.traced:
            call.span = self._enter_span(metadata, keys)
        elif method.spans is not None:
            call.span = method.spans.start(context, metadata, keys)
        caller_id = str(metadata[keys.index(REQUEST_ID_METADATA)][1]) if REQUEST_ID_METADATA in keys else None
        call.request_token = set_request_id(request_id_from(caller_id))
        if rpc_log.isEnabledFor(logging.DEBUG):
            rpc_log.debug("rpc started", extra={"method": method.path, "metadata": safe_metadata(metadata)})
        call.started = method.metrics.start()
        checks = self._checks
        limiter = checks.limiter
        try:
            if method.limited and checks.gate.closed:
                await abort(context, errors.status_of(checks.gate.refuse()))
            # Checked here, not in the steps: a step that is off costs no coroutine.
            if method.authenticated and checks.authenticator.required:
                call.caller_token = await self._authenticate(method, context, metadata)
            if method.limited and (limiter.max_total or limiter.max_per_caller):
                caller = current_caller().principal
                refused = limiter.enter(caller)
                if refused is not None:
                    await self._refuse(refused, caller, context)
                call.entered = caller
        except BaseException as error:
            method.end(call, context, error)
            raise
        return call

    def _end(self, call: _Call, context: Any, error: BaseException | None) -> None:
        """Innermost first: the slot, the caller, metrics (the outcome), the request id, the span."""
        try:
            try:
                if call.entered is not None:
                    self._checks.limiter.leave(call.entered)
            finally:
                if call.caller_token is not None:
                    reset_caller(call.caller_token)
        finally:
            try:
                call.method.metrics.finish(call.started, outcome(context, error))
            finally:
                reset_request_id(call.request_token)
                if call.span is not None:
                    span, token = call.span
                    otel_context.detach(token)
                    span.end()

    def _end_recorded(self, call: _Call, context: Any, error: BaseException | None) -> None:
        """_end, for a method whose spans are recorded: the outcome goes on the span first."""
        spans = call.method.spans
        try:
            if spans is not None and call.span is not None:
                spans.finish(call.span[0], outcome(context, error), context, error)
        finally:
            self._end(call, context, error)

    def _enter_span(
        self, metadata: tuple[Any, ...], keys: list[str]
    ) -> tuple[trace.Span, Token[otel_context.Context]]:
        # The caller's W3C context (traceparent and friends), continued as a recorded span would
        # (tracing.py); without any, a new trace.
        parent = (
            None
            if self._propagated.isdisjoint(keys)
            else propagate.extract({key: value for key, value in metadata})
        )
        return attach_unrecorded_span(parent)

    async def _authenticate(self, method: _Method, context: Any, metadata: tuple[Any, ...]) -> Any:
        """Puts the caller's identity in the context variable (its reset token), or ends the RPC."""
        authenticator = self._checks.authenticator
        try:
            # Without a client CA no certificate is asked for, so there are no names to read.
            peer = peer_names(context.auth_context()) if authenticator.mtls else ()
            identity = authenticator.authenticate(metadata, peer)
        except Unauthenticated as failure:
            security_log.warning(
                "caller not authenticated",
                extra={"failure": failure.failure, "method": method.path, "peer": context.peer()},
            )
            await abort(context, errors.status_of(failure))
        return set_caller(identity)

    async def _refuse(self, refused: str, caller: str, context: Any) -> None:
        """Ends an RPC the in-flight limiter had no slot for: at once, without a queue, which would
        only turn overload into timeouts and memory."""
        limiter = self._checks.limiter
        limit = limiter.max_total if refused == "server" else limiter.max_per_caller
        security_log.warning(
            "concurrency limit reached", extra={"scope": refused, "limit": limit, "caller": caller}
        )
        await abort(context, errors.status_of(ConcurrencyLimitExceeded(refused, limit)))


def _decoding(handler: Handler, limit: int) -> Handler:
    """A response stream taking raw bytes and decoding them itself (innermost, after every check)."""
    deserialize = handler.request_deserializer or _raw
    stream: Any = handler.unary_stream  # grpc's stubs make it optional; a response stream has it
    if inspect.iscoroutinefunction(stream):
        # A stream written with context.write: keep it a coroutine (see _handlers.py).

        async def written(raw: bytes, context: Any) -> None:
            await stream(await decode(raw, context, deserialize, limit), context)

        behavior: Any = written
    else:

        async def iterated(raw: bytes, context: Any) -> AsyncIterator[Any]:
            async for response in stream(await decode(raw, context, deserialize, limit), context):
                yield response

        behavior = iterated
    return grpc.unary_stream_rpc_method_handler(
        behavior, request_deserializer=None, response_serializer=handler.response_serializer
    )


def _raw(data: bytes) -> bytes:
    """A method without a deserializer takes the bytes as they came."""
    return data
