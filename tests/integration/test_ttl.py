"""A declared TTL attribute is checked on every write, through the real server, on both emulators."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator

import pytest

from dynamo_gateway import GatewayClient, InvalidParameterError, TransactPut
from dynamo_gateway_server.tables import TableSpec

from .conftest import Emulator, gateway_declaring

_numbers = itertools.count()


@pytest.fixture
async def sessions(emulator: Emulator) -> AsyncIterator[tuple[GatewayClient, str]]:
    """A gateway whose tables file declares `expires_at` as the TTL of a fresh sessions table."""
    spec = TableSpec(
        name=f"sessions-{next(_numbers)}",
        attributes={"id": "S"},
        partition_key="id",
        ttl_attribute="expires_at",
    )
    async with gateway_declaring(emulator.endpoint_url, [spec]) as gateway:
        async with GatewayClient.connect(f"127.0.0.1:{gateway.port}") as client:
            yield client, spec.name


async def test_a_ttl_in_epoch_seconds_is_written(sessions) -> None:
    client, table = sessions
    in_an_hour = int(time.time()) + 3600
    await client.put_item(table, {"id": "a", "expires_at": in_an_hour})
    assert await client.get_item(table, {"id": "a"}) == {"id": "a", "expires_at": in_an_hour}


async def test_a_ttl_in_milliseconds_is_refused_naming_the_field(sessions) -> None:
    client, table = sessions
    milliseconds = int(time.time() * 1000) + 3_600_000
    with pytest.raises(InvalidParameterError) as refused:
        await client.put_item(table, {"id": "a", "expires_at": milliseconds})
    assert refused.value.field_violations[0][0] == "item.expires_at"
    assert "milliseconds" in refused.value.message
    with pytest.raises(InvalidParameterError) as refused:
        await client.batch_write({table: [{"id": "b", "expires_at": 1}]})
    assert (
        refused.value.field_violations[0][0]
        == f"request_items[{table}].requests[0].put_request.item.expires_at"
    )
    assert "five years" in refused.value.message
    # Refused before DynamoDB: nothing was written.
    assert await client.get_item(table, {"id": "a"}) is None
    assert await client.get_item(table, {"id": "b"}) is None


@pytest.mark.transactions
async def test_a_transaction_put_with_a_bad_ttl_is_refused(sessions) -> None:
    client, table = sessions
    with pytest.raises(InvalidParameterError) as refused:
        await client.transact_write([TransactPut(table, {"id": "c", "expires_at": 10**13})])
    assert refused.value.field_violations[0][0] == "transact_items[0].put.item.expires_at"
    assert await client.get_item(table, {"id": "c"}) is None


async def test_an_update_that_sets_a_bad_ttl_is_refused(sessions) -> None:
    client, table = sessions
    in_a_day = int(time.time()) + 86_400
    await client.update_item(table, {"id": "d"}, "SET expires_at = :t", values={":t": in_a_day})
    with pytest.raises(InvalidParameterError) as refused:
        await client.update_item(
            table, {"id": "d"}, "SET #e = :t", names={"#e": "expires_at"}, values={":t": in_a_day * 1000}
        )
    assert refused.value.field_violations[0][0] == "expression_attribute_values[:t]"
    assert await client.get_item(table, {"id": "d"}) == {"id": "d", "expires_at": in_a_day}
