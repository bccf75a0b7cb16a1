"""The one key-schema cache: one DescribeTable per table, however many stages and calls ask."""

from __future__ import annotations

import asyncio
from typing import Any

from dynamo_gateway_server.backends import BackendError
from dynamo_gateway_server.key_schema import KeySchema, KeySchemaCache
from tests.support.clocks import ManualClock


class Describing:
    """DescribeTable answers (or fails) when the test releases it; counts the calls."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = fail

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        assert operation == "DescribeTable"
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise BackendError("ResourceNotFoundException", "no such table")
        return {"Table": {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}}

    async def close(self) -> None:
        pass


async def test_calls_before_the_lookup_runs_share_it() -> None:
    backend = Describing()
    cache = KeySchemaCache(backend)
    for _ in range(5):  # all before the loop runs anything: one lookup, not five
        cache.learn_soon("t")
    waiter = asyncio.create_task(cache.learn("t"))
    backend.release.set()
    await waiter
    assert cache.get("t") == KeySchema("pk")
    assert backend.calls == 1
    cache.learn_soon("t")  # known: nothing more to ask
    await cache.settled()
    assert backend.calls == 1


async def test_a_failed_lookup_is_not_repeated_before_its_retry_time() -> None:
    backend, clock = Describing(fail=True), ManualClock()
    backend.release.set()
    cache = KeySchemaCache(backend, retry_after_s=60, clock=clock)
    await cache.learn("missing")
    cache.learn_soon("missing")
    await cache.settled()
    assert (cache.get("missing"), backend.calls) == (None, 1)
    clock.advance(60)
    await cache.learn("missing")
    assert backend.calls == 2


async def test_close_ends_lookups_in_flight() -> None:
    backend = Describing()
    cache = KeySchemaCache(backend)
    cache.learn_soon("t")
    await asyncio.sleep(0)  # the lookup starts and waits on DescribeTable
    await cache.close()
    assert cache.get("t") is None
    await cache.settled()  # nothing left in flight
