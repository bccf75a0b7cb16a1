"""A burst far beyond the in-flight limits: every call ends OK or RESOURCE_EXHAUSTED with RetryInfo.

Never CANCELLED without a word (gRPC's core does that to calls it holds past its own pending
limit, unless the gateway raises it: app.py). Runs against moto only: one burst is enough.
"""

from __future__ import annotations

import asyncio
import collections

import pytest

from dynamo_gateway import ConcurrencyLimitExceededError, GatewayClient, GatewayError
from dynamo_gateway_server.app import Clocks, Gateway
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.tables import TableSpec
from tests.support.backends import aws_backend_for, no_sleep
from tests.support.emulators import FaultProxy

from .conftest import Emulator, create_table

BURST = 3000


async def test_a_burst_on_one_channel_is_answered_never_cancelled(emulator: Emulator) -> None:
    if emulator.kind != "moto":
        pytest.skip("one burst is enough; it runs against moto")
    proxy = FaultProxy(emulator.endpoint_url)
    await proxy.start()
    backend = await aws_backend_for(proxy.endpoint_url, max_concurrency=64)
    gateway = Gateway(
        Settings(port=0, backend="aws", grace_period_s=0, max_inflight_rpcs=32),
        backend,
        endpoint=proxy.endpoint_url,
        clocks=Clocks(sleep=no_sleep),
    )
    await gateway.start()
    outcomes: collections.Counter[str] = collections.Counter()
    unexplained: list[GatewayError] = []
    try:
        table = await create_table(gateway, TableSpec("burst", {"pk": "S"}, "pk"))
        # DynamoDB answers nothing until the first refusal: the 32 slots are taken for sure while the
        # burst arrives, however slowly this machine sends it. (A minute at most: no refusal fails.)
        released = proxy.hold = asyncio.Event()
        asyncio.get_running_loop().call_later(60, released.set)
        async with GatewayClient.connect(f"127.0.0.1:{gateway.port}", timeout_s=60) as client:

            async def one(n: int) -> None:
                try:
                    await client.put_item(table, {"pk": f"item-{n}"})
                    outcomes["OK"] += 1
                except ConcurrencyLimitExceededError as refused:
                    assert refused.retry_after_s is not None  # RetryInfo: when to try again
                    outcomes["RESOURCE_EXHAUSTED"] += 1
                    released.set()
                except GatewayError as error:
                    unexplained.append(error)

            await asyncio.gather(*(one(n) for n in range(BURST)))
    finally:
        await gateway.stop(0)
        await proxy.stop()
    assert not unexplained, collections.Counter(f"{e.code.name} {e.reason}" for e in unexplained)
    assert outcomes["OK"] > 0 and outcomes["RESOURCE_EXHAUSTED"] > 0, outcomes
