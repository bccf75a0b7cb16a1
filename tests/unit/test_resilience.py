"""The resilience layer: per-error backoff, deadline budget, safe retries, circuit breaker.

Time is injected: a fake clock that only the fake sleep moves, and a fixed `rand`, so every
delay is an exact value and nothing waits. Two tests use real time (a 50 ms budget) to cut a
hanging attempt; they assert what was raised, never how long it took.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from dynamo_gateway_server.backends import (
    BackendError,
    BackendUnavailableError,
    CircuitOpenError,
    DeadlineExceededError,
    OutcomeUnknownError,
)
from dynamo_gateway_server.failures import code_of, counts_against_health
from dynamo_gateway_server.resilience import (
    RESPONSE_MARGIN_S,
    Backoff,
    CircuitBreaker,
    ResilientBackend,
    RetryPolicy,
    call_deadline,
    current_deadline,
    why_unsafe_to_repeat,
)

ENDPOINT = "dynamodb.test-region"
OK = {"Item": {"pk": {"S": "a"}}}
GET = ("GetItem", {"TableName": "t", "Key": {"pk": {"S": "a"}}})
PUT = ("PutItem", {"TableName": "t", "Item": {"pk": {"S": "a"}}})
ADD = ("UpdateItem", {"TableName": "t", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "ADD hits :one"})
TRANSACT = (
    "TransactWriteItems",
    {"TransactItems": [{"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}}]},
)


# ---------------------------------------------------------------- fakes


def throttled() -> BackendError:
    return BackendError(
        "ProvisionedThroughputExceededException", "The level of configured provisioned throughput"
    )


def server_error() -> BackendError:
    return BackendError("InternalServerError", "Internal server error", http_status=500)


def unavailable_503() -> BackendError:
    return BackendError("ServiceUnavailable", "Service unavailable", http_status=503)


def conflict() -> BackendError:
    return BackendError("TransactionConflictException", "Transaction is ongoing for the item")


def refused() -> BackendUnavailableError:
    return BackendUnavailableError("EndpointConnectionError", "Could not connect")


def read_timeout() -> BackendUnavailableError:
    return BackendUnavailableError("ReadTimeoutError", "Read timeout", ambiguous=True)


def condition_failed() -> BackendError:
    return BackendError("ConditionalCheckFailedException", "The conditional request failed")


def validation() -> BackendError:
    return BackendError("ValidationException", "The provided key element does not match the schema")


def not_found() -> BackendError:
    return BackendError("ResourceNotFoundException", "Requested resource not found")


class ScriptedBackend:
    """Answers each call with the next scripted result, raising it if it is an exception."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.closed = False

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, params))
        outcome = self.script.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def close(self) -> None:
        self.closed = True


class FakeTime:
    """A clock only `sleep` moves; `sleep` records each delay and returns at once."""

    def __init__(self, now: float = 1000.0, oversleep_s: float = 0.0) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self._oversleep_s = oversleep_s

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay_s: float) -> None:
        self.sleeps.append(delay_s)
        self.now += delay_s + self._oversleep_s


class RecordingObserver:
    def __init__(self) -> None:
        self.retries: list[tuple[str, int, str, float]] = []
        self.states: list[tuple[str, str]] = []

    def on_retry(self, operation: str, attempt: int, error: Exception, delay_s: float) -> None:
        self.retries.append((operation, attempt, code_of(error), delay_s))

    def on_breaker_state(self, endpoint: str, state: str) -> None:
        self.states.append((endpoint, state))


