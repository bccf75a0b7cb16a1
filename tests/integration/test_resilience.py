"""Resilience under injected faults: outage and circuit breaker, deadlines, and a throttle storm.

Each test runs its own FaultProxy (seeded, so a run is reproducible) and gateway in
front of the session's emulator. Figures are printed (run with -s to see them);
nothing here passes or fails on a timing.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dynamo_gateway import GatewayError, ServiceUnavailableError
from dynamo_gateway.client import GatewayClient
from dynamo_gateway.v1 import service_pb2
from dynamo_gateway_server.app import SERVICE_NAME, Clocks, Gateway
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.tables import TableSpec
from tests.integration.conftest import create_table
from tests.support.backends import aws_backend_for, no_sleep
from tests.support.builders import item_map, status_details
from tests.support.clocks import ManualClock
from tests.support.emulators import FaultPlan, FaultProxy
from tests.support.tables import APP_TABLE

Sleep = Callable[[float], Awaitable[Any]]


class CountingBackend:
    """Counts the calls that reach the real backend (a breaker that fails fast makes none)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return await self.inner.call(operation, params)

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture
async def faulty(
    emulator,
) -> AsyncIterator[Callable[..., Awaitable[tuple[FaultProxy, Gateway, CountingBackend]]]]:
    """Starts a fault proxy and a gateway behind it, with the given settings, sleep and clock."""
    started: list[tuple[FaultProxy, Gateway]] = []

    async def start(
        plan: FaultPlan | None = None,
        sleep: Sleep = no_sleep,
        clock: Callable[[], float] = time.monotonic,
        **overrides: Any,
    ):
        proxy = FaultProxy(emulator.endpoint_url, plan)
        await proxy.start()
        settings = Settings(port=0, backend="aws", grace_period_s=0, **overrides)
        backend = CountingBackend(
            await aws_backend_for(
                proxy.endpoint_url, connect_timeout_s=0.5, read_timeout_s=5, max_concurrency=64
            )
        )
        gateway = Gateway(
            settings, backend, endpoint=proxy.endpoint_url, clocks=Clocks(sleep=sleep, clock=clock)
        )
        await gateway.start()
        started.append((proxy, gateway))
        return proxy, gateway, backend

    yield start
    for proxy, gateway in started:
        await gateway.stop(0)
        await proxy.stop()


async def _health(gateway: Gateway) -> int:
    response = await gateway.health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), None)
    return response.status


async def _until_health(gateway: Gateway, status: int) -> None:
    """Watches the gateway's health, as a load balancer does, until it reports `status`.

    The breaker's change reaches the health service in a task of its own, a moment later.
    """
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5
        )
        async for response in watch:
            if response.status == status:
                return


async def test_outage_opens_the_breaker_then_fails_fast_and_recovers(faulty, capsys) -> None:
    # The breaker's clock is the test's: the reset timeout passes when the test says so. The
    # client sets no deadline, so that nothing else reads that clock.
    clock = ManualClock()
    proxy, gateway, counting = await faulty(breaker_reset_timeout_s=30, clock=clock)
    table = await create_table(gateway, TableSpec(**{**APP_TABLE.__dict__, "name": "outage-orders"}))
    key = {"pk": "a", "sk": "b"}
    async with GatewayClient.connect(f"127.0.0.1:{gateway.port}", timeout_s=None) as client:
        await client.put_item(table, key)
        await proxy.go_down()
        for _ in range(5):  # five failed calls (each after its own retries) open the breaker
            with pytest.raises(ServiceUnavailableError) as caught:
                await client.get_item(table, key)
            assert "circuit" not in caught.value.metadata
        await _until_health(gateway, health_pb2.HealthCheckResponse.NOT_SERVING)
        calls_before = counting.calls
        fast_calls = 50
        began = time.perf_counter()
        for _ in range(fast_calls):
            with pytest.raises(ServiceUnavailableError) as caught:
                await client.get_item(table, key)
            assert caught.value.metadata["circuit"] == "open"
            assert 0 < caught.value.retry_after_s <= 30
        per_call_ms = (time.perf_counter() - began) / fast_calls * 1e3
        assert counting.calls == calls_before, "an open breaker must not call DynamoDB"
        await proxy.go_up()
        clock.advance(29)
        with pytest.raises(ServiceUnavailableError) as caught:
            await client.get_item(table, key)
        assert caught.value.metadata["circuit"] == "open", "a call went through before the reset timeout"
        assert counting.calls == calls_before
        clock.advance(1)  # the reset timeout has passed: half-open
        assert await client.get_item(table, key) == key
        assert gateway.breaker.state == "half_open"
        assert await client.get_item(table, key) == key  # the second success closes it
        assert gateway.breaker.state == "closed"
        await _until_health(gateway, health_pb2.HealthCheckResponse.SERVING)
    with capsys.disabled():
        print(
            f"\n  breaker open: a call fails fast in {per_call_ms:.2f} ms (client round trip, mean of {fast_calls})"
        )


