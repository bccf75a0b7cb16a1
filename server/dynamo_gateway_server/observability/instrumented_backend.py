"""InstrumentedBackend: the backend seam, wrapped with a span, metrics and logs per DynamoDB call.

It sits outside the retrying layer (see the chain in app.py), so one span and one
duration cover a call with all its retries; retries and breaker changes reach
the span through the resilience observer, which finds the call in CURRENT_CALL.
It feeds the partition detectors and, after a keyed call on a table whose key
schema is unknown, asks the shared cache to learn it in the background.
It only observes: it never changes a request or an answer and never makes a call
on the caller's time (asking for consumed capacity is capacity.py's stage). Must
not import gRPC or the servicer; telemetry failures never fail a call.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .. import failures, request_shape
from ..backends import DynamoBackend
from ..entity_model import MAX_SHARDS
from ..key_schema import KeySchemaCache, key_uses, schema_from_description
from ..regions import served_region
from . import capacity, operations
from .hot_partitions import HotPartitionDetector, SequentialKeyDetector, WindowReport
from .keys import KeyRenderer
from .logs import TRACE
from .metrics import Metrics
from .tracing import UnrecordedSpan

log = logging.getLogger("dynamo_gateway_server.dynamodb")

_EXPRESSIONS = (
    "KeyConditionExpression",
    "FilterExpression",
    "ConditionExpression",
    "UpdateExpression",
    "ProjectionExpression",
)
# Operations whose requests name keys; their first success on a table starts the schema lookup.
_KEYED = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)


class CallContext(NamedTuple):
    """The DynamoDB call in progress, for observers called from deeper in the chain.

    A named tuple rather than a frozen dataclass: one is made on every call, and a
    frozen dataclass pays a setattr per field."""

    operation: str
    tables: tuple[str, ...]
    span: Span


CURRENT_CALL: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar(
    "dynamo_gateway_current_call", default=None
)


@dataclass(frozen=True)
class Detectors:
    hot: HotPartitionDetector
    sequential: SequentialKeyDetector


def _safely(function: Callable[..., Any], *args: Any) -> Any:
    """Runs a telemetry step; a bug in it is logged, never turned into the caller's failure."""
    try:
        return function(*args)
    except Exception:  # telemetry must not break the data path
        log.exception("telemetry step %s failed", getattr(function, "__name__", "?"))
        return None


def _json(value: Any) -> str:
    return json.dumps(
        value, default=lambda raw: f"<{len(raw)} bytes>" if isinstance(raw, bytes) else str(raw)
    )


def suggested_shards(share: float, threshold: float) -> int:
    """The write shards (an entity's `shards:`) that would bring a key's share under `threshold`."""
    return min(MAX_SHARDS, max(2, math.floor(share / threshold) + 1))


class _TableSeries(NamedTuple):
    """The series a successful call of one operation on one table updates, looked up once."""

    calls: Any
    seconds: Any
    capacity: Any
    items: Any