def layer(
    inner: ScriptedBackend,
    time: FakeTime,
    *,
    rand: Callable[[], float] = lambda: 1.0,
    policy: RetryPolicy | None = None,
    observer: RecordingObserver | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> ResilientBackend:
    # The wiring (app.py) makes observers the breaker's listeners; so does this test's.
    breaker = CircuitBreaker(
        ENDPOINT, clock=time.clock, listeners=[observer.on_breaker_state] if observer else []
    )
    return ResilientBackend(
        inner,
        policy or RetryPolicy(),
        breaker,
        observer=observer,
        sleep=sleep or time.sleep,
        rand=rand,
        clock=time.clock,
    )


async def _raised(backend: ResilientBackend, operation: str, params: dict[str, Any]) -> BaseException:
    with pytest.raises(Exception) as caught:
        await backend.call(operation, params)
    return caught.value


# ---------------------------------------------------------------- how often each failure is retried


async def test_success_is_returned_and_sent_once() -> None:
    inner, time = ScriptedBackend(OK), FakeTime()
    assert await layer(inner, time).call(*GET) == OK
    assert inner.calls == [GET]
    assert time.sleeps == []


async def test_a_retried_failure_that_then_succeeds_returns_the_result() -> None:
    inner, time = ScriptedBackend(throttled(), server_error(), OK), FakeTime()
    assert await layer(inner, time).call(*GET) == OK
    assert len(inner.calls) == 3
    assert all(call == GET for call in inner.calls)


# (name, error factory, attempts in all), by hand from the default policy: throughput 10;
# 500, 503, other 5xx, no connection and conflicts 3.
RETRIED = [
    ("ProvisionedThroughputExceeded", throttled, 10),
    ("ThrottlingException", lambda: BackendError("ThrottlingException", "Rate exceeded"), 10),
    ("RequestLimitExceeded", lambda: BackendError("RequestLimitExceeded", "Too many requests"), 10),
    ("InternalServerError", server_error, 3),
    ("ServiceUnavailable", unavailable_503, 3),
    ("unknown-5xx", lambda: BackendError("BrandNewException", "new", http_status=502), 3),
    ("EndpointConnectionError", refused, 3),
    ("TransactionConflict", conflict, 3),
    ("TransactionInProgress", lambda: BackendError("TransactionInProgressException", "busy"), 3),
]


@pytest.mark.parametrize(("_name", "make", "attempts"), RETRIED, ids=[r[0] for r in RETRIED])
async def test_retryable_failures_are_retried_up_to_their_attempts(
    _name: str, make: Callable[[], Exception], attempts: int
) -> None:
    script = [make() for _ in range(attempts)]
    inner, time = ScriptedBackend(*script), FakeTime()
    raised = await _raised(layer(inner, time), *GET)
    assert raised is script[-1]
    assert len(inner.calls) == attempts
    assert len(time.sleeps) == attempts - 1
    assert raised.retry_after_s is not None and raised.retry_after_s > 0


@pytest.mark.parametrize(
    ("make", "retry_after_s"),
    [(server_error, 0.4), (unavailable_503, 2.0), (refused, 2.0), (conflict, 0.4)],
    ids=["500", "503", "refused", "conflict"],
)
async def test_given_up_error_says_when_to_try_again(
    make: Callable[[], Exception], retry_after_s: float
) -> None:
    # base * 2^(attempts-1): the upper bound of the delay the policy would have waited next.
    inner, time = ScriptedBackend(make(), make(), make()), FakeTime()
    raised = await _raised(layer(inner, time), *GET)
    assert raised.retry_after_s == pytest.approx(retry_after_s)


async def test_given_up_throttling_suggests_a_wait_within_the_cap() -> None:
    script = [throttled() for _ in range(10)]
    inner, time = ScriptedBackend(*script), FakeTime()
    raised = await _raised(layer(inner, time), *GET)
    assert max(time.sleeps) == pytest.approx(5.0)
    assert raised.retry_after_s == pytest.approx(5.0)


NOT_RETRIED = [
    ("ConditionalCheckFailed", condition_failed),
    ("Validation", validation),
    ("ResourceNotFound", not_found),
    ("AccessDenied", lambda: BackendError("AccessDeniedException", "not allowed")),
    ("ExpiredToken", lambda: BackendError("ExpiredTokenException", "expired")),
    ("ItemCollectionSizeLimit", lambda: BackendError("ItemCollectionSizeLimitExceededException", "10 GB")),
    (
        "TransactionCanceled-condition",
        lambda: BackendError(
            "TransactionCanceledException",
            "cancelled",
            cancellation_reasons=[{"Code": "TransactionConflict"}, {"Code": "ConditionalCheckFailed"}],
        ),
    ),
    ("NoCredentials", lambda: BackendUnavailableError("NoCredentials", "Unable to locate credentials")),
    ("NoRegion", lambda: BackendUnavailableError("NoRegion", "You must specify a region")),
]


@pytest.mark.parametrize(("_name", "make"), NOT_RETRIED, ids=[r[0] for r in NOT_RETRIED])
async def test_other_failures_are_never_retried(_name: str, make: Callable[[], Exception]) -> None:
    error = make()
    inner, time, observer = ScriptedBackend(error), FakeTime(), RecordingObserver()
    raised = await _raised(layer(inner, time, observer=observer), *PUT)
    assert raised is error
    assert len(inner.calls) == 1
    assert time.sleeps == []
    assert observer.retries == []
    assert raised.retry_after_s is None


async def test_a_cancelled_transaction_of_conflicts_and_throttles_is_retried() -> None:
    def cancelled() -> BackendError:
        reasons = [{"Code": "TransactionConflict"}, {"Code": "ThrottlingError"}, {"Code": "None"}]
        return BackendError("TransactionCanceledException", "cancelled", cancellation_reasons=reasons)

    inner, time = ScriptedBackend(cancelled(), cancelled(), cancelled()), FakeTime()
    raised = await _raised(layer(inner, time), *TRANSACT)
    assert isinstance(raised, BackendError)
    assert len(inner.calls) == 3


# ---------------------------------------------------------------- backoff with full jitter


@pytest.mark.parametrize(
    ("rand", "expected"),
    [
        (1.0, [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]),
        (0.5, [0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.5, 2.5]),
        (0.0, [0.0] * 9),
    ],
)
async def test_throttling_delays_are_full_jitter_of_a_capped_doubling(
    rand: float, expected: list[float]
) -> None:
    inner, time = ScriptedBackend(*[throttled() for _ in range(10)]), FakeTime()
    await _raised(layer(inner, time, rand=lambda: rand), *GET)
    assert time.sleeps == pytest.approx(expected)


async def test_each_delay_draws_its_own_random_number() -> None:
    draws = iter([0.25, 0.75])
    inner, time = ScriptedBackend(server_error(), server_error(), server_error()), FakeTime()
    await _raised(layer(inner, time, rand=lambda: next(draws)), *GET)
    assert time.sleeps == pytest.approx([0.25 * 0.1, 0.75 * 0.2])


@pytest.mark.parametrize(
    ("retry", "rand", "expected"),
    [
        (1, 1.0, 0.1),
        (2, 1.0, 0.2),
        (3, 1.0, 0.4),
        (4, 1.0, 0.8),
        (5, 1.0, 1.0),
        (9, 1.0, 1.0),
        (3, 0.3, 0.12),
    ],
)
def test_backoff_delay(retry: int, rand: float, expected: float) -> None:
    assert Backoff(attempts=10, base_s=0.1, max_s=1.0).delay_s(retry, lambda: rand) == pytest.approx(expected)


def test_default_policy() -> None:
    policy = RetryPolicy()
    assert policy.backoff_for(throttled()) == Backoff(10, 0.05, 5.0)
    assert policy.backoff_for(server_error()) == Backoff(3, 0.1, 5.0)
    assert policy.backoff_for(unavailable_503()) == Backoff(3, 0.5, 5.0)
    assert policy.backoff_for(refused()) == Backoff(3, 0.5, 5.0)
    assert policy.backoff_for(conflict()) == Backoff(3, 0.1, 5.0)
    assert policy.backoff_for(condition_failed()) is None
    assert policy.backoff_for(validation()) is None


async def test_observer_hears_each_retry_before_its_backoff() -> None:
    observer = RecordingObserver()
    inner, time = ScriptedBackend(throttled(), refused(), OK), FakeTime()

    async def sleep(delay_s: float) -> None:
        # The observer was told before the layer waited.
        assert observer.retries[-1][3] == delay_s
        await time.sleep(delay_s)

    backend = layer(inner, time, rand=lambda: 0.5, observer=observer, sleep=sleep)
    assert await backend.call(*GET) == OK
    # Each kind of failure has its own budget and exponent: the connection failure is the
    # first of its kind, so its delay is 0.5 * 0.5 s, although it is the call's second attempt.
    assert observer.retries == [
        ("GetItem", 1, "ProvisionedThroughputExceededException", pytest.approx(0.025)),
        ("GetItem", 2, "EndpointConnectionError", pytest.approx(0.25)),
    ]
    assert time.sleeps == pytest.approx([0.025, 0.25])


# ---------------------------------------------------------------- the deadline budget


def test_call_deadline_sets_and_restores_the_budget() -> None:
    time = FakeTime(now=50.0)
    assert current_deadline() is None
    with call_deadline(0.2, clock=time.clock):
        assert current_deadline() == pytest.approx(50.2 - RESPONSE_MARGIN_S)
        with call_deadline(None):
            assert current_deadline() is None
        assert current_deadline() == pytest.approx(50.2 - RESPONSE_MARGIN_S)
    assert current_deadline() is None


@pytest.mark.parametrize(("remaining_s", "margin_s"), [(0.2, 0.03), (1.0, 0.1), (4.0, 0.4), (60.0, 1.0)])
def test_the_answer_keeps_a_tenth_of_the_budget_within_bounds(remaining_s: float, margin_s: float) -> None:
    time = FakeTime(now=50.0)
    with call_deadline(remaining_s, clock=time.clock):
        assert current_deadline() == pytest.approx(50.0 + remaining_s - margin_s)


async def test_backoff_that_would_overrun_the_deadline_is_not_slept() -> None:
    script = [throttled() for _ in range(10)]
    inner, time = ScriptedBackend(*script), FakeTime()
    start = time.now
    with call_deadline(0.2, clock=time.clock):
        raised = await _raised(layer(inner, time), *GET)
    # 50 ms + 100 ms fit in 200 ms; another 200 ms does not: three attempts, then the last error.
    assert time.sleeps == pytest.approx([0.05, 0.1])
    assert len(inner.calls) == 3
    assert raised is script[2]
    assert raised.retry_after_s is not None
    assert time.now - start <= 0.2


async def test_a_first_backoff_longer_than_the_deadline_gives_up_at_once() -> None:
    error = unavailable_503()
    inner, time = ScriptedBackend(error, OK), FakeTime()
    with call_deadline(0.2, clock=time.clock):
        raised = await _raised(layer(inner, time), *GET)
    assert raised is error
    assert len(inner.calls) == 1
    assert time.sleeps == []


async def test_without_a_deadline_all_attempts_are_made() -> None:
    inner, time = ScriptedBackend(*[unavailable_503() for _ in range(3)]), FakeTime()
    with call_deadline(None, clock=time.clock):
        await _raised(layer(inner, time), *GET)
    assert len(inner.calls) == 3


@pytest.mark.parametrize("remaining_s", [0.0, RESPONSE_MARGIN_S, -1.0])
async def test_a_deadline_already_past_sends_nothing(remaining_s: float) -> None:
    inner, time = ScriptedBackend(OK), FakeTime()
    with call_deadline(remaining_s, clock=time.clock):
        raised = await _raised(layer(inner, time), *GET)
    assert isinstance(raised, DeadlineExceededError)
    assert raised.operation == "GetItem"
    assert raised.last_error is None
    assert inner.calls == []


async def test_a_deadline_passed_during_backoff_reports_the_last_failure() -> None:
    # The sleep overruns (as a loaded event loop may): the next attempt finds no time left.
    error = throttled()
    inner, time = ScriptedBackend(error, OK), FakeTime(oversleep_s=1.0)
    with call_deadline(0.5, clock=time.clock):
        raised = await _raised(layer(inner, time), *GET)
    assert isinstance(raised, DeadlineExceededError)
    assert raised.last_error is error
    assert len(inner.calls) == 1


class HangingBackend:
    """Fails fast first (if scripted), then hangs until cancelled."""

    def __init__(self, *first: Exception) -> None:
        self.first = list(first)
        self.calls = 0
        self.cancelled = False

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.first:
            raise self.first.pop(0)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return OK

    async def close(self) -> None:
        pass


async def _no_sleep(delay_s: float) -> None:
    pass


def _real_time_layer(inner: HangingBackend) -> ResilientBackend:
    # Real clock: the attempt's own timeout is what must stop it; backoffs do not wait.
    return ResilientBackend(inner, RetryPolicy(), CircuitBreaker(ENDPOINT), sleep=_no_sleep, rand=lambda: 0.0)


async def test_an_attempt_slower_than_the_budget_is_cut() -> None:
    error = throttled()
    inner = HangingBackend(error)
    backend = _real_time_layer(inner)
    with call_deadline(0.05):
        raised = await _raised(backend, *GET)
    assert isinstance(raised, DeadlineExceededError)
    assert raised.last_error is error
    assert inner.calls == 2
    assert inner.cancelled
    assert backend.breaker.state == "closed"


async def test_an_unsafe_write_cut_by_the_deadline_has_an_unknown_outcome() -> None:
    inner = HangingBackend()
    with call_deadline(0.05):
        raised = await _raised(_real_time_layer(inner), *ADD)
    assert inner.cancelled
    assert isinstance(raised, OutcomeUnknownError)


async def test_a_call_cancelled_from_outside_stays_cancelled_within_its_deadline() -> None:
    # Only the attempt's own deadline turns a cancellation into a deadline error; the caller going
    # away must still cancel the call (and leave the task's cancellation count as it found it).
    inner = HangingBackend()
    with call_deadline(10.0):
        call = asyncio.ensure_future(_real_time_layer(inner).call(*GET))
    await asyncio.sleep(0)  # the call starts its attempt and hangs in it
    assert inner.calls == 1
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert inner.cancelled
    assert call.cancelling() == 1


# ---------------------------------------------------------------- safe retries


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("PutItem", {"TableName": "t", "Item": {"pk": {"S": "a"}}}),
        ("PutItem", {"TableName": "t", "Item": {"pk": {"S": "a"}}, "ReturnValues": "NONE"}),
        ("DeleteItem", {"TableName": "t", "Key": {"pk": {"S": "a"}}}),
        ("UpdateItem", {"UpdateExpression": "SET a = :v"}),
        ("UpdateItem", {"UpdateExpression": "SET a = :v, b = if_not_exists(b, :zero) REMOVE c"}),
        ("UpdateItem", {"UpdateExpression": "DELETE tags :gone"}),
        # An attribute named "a-b" is reached through a placeholder: the hyphen is in the names map,
        # and placeholders (letters, digits, underscore) are not taken for arithmetic.
        ("UpdateItem", {"UpdateExpression": "SET #a_b = :v", "ExpressionAttributeNames": {"#a_b": "a-b"}}),
        ("UpdateItem", {"UpdateExpression": "SET #add = :minus_1, #list_append = :plus_2"}),
        ("UpdateItem", {"UpdateExpression": "SET address = :v"}),
        ("GetItem", {"ConsistentRead": True}),
        ("Query", {"KeyConditionExpression": "pk = :p"}),
        ("Scan", {}),
        ("BatchGetItem", {}),
        ("TransactGetItems", {}),
        ("DescribeTable", {}),
        ("BatchWriteItem", {}),
        ("TransactWriteItems", {"TransactItems": [{"ConditionCheck": {"ConditionExpression": "a = :a"}}]}),
    ],
)
def test_safe_to_repeat(operation: str, params: dict[str, Any]) -> None:
    assert why_unsafe_to_repeat(operation, params) is None