async def test_an_open_breaker_says_serving_again_once_a_call_may_try(faulty) -> None:
    # A load balancer takes a NOT_SERVING gateway out and sends it nothing: without this, no call
    # would ever half-open the breaker and the gateway would stay out after DynamoDB recovered.
    proxy, gateway, _ = await faulty(breaker_reset_timeout_s=0.5, breaker_failure_threshold=2)
    table = await create_table(gateway, TableSpec(**{**APP_TABLE.__dict__, "name": "may-try-orders"}))
    key = {"pk": "a", "sk": "b"}
    async with GatewayClient.connect(f"127.0.0.1:{gateway.port}", timeout_s=None) as client:
        await proxy.go_down()
        for _ in range(2):
            with pytest.raises(ServiceUnavailableError):
                await client.get_item(table, key)
        await _until_health(gateway, health_pb2.HealthCheckResponse.NOT_SERVING)
        await _until_health(gateway, health_pb2.HealthCheckResponse.SERVING)  # no call in between
        assert gateway.breaker.state == "open"  # the next call is what half-opens it
        with pytest.raises(ServiceUnavailableError):
            await client.get_item(table, key)  # still down: open again
        await _until_health(gateway, health_pb2.HealthCheckResponse.NOT_SERVING)
        await proxy.go_up()
        await _until_health(gateway, health_pb2.HealthCheckResponse.SERVING)
        assert await client.get_item(table, key) is None  # recovered
        assert gateway.breaker.state == "half_open"


async def test_no_answer_comes_after_the_deadline(faulty) -> None:
    # 2 s of backend latency against a 1 s deadline (the gateway keeps 100 ms of it for its answer),
    # with real backoff sleeps. The breaker stays out of it: throttling left after retries would
    # (rightly) open it.
    _, gateway, _ = await faulty(
        FaultPlan(latency_s=2.0), sleep=asyncio.sleep, breaker_failure_threshold=10**9
    )
    table = await create_table(gateway, TableSpec(**{**APP_TABLE.__dict__, "name": "slow-orders"}))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        stub = GatewayClient(channel).stub
        request = service_pb2.GetItemRequest(table_name=table)
        item_map(request.key, {"pk": "a", "sk": "b"})
        throttled = service_pb2.GetItemRequest(table_name="throttled-slow")
        item_map(throttled.key, {"pk": "a"})
        calls = [stub.GetItem(request, timeout=1.0) for _ in range(10)]
        calls += [stub.GetItem(throttled, timeout=1.5) for _ in range(10)]
        # The gateway shares this process with the whole test session's heap: a full garbage
        # collection there could outlast the margin the gateway keeps for its answer.
        gc.disable()
        try:
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            gc.enable()
    for index, outcome in enumerate(outcomes):
        assert isinstance(outcome, grpc.aio.AioRpcError), outcome
        kind = "slow" if index < 10 else "throttled"
        # The gateway's own status (with its details) arrived: it answered before the deadline,
        # rather than the client giving up on a late answer.
        details = status_details(outcome)
        assert "google.rpc.ErrorInfo" in details, (
            f"{kind} call {index}: client-side timeout: {outcome.details()}"
        )
        assert "google.rpc.RetryInfo" in details
        assert outcome.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED)


STORM_WRITES = 10_000
COUNTERS = 50


