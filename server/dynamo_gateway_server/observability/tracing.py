"""The gateway's OpenTelemetry tracer provider and where its spans go.

One provider per gateway (not the global one, so tests can hold several), always
recording, because log lines take their trace ids from it. Spans are exported by
OTLP/gRPC when an endpoint is configured, to a given exporter in tests, and
nowhere otherwise. Must not import the backends or the servicer.
"""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

SERVICE_NAME = "dynamo-gateway"


def build_tracer_provider(
    otlp_endpoint: str | None = None, exporter: SpanExporter | None = None
) -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create({"service.name": SERVICE_NAME}), shutdown_on_exit=False
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