@pytest.mark.parametrize(
    ("operation", "params", "why"),
    [
        ("PutItem", {"ConditionExpression": "attribute_not_exists(pk)"}, "condition"),
        ("DeleteItem", {"ConditionExpression": "v = :v"}, "condition"),
        ("UpdateItem", {"UpdateExpression": "SET a = :v", "ConditionExpression": "a < :v"}, "condition"),
        ("PutItem", {"ReturnValues": "ALL_OLD"}, "old values"),
        ("DeleteItem", {"ReturnValues": "ALL_OLD"}, "old values"),
        ("UpdateItem", {"UpdateExpression": "SET a = :v", "ReturnValues": "UPDATED_OLD"}, "old values"),
        ("UpdateItem", {"UpdateExpression": "ADD c :one"}, "ADD"),
        ("UpdateItem", {"UpdateExpression": "add c :one"}, "ADD"),
        ("UpdateItem", {"UpdateExpression": "SET c = c + :one"}, "relative"),
        ("UpdateItem", {"UpdateExpression": "SET c = c - :one"}, "relative"),
        ("UpdateItem", {"UpdateExpression": "SET #c = #c+:one"}, "relative"),
        ("UpdateItem", {"UpdateExpression": "SET l = list_append(l, :x)"}, "list_append"),
        ("UpdateItem", {"UpdateExpression": "SET l = list_append (:x, l)"}, "list_append"),
        ("UpdateItem", {"UpdateExpression": "SET a = :v ADD tags :t"}, "ADD"),
    ],
)
def test_unsafe_to_repeat(operation: str, params: dict[str, Any], why: str) -> None:
    reason = why_unsafe_to_repeat(operation, params)
    assert reason is not None
    assert why in reason


