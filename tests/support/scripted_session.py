"""A scripted session of mixed calls through a gateway, keeping each answer as the caller got it.

Every RPC, with the errors a session meets: failed conditions (with the old item), a version
conflict, a cancelled transaction, a missing table, DynamoDB's own validation errors, and
whatever the fault proxy injects (throttles the gateway retries). TTL (`expires_in`: a time the
gateway makes up) and versioned writes (tokens it makes up) are in it too, since replay must
set those aside. Calls run one after another, each with its own x-request-id, so two runs of
the same session against the same data give the same answers: the record and replay test
(tests/integration/test_record_replay.py) and bench/replay.py compare them byte for byte.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from dynamo_gateway.v1 import service_pb2
from dynamo_gateway_server.app import Clocks, Gateway, build_backend
from dynamo_gateway_server.config import Settings
from dynamo_gateway_server.tables import IndexSpec, TableSpec, VersionSpec, create_table_params
from tests.support.backends import aws_backend_for, no_sleep

SERVICE = "dynamo_gateway.v1.DynamoDBService"
STATUS_DETAILS = "grpc-status-details-bin"

# The session's table: the example single-table design, with TTL and versions declared.
SESSION_TABLE = TableSpec(
    name="",
    attributes={"pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S"},
    partition_key="pk",
    sort_key="sk",
    global_indexes=(IndexSpec("gsi1", "gsi1pk", "gsi1sk", "ALL"),),
    ttl_attribute="expires_at",
    version=VersionSpec("version"),
)


@dataclass(frozen=True)
class Answer:
    """One call as its caller saw it: the status and the exact bytes of the answer."""

    number: int
    rpc: str
    code: str
    # The response message (a stream: its messages, sorted, since segments interleave freely).
    body: bytes
    message: str = ""
    details: bytes = b""


@dataclass
class Script:
    """The calls of a session: (rpc, request as grpcurl would write it)."""

    table: str
    transactions: bool
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, rpc: str, **request: Any) -> None:
        self.calls.append((rpc, request))


def _s(text: str) -> dict[str, str]:
    return {"S": text}


def _round(script: Script, r: int) -> None:
    """One round of calls on keys of its own (so rounds add up to a longer session)."""
    t = script.table
    user = f"user#{r}"

    def key(sk: str, pk: str = user) -> dict[str, Any]:
        return {"pk": _s(pk), "sk": _s(sk)}

    blob = base64.b64encode(bytes([r % 256, 0, 255])).decode()
    for i in range(8):
        item = {**key(f"order#{i:02}"), "gsi1pk": _s(f"status#{i % 2}"), "gsi1sk": _s(f"{r}-{i}")}
        script.add("PutItem", table_name=t, item={**item, "total": {"N": f"{i}.50"}, "b": {"B": blob}})
    script.add(
        "PutItem",
        table_name=t,
        item={**key("profile"), "name": _s("Ada"), "tags": {"SS": {"values": ["a", "b"]}}},
    )
    script.add(
        "PutItem",
        table_name=t,
        item={**key("profile"), "name": _s("Ada L")},
        return_values="RETURN_VALUE_ALL_OLD",
    )
    script.add(
        "PutItem",
        table_name=t,
        item=key("profile"),
        condition_expression="attribute_not_exists(pk)",
        return_values_on_condition_check_failure="RETURN_VALUES_ON_CONDITION_CHECK_FAILURE_ALL_OLD",
    )
    script.add("GetItem", table_name=t, key=key("profile"), consistent_read=True)
    script.add("GetItem", table_name=t, key=key("nothing"))
    script.add(
        "GetItem",
        table_name=t,
        key=key("order#01"),
        projection_expression="#t, b",
        expression_attribute_names={"#t": "total"},
    )
    script.add(
        "UpdateItem",
        table_name=t,
        key=key("counter"),
        update_expression="ADD hits :one",
        expression_attribute_values={":one": {"N": "1"}},
        return_values="RETURN_VALUE_ALL_NEW",
    )
    script.add(
        "UpdateItem",
        table_name=t,
        key=key("counter"),
        update_expression="SET hits = :zero",
        condition_expression="hits > :big",
        expression_attribute_values={":zero": {"N": "0"}, ":big": {"N": "100"}},
    )
    # The gateway makes up the expiry time and the version-log tokens of these.
    script.add("PutItem", table_name=t, item=key("session"), expires_in="3600s")
    script.add("PutItem", table_name=t, item=key("expired"), expires_at="2026-01-01T00:00:00Z")
    script.add("GetItem", table_name=t, key=key("expired"))
    script.add(
        "PutItem", table_name=t, item={**key("doc"), "body": _s("v1")}, expected_version={"absent": True}
    )
    script.add(
        "UpdateItem",
        table_name=t,
        key=key("doc"),
        update_expression="SET body = :b",
        expression_attribute_values={":b": _s("v2")},
        expected_version={"version": "1"},
        return_values="RETURN_VALUE_ALL_NEW",
    )
    script.add(
        "PutItem", table_name=t, item={**key("doc"), "body": _s("v0")}, expected_version={"version": "1"}
    )
    script.add("DeleteItem", table_name=t, key=key("order#07"), return_values="RETURN_VALUE_ALL_OLD")
    script.add(
        "Query",
        table_name=t,
        key_condition_expression="pk = :pk AND begins_with(sk, :o)",
        expression_attribute_values={":pk": _s(user), ":o": _s("order#")},
        limit=3,
    )
    script.add(
        "Query",
        table_name=t,
        index_name="gsi1",
        key_condition_expression="gsi1pk = :s",
        expression_attribute_values={":s": _s("status#1")},
        scan_index_forward=False,
    )
    script.add(
        "Scan",
        table_name=t,
        filter_expression="begins_with(sk, :p)",
        expression_attribute_values={":p": _s("prof")},
    )
    # Pages of 5 while the table is small (many pages per segment, each its own TTL filter);
    # of 50 later, so that a long session does not scan a large table 5 items at a time.
    script.add("ParallelScan", table_name=t, total_segments=3, page_limit=5 if r < 2 else 50)
    writes = [{"put_request": {"item": key(f"line#{i:02}", f"batch#{r}")}} for i in range(30)]
    script.add("BatchWriteItem", request_items={t: {"requests": writes}})
    keys = [{"attributes": key(f"line#{i:02}", f"batch#{r}")} for i in range(0, 34, 3)]
    script.add("BatchGetItem", request_items={t: {"keys": keys}})
    script.add("DescribeTable", table_name=t)
    # DynamoDB's own refusals (the gateway passes them through) and a table that is not there.
    script.add(
        "Query",
        table_name=t,
        key_condition_expression="sk = :s",
        expression_attribute_values={":s": _s("profile")},
    )
    script.add(
        "UpdateItem",
        table_name=t,
        key=key("counter"),
        update_expression="SET hits = hits +",
    )
    script.add("GetItem", table_name=f"{t}-missing", key=key("x"))
    if script.transactions:
        script.add(
            "TransactWriteItems",
            transact_items=[
                {"put": {"table_name": t, "item": key("tx#1")}},
                {
                    "update": {
                        "table_name": t,
                        "key": key("counter"),
                        "update_expression": "ADD hits :one",
                        "expression_attribute_values": {":one": {"N": "1"}},
                    }
                },
            ],
        )
        script.add(
            "TransactWriteItems",
            transact_items=[
                {"put": {"table_name": t, "item": key("tx#2")}},
                {
                    "condition_check": {
                        "table_name": t,
                        "key": key("profile"),
                        "condition_expression": "attribute_not_exists(pk)",
                    }
                },
            ],
        )
        script.add(
            "TransactGetItems",
            transact_items=[
                {"get": {"table_name": t, "key": key("tx#1")}},
                {"get": {"table_name": t, "key": key("tx#2")}},
            ],
        )


def script(table: str, rounds: int, transactions: bool) -> Script:
    session = Script(table, transactions)
    for r in range(rounds):
        _round(session, r)
    return session


def calls_per_round(transactions: bool) -> int:
    return len(script("t", 1, transactions).calls)


def _request(rpc: str, request: dict[str, Any]) -> bytes:
    message = getattr(service_pb2, f"{rpc}Request")()
    return bytes(json_format.ParseDict(request, message).SerializeToString())


def _identity(data: bytes) -> bytes:
    return data


async def _call(channel: grpc.aio.Channel, number: int, rpc: str, request: bytes) -> Answer:
    method = f"/{SERVICE}/{rpc}"
    metadata = (("x-request-id", f"session-{number}"),)
    try:
        if rpc == "ParallelScan":
            stream = channel.unary_stream(
                method, request_serializer=_identity, response_deserializer=_identity
            )
            pages = [page async for page in stream(request, metadata=metadata, timeout=60)]
            return Answer(number, rpc, "OK", b"".join(sorted(pages)))
        unary = channel.unary_unary(method, request_serializer=_identity, response_deserializer=_identity)
        return Answer(number, rpc, "OK", await unary(request, metadata=metadata, timeout=60))
    except grpc.aio.AioRpcError as error:
        trailers = error.trailing_metadata() or ()
        details = next((value for name, value in trailers if name == STATUS_DETAILS), b"")
        return Answer(number, rpc, error.code().name, b"", error.details() or "", bytes(details))


async def run(target: str, session: Script) -> list[Answer]:
    """Every call of the session, one after another; each answer as its caller got it."""
    async with grpc.aio.insecure_channel(target) as channel:
        return [
            await _call(channel, n, rpc, _request(rpc, request))
            for n, (rpc, request) in enumerate(session.calls)
        ]


def first_difference(recorded: list[Answer], replayed: list[Answer]) -> Iterator[str]:
    """What differs between two runs, call by call (empty when they are identical)."""
    if len(recorded) != len(replayed):
        yield f"{len(recorded)} answers recorded, {len(replayed)} replayed"
    for was, now in zip(recorded, replayed, strict=False):
        if was != now:
            yield (
                f"call {was.number} {was.rpc}: recorded {was.code} {was.message!r} {_shown(was)}, "
                f"replayed {now.code} {now.message!r} {_shown(now)}"
            )


def _shown(answer: Answer) -> str:
    """The answer's message as text, for a failure's explanation."""
    if answer.code != "OK" or answer.rpc == "ParallelScan":
        return answer.details.hex()[:200]
    message = getattr(service_pb2, f"{answer.rpc}Response").FromString(answer.body)
    return str(json_format.MessageToDict(message))[:6000]


# ---------------------------------------------------------------- the gateways a session runs through


async def recording_gateway(endpoint_url: str, spec: TableSpec, cassette: Path) -> Gateway:
    """A gateway in front of `endpoint_url` that records every DynamoDB call into `cassette`."""
    settings = Settings(port=0, backend="aws", grace_period_s=0, record=str(cassette))
    gateway = Gateway(
        settings,
        await aws_backend_for(endpoint_url),
        endpoint=endpoint_url,
        clocks=Clocks(sleep=no_sleep),
        declared_tables=[spec],
        created_tables={spec.name},
    )
    await gateway.start()
    return gateway


async def replaying_gateway(spec: TableSpec, cassette: Path, **options: Any) -> Gateway:
    """A gateway built from settings alone that answers from `cassette` (`options`: more settings)."""
    settings = Settings(port=0, backend="replay", cassette=str(cassette), grace_period_s=0, **options)
    gateway = Gateway(
        settings,
        await build_backend(settings),
        clocks=Clocks(sleep=no_sleep),
        declared_tables=[spec],
        created_tables={spec.name},
    )
    await gateway.start()
    return gateway


async def session_through(gateway: Gateway, spec: TableSpec, rounds: int, transactions: bool) -> list[Answer]:
    """Creates the table through `gateway` (recorded or replayed like any call), then runs the session."""
    try:
        await gateway.backend.call("CreateTable", create_table_params(spec))
        described = {"TableName": spec.name}
        while (await gateway.backend.call("DescribeTable", described))["Table"]["TableStatus"] != "ACTIVE":
            pass  # replayed, the same answers come in the same order
        return await run(f"127.0.0.1:{gateway.port}", script(spec.name, rounds, transactions))
    finally:
        await gateway.stop(0)
