"""The Prometheus metrics: names and labels exactly as the spec gives them, and their HTTP endpoint.

Owns one CollectorRegistry per gateway (so two gateways in one process, as in
tests, count apart), every instrument, the guard that keeps label values bounded,
and the /metrics HTTP server. Must not import gRPC, the backends or OpenTelemetry.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Collection, Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# What one DynamoDB call costs, from a cached read (~1 ms) to a slow batch or timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ITEM_BUCKETS = (0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)

OTHER = "_other"
# Table names come from callers; past this many distinct ones, new names share one label value.
MAX_TABLES = 500
# Error codes come from the server; DynamoDB has a few dozen.
MAX_ERROR_TYPES = 100
_LABEL_SAFE = re.compile(r"^[A-Za-z0-9_.\-]{1,255}$")

BREAKER_STATES = ("closed", "open", "half_open")


class LabelGuard:
    """Caps the distinct values of one label: the first `limit` pass, later new ones become "_other"."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if not _LABEL_SAFE.match(value):
            return OTHER if value else ""
        with self._lock:
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(value)
        return value


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.table = LabelGuard(MAX_TABLES)
        self.error_type = LabelGuard(MAX_ERROR_TYPES)
        r = self.registry
        # --- DynamoDB calls: the spec's names and labels.
        self.operations = Counter(
            "dynamodb_operations",
            "DynamoDB calls by outcome, and the region that answered",
            ("operation", "table", "status", "region"),
            registry=r,
        )
        self.duration = Histogram(
            "dynamodb_operation_duration_seconds",
            "Time one DynamoDB call took, retries (and a move to another region) included",
            ("operation", "table", "region"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.consumed_capacity = Counter(
            "dynamodb_consumed_capacity",
            "Capacity units DynamoDB reported as consumed",
            ("table", "operation"),
            registry=r,
        )
        self.items_returned = Histogram(
            "dynamodb_items_returned",
            "Items one read returned",
            ("operation", "table"),
            buckets=ITEM_BUCKETS,
            registry=r,
        )
        self.throttles = Counter(
            "dynamodb_throttles",
            "Throttled DynamoDB attempts, retried ones included",
            ("table", "operation"),
            registry=r,
        )
        # The spec names these two without _total, which prometheus_client adds to every Counter;
        # gauges that only ever go up keep the exact names.
        self.conditional_check_failures = Gauge(
            "dynamodb_conditional_check_failures",
            "Failed condition expressions (a transaction counts each failed item); only increases",
            ("table", "operation"),
            registry=r,
        )
        self.batch_unprocessed_items = Gauge(
            "dynamodb_batch_unprocessed_items",
            "Items or keys batches returned unprocessed; only increases",
            ("table", "operation"),
            registry=r,
        )
        self.errors = Counter(
            "dynamodb_errors", "Failed DynamoDB calls by error code", ("error_type", "table"), registry=r
        )
        # --- Resilience (retries and the circuit breaker).
        self.retries = Counter(
            "dynamodb_retries",
            "DynamoDB attempts retried after an error",
            ("operation", "table", "error_type"),
            registry=r,
        )
        self.breaker_state = Gauge(
            "dynamodb_circuit_breaker_state",
            "1 for the circuit breaker's current state, 0 for the others",
            ("endpoint", "state"),
            registry=r,
        )
        # --- Global tables (a regions file).
        self.region_failovers = Counter(
            "dynamodb_region_failovers",
            "DynamoDB calls moved to another region after a failure",
            ("from_region", "to_region", "operation"),
            registry=r,
        )
        self.region_evacuated = Gauge(
            "dynamodb_region_evacuated",
            "1 while the regions file evacuates the region",
            ("region",),
            registry=r,
        )
        self.replication_lag = Gauge(
            "dynamodb_replication_lag_seconds",
            "Age of the newest copy of source's heartbeat item in target (the regions file's replication_heartbeat)",
            ("source", "target"),
            registry=r,
        )
        # --- Partitions.
        self.hot_partition_share = Gauge(
            "dynamodb_hot_partition_key_share",
            "Share of a table's requests that went to one partition key (hashed) in the last window; top k only",
            ("table", "key_hash"),
            registry=r,
        )
        self.hot_partitions = Counter(
            "dynamodb_hot_partitions_detected",
            "Windows in which one partition key exceeded its share",
            ("table",),
            registry=r,
        )
        self.sequential_keys = Counter(
            "dynamodb_sequential_partition_keys_detected",
            "Times writes arrived with monotonically increasing partition keys",
            ("table",),
            registry=r,
        )
        self.expired_items_hidden = Counter(
            "dynamo_gateway_expired_items_hidden",
            "Items past their TTL that reads left out (DynamoDB had not deleted them yet)",
            ("table", "operation"),
            registry=r,
        )
        self.versioned_write_resolutions = Counter(
            "dynamo_gateway_versioned_write_resolutions",
            "Versioned writes whose answer was lost, by what reading the item back found",
            ("table", "outcome"),
            registry=r,
        )
        # --- gRPC server (the names the usual Grafana gRPC dashboards expect).
        grpc_labels = ("grpc_service", "grpc_method", "grpc_type")
        self.rpc_started = Counter("grpc_server_started", "RPCs started", grpc_labels, registry=r)
        self.rpc_handled = Counter(
            "grpc_server_handled", "RPCs completed, by status code", (*grpc_labels, "grpc_code"), registry=r
        )
        self.rpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time to complete an RPC",
            grpc_labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rpc_in_flight = Gauge(
            "grpc_server_in_flight_requests", "RPCs being handled", grpc_labels, registry=r
        )
        self.rpc_received = Counter(
            "grpc_server_msg_received", "Messages received from callers", grpc_labels, registry=r
        )
        self.rpc_sent = Counter("grpc_server_msg_sent", "Messages sent to callers", grpc_labels, registry=r)
        # --- The process.
        self.event_loop_tasks = Gauge(
            "dynamo_gateway_event_loop_tasks",
            "Unfinished asyncio tasks of the serving event loop, counted at scrape time",
            registry=r,
        )

    def count_expired_hidden(self, table: str, operation: str, count: int) -> None:
        self.expired_items_hidden.labels(self.table(table), operation).inc(count)

    def count_failover(self, from_region: str, to_region: str, operation: str) -> None:
        self.region_failovers.labels(from_region, to_region, operation).inc()

    def set_evacuated(self, regions: Iterable[str], evacuated: Collection[str]) -> None:
        for region in regions:
            self.region_evacuated.labels(region).set(1 if region in evacuated else 0)

    def set_replication_lag(self, source: str, target: str, seconds: float) -> None:
        self.replication_lag.labels(source, target).set(seconds)

    def count_resolution(self, table: str, outcome: str) -> None:
        self.versioned_write_resolutions.labels(self.table(table), outcome).inc()

    def count_event_loop_tasks(self, loop: asyncio.AbstractEventLoop) -> None:
        """Counts `loop`'s tasks at each scrape, not per call, so serving pays nothing for it; a
        count that keeps rising while the traffic does not is a task leak."""
        # The scrape runs on the metrics thread: all_tasks(loop) copies the task set with retries,
        # which is safe while the loop adds and drops tasks.
        self.event_loop_tasks.set_function(lambda: len(asyncio.all_tasks(loop)))

    def set_breaker_state(self, endpoint: str, state: str) -> None:
        for known in BREAKER_STATES:
            self.breaker_state.labels(endpoint, known).set(1 if known == state else 0)


class MetricsServer:
    """/metrics over HTTP on its own thread, so a scrape never waits for the event loop."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self, host: str, port: int) -> int:
        self._server, self._thread = start_http_server(port, host, registry=self._metrics.registry)
        self.port = int(self._server.server_address[1])
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