async def test_throttle_storm_loses_nothing_and_applies_nothing_twice(emulator, faulty, capsys) -> None:
    if emulator.kind != "moto":
        pytest.skip("one storm is enough; it runs against moto")
    plan = FaultPlan(
        seed=20261126, throttle_rate=0.30, internal_error_rate=0.025, internal_error_after_rate=0.025
    )
    proxy, gateway, counting = await faulty(plan, sleep=asyncio.sleep, breaker_failure_threshold=10**9)
    table = await create_table(gateway, TableSpec(**{**APP_TABLE.__dict__, "name": "storm-orders"}))
    # 40% single puts, 30% ADD increments on a few counters, 30% puts inside 25-item batches.
    puts = int(STORM_WRITES * 0.4)
    increments = int(STORM_WRITES * 0.3)
    batches = (STORM_WRITES - puts - increments) // 25
    work: list[tuple[str, int]] = (
        [("put", i) for i in range(puts)]
        + [("add", i) for i in range(increments)]
        + [("batch", i) for i in range(batches)]
    )
    random.Random(1).shuffle(work)
    acked_puts: set[str] = set()
    acked_increments: collections.Counter[str] = collections.Counter()
    batch_items_sent = batch_items_processed = 0
    failures: list[GatewayError] = []
    gate = asyncio.Semaphore(32)

    async def one(client: GatewayClient, kind: str, n: int) -> None:
        nonlocal batch_items_sent, batch_items_processed
        async with gate:
            try:
                if kind == "put":
                    await client.put_item(table, {"pk": f"put#{n}", "sk": "x", "n": n})
                    acked_puts.add(f"put#{n}")
                elif kind == "add":
                    counter = f"counter#{n % COUNTERS}"
                    await client.update_item(
                        table, {"pk": counter, "sk": "c"}, "ADD hits :one", values={":one": 1}
                    )
                    acked_increments[counter] += 1
                else:
                    items = [{"pk": f"batch#{n}#{j}", "sk": "x"} for j in range(25)]
                    batch_items_sent += 25
                    result = await client.batch_write(puts={table: items})
                    left = {i["pk"] for i in result.unprocessed_puts.get(table, [])}
                    batch_items_processed += 25 - len(left)
                    acked_puts.update(i["pk"] for i in items if i["pk"] not in left)
            except GatewayError as error:
                failures.append(error)

    began = time.perf_counter()
    async with GatewayClient.connect(f"127.0.0.1:{gateway.port}", timeout_s=30) as client:
        await asyncio.gather(*(one(client, kind, n) for kind, n in work))
    elapsed = time.perf_counter() - began

    # Read back straight from the emulator, around the proxy.
    direct = await aws_backend_for(emulator.endpoint_url)
    try:
        stored: dict[str, dict[str, Any]] = {}
        params: dict[str, Any] = {"TableName": table}
        while True:
            page = await direct.call("Scan", params)
            stored.update({i["pk"]["S"]: i for i in page["Items"]})
            if "LastEvaluatedKey" not in page:
                break
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    finally:
        await direct.close()

    missing = sorted(acked_puts - set(stored))
    assert not missing, f"{len(missing)} acknowledged writes are gone, e.g. {missing[:5]}"
    counted = {pk: int(item["hits"]["N"]) for pk, item in stored.items() if pk.startswith("counter#")}
    # An increment whose answer was lost after DynamoDB applied it is not acknowledged (the
    # caller was told the outcome is unknown): exactly those make the stored total larger.
    applied_unacknowledged = proxy.injected["internal_error_after:UpdateItem"]
    assert sum(counted.values()) == sum(acked_increments.values()) + applied_unacknowledged
    for counter, hits in counted.items():
        assert acked_increments[counter] <= hits
    assert batch_items_processed >= 0.95 * batch_items_sent
    for failure in failures:
        assert failure.code in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.ABORTED,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        ), failure
        assert failure.retryable, failure
    with capsys.disabled():
        kinds = collections.Counter(
            f.reason + (" (outcome unknown)" if getattr(f, "outcome_unknown", False) else "")
            for f in failures
        )
        print(
            f"\n  throttle storm: {STORM_WRITES} writes ({puts} puts, {increments} ADD increments, {batches} batches of 25)"
            f" in {elapsed:.1f} s, {len(work) / elapsed:.0f} RPC/s against moto"
            f"\n  injected: {dict((k, v) for k, v in proxy.injected.items() if ':' not in k)};"
            f" DynamoDB calls made: {counting.calls}"
            f"\n  acknowledged: {len(acked_puts)} items, {sum(acked_increments.values())} increments;"
            f" batch items processed {batch_items_processed}/{batch_items_sent}"
            f"\n  failures seen by clients: {len(failures)} {dict(kinds)}"
        )


async def test_a_connection_reset_after_sending_is_retried_only_when_safe(faulty) -> None:
    proxy, gateway, _ = await faulty(breaker_failure_threshold=10**9)
    table = await create_table(gateway, TableSpec(**{**APP_TABLE.__dict__, "name": "reset-orders"}))
    # From now on every request is applied by the emulator, then its connection dropped unanswered.
    proxy.set_plan(FaultPlan(seed=3, reset_after_rate=1.0))
    async with GatewayClient.connect(f"127.0.0.1:{gateway.port}") as client:
        with pytest.raises(ServiceUnavailableError) as caught:
            await client.update_item(table, {"pk": "c", "sk": "1"}, "ADD hits :one", values={":one": 1})
        assert caught.value.outcome_unknown
        assert proxy.injected["reset_after:UpdateItem"] == 1  # sent once: a repeat could add twice
        with pytest.raises(ServiceUnavailableError) as caught:
            await client.put_item(table, {"pk": "c", "sk": "2"})
        assert not caught.value.outcome_unknown
        assert proxy.injected["reset_after:PutItem"] == 3  # a plain put is safe to repeat
    proxy.set_plan(FaultPlan())
    direct = await aws_backend_for(proxy.upstream)
    try:
        stored = await direct.call(
            "GetItem", {"TableName": table, "Key": {"pk": {"S": "c"}, "sk": {"S": "1"}}}
        )
    finally:
        await direct.close()
    assert stored["Item"]["hits"] == {"N": "1"}  # applied exactly once
