"""Recorded server spans: what RpcInterceptor puts on the span of each RPC when spans are recorded.

One span per RPC (health checks have none): kind SERVER, named by the method path
("/dynamo_gateway.v1.DynamoDBService/GetItem"), a child of the caller's W3C context
read from the metadata, with the semantic conventions' rpc.* and net.peer.* attributes
named as opentelemetry-instrumentation-grpc named them, and the outcome's status code
(the one the RPC metrics count). Only OpenTelemetry's public API: that library's aio
interceptor is private and would add an interceptor layer per call. When spans are
not recorded, observability/tracing.py's unrecorded span is used instead. Must not
import the servicer or the backends.
"""

from __future__ import annotations

from contextvars import Token
from typing import Any
from urllib.parse import unquote

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from ._handlers import split_method

# A server span is an error only for these codes; the others answer the caller's mistakes
# (the semantic conventions for gRPC, as the instrumentation library applies them).
_SERVER_ERRORS = frozenset(
    ("UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS")
)
_CODE_VALUES = {code.name: code.value[0] for code in grpc.StatusCode}
_LOOPBACK = frozenset(("127.0.0.1", "::1"))


class MethodSpans:
    """The recorded server spans of one method; its name and fixed attributes are worked out once."""

    __slots__ = ("_attributes", "_name", "_propagated", "_tracer")

    def __init__(self, tracer: trace.Tracer, path: str, propagated: frozenset[str]) -> None:
        """`propagated`: the metadata keys the global propagator reads (traceparent and friends)."""
        service, method = split_method(path)
        self._tracer = tracer
        self._name = path
        self._propagated = propagated
        self._attributes: dict[str, Any] = {
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": method,
        }

    def start(
        self, context: Any, metadata: tuple[Any, ...], keys: list[str]
    ) -> tuple[trace.Span, Token[otel_context.Context]]:
        """Starts the RPC's span and makes it current: (span, token to detach).

        A child of the caller's context when the metadata carries one, else of the current one."""
        parent = None if self._propagated.isdisjoint(keys) else propagate.extract(dict(metadata))
        attributes = {**self._attributes, **peer_attributes(context.peer())}
        if "user-agent" in keys:
            attributes["rpc.user_agent"] = str(metadata[keys.index("user-agent")][1])
        span = self._tracer.start_span(
            self._name, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes
        )
        return span, otel_context.attach(trace.set_span_in_context(span, parent))

    @staticmethod
    def finish(span: trace.Span, code: str, context: Any, error: BaseException | None) -> None:
        """Puts the outcome on the span before it ends: `code` is rpc_metrics.outcome()'s name of it,
        `error` what the handler raised (an abort, a cancellation, a bug) or None."""
        span.set_attribute("rpc.grpc.status_code", _CODE_VALUES.get(code, grpc.StatusCode.UNKNOWN.value[0]))
        if isinstance(error, Exception) and not isinstance(error, grpc.aio.AbortError):
            span.record_exception(error)  # a bug: an abort or a cancellation is an answer, not an exception
        if code in _SERVER_ERRORS:
            # The details are what the caller was told; an unexpected exception leaves none.
            details = context.details() or (type(error).__name__ if error is not None else "")
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"StatusCode.{code}:{details}"))


def peer_attributes(peer: str) -> dict[str, Any]:
    """grpc's peer ('ipv4:10.0.0.1:5000', 'ipv6:[::1]:5000', 'ipv6:%5B::1%5D:5000', a
    comma-separated list: the first) -> net.peer.ip and net.peer.port, and net.peer.name
    'localhost' for loopback as other instrumentations do; nothing for a unix socket."""
    scheme, _, address = peer.split(",", 1)[0].partition(":")
    if scheme not in ("ipv4", "ipv6"):
        return {}
    host, _, port = unquote(address).rpartition(":")
    if not host or not port.isdigit():
        return {}
    ip = host.removeprefix("[").removesuffix("]")
    attributes: dict[str, Any] = {"net.peer.ip": ip, "net.peer.port": int(port)}
    if ip in _LOOPBACK:
        attributes["net.peer.name"] = "localhost"
    return attributes
