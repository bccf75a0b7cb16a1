"""ResilienceObserver: what the resilience layer reports (retries, breaker changes), made visible.

The resilience backend calls on_retry before each backoff and on_breaker_state on
each breaker transition. A retry becomes a span event on the DynamoDB call's span
(found through CURRENT_CALL), a retries count and, when throttled, a throttle
count, since the final attempt alone would hide how often DynamoDB pushed back.
Must not import gRPC or the resilience module itself (it only calls these methods).
"""

from __future__ import annotations

import logging
import urllib.parse

from opentelemetry import trace

from .. import failures
from ..backends import BackendError, BackendUnavailableError
from .instrumented_backend import CURRENT_CALL
from .metrics import BREAKER_STATES, Metrics

log = logging.getLogger("dynamo_gateway_server.resilience")


def endpoint_label(endpoint: str) -> str:
    """scheme://host:port only: an endpoint URL may carry user:password or a signed query."""
    parsed = urllib.parse.urlsplit(endpoint)
    if not parsed.scheme or not parsed.hostname:
        return endpoint.split("@")[-1].split("?")[0][:128]
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.hostname}{port}"


class ResilienceObserver:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def on_retry(
        self, operation: str, attempt: int, error: BackendError | BackendUnavailableError, delay_s: float
    ) -> None:
        m = self._metrics
        call = CURRENT_CALL.get()
        tables = call.tables if call is not None else ("",)
        error_type = m.error_type(failures.code_of(error))
        throttled = failures.status_label(error) == failures.THROTTLED
        for table in tables:
            label = m.table(table)
            m.retries.labels(operation, label, error_type).inc()
            if throttled:
                m.throttles.labels(label, operation).inc()
        span = call.span if call is not None else trace.get_current_span()
        span.add_event(
            "retry",
            {"attempt": attempt, "error_code": error_type, "delay_s": delay_s, "operation": operation},
        )
        log.warning(
            "retrying dynamodb call",
            extra={
                "operation": operation,
                "table": ",".join(tables),
                "attempt": attempt,
                "error_type": error_type,
                "delay_s": round(delay_s, 4),
            },
        )

    def on_breaker_state(self, endpoint: str, state: str) -> None:
        label = endpoint_label(endpoint)
        if state not in BREAKER_STATES:
            log.error("unknown circuit breaker state", extra={"endpoint": label, "state": state})
            return
        self._metrics.set_breaker_state(label, state)
        trace.get_current_span().add_event("circuit_breaker", {"endpoint": label, "state": state})
        # Open: every call fails fast, a service failure; half-open is a probe; closed is recovery.
        level = {"open": logging.ERROR, "half_open": logging.WARNING}.get(state, logging.INFO)
        log.log(level, "circuit breaker is %s", state, extra={"endpoint": label, "state": state})
