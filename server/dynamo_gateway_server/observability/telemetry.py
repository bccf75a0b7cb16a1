"""Telemetry: one gateway's tracer provider, metrics, detectors and observer, built from Settings.

The facade app.py wires: the tracer (when spans are recorded) and metrics for
the RPC interceptor, instrument_backend() for the telemetry stage of the backend
chain, resilience_observer for the retrying stage and the breaker,
start()/close() for the /metrics endpoint and span export. Must not import the
servicer or gRPC; holds no logic of its own.
"""

from __future__ import annotations

import asyncio
import logging
import os

from opentelemetry.sdk.trace.export import SpanExporter

from ..backends import DynamoBackend
from ..config import Settings
from ..key_schema import KeySchemaCache
from .hot_partitions import HotPartitionDetector, SequentialKeyDetector
from .instrumented_backend import Detectors, InstrumentedBackend
from .keys import KeyRenderer
from .logs import configure_logging
from .metrics import Metrics, MetricsServer
from .resilience_observer import ResilienceObserver
from .secrets import SecretString
from .tracing import SERVICE_NAME, build_tracer_provider, records_spans

log = logging.getLogger(__name__)


class Telemetry:
    def __init__(self, settings: Settings, span_exporter: SpanExporter | None = None) -> None:
        self.settings = settings
        self.tracer_provider = build_tracer_provider(settings.otlp_endpoint, span_exporter)
        # Off: no span attributes are worth computing, and a cheap server span gives logs their ids.
        self.records_spans = records_spans(settings.otlp_endpoint, span_exporter)
        self.tracer = self.tracer_provider.get_tracer(SERVICE_NAME)
        self.metrics = Metrics()
        self.keys = KeyRenderer(settings.trace_key_values, SecretString(settings.key_hash_salt))
        self.resilience_observer = ResilienceObserver(self.metrics)
        self._metrics_server = MetricsServer(self.metrics)
        self.metrics_port = 0

    def instrument_backend(
        self, backend: DynamoBackend, schemas: KeySchemaCache, region: str = ""
    ) -> InstrumentedBackend:
        """Spans, metrics, logs and partition detectors around `backend`; `schemas` is the shared
        cache, `region` where calls go (RegionRouter says so per call when there are several)."""
        s = self.settings
        detectors = Detectors(
            HotPartitionDetector(s.hot_partition_window, s.hot_partition_share, s.hot_partition_top_k),
            SequentialKeyDetector(s.sequential_key_window),
        )
        return InstrumentedBackend(
            backend,
            schemas,
            self.tracer,
            self.metrics,
            self.keys,
            detectors,
            s.operation_log_every,
            span_attributes=self.records_spans,
            region=region or s.region,
        )

    def start(self) -> None:
        """Opens /metrics when a metrics port is configured (0 picks a free one). Called on the
        serving event loop, whose tasks the metrics then count."""
        if self.settings.metrics_port >= 0:
            self.metrics.count_event_loop_tasks(asyncio.get_running_loop())
            self.metrics_port = self._metrics_server.start(self.settings.host, self.settings.metrics_port)
            log.info("metrics on http://%s:%d/metrics", self.settings.host, self.metrics_port)

    def close(self) -> None:
        self._metrics_server.stop()
        self.tracer_provider.shutdown()


def configure_process_logging(settings: Settings) -> None:
    """For __main__: the process's log format and level, with the AWS secrets registered for scrubbing."""
    configure_logging(settings.log_level, settings.log_format, environ=os.environ)