@pytest.mark.parametrize("return_values", ["ALL_NEW", "UPDATED_NEW"])
def test_returning_new_values_is_safe_to_repeat(return_values: str) -> None:
    params = {"UpdateExpression": "SET a = :v", "ReturnValues": return_values}
    assert why_unsafe_to_repeat("UpdateItem", params) is None


@pytest.mark.parametrize("make", [server_error, read_timeout], ids=["5xx", "read-timeout"])
async def test_ambiguous_failure_of_an_unsafe_write_is_not_repeated(make: Callable[[], Exception]) -> None:
    error = make()
    inner, time, observer = ScriptedBackend(error, OK), FakeTime(), RecordingObserver()
    raised = await _raised(layer(inner, time, observer=observer), *ADD)
    assert isinstance(raised, OutcomeUnknownError)
    assert raised.operation == "UpdateItem"
    assert raised.cause is error
    assert "ADD" in raised.why_unsafe
    assert raised.retry_after_s is not None and raised.retry_after_s > 0
    assert len(inner.calls) == 1
    assert time.sleeps == []
    assert observer.retries == []


async def test_ambiguous_failure_of_a_conditional_put_is_not_repeated() -> None:
    params = {**PUT[1], "ConditionExpression": "attribute_not_exists(pk)"}
    inner, time = ScriptedBackend(read_timeout(), OK), FakeTime()
    raised = await _raised(layer(inner, time), "PutItem", params)
    assert isinstance(raised, OutcomeUnknownError)
    assert "condition" in raised.why_unsafe
    assert len(inner.calls) == 1


