"""The one layer that retries: per-error backoff inside the caller's deadline, safe retries, circuit breaker.

ResilientBackend wraps any backend behind the seam. For each call it
- fails fast while the circuit breaker is open;
- bounds every attempt and every backoff by the caller's deadline (call_deadline());
- retries what failures.is_retryable() allows, with the policy's exponential backoff and full jitter;
- never repeats a write that is not idempotent after an ambiguous failure (OutcomeUnknownError);
- gives every TransactWriteItems a ClientRequestToken, reused on each attempt, so retries are idempotent.
Sleeps, randomness and the clock are injectable so tests do not wait. Must not import gRPC.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .backends import (
    BackendError,
    BackendUnavailableError,
    CircuitOpenError,
    DeadlineExceededError,
    DynamoBackend,
    OutcomeUnknownError,
)
from .failures import counts_against_health, is_retryable, leaf_of
from .made_here import noted

# ---------------------------------------------------------------- deadline budget

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "dynamo_gateway_deadline", default=None
)
# Time kept back from every budget for the answer to reach the caller before its deadline: a
# tenth of the budget, at least 30 ms, at most 1 s. A fixed 30 ms was not enough for a gateway
# whose event loop runs late under load (a full collection, many calls at their deadline at once).
RESPONSE_MARGIN_S = 0.03
RESPONSE_MARGIN_SHARE = 0.1
RESPONSE_MARGIN_MAX_S = 1.0


def response_margin_s(time_remaining_s: float) -> float:
    return min(RESPONSE_MARGIN_MAX_S, max(RESPONSE_MARGIN_S, time_remaining_s * RESPONSE_MARGIN_SHARE))


class call_deadline:  # lower case: it replaced a function and reads as one at `with`
    """Makes the caller's remaining time (None: no deadline) the budget of the backend calls inside.

    A class rather than a generator context manager: it runs on every RPC."""

    __slots__ = ("_deadline", "_token")

    def __init__(self, time_remaining_s: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._deadline = (
            None
            if time_remaining_s is None
            else clock() + time_remaining_s - response_margin_s(time_remaining_s)
        )

    def __enter__(self) -> None:
        self._token = _deadline.set(self._deadline)

    def __exit__(self, *exc_info: object) -> None:
        _deadline.reset(self._token)


def current_deadline() -> float | None:
    return _deadline.get()


# ---------------------------------------------------------------- policy


@dataclass(frozen=True)
class Backoff:
    attempts: int
    """Attempts in all, the first included."""
    base_s: float
    """Delay before the second attempt; doubles for each one after."""
    max_s: float = 5.0
    """Cap on any one delay."""

    def delay_s(self, retry: int, rand: Callable[[], float]) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^(retry-1))]."""
        return rand() * min(self.max_s, self.base_s * 2.0 ** (retry - 1))


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff per kind of retryable failure; anything else is never retried."""

    throughput: Backoff = Backoff(10, 0.050)
    internal_server_error: Backoff = Backoff(3, 0.100)
    service_unavailable: Backoff = Backoff(3, 0.500)
    transaction_conflict: Backoff = Backoff(3, 0.100)

    def backoff_for(self, error: BackendError | BackendUnavailableError) -> Backoff | None:
        if not is_retryable(error):
            return None
        leaf = leaf_of(error)
        if leaf.category == "Throughput":
            return self.throughput
        if leaf.reason == "Service.InternalServerError":
            return self.internal_server_error
        if leaf.category == "Service":
            return self.service_unavailable
        # Conflicts, transactions in progress, and cancellations that were all conflicts or throttles.
        return self.transaction_conflict


# ---------------------------------------------------------------- idempotency

_READS = {
    "GetItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "TransactGetItems",
    "DescribeTable",
    "DescribeTimeToLive",
}
# ADD, arithmetic (a + b, a - b) and list_append change the item relative to its current
# state, so applying them twice differs from once. Neither plain names nor #name/:value
# placeholders can hold + or -, so any + or - is arithmetic.
_RELATIVE_UPDATE = re.compile(r"\bADD\b|[+-]|\blist_append\s*\(", re.IGNORECASE)


def why_unsafe_to_repeat(operation: str, params: dict[str, Any]) -> str | None:
    """None when sending the request twice leaves DynamoDB as sending it once; else why not.

    PutItem and DeleteItem without a condition are idempotent: they set or remove the
    whole item, so a second application finds the state the first one left and does
    the same. A condition makes a repeat unsafe although the data would end up right:
    the repeat meets the first attempt's effect and fails its own condition, reporting
    failure for a write that happened. Returning old values (ALL_OLD, UPDATED_OLD) makes a
    repeat return the first attempt's result instead of the original item.
    """
    if operation in _READS or operation in ("BatchWriteItem", "TransactWriteItems"):
        # Batch writes are whole-item puts and deletes; transactions carry a ClientRequestToken.
        return None
    if params.get("ConditionExpression"):
        return "it has a condition, which a repeat would test against the first attempt's result"
    if params.get("ReturnValues") in ("ALL_OLD", "UPDATED_OLD"):
        return "it returns old values, which a repeat would take from the first attempt's result"
    if operation == "UpdateItem" and _RELATIVE_UPDATE.search(
        _without_placeholders(params.get("UpdateExpression", ""))
    ):
        return "the update expression changes values relative to their current state (ADD, +, -, list_append)"
    return None


def _without_placeholders(expression: str) -> str:
    return re.sub(r"[#:][A-Za-z0-9_]+", "", expression)


# ---------------------------------------------------------------- circuit breaker


class BreakerListener(Protocol):
    def __call__(self, endpoint: str, state: str) -> None: ...


@dataclass
class CircuitBreaker:
    """Counts backend-health failures; opens after `failure_threshold` in a row.

    Open: calls fail fast until `reset_timeout_s` has passed. Then half-open: calls go
    through; `success_threshold` successes in a row close it, one failure opens it again.
    """

    endpoint: str
    failure_threshold: int = 5
    success_threshold: int = 2
    reset_timeout_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    listeners: list[BreakerListener] = field(default_factory=list)
    state: str = "closed"
    _failures: int = 0
    _successes: int = 0
    _opened_at: float = 0.0

    def before_call(self) -> None:
        if self.state != "open":
            return
        waited = self.clock() - self._opened_at
        if waited < self.reset_timeout_s:
            raise CircuitOpenError(self.endpoint, retry_after_s=self.reset_timeout_s - waited)
        self._set("half_open")

    def record_success(self) -> None:
        self._failures = 0
        if self.state == "half_open":
            self._successes += 1
            if self._successes >= self.success_threshold:
                self._set("closed")

    def record_failure(self) -> None:
        self._successes = 0
        self._failures += 1
        if self.state == "half_open" or (self.state == "closed" and self._failures >= self.failure_threshold):
            self._opened_at = self.clock()
            self._set("open")

    def _set(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        self._failures = 0
        self._successes = 0
        for listener in self.listeners:
            listener(self.endpoint, state)


# ---------------------------------------------------------------- the layer


class RetryObserver(Protocol):
    """Told of every retry (the breaker's changes reach observers as its listeners)."""

    def on_retry(
        self, operation: str, attempt: int, error: BackendError | BackendUnavailableError, delay_s: float
    ) -> None: ...


class ResilientBackend:
    """Retries, deadline budgets and a circuit breaker around another backend."""

    def __init__(
        self,
        inner: DynamoBackend,
        policy: RetryPolicy,
        breaker: CircuitBreaker,
        *,
        observer: RetryObserver | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.policy = policy
        self.breaker = breaker
        self.observer = observer
        self._sleep = sleep
        self._rand = rand
        self._clock = clock

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "TransactWriteItems" and not params.get("ClientRequestToken"):
            # One token per RPC, reused by every attempt: DynamoDB applies the transaction once.
            params = {**params, "ClientRequestToken": noted(uuid.uuid4().hex)}
        deadline = current_deadline()
        attempt = 0
        # Failures so far per kind of backoff: each kind has its own budget and exponent, so
        # a 5xx after two throttles still gets its own three attempts.
        # Keyed by identity: two kinds may have equal settings yet separate budgets.
        failures: collections.Counter[int] | None = None  # made on the first failure only
        last_error: BackendError | BackendUnavailableError | None = None
        while True:
            attempt += 1
            self.breaker.before_call()
            remaining = None if deadline is None else deadline - self._clock()
            if remaining is not None and remaining <= 0:
                raise DeadlineExceededError(operation, last_error)
            try:
                async with asyncio.timeout(remaining):
                    result = await self.inner.call(operation, params)
            except TimeoutError:
                # The caller's budget ran out mid-attempt: answer now rather than late. The
                # request may have reached DynamoDB, so a write unsafe to repeat has an unknown outcome.
                cut = BackendUnavailableError(
                    "DeadlineExceeded", "the deadline ran out mid-call", ambiguous=True
                )
                why = why_unsafe_to_repeat(operation, params)
                if why is not None:
                    raise OutcomeUnknownError(operation, why, cut) from None
                raise DeadlineExceededError(operation, last_error) from None
            except (BackendError, BackendUnavailableError) as error:
                last_error = error
                if failures is None:
                    failures = collections.Counter()
                delay = self._retry_delay(operation, params, error, failures, deadline)
                if delay is None:
                    raise
                if self.observer is not None:
                    self.observer.on_retry(operation, attempt, error, delay)
                await self._sleep(delay)
                continue
            self.breaker.record_success()
            return result

    def _retry_delay(
        self,
        operation: str,
        params: dict[str, Any],
        error: BackendError | BackendUnavailableError,
        failures: collections.Counter[int],
        deadline: float | None,
    ) -> float | None:
        """The wait before the next attempt, or None to give up (raising what the caller should see)."""
        backoff = self.policy.backoff_for(error)
        if backoff is None:
            if counts_against_health(error):
                self.breaker.record_failure()
            return None
        failures[id(backoff)] += 1
        attempt = failures[id(backoff)]
        error.retry_after_s = min(backoff.max_s, backoff.base_s * 2 ** (attempt - 1))
        if _ambiguous(error):
            why = why_unsafe_to_repeat(operation, params)
            if why is not None:
                if counts_against_health(error):
                    self.breaker.record_failure()
                raise OutcomeUnknownError(operation, why, error, retry_after_s=error.retry_after_s) from None
        delay = backoff.delay_s(attempt, self._rand)
        out_of_time = deadline is not None and self._clock() + delay >= deadline
        if attempt >= backoff.attempts or out_of_time:
            # Given up: the caller gets this error, with RetryInfo.
            if counts_against_health(error):
                self.breaker.record_failure()
            return None
        return delay

    async def close(self) -> None:
        await self.inner.close()


def _ambiguous(error: BackendError | BackendUnavailableError) -> bool:
    """Whether DynamoDB may have applied the request although it failed."""
    if isinstance(error, BackendUnavailableError):
        return error.ambiguous
    # A 5xx answer: DynamoDB documents that the request may have succeeded.
    return error.http_status >= 500
