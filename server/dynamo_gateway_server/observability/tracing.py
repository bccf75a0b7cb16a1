"""The gateway's OpenTelemetry tracer provider and where its spans go.

One provider per gateway (not the global one, so tests can hold several). Spans are
exported by OTLP/gRPC when an endpoint is configured, to a given exporter in tests,
and nowhere otherwise. With nowhere to go they are not recorded (the ALWAYS_OFF
sampler): they still get trace and span ids, continuing the caller's trace, because
log lines carry them, but cost no attributes, events or export work. Must not
import the backends or the servicer.
"""

from __future__ import annotations

from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

SERVICE_NAME = "dynamo-gateway"


def records_spans(otlp_endpoint: str | None, exporter: SpanExporter | None) -> bool:
    """Whether spans have somewhere to go, and so are worth recording."""
    return exporter is not None or bool(otlp_endpoint)


def build_tracer_provider(
    otlp_endpoint: str | None = None, exporter: SpanExporter | None = None
) -> TracerProvider:
    provider = TracerProvider(
        sampler=ALWAYS_ON if records_spans(otlp_endpoint, exporter) else ALWAYS_OFF,
        resource=Resource.create({"service.name": SERVICE_NAME}),
        shutdown_on_exit=False,
    )
    if exporter is not None:
        # Tests read spans right after the call; batching would make them wait.
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if otlp_endpoint:
        # Imported here: without an endpoint the OTLP machinery is not needed at all.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        insecure = otlp_endpoint.startswith("http://")
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint, insecure=insecure))
        )
    return provider


_ids = RandomIdGenerator()


def unrecorded_span(parent: otel_context.Context | None = None) -> trace.NonRecordingSpan:
    """What the SDK makes under ALWAYS_OFF, without its sampler and wrappers: new span id, the
    parent's trace id (the current span's when `parent` is None), or a new trace."""
    current = trace.get_current_span(parent).get_span_context()
    trace_id = current.trace_id if current.is_valid else _ids.generate_trace_id()
    return trace.NonRecordingSpan(trace.SpanContext(trace_id, _ids.generate_span_id(), is_remote=False))


def attach_unrecorded_span(
    parent: otel_context.Context | None = None,
) -> tuple[trace.NonRecordingSpan, Token[otel_context.Context]]:
    """Makes an unrecorded span (a child of `parent`, else of the current span) current: (span, token to detach)."""
    span = unrecorded_span(parent)
    return span, otel_context.attach(trace.set_span_in_context(span, parent))


class UnrecordedSpan:
    """`with UnrecordedSpan() as span:` an unrecorded child of the current span is current inside."""

    __slots__ = ("_token", "span")

    def __enter__(self) -> trace.Span:
        self.span, self._token = attach_unrecorded_span()
        return self.span

    def __exit__(self, *exc_info: Any) -> None:
        otel_context.detach(self._token)