@pytest.mark.parametrize("make", [server_error, read_timeout], ids=["5xx", "read-timeout"])
async def test_ambiguous_failure_of_a_plain_put_is_retried(make: Callable[[], Exception]) -> None:
    inner, time = ScriptedBackend(make(), make(), OK), FakeTime()
    assert await layer(inner, time).call(*PUT) == OK
    assert len(inner.calls) == 3


@pytest.mark.parametrize("make", [throttled, refused], ids=["throttled", "not-sent"])
async def test_unambiguous_failure_of_an_unsafe_write_is_retried(make: Callable[[], Exception]) -> None:
    # A 400 or a connection never made: DynamoDB did not apply the write, so repeating it is safe.
    inner, time = ScriptedBackend(make(), OK), FakeTime()
    assert await layer(inner, time).call(*ADD) == OK
    assert len(inner.calls) == 2


async def test_ambiguous_failure_of_a_transaction_is_retried() -> None:
    inner, time = ScriptedBackend(server_error(), read_timeout(), OK), FakeTime()
    assert await layer(inner, time).call(*TRANSACT) == OK
    assert len(inner.calls) == 3


# ---------------------------------------------------------------- transaction tokens


async def test_a_transaction_gets_one_token_reused_by_every_attempt() -> None:
    inner, time = ScriptedBackend(conflict(), server_error(), OK), FakeTime()
    operation, params = TRANSACT
    await layer(inner, time).call(operation, params)
    tokens = [sent["ClientRequestToken"] for _, sent in inner.calls]
    assert len(tokens) == 3
    assert len(set(tokens)) == 1
    assert 1 <= len(tokens[0]) <= 36  # DynamoDB's limit
    assert "ClientRequestToken" not in params  # the caller's dict is left alone
    assert all(sent["TransactItems"] == params["TransactItems"] for _, sent in inner.calls)


