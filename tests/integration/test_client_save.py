"""GatewayClient.save() through the real server, on both emulators: a versioned read-modify-write
whose versions the client keeps, a stale copy's conflict, and a table that declares no version."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from dynamo_gateway import GatewayClient, VersionConflictError
from dynamo_gateway.v1 import table_pb2
from dynamo_gateway_server.tables import TableSpec, VersionSpec

from .conftest import Emulator, gateway_declaring

_numbers = itertools.count()


@dataclass
class Saving:
    client: GatewayClient
    table: str  # version attribute "version"
    plain: str  # declares none


@pytest.fixture
async def saving(emulator: Emulator) -> AsyncIterator[Saving]:
    n = next(_numbers)
    specs = [
        TableSpec(f"saved-{n}", {"pk": "S"}, "pk", version=VersionSpec("version")),
        TableSpec(f"saved-plain-{n}", {"pk": "S"}, "pk"),
    ]
    async with gateway_declaring(emulator.endpoint_url, specs) as gateway:
        async with GatewayClient(
            grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}"), timeout_s=30
        ) as client:
            yield Saving(client, *(s.name for s in specs))


async def test_save_counts_versions_and_refuses_a_stale_copy(saving: Saving) -> None:
    client = saving.client
    first = await client.save(saving.table, {"pk": "a", "n": 1})
    assert first == {"pk": "a", "n": 1, "version": 1}
    second = await client.save(saving.table, {**first, "n": 2})
    assert second == {"pk": "a", "n": 2, "version": 2}
    stored = await client.get_item(saving.table, {"pk": "a"}, consistent_read=True)
    assert stored is not None and (stored["n"], stored["version"]) == (2, 2)

    # Another writer still holding the first copy loses: nothing it sends is written.
    with pytest.raises(VersionConflictError) as caught:
        await client.save(saving.table, {**first, "n": 3})
    assert caught.value.current_version == 2
    assert caught.value.current_item is not None and caught.value.current_item["n"] == 2
    # Starting again from the current item succeeds.
    third = await client.save(saving.table, {**caught.value.current_item, "n": 3})
    assert (third["n"], third["version"]) == (3, 3)

    # A new item whose key already holds a versioned item conflicts too.
    with pytest.raises(VersionConflictError) as caught:
        await client.save(saving.table, {"pk": "a", "n": 0})
    assert caught.value.current_version == 3


async def test_save_refuses_a_table_without_a_version_attribute(saving: Saving) -> None:
    with pytest.raises(ValueError, match=f"table {saving.plain} declares no version attribute"):
        await saving.client.save(saving.plain, {"pk": "a", "n": 1})
    assert await saving.client.get_item(saving.plain, {"pk": "a"}, consistent_read=True) is None
    # Unversioned writes stay put_item's.
    await saving.client.put_item(saving.plain, {"pk": "a", "n": 1})
    assert await saving.client.get_item(saving.plain, {"pk": "a"}, consistent_read=True) == {
        "pk": "a",
        "n": 1,
    }


async def test_saves_ask_describe_table_once(saving: Saving, monkeypatch: pytest.MonkeyPatch) -> None:
    client = saving.client
    described: list[str] = []
    describe = client.describe_table

    async def counted(table: str) -> table_pb2.TableDescription:
        described.append(table)
        return await describe(table)

    monkeypatch.setattr(client, "describe_table", counted)
    saved = await client.save(saving.table, {"pk": "b"})
    saved = await client.save(saving.table, saved)
    assert saved["version"] == 2 and described == [saving.table]
