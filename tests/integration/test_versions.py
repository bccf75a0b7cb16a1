"""Versioned writes through the real server, on both emulators: conditions, conflicts, refusals."""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from dynamo_gateway import GatewayClient, GatewayError, VersionConflictError
from dynamo_gateway.v1 import options_pb2, service_pb2, service_pb2_grpc
from dynamo_gateway_server.app import Gateway
from dynamo_gateway_server.tables import TableSpec, VersionSpec
from tests.support.builders import item_map, py, status_details
from tests.support.emulators import FaultPlan, FaultProxy

from .conftest import Emulator, gateway_declaring

_numbers = itertools.count()
ABSENT = service_pb2.ExpectedVersion(absent=True)


def version(number: int) -> service_pb2.ExpectedVersion:
    return service_pb2.ExpectedVersion(version=number)


@dataclass
class Versioned:
    stub: service_pb2_grpc.DynamoDBServiceStub
    gateway: Gateway
    table: str  # versions optional
    strict: str  # versions required
    plain: str  # declares none

    async def put(self, table: str, item: dict[str, Any], **fields: Any) -> service_pb2.PutItemResponse:
        request = service_pb2.PutItemRequest(table_name=table, **fields)
        item_map(request.item, item)
        response: service_pb2.PutItemResponse = await self.stub.PutItem(request, timeout=30)
        return response

    async def get(self, table: str, pk: str) -> dict[str, Any] | None:
        request = service_pb2.GetItemRequest(table_name=table, consistent_read=True)
        item_map(request.key, {"pk": pk})
        response = await self.stub.GetItem(request, timeout=30)
        return py(response.item) if response.found else None


@pytest.fixture
async def versioned(emulator: Emulator) -> AsyncIterator[Versioned]:
    n = next(_numbers)
    specs = [
        TableSpec(f"versioned-{n}", {"pk": "S"}, "pk", version=VersionSpec("version")),
        TableSpec(f"strict-{n}", {"pk": "S"}, "pk", version=VersionSpec("rev", start=0, required=True)),
        TableSpec(f"plain-{n}", {"pk": "S"}, "pk"),
    ]
    async with gateway_declaring(emulator.endpoint_url, specs) as gateway:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            yield Versioned(service_pb2_grpc.DynamoDBServiceStub(channel), gateway, *(s.name for s in specs))


async def test_a_versioned_put_creates_at_the_start_version_then_counts_up(versioned) -> None:
    created = await versioned.put(versioned.table, {"pk": "a", "n": 1}, expected_version=ABSENT)
    assert created.HasField("version") and created.version == 1
    # A read-modify-write: the item read back goes out again, with the version it had.
    item = await versioned.get(versioned.table, "a")
    assert item is not None and item["version"] == 1
    updated = await versioned.put(versioned.table, {**item, "n": 2}, expected_version=version(1))
    assert updated.version == 2
    stored = await versioned.get(versioned.table, "a")
    assert stored is not None and (stored["n"], stored["version"]) == (2, 2)
    # The log records the write that made each of the latest versions.
    assert sorted(stored["_version_log"]) == ["1", "2"]


