"""Server spans from opentelemetry-instrumentation-grpc, made to work with context.write streams.

The library's aio interceptor wraps every response-streaming method as an async
generator, which breaks a streaming handler written as a coroutine with
context.write (ParallelScan): grpc.aio would iterate a coroutine. TracingInterceptor
keeps the library's span (name, rpc.* attributes, W3C context from metadata,
status from abort) and only chooses the right wrapper shape. Health checks get no span.
"""

from __future__ import annotations

import inspect
from typing import Any

from opentelemetry.instrumentation.grpc import filters
from opentelemetry.instrumentation.grpc._aio_server import (
    OpenTelemetryAioServerInterceptor,
    _OpenTelemetryAioServicerContext,
)
from opentelemetry.sdk.trace import TracerProvider

from ..observability.tracing import SERVICE_NAME


class TracingInterceptor(OpenTelemetryAioServerInterceptor):
    def _intercept_aio_server_stream(self, behavior: Any, handler_call_details: Any) -> Any:
        if not inspect.iscoroutinefunction(behavior):
            return super()._intercept_aio_server_stream(behavior, handler_call_details)

        async def _written_stream(request: Any, context: Any) -> None:
            with self._set_remote_context(context):
                with self._start_span(handler_call_details, context, set_status_on_exception=False) as span:
                    await behavior(request, _OpenTelemetryAioServicerContext(context, span))

        return _written_stream


def tracing_interceptor(provider: TracerProvider) -> TracingInterceptor:
    tracer = provider.get_tracer(SERVICE_NAME)
    return TracingInterceptor(tracer, filter_=filters.negate(filters.health_check()))