async def test_each_transaction_call_gets_its_own_token() -> None:
    inner, time = ScriptedBackend(OK, OK), FakeTime()
    backend = layer(inner, time)
    await backend.call(*TRANSACT)
    await backend.call(*TRANSACT)
    first, second = (sent["ClientRequestToken"] for _, sent in inner.calls)
    assert first != second


async def test_a_callers_token_is_kept() -> None:
    inner, time = ScriptedBackend(conflict(), OK), FakeTime()
    await layer(inner, time).call(
        "TransactWriteItems", {**TRANSACT[1], "ClientRequestToken": "caller-token-1"}
    )
    assert [sent["ClientRequestToken"] for _, sent in inner.calls] == ["caller-token-1", "caller-token-1"]


@pytest.mark.parametrize("request_", [GET, PUT, ADD], ids=["get", "put", "update"])
async def test_only_transactions_get_a_token(request_: tuple[str, dict[str, Any]]) -> None:
    inner, time = ScriptedBackend(OK), FakeTime()
    await layer(inner, time).call(*request_)
    assert "ClientRequestToken" not in inner.calls[0][1]


# ---------------------------------------------------------------- the circuit breaker

ONE_ATTEMPT = RetryPolicy(*(Backoff(1, 0.1) for _ in range(4)))