async def test_a_stale_version_is_a_conflict_carrying_the_current_item(versioned) -> None:
    await versioned.put(versioned.table, {"pk": "b", "n": 1}, expected_version=ABSENT)
    await versioned.put(versioned.table, {"pk": "b", "n": 2}, expected_version=version(1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await versioned.put(versioned.table, {"pk": "b", "n": 3}, expected_version=version(1))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = status_details(caught.value)
    assert details["google.rpc.ErrorInfo"].reason == "ConditionalCheck.VersionConflict"
    conflict = details["dynamo_gateway.v1.VersionConflict"]
    assert (conflict.expected_version, conflict.current_version) == (1, 2)
    assert py(conflict.current_item)["n"] == 2
    assert py(conflict.key) == {"pk": "b"}
    # "No item yet" also conflicts with an item that exists.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await versioned.put(versioned.table, {"pk": "b"}, expected_version=ABSENT)
    conflict = status_details(caught.value)["dynamo_gateway.v1.VersionConflict"]
    assert not conflict.HasField("expected_version") and conflict.current_version == 2
    stored = await versioned.get(versioned.table, "b")
    assert stored is not None and stored["n"] == 2


async def test_the_callers_own_condition_failing_is_not_a_version_conflict(versioned) -> None:
    await versioned.put(versioned.table, {"pk": "c", "state": "open"}, expected_version=ABSENT)
    request = service_pb2.PutItemRequest(
        table_name=versioned.table,
        condition_expression="#s = :closed",
        expression_attribute_names={"#s": "state"},
        expected_version=version(1),
    )
    item_map(request.item, {"pk": "c", "state": "done"})
    item_map(request.expression_attribute_values, {":closed": "closed"})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await versioned.stub.PutItem(request, timeout=30)
    details = status_details(caught.value)
    assert details["google.rpc.ErrorInfo"].reason == "ConditionalCheck.ConditionFailed"
    # The caller did not ask for the old item, so it is not sent although the gateway read it.
    assert not details["dynamo_gateway.v1.ConditionalCheckFailure"].item


async def test_a_versioned_update_joins_the_callers_expression(versioned) -> None:
    await versioned.put(versioned.table, {"pk": "d", "n": 1}, expected_version=ABSENT)
    request = service_pb2.UpdateItemRequest(
        table_name=versioned.table,
        update_expression="SET n = n + :one REMOVE gone",
        expected_version=version(1),
        return_values=options_pb2.RETURN_VALUE_ALL_NEW,
    )
    item_map(request.key, {"pk": "d"})
    item_map(request.expression_attribute_values, {":one": 1})
    response = await versioned.stub.UpdateItem(request, timeout=30)
    assert response.version == 2
    assert py(response.attributes)["n"] == 2 and py(response.attributes)["version"] == 2
    # An update may not set the version itself: the gateway does.
    request = service_pb2.UpdateItemRequest(
        table_name=versioned.table,
        update_expression="SET #v = :v",
        expression_attribute_names={"#v": "version"},
        expected_version=version(2),
    )
    item_map(request.key, {"pk": "d"})
    item_map(request.expression_attribute_values, {":v": 9})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await versioned.stub.UpdateItem(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violation = status_details(caught.value)["google.rpc.BadRequest"].field_violations[0]
    assert violation.field == "update_expression" and "version" in violation.description


async def test_an_item_versioned_elsewhere_gets_a_log_on_its_first_gateway_update(versioned) -> None:
    # Written without the gateway's log (as another library would), already at version 5.
    await versioned.put(versioned.table, {"pk": "e", "version": 5})
    request = service_pb2.UpdateItemRequest(
        table_name=versioned.table, update_expression="SET n = :n", expected_version=version(5)
    )
    item_map(request.key, {"pk": "e"})
    item_map(request.expression_attribute_values, {":n": 1})
    assert (await versioned.stub.UpdateItem(request, timeout=30)).version == 6
    stored = await versioned.get(versioned.table, "e")
    assert stored is not None and stored["version"] == 6 and list(stored["_version_log"]) == ["6"]


async def test_a_versioned_delete_checks_the_version(versioned) -> None:
    await versioned.put(versioned.table, {"pk": "f"}, expected_version=ABSENT)
    request = service_pb2.DeleteItemRequest(table_name=versioned.table, expected_version=version(7))
    item_map(request.key, {"pk": "f"})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await versioned.stub.DeleteItem(request, timeout=30)
    assert status_details(caught.value)["dynamo_gateway.v1.VersionConflict"].current_version == 1
    request.expected_version.version = 1
    await versioned.stub.DeleteItem(request, timeout=30)
    assert await versioned.get(versioned.table, "f") is None


async def test_refusals_name_the_field(versioned) -> None:
    async def refused(call: Any, request: Any) -> tuple[str, str]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request, timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        violation = status_details(caught.value)["google.rpc.BadRequest"].field_violations[0]
        return violation.field, violation.description

    put = service_pb2.PutItemRequest(table_name=versioned.strict)
    item_map(put.item, {"pk": "g"})
    field, why = await refused(versioned.stub.PutItem, put)
    assert field == "expected_version" and "requires versioned writes" in why
    batch = service_pb2.BatchWriteItemRequest()
    item_map(batch.request_items[versioned.strict].requests.add().put_request.item, {"pk": "g"})
    field, why = await refused(versioned.stub.BatchWriteItem, batch)
    assert field == f"request_items[{versioned.strict}]" and "BatchWriteItem cannot carry a condition" in why
    undeclared = service_pb2.PutItemRequest(table_name=versioned.plain, expected_version=ABSENT)
    item_map(undeclared.item, {"pk": "g"})
    field, why = await refused(versioned.stub.PutItem, undeclared)
    assert field == "expected_version" and "declares no version attribute" in why
    meaningless = service_pb2.PutItemRequest(
        table_name=versioned.table, expected_version=service_pb2.ExpectedVersion(absent=False)
    )
    item_map(meaningless.item, {"pk": "g"})
    field, _ = await refused(versioned.stub.PutItem, meaningless)
    assert field == "expected_version"
    # Nothing was written by any of them.
    assert await versioned.get(versioned.strict, "g") is None
    assert await versioned.get(versioned.plain, "g") is None
    # The required table takes a versioned write, starting at its declared start (0).
    assert (await versioned.put(versioned.strict, {"pk": "g"}, expected_version=ABSENT)).version == 0


@pytest.mark.transactions
async def test_a_transaction_versions_each_action_and_names_the_conflicting_one(versioned) -> None:
    await versioned.put(versioned.table, {"pk": "t1"}, expected_version=ABSENT)
    request = service_pb2.TransactWriteItemsRequest()
    put = request.transact_items.add().put
    put.table_name = versioned.table
    item_map(put.item, {"pk": "t2"})
    put.expected_version.absent = True
    update = request.transact_items.add().update
    update.table_name = versioned.table
    update.update_expression = "SET n = :n"
    item_map(update.key, {"pk": "t1"})
    item_map(update.expression_attribute_values, {":n": 1})
    update.expected_version.version = 1
    response = await versioned.stub.TransactWriteItems(request, timeout=30)
    assert dict(response.versions) == {0: 1, 1: 2}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await versioned.stub.TransactWriteItems(request, timeout=30)  # the same expectations, now stale
    details = status_details(caught.value)
    assert details["google.rpc.ErrorInfo"].reason == "ConditionalCheck.VersionConflict"
    conflict = details["dynamo_gateway.v1.VersionConflict"]
    assert conflict.action_index == 0 and conflict.current_version == 1
    # A condition check on the version alone (no expression of its own) guards a write elsewhere.
    guarded = service_pb2.TransactWriteItemsRequest()
    check = guarded.transact_items.add().condition_check
    check.table_name = versioned.table
    item_map(check.key, {"pk": "t1"})
    check.expected_version.version = 1  # stale: t1 is at 2
    guarded_put = guarded.transact_items.add().put
    guarded_put.table_name = versioned.table
    item_map(guarded_put.item, {"pk": "t3"})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await versioned.stub.TransactWriteItems(guarded, timeout=30)
    conflict = status_details(caught.value)["dynamo_gateway.v1.VersionConflict"]
    assert (conflict.action_index, conflict.current_version) == (0, 2)
    assert await versioned.get(versioned.table, "t3") is None
    check.expected_version.version = 2
    await versioned.stub.TransactWriteItems(guarded, timeout=30)
    assert await versioned.get(versioned.table, "t3") is not None
    # An unversioned write to a table that requires versions is refused inside a transaction too.
    strict = service_pb2.TransactWriteItemsRequest()
    item_map(strict.transact_items.add().put.item, {"pk": "s"})
    strict.transact_items[0].put.table_name = versioned.strict
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await versioned.stub.TransactWriteItems(strict, timeout=30)
    violation = status_details(caught.value)["google.rpc.BadRequest"].field_violations[0]
    assert violation.field == "transact_items[0].put.expected_version"


async def test_describe_table_shows_what_is_declared(versioned) -> None:
    response = await versioned.stub.DescribeTable(
        service_pb2.DescribeTableRequest(table_name=versioned.strict), timeout=30
    )
    declared = response.table.declarations
    assert (declared.version_attribute, declared.version_start, declared.version_required) == ("rev", 0, True)
    assert declared.version_increment == 1 and declared.version_log_attribute == "_version_log"
    plain = await versioned.stub.DescribeTable(
        service_pb2.DescribeTableRequest(table_name=versioned.plain), timeout=30
    )
    assert not plain.table.HasField("declarations")


# The fault test: writers doing read-modify-write loops on a few items through the fault proxy.
WRITERS = 8
ITEMS = 3
WRITES_PER_WRITER = 12


async def test_concurrent_read_modify_write_through_faults_loses_nothing(emulator, capsys) -> None:
    spec = TableSpec(f"rmw-{next(_numbers)}", {"pk": "S"}, "pk", version=VersionSpec("version"))
    # Faults on every call, reads included: throttles, 5xx before and after applying, resets after.
    plan = FaultPlan(
        seed=20261201,
        throttle_rate=0.10,
        internal_error_rate=0.05,
        internal_error_after_rate=0.10,
        reset_after_rate=0.05,
    )
    proxy = FaultProxy(emulator.endpoint_url)
    await proxy.start()
    acknowledged: collections.Counter[str] = collections.Counter()
    conflicts: list[VersionConflictError] = []
    unknown: list[GatewayError] = []
    timeouts = {"connect_timeout_s": 0.5, "read_timeout_s": 5}
    try:
        async with gateway_declaring(
            proxy.endpoint_url, [spec], timeouts, breaker_failure_threshold=10**9
        ) as gateway:
            keys = [f"item-{i}" for i in range(ITEMS)]
            async with GatewayClient.connect(f"127.0.0.1:{gateway.port}", timeout_s=30) as client:
                for key in keys:
                    await client.put_item(spec.name, {"pk": key, "n": 0}, expected_version="absent")
                    acknowledged[key] += 1
                proxy.set_plan(plan)

                async def writer(number: int) -> None:
                    chooser = random.Random(number)
                    for round_ in range(WRITES_PER_WRITER):
                        key = chooser.choice(keys)
                        item = await _read(client, spec.name, key)
                        while True:
                            try:
                                if (number + round_) % 2:  # a Put of the whole item read, as PynamoDB saves
                                    await client.put_item(
                                        spec.name,
                                        {**item, "n": item["n"] + 1},
                                        expected_version=item["version"],
                                    )
                                else:  # an Update that sets what it computed from the read
                                    await client.update_item(
                                        spec.name,
                                        {"pk": key},
                                        "SET n = :n",
                                        values={":n": item["n"] + 1},
                                        expected_version=item["version"],
                                    )
                                acknowledged[key] += 1
                                break
                            except VersionConflictError as conflict:
                                conflicts.append(conflict)
                                assert conflict.current_item is not None
                                item = conflict.current_item  # read-modify-write again from there
                            except GatewayError as error:
                                if getattr(error, "outcome_unknown", False):
                                    unknown.append(error)
                                    raise
                                assert error.retryable, error  # throttled or unavailable: the same again

                await asyncio.gather(*(writer(n) for n in range(WRITERS)))
                proxy.set_plan(FaultPlan())
                stored = {key: await _read(client, spec.name, key) for key in keys}
    finally:
        await proxy.stop()

    assert not unknown
    # Lost answers were met, and resolved by reading back (applied, or sent again).
    resolutions = gateway.telemetry.metrics.versioned_write_resolutions
    applied = resolutions.labels(spec.name, "applied")._value.get()
    assert applied > 0 and resolutions.labels(spec.name, "unknown")._value.get() == 0
    for key, item in stored.items():
        # Each acknowledged write made exactly one version and one increment: none lost, none twice.
        assert item["version"] == acknowledged[key], (key, item, acknowledged)
        assert item["n"] == acknowledged[key] - 1
    for conflict in conflicts:
        assert conflict.current_version is not None and conflict.current_version != conflict.expected_version
    with capsys.disabled():
        injected = {k: v for k, v in proxy.injected.items() if ":" not in k}
        print(
            f"\n  versioned read-modify-write on {emulator.kind}: {WRITERS} writers x {WRITES_PER_WRITER}"
            f" writes on {ITEMS} items; acknowledged {sum(acknowledged.values())},"
            f" conflicts {len(conflicts)}, outcome unknown {len(unknown)}; lost answers found applied"
            f" {applied:.0f}, not applied {resolutions.labels(spec.name, 'not applied')._value.get():.0f};"
            f" injected {injected}"
        )


async def _read(client: GatewayClient, table: str, key: str) -> dict[str, Any]:
    while True:
        try:
            item = await client.get_item(table, {"pk": key}, consistent_read=True)
        except GatewayError as error:
            assert error.retryable, error
            continue
        assert item is not None
        return item