class InstrumentedBackend:
    def __init__(
        self,
        inner: DynamoBackend,
        schemas: KeySchemaCache,
        tracer: trace.Tracer,
        metrics: Metrics,
        keys: KeyRenderer,
        detectors: Detectors,
        operation_log_every: int = 1,
        span_attributes: bool = True,
        region: str = "",
    ) -> None:
        """`region`: where calls go unless RegionRouter (below) says which region served one."""
        self.inner = inner
        self._region = region
        self._tracer = tracer
        self._metrics = metrics
        self._keys = keys
        self._detectors = detectors
        self._log_every = operation_log_every
        self._completed = itertools.count()
        self._hot_series: dict[str, set[str]] = {}
        self._schemas = schemas
        # False when spans are not recorded: nobody would see their attributes, so the span is
        # only made for its ids (log lines carry them), without the SDK.
        self._span_attributes = span_attributes
        # (instrument, label values) -> its label child, for the series each call updates: labels()
        # validates and takes a lock every time. Bounded because table labels are (Metrics.table)
        # and operations and statuses are fixed sets.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        # (operation, table label, region) -> its _TableSeries: one lookup per successful call
        # instead of four. Bounded as the children are.
        self._succeeded_series: dict[tuple[str, str, str], _TableSeries] = {}
        # Both detectors off: no key need be found or hashed.
        self._detecting = detectors.hot.window > 0 or detectors.sequential.window > 1

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        tables = request_shape.tables(operation, params)
        attributes = (
            _safely(operations.request_attributes, operation, params, self._schemas.get, self._keys)
            if self._span_attributes
            else None
        )
        if log.isEnabledFor(logging.DEBUG):
            _safely(self._log_request, operation, tables, params)
        if self._detecting:
            _safely(self._observe_keys, operation, params)
        with (
            self._tracer.start_as_current_span(
                operations.span_name(operation),
                kind=SpanKind.CLIENT,
                attributes=attributes or {},
                record_exception=False,
                set_status_on_exception=False,
            )
            if self._span_attributes
            else UnrecordedSpan()
        ) as span:
            token = CURRENT_CALL.set(CallContext(operation, tables, span))
            started = time.perf_counter()
            try:
                response = await self.inner.call(operation, params)
            except BaseException as error:
                _safely(self._failed, operation, params, tables, span, error, time.perf_counter() - started)
                raise
            finally:
                CURRENT_CALL.reset(token)
                if self._span_attributes:
                    span.set_attribute("cloud.region", served_region() or self._region)
            _safely(self._succeeded, operation, params, tables, span, response, time.perf_counter() - started)
        if operation in _KEYED:
            for table in tables:  # a loop, not a generator: this runs on every call
                if self._schemas.get(table) is None:
                    self._schemas.learn_soon(table)
        elif operation == "DescribeTable" and (schema := schema_from_description(response.get("Table", {}))):
            self._schemas.remember(params.get("TableName", ""), schema)
        return response

    async def close(self) -> None:
        await self.inner.close()

    def _child(self, instrument: Any, *labels: str) -> Any:
        """instrument.labels(*labels), looked up once per label set."""
        key = (instrument, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = instrument.labels(*labels)
        return child

    def _series_of(self, operation: str, table: str) -> _TableSeries:
        m = self._metrics
        label, region = m.table(table), served_region() or self._region
        key = (operation, label, region)
        series = self._succeeded_series.get(key)
        if series is None:
            series = self._succeeded_series[key] = _TableSeries(
                m.operations.labels(operation, label, failures.OK, region),
                m.duration.labels(operation, label, region),
                m.consumed_capacity.labels(label, operation),
                m.items_returned.labels(operation, label),
            )
        return series

    def _capacity(self, table: str, operation: str) -> Any:
        return self._child(self._metrics.consumed_capacity, self._metrics.table(table), operation)

    # ------------------------------------------------------------------ outcomes

    def _count(self, operation: str, tables: tuple[str, ...], status: str, seconds: float) -> list[str]:
        m = self._metrics
        labels = [m.table(table) for table in tables]
        region = served_region() or self._region
        for table in labels:
            self._child(m.operations, operation, table, status, region).inc()
            self._child(m.duration, operation, table, region).observe(seconds)
        return labels

    def _succeeded(
        self,
        operation: str,
        params: dict[str, Any],
        tables: tuple[str, ...],
        span: Span,
        response: dict[str, Any],
        seconds: float,
    ) -> None:
        m = self._metrics
        consumed = capacity.consumed_by_table(response)
        returned = operations.items_returned(operation, params, response)
        if len(tables) == 1 and len(consumed) <= 1 and len(returned) <= 1:
            # One table (every call but batches and transactions): its series in one lookup.
            table = tables[0]
            series = self._series_of(operation, table)
            series.calls.inc()
            series.seconds.observe(seconds)
            for answered, units in consumed.items():
                (series.capacity if answered == table else self._capacity(answered, operation)).inc(units)
            for count in returned.values():
                series.items.observe(count)
        else:
            self._count(operation, tables, failures.OK, seconds)
            for table, units in consumed.items():
                self._capacity(table, operation).inc(units)
            for table, count in returned.items():
                self._child(m.items_returned, operation, m.table(table)).observe(count)
        unprocessed = operations.unprocessed_items(operation, response)
        for table, count in unprocessed.items():
            self._child(m.batch_unprocessed_items, m.table(table), operation).inc(count)
        span.set_attribute("dynamodb.consumed_capacity", sum(consumed.values()))
        if returned:
            span.set_attribute("dynamodb.items_returned", sum(returned.values()))
        if unprocessed:
            span.set_attribute("dynamodb.unprocessed_items", sum(unprocessed.values()))
            if log.isEnabledFor(logging.WARNING):
                log.warning(
                    "batch left items unprocessed",
                    extra={
                        **self._fields(operation, tables, seconds, consumed),
                        "unprocessed_items": unprocessed,
                    },
                )
        # The sample counter advances whether or not INFO is on, as it always did.
        if operation == "TransactWriteItems" and self._log_every > 0:
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "transaction committed",
                    extra={
                        **self._fields(operation, tables, seconds, consumed),
                        "item_count": len(params.get("TransactItems", ())),
                    },
                )
        elif self._sampled() and log.isEnabledFor(logging.INFO):
            log.info(
                "dynamodb operation completed",
                extra={
                    **self._fields(operation, tables, seconds, consumed),
                    "items_returned": sum(returned.values()),
                },
            )
        if log.isEnabledFor(TRACE):
            log.log(
                TRACE,
                "dynamodb response",
                extra={**self._fields(operation, tables, seconds, consumed), "payload": _json(response)},
            )

    def _fields(
        self, operation: str, tables: tuple[str, ...], seconds: float, consumed: dict[str, float]
    ) -> dict[str, Any]:
        return {
            "operation": operation,
            "table": ",".join(tables),
            "region": served_region() or self._region,
            "status": failures.OK,
            "duration_ms": round(seconds * 1000, 3),
            "consumed_capacity": sum(consumed.values()),
        }

    def _failed(
        self,
        operation: str,
        params: dict[str, Any],
        tables: tuple[str, ...],
        span: Span,
        error: BaseException,
        seconds: float,
    ) -> None:
        m = self._metrics
        status = failures.status_label(error)
        labels = self._count(operation, tables, status, seconds)
        fields: dict[str, object] = {"operation": operation, "table": ",".join(tables), "status": status}
        if status == failures.CANCELLED:
            log.debug("dynamodb call cancelled", extra=fields)
            return
        error_type = m.error_type(failures.code_of(error))
        fields |= {"error_type": error_type, "duration_ms": round(seconds * 1000, 3)}
        for table in labels:
            m.errors.labels(error_type, table).inc()
            if status == failures.THROTTLED:
                m.throttles.labels(table, operation).inc()
        for table, count in operations.condition_failures(operation, params, error).items():
            m.conditional_check_failures.labels(m.table(table), operation).inc(count)
        span.set_attribute("dynamodb.error_code", error_type)
        if status != failures.CONDITION_FAILED:
            # A failed condition is an answer the caller planned for, not a broken call.
            span.set_status(Status(StatusCode.ERROR, error_type))
        if status in (failures.AUTH_ERROR, failures.SERVER_ERROR):
            log.error("dynamodb call failed", extra=fields)
        elif status == failures.THROTTLED:
            log.warning("dynamodb throttled the call", extra=fields)
        elif self._sampled():
            log.info("dynamodb operation completed", extra=fields)

    def _sampled(self) -> bool:
        return self._log_every > 0 and next(self._completed) % self._log_every == 0

    # ------------------------------------------------------------------ requests and keys

    def _log_request(self, operation: str, tables: tuple[str, ...], params: dict[str, Any]) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return
        expressions = {name: params[name] for name in _EXPRESSIONS if name in params}
        log.debug(
            "dynamodb request", extra={"operation": operation, "table": ",".join(tables), **expressions}
        )
        if log.isEnabledFor(TRACE):
            log.log(
                TRACE, "dynamodb request payload", extra={"operation": operation, "payload": _json(params)}
            )

    def _observe_keys(self, operation: str, params: dict[str, Any]) -> None:
        hot = self._detectors.hot
        for use in key_uses(operation, params, self._schemas.get):
            # The hash is only for the hot partition detector: none when that one is off.
            report = hot.record(use.table, self._keys.hash(use.partition)) if hot.window > 0 else None
            if report is not None:
                self._report_window(report)
            if use.is_write and self._detectors.sequential.record(use.table, use.partition):
                self._metrics.sequential_keys.labels(self._metrics.table(use.table)).inc()
                log.warning(
                    "writes arrive with monotonically increasing partition keys; they load one partition at a time",
                    extra={"table": use.table, "window": self._detectors.sequential.window},
                )

    def _report_window(self, report: WindowReport) -> None:
        m = self._metrics
        table = m.table(report.table)
        for stale in self._hot_series.pop(table, set()) - {key.key_hash for key in report.top}:
            m.hot_partition_share.remove(table, stale)
        for key in report.top:
            m.hot_partition_share.labels(table, key.key_hash).set(key.share)
        self._hot_series[table] = {key.key_hash for key in report.top}
        for key in report.hot:
            m.hot_partitions.labels(table).inc()
            log.warning(
                "hot partition key",
                extra={
                    "table": report.table,
                    "key_hash": key.key_hash,
                    "share": round(key.share, 4),
                    "threshold": self._detectors.hot.share,
                    "window_requests": report.requests,
                    # Spread over this many shards, the key's share would drop under the threshold.
                    "suggested_shards": suggested_shards(key.share, self._detectors.hot.share),
                },
            )