HEALTH_FAILURES = [
    ("throttled", throttled),
    ("500", server_error),
    ("503", unavailable_503),
    ("unknown-5xx", lambda: BackendError("BrandNewException", "new", http_status=500)),
    ("refused", refused),
    ("read-timeout", read_timeout),
]


def test_what_counts_against_health() -> None:
    for _, make in HEALTH_FAILURES:
        assert counts_against_health(make())
    for _, make in NOT_RETRIED:
        error = make()
        assert not counts_against_health(error), error
    assert not counts_against_health(RuntimeError("a bug"))
    assert not counts_against_health(DeadlineExceededError("GetItem"))


@pytest.mark.parametrize(("_name", "make"), HEALTH_FAILURES, ids=[r[0] for r in HEALTH_FAILURES])
async def test_breaker_opens_after_five_health_failures_in_a_row(
    _name: str, make: Callable[[], Exception]
) -> None:
    inner, time, observer = ScriptedBackend(*[make() for _ in range(5)], OK), FakeTime(), RecordingObserver()
    backend = layer(inner, time, policy=ONE_ATTEMPT, observer=observer)
    for _ in range(4):
        await _raised(backend, *GET)
    assert backend.breaker.state == "closed"
    await _raised(backend, *GET)
    assert backend.breaker.state == "open"
    assert observer.states == [(ENDPOINT, "open")]
    raised = await _raised(backend, *GET)
    assert isinstance(raised, CircuitOpenError)
    assert raised.endpoint == ENDPOINT
    assert len(inner.calls) == 5  # failing fast: DynamoDB was not called


async def test_breaker_counts_calls_that_gave_up_not_attempts() -> None:
    inner, time = ScriptedBackend(*[throttled() for _ in range(40)]), FakeTime()
    backend = layer(inner, time)
    for _ in range(4):
        await _raised(backend, *GET)
    assert len(inner.calls) == 40
    assert backend.breaker.state == "closed"


async def test_breaker_counts_an_ambiguous_unsafe_write_that_failed() -> None:
    inner, time = ScriptedBackend(*[server_error() for _ in range(5)]), FakeTime()
    backend = layer(inner, time)
    for _ in range(5):
        assert isinstance(await _raised(backend, *ADD), OutcomeUnknownError)
    assert backend.breaker.state == "open"


