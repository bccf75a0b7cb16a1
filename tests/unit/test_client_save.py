"""GatewayClient.save(): the expected version it sends (the item's version, or absent), the item it
returns (with the version the gateway stored), the one DescribeTable per table it asks for the
version attribute, and what it refuses before any PutItem. A fake stub records the requests and
answers from a script; no gateway runs."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from dynamo_gateway import ResourceNotFoundError, VersionConflictError
from dynamo_gateway.client import GatewayClient
from dynamo_gateway.v1 import errors_pb2, service_pb2, table_pb2
from dynamo_gateway.values import fill_item

KEY = {"pk": "user#1"}


def _described(table: str, version_attribute: str = "version") -> service_pb2.DescribeTableResponse:
    return service_pb2.DescribeTableResponse(
        table=table_pb2.TableDescription(
            table_name=table,
            declarations=table_pb2.TableDeclarations(version_attribute=version_attribute),
        )
    )


def _put(version: int | None) -> service_pb2.PutItemResponse:
    return service_pb2.PutItemResponse() if version is None else service_pb2.PutItemResponse(version=version)


class RecordingStub:
    """Answers each call with the next scripted answer of its method (a response or an exception to
    raise); for DescribeTable, the table's declarations (version attribute "version") unless scripted;
    PutItem answers version 1 unless scripted. Keeps every request."""

    def __init__(self, scripted: dict[str, list[Any]] | None = None) -> None:
        self.requests: list[Any] = []
        self.scripted = scripted or {}
        # Set to hold DescribeTable's answers until the test releases them.
        self.describe_gate: asyncio.Event | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        async def call(request: Any, **options: Any) -> Any:  # options: call_unary's timeout=
            self.requests.append(request)
            answers = self.scripted.get(name)
            if name == "DescribeTable" and self.describe_gate is not None:
                await self.describe_gate.wait()
            if answers:
                answer = answers.pop(0)
            elif name == "DescribeTable":
                answer = _described(request.table_name)
            elif name == "PutItem":
                answer = _put(1)
            else:
                raise AssertionError(f"unexpected call {name}")
            if isinstance(answer, BaseException):
                raise answer
            return answer

        return call

    def of(self, request_type: type[Any]) -> list[Any]:
        return [r for r in self.requests if type(r) is request_type]


@pytest.fixture
def stub() -> RecordingStub:
    return RecordingStub()


@pytest.fixture
async def client(stub: RecordingStub) -> AsyncIterator[GatewayClient]:
    # A channel that is never used: the stub is replaced before any call.
    async with GatewayClient(grpc.aio.insecure_channel("127.0.0.1:1")) as gateway:
        gateway.stub = stub  # type: ignore[assignment]
        yield gateway


def _expected(request: Any) -> tuple[str | None, Any]:
    """(which field of the oneof is set, its value); (None, None) when expected_version is unset."""
    if not request.HasField("expected_version"):
        return None, None
    which = request.expected_version.WhichOneof("expected")
    return which, getattr(request.expected_version, which) if which else None


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({**KEY, "n": 1}, ("absent", True)),  # no version yet: a new item
        ({**KEY, "n": 1, "version": None}, ("absent", True)),  # as PynamoDB: None is no version
        ({**KEY, "n": 1, "version": 3}, ("version", 3)),
        ({**KEY, "n": 1, "version": 0}, ("version", 0)),  # 0 is a version, not "unset"
        ({**KEY, "n": 1, "version": Decimal("7")}, ("version", 7)),  # a whole Decimal is a version
    ],
)
async def test_save_expects_the_version_the_item_holds(
    client: GatewayClient, stub: RecordingStub, item: dict[str, Any], field: tuple[str, Any]
) -> None:
    await client.save("app", item)
    (describe,) = stub.of(service_pb2.DescribeTableRequest)
    assert describe.table_name == "app"
    (put,) = stub.of(service_pb2.PutItemRequest)
    assert put.table_name == "app"
    assert _expected(put) == field
    # The item goes out as given (the gateway replaces the version attribute with the next one).
    assert put.item["pk"].s == "user#1" and put.item["n"].n == "1"


async def test_save_returns_a_copy_with_the_version_written(
    client: GatewayClient, stub: RecordingStub
) -> None:
    stub.scripted["PutItem"] = [_put(1), _put(2)]
    item = {**KEY, "n": 1}
    saved = await client.save("app", item)
    assert saved == {**KEY, "n": 1, "version": 1}
    assert item == {**KEY, "n": 1}  # the caller's item is left as it was
    # Saving the returned copy expects the version it holds and returns the next.
    again = await client.save("app", {**saved, "n": 2})
    assert again == {**KEY, "n": 2, "version": 2}
    assert [_expected(r) for r in stub.of(service_pb2.PutItemRequest)] == [("absent", True), ("version", 1)]


async def test_save_uses_the_attribute_the_table_declares(client: GatewayClient, stub: RecordingStub) -> None:
    stub.scripted["DescribeTable"] = [_described("orders", "rev")]
    stub.scripted["PutItem"] = [_put(5)]
    saved = await client.save("orders", {**KEY, "rev": 4, "version": "not ours"})
    (put,) = stub.of(service_pb2.PutItemRequest)
    assert _expected(put) == ("version", 4)
    assert saved == {**KEY, "rev": 5, "version": "not ours"}


async def test_save_passes_condition_expressions_and_expiry_through(
    client: GatewayClient, stub: RecordingStub
) -> None:
    await client.save(
        "app",
        {**KEY, "state": "open", "version": 2},
        condition="#s <> :closed",
        names={"#s": "state"},
        values={":closed": "closed"},
        expires_in=datetime.timedelta(hours=1),
    )
    (put,) = stub.of(service_pb2.PutItemRequest)
    assert put.condition_expression == "#s <> :closed"
    assert dict(put.expression_attribute_names) == {"#s": "state"}
    assert put.expression_attribute_values[":closed"].s == "closed"
    assert put.expires_in.ToTimedelta() == datetime.timedelta(hours=1)
    assert _expected(put) == ("version", 2)
    # save asks for no old item: it returns the item it wrote.
    assert put.return_values == 0 and put.return_values_on_condition_check_failure == 0


async def test_the_version_attribute_is_looked_up_once_per_table(
    client: GatewayClient, stub: RecordingStub
) -> None:
    saved = await client.save("app", {**KEY, "n": 1})
    await client.save("app", saved)
    await client.save("other", {**KEY, "n": 1})
    describes = stub.of(service_pb2.DescribeTableRequest)
    assert [d.table_name for d in describes] == ["app", "other"]
    assert len(stub.of(service_pb2.PutItemRequest)) == 3


async def test_saves_that_start_together_share_one_lookup(client: GatewayClient, stub: RecordingStub) -> None:
    stub.describe_gate = asyncio.Event()
    saves = [asyncio.ensure_future(client.save("app", {"pk": f"user#{n}"})) for n in range(5)]
    await asyncio.sleep(0.01)  # every save is waiting for the version attribute
    assert not any(s.done() for s in saves)
    stub.describe_gate.set()
    await asyncio.gather(*saves)
    assert len(stub.of(service_pb2.DescribeTableRequest)) == 1
    assert len(stub.of(service_pb2.PutItemRequest)) == 5


async def test_a_table_without_a_version_attribute_is_refused_before_any_put(
    client: GatewayClient, stub: RecordingStub
) -> None:
    stub.scripted["DescribeTable"] = [_described("plain", ""), _described("plain", "")]
    with pytest.raises(ValueError, match="table plain declares no version attribute"):
        await client.save("plain", {**KEY, "n": 1})
    assert stub.of(service_pb2.PutItemRequest) == []
    # Not remembered: the next save asks again (the gateway may have been given a declaration).
    with pytest.raises(ValueError, match="table plain declares no version attribute"):
        await client.save("plain", {**KEY, "n": 1})
    assert [type(r) for r in stub.requests] == [service_pb2.DescribeTableRequest] * 2


async def test_a_failed_lookup_is_asked_again(client: GatewayClient, stub: RecordingStub) -> None:
    missing = grpc.aio.AioRpcError(
        grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata(), "no table"
    )
    stub.scripted["DescribeTable"] = [missing]
    with pytest.raises(ResourceNotFoundError, match="no table"):
        await client.save("app", {**KEY, "n": 1})
    assert stub.of(service_pb2.PutItemRequest) == []
    assert await client.save("app", {**KEY, "n": 1}) == {**KEY, "n": 1, "version": 1}
    assert len(stub.of(service_pb2.DescribeTableRequest)) == 2


@pytest.mark.parametrize(
    ("version", "words"),
    [
        (True, "not bool"),
        ("3", "not str"),
        (Decimal("1.5"), "not Decimal"),
        (1.0, "not float"),
    ],
)
async def test_a_version_that_is_not_a_whole_number_is_refused_before_any_put(
    client: GatewayClient, stub: RecordingStub, version: Any, words: str
) -> None:
    with pytest.raises(TypeError, match=f"version holds the version of items of app: .*{words}"):
        await client.save("app", {**KEY, "version": version})
    assert stub.of(service_pb2.PutItemRequest) == []


def _conflict(current_version: int, current_item: dict[str, Any]) -> grpc.aio.AioRpcError:
    """The FAILED_PRECONDITION a gateway sends for a version conflict, with its details."""
    conflict = errors_pb2.VersionConflict(expected_version=1, current_version=current_version)
    fill_item(conflict.current_item, current_item)
    fill_item(conflict.key, KEY)
    info = error_details_pb2.ErrorInfo(reason="ConditionalCheck.VersionConflict")
    status = status_pb2.Status(code=grpc.StatusCode.FAILED_PRECONDITION.value[0], message="version conflict")
    for detail in (info, conflict):
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return grpc.aio.AioRpcError(
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString())),
        "version conflict",
    )


async def test_a_conflict_raises_version_conflict_error(client: GatewayClient, stub: RecordingStub) -> None:
    stub.scripted["PutItem"] = [_conflict(2, {**KEY, "n": 2, "version": 2})]
    stale = {**KEY, "n": 3, "version": 1}
    with pytest.raises(VersionConflictError) as caught:
        await client.save("app", stale)
    assert caught.value.current_version == 2
    assert caught.value.current_item == {**KEY, "n": 2, "version": 2}
    assert stale == {**KEY, "n": 3, "version": 1}


async def test_an_answer_without_a_version_is_not_taken_for_one(
    client: GatewayClient, stub: RecordingStub
) -> None:
    stub.scripted["PutItem"] = [_put(None)]
    with pytest.raises(RuntimeError, match="did not say which version"):
        await client.save("app", {**KEY, "n": 1})


async def test_put_item_is_unchanged(client: GatewayClient, stub: RecordingStub) -> None:
    stub.scripted["PutItem"] = [service_pb2.PutItemResponse(version=4)]
    assert await client.put_item("app", {**KEY, "n": 1}, expected_version=3) is None
    old = service_pb2.PutItemResponse()
    fill_item(old.attributes, {**KEY, "n": 0})
    stub.scripted["PutItem"] = [old]
    assert await client.put_item("app", {**KEY, "n": 1}, return_old=True) == {**KEY, "n": 0}
    # put_item asks for no declarations.
    assert stub.of(service_pb2.DescribeTableRequest) == []