@pytest.mark.parametrize(("_name", "make"), NOT_RETRIED, ids=[r[0] for r in NOT_RETRIED])
async def test_breaker_ignores_the_callers_mistakes(_name: str, make: Callable[[], Exception]) -> None:
    inner, time, observer = ScriptedBackend(*[make() for _ in range(8)], OK), FakeTime(), RecordingObserver()
    backend = layer(inner, time, observer=observer)
    for _ in range(8):
        await _raised(backend, *PUT)
    assert backend.breaker.state == "closed"
    assert await backend.call(*GET) == OK
    assert observer.states == []


async def test_a_success_resets_the_failure_count() -> None:
    script = [*(server_error() for _ in range(4)), OK, *(server_error() for _ in range(4))]
    inner, time = ScriptedBackend(*script), FakeTime()
    backend = layer(inner, time, policy=ONE_ATTEMPT)
    for _ in range(4):
        await _raised(backend, *GET)
    await backend.call(*GET)
    for _ in range(4):
        await _raised(backend, *GET)
    assert backend.breaker.state == "closed"


async def _opened(time: FakeTime, *after: Any, observer: RecordingObserver | None = None) -> ResilientBackend:
    inner = ScriptedBackend(*[server_error() for _ in range(5)], *after)
    backend = layer(inner, time, policy=ONE_ATTEMPT, observer=observer)
    for _ in range(5):
        await _raised(backend, *GET)
    assert backend.breaker.state == "open"
    return backend


async def test_open_breaker_says_how_long_until_it_lets_calls_through() -> None:
    time = FakeTime()
    backend = await _opened(time)
    raised = await _raised(backend, *GET)
    assert isinstance(raised, CircuitOpenError)
    assert raised.retry_after_s == pytest.approx(30.0)
    time.now += 12.5
    raised = await _raised(backend, *GET)
    assert raised.retry_after_s == pytest.approx(17.5)
    time.now += 17.4
    assert isinstance(await _raised(backend, *GET), CircuitOpenError)
    assert len(backend.inner.calls) == 5


async def test_breaker_half_opens_then_closes_after_two_successes() -> None:
    time, observer = FakeTime(), RecordingObserver()
    backend = await _opened(time, OK, OK, server_error(), observer=observer)
    time.now += 30.0
    assert await backend.call(*GET) == OK
    assert backend.breaker.state == "half_open"
    assert await backend.call(*GET) == OK
    assert backend.breaker.state == "closed"
    assert observer.states == [(ENDPOINT, "open"), (ENDPOINT, "half_open"), (ENDPOINT, "closed")]
    # Closed again: one failure does not reopen it.
    await _raised(backend, *GET)
    assert backend.breaker.state == "closed"


async def test_a_failure_while_half_open_reopens_the_breaker() -> None:
    time, observer = FakeTime(), RecordingObserver()
    backend = await _opened(time, OK, server_error(), observer=observer)
    time.now += 31.0
    assert await backend.call(*GET) == OK
    await _raised(backend, *GET)
    assert backend.breaker.state == "open"
    assert observer.states == [(ENDPOINT, "open"), (ENDPOINT, "half_open"), (ENDPOINT, "open")]
    raised = await _raised(backend, *GET)
    assert isinstance(raised, CircuitOpenError)
    assert raised.retry_after_s == pytest.approx(30.0)  # counted from the reopening


def test_breaker_listeners_hear_every_change() -> None:
    time, heard = FakeTime(), []
    breaker = CircuitBreaker(
        "e", failure_threshold=2, success_threshold=1, reset_timeout_s=5.0, clock=time.clock
    )
    breaker.listeners.append(lambda endpoint, state: heard.append((endpoint, state)))
    breaker.record_failure()
    breaker.before_call()
    breaker.record_failure()
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    time.now += 5.0
    breaker.before_call()
    breaker.record_success()
    assert heard == [("e", "open"), ("e", "half_open"), ("e", "closed")]


async def test_close_closes_the_inner_backend() -> None:
    inner = ScriptedBackend()
    await layer(inner, FakeTime()).close()
    assert inner.closed
