"""Authorization: the matrix of callers x operations x tables, and the policy file and its reload.

Every table a request touches is checked, inside batches and transactions too,
before anything reaches DynamoDB: the recorder behind the gateway proves that a
denied table was never sent a request, and moto proves its data is unchanged.
"""

from __future__ import annotations

import pathlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from dynamo_gateway.errors import PermissionDeniedError, from_rpc_error
from dynamo_gateway.v1 import service_pb2
from dynamo_gateway_server.security.files import SecurityConfigError
from dynamo_gateway_server.security.identity import Identity
from dynamo_gateway_server.security.policy import Access, Authorizer, accesses_of, parse_policy

from .conftest import (
    AUDIENCE,
    ISSUER,
    Pki,
    bearer,
    create_table,
    details,
    fill,
    key,
    put,
    s,
    stored,
    write_atomically,
    write_tokens,
)

WRITER_TOKEN = "dgw_writer_00112233445566778899aabbccddeeff"
READER_TOKEN = "dgw_reader_ffeeddccbbaa99887766554433221100"
POLICY = """
rules:
  - callers: ["token:writer", "jwt:system:serviceaccount:shop:*", "mtls:spiffe://test/ns/shop/sa/orders"]
    tables: ["open-*"]
    access: read-write
  - callers: ["token:reader"]
    tables: ["open-*"]
    indexes: []
    access: read-only
"""

Call = Callable[[Any], Awaitable[Any]]


@dataclass(frozen=True)
class Case:
    name: str
    allowed: bool
    call: Callable[[Any, tuple[tuple[str, str], ...]], Awaitable[Any]]


def _cases(open_table: str, closed_table: str) -> list[Case]:
    """Each operation on the open table, on the closed one, and batches/transactions mixing both."""

    def for_table(table: str) -> list[tuple[str, Call]]:
        seed = key("seed")
        return [
            ("PutItem", lambda stub: stub.PutItem, put(table, "seed", v="changed")),
            ("GetItem", lambda stub: stub.GetItem, service_pb2.GetItemRequest(table_name=table, key=seed)),
            (
                "UpdateItem",
                lambda stub: stub.UpdateItem,
                service_pb2.UpdateItemRequest(
                    table_name=table,
                    key=seed,
                    update_expression="SET v = :v",
                    expression_attribute_values={":v": s("changed")},
                ),
            ),
            (
                "DeleteItem",
                lambda stub: stub.DeleteItem,
                service_pb2.DeleteItemRequest(table_name=table, key=seed),
            ),
            (
                "Query",
                lambda stub: stub.Query,
                service_pb2.QueryRequest(
                    table_name=table,
                    key_condition_expression="pk = :p",
                    expression_attribute_values={":p": s("seed")},
                ),
            ),
            (
                "Query(index)",
                lambda stub: stub.Query,
                service_pb2.QueryRequest(
                    table_name=table,
                    index_name="gsi1",
                    key_condition_expression="gsi1pk = :p",
                    expression_attribute_values={":p": s("g")},
                ),
            ),
            ("Scan", lambda stub: stub.Scan, service_pb2.ScanRequest(table_name=table)),
            ("ParallelScan", None, service_pb2.ParallelScanRequest(table_name=table, total_segments=2)),
            (
                "DescribeTable",
                lambda stub: stub.DescribeTable,
                service_pb2.DescribeTableRequest(table_name=table),
            ),
            ("BatchGetItem", lambda stub: stub.BatchGetItem, _batch_get(table)),
            ("BatchWriteItem", lambda stub: stub.BatchWriteItem, _batch_write(table)),
            ("TransactGetItems", lambda stub: stub.TransactGetItems, _transact_get(table)),
            ("TransactWriteItems", lambda stub: stub.TransactWriteItems, _transact_write(table)),
        ]

    def case(name: str, allowed: bool, method: Any, request: Any) -> Case:
        async def call(stub: Any, metadata: tuple[tuple[str, str], ...]) -> Any:
            if method is None:
                return [page async for page in stub.ParallelScan(request, metadata=metadata)]
            return await method(stub)(request, metadata=metadata)

        return Case(name, allowed, call)

    cases = [case(f"{name} on the open table", True, m, r) for name, m, r in for_table(open_table)]
    cases += [case(f"{name} on the closed table", False, m, r) for name, m, r in for_table(closed_table)]
    mixed = [
        ("BatchGetItem", lambda stub: stub.BatchGetItem, _batch_get(open_table, closed_table)),
        ("BatchWriteItem", lambda stub: stub.BatchWriteItem, _batch_write(open_table, closed_table)),
        ("TransactGetItems", lambda stub: stub.TransactGetItems, _transact_get(open_table, closed_table)),
        (
            "TransactWriteItems",
            lambda stub: stub.TransactWriteItems,
            _transact_write(open_table, closed_table),
        ),
    ]
    cases += [case(f"{name} with the closed table inside", False, m, r) for name, m, r in mixed]
    return cases


def _batch_get(*tables: str) -> service_pb2.BatchGetItemRequest:
    request = service_pb2.BatchGetItemRequest()
    for table in tables:
        fill(request.request_items[table].keys.add().attributes, key("seed"))
    return request


def _batch_write(*tables: str) -> service_pb2.BatchWriteItemRequest:
    request = service_pb2.BatchWriteItemRequest()
    for table in tables:
        write = request.request_items[table].requests.add()
        fill(write.put_request.item, {**key("mixed"), "v": s("changed")})
        fill(request.request_items[table].requests.add().put_request.item, {**key("seed"), "v": s("changed")})
    return request


def _transact_get(*tables: str) -> service_pb2.TransactGetItemsRequest:
    request = service_pb2.TransactGetItemsRequest()
    for table in tables:
        entry = request.transact_items.add()
        entry.get.table_name = table
        fill(entry.get.key, key("seed"))
    return request


def _transact_write(*tables: str) -> service_pb2.TransactWriteItemsRequest:
    request = service_pb2.TransactWriteItemsRequest()
    for table in tables:
        entry = request.transact_items.add()
        entry.put.table_name = table
        fill(entry.put.item, {**key("mixed"), "v": s("changed")})
    return request


async def _seeded(admin: Any, prefix: str) -> str:
    table = await create_table(admin, prefix)
    await admin.call(
        "PutItem",
        {"TableName": table, "Item": {"pk": {"S": "seed"}, "sk": {"S": "0"}, "v": {"S": "original"}}},
    )
    return table


# (identity, how it calls, the code every case gets or None for "allowed: OK, denied: PERMISSION_DENIED")
IDENTITIES = ["none", "bad token", "expired JWT", "wrong audience", "valid token", "valid JWT", "mTLS client"]


@pytest.mark.parametrize("identity", IDENTITIES)
async def test_the_matrix_of_callers_operations_and_tables(
    identity: str, serve, admin, pki: Pki, jwt_issuer, tmp_path: pathlib.Path
) -> None:
    open_table, closed_table = await _seeded(admin, "open"), await _seeded(admin, "closed")
    policy = tmp_path / "policy.yaml"
    write_atomically(policy, POLICY)
    tokens = write_tokens(tmp_path / "tokens.yaml", {"writer": WRITER_TOKEN})
    tls: dict[str, Any] = {"tls_cert_file": str(pki.cert_file), "tls_key_file": str(pki.key_file)}
    if identity == "mTLS client":
        tls["tls_client_ca_file"] = str(pki.ca_file)
    served = await serve(
        policy_file=str(policy),
        auth_tokens_file=str(tokens),
        jwt_jwks_file=str(jwt_issuer.jwks_file),
        jwt_issuer=ISSUER,
        jwt_audiences=AUDIENCE,
        **tls,
    )
    metadata = {
        "none": (),
        "bad token": bearer("dgw_nobody_0000000000000000000000000000"),
        "expired JWT": bearer(jwt_issuer.token(expires_in_s=-60)),
        "wrong audience": bearer(jwt_issuer.token(aud="another-service")),
        "valid token": bearer(WRITER_TOKEN),
        "valid JWT": bearer(jwt_issuer.token()),
        "mTLS client": (),
    }[identity]
    client_cert = pki.client() if identity == "mTLS client" else None
    stub = served.stub(pki.channel_credentials(client_cert))
    authenticated = identity in ("valid token", "valid JWT", "mTLS client")

    outcomes = []
    for case in _cases(open_table, closed_table):
        if not authenticated:
            expected = grpc.StatusCode.UNAUTHENTICATED
        else:
            expected = grpc.StatusCode.OK if case.allowed else grpc.StatusCode.PERMISSION_DENIED
        try:
            await case.call(stub, metadata)
            code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code == grpc.StatusCode.PERMISSION_DENIED:
                info = details(error)["info"]
                assert info.reason == "Caller.PermissionDenied"
                assert info.metadata["table"] == closed_table, case.name
                assert closed_table in error.details() and info.metadata["operation"] in error.details()
                assert isinstance(from_rpc_error(error), PermissionDeniedError)
        outcomes.append((case.name, code.name, expected.name))
    assert [o for o in outcomes if o[1] != o[2]] == [], "cases whose code differs (case, got, expected)"

    # Nothing of a denied request reached DynamoDB, and the closed table is as it was.
    assert served.recorder.touched(closed_table) == []
    assert (await stored(admin, closed_table, "seed"))["v"] == {"S": "original"}
    assert await stored(admin, closed_table, "mixed") is None
    if not authenticated:
        assert served.recorder.touched(open_table) == []


async def test_a_denial_says_the_same_whether_the_table_exists_or_not(serve, admin, tmp_path) -> None:
    existing = await _seeded(admin, "closed")
    policy = tmp_path / "policy.yaml"
    write_atomically(policy, POLICY)
    tokens = write_tokens(tmp_path / "tokens.yaml", {"writer": WRITER_TOKEN})
    served = await serve(policy_file=str(policy), auth_tokens_file=str(tokens))
    stub = served.stub()
    answers = []
    for table in (existing, "closed-never-created"):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await stub.DescribeTable(
                service_pb2.DescribeTableRequest(table_name=table), metadata=bearer(WRITER_TOKEN)
            )
        info = details(denied.value)["info"]
        answers.append(
            (denied.value.code(), denied.value.details().replace(table, "T"), dict(info.metadata, table="T"))
        )
    assert answers[0] == answers[1]
    assert served.recorder.operations == []


async def test_read_only_callers_and_index_rules(serve, admin, tmp_path) -> None:
    table = await _seeded(admin, "open")
    policy = tmp_path / "policy.yaml"
    write_atomically(policy, POLICY)
    tokens = write_tokens(tmp_path / "tokens.yaml", {"reader": READER_TOKEN})
    served = await serve(policy_file=str(policy), auth_tokens_file=str(tokens))
    stub, metadata = served.stub(), bearer(READER_TOKEN)
    found = await stub.GetItem(
        service_pb2.GetItemRequest(table_name=table, key=key("seed")), metadata=metadata
    )
    assert found.found
    for call, request in (
        (stub.PutItem, put(table, "seed", v="changed")),
        (stub.TransactWriteItems, _transact_write(table)),
        (
            stub.Query,  # the rule gives the base table only (indexes: [])
            service_pb2.QueryRequest(
                table_name=table,
                index_name="gsi1",
                key_condition_expression="gsi1pk = :p",
                expression_attribute_values={":p": s("g")},
            ),
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await call(request, metadata=metadata)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "index 'gsi1'" in denied.value.details()
    assert details(denied.value)["info"].metadata["index"] == "gsi1"


async def test_the_policy_is_reloaded_while_serving(serve, admin, tmp_path) -> None:
    table = await _seeded(admin, "open")
    policy = tmp_path / "policy.yaml"
    write_atomically(policy, "rules: []\n")  # configured and empty: everything is denied
    tokens = write_tokens(tmp_path / "tokens.yaml", {"writer": WRITER_TOKEN})
    served = await serve(
        policy_file=str(policy), auth_tokens_file=str(tokens), security_reload_interval_s=0.02
    )
    stub, request = served.stub(), service_pb2.GetItemRequest(table_name=table, key=key("seed"))
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.GetItem(request, metadata=bearer(WRITER_TOKEN))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    security = served.gateway.security
    security.reloaded.clear()
    write_atomically(policy, POLICY)
    await security.reloaded.wait()  # the gateway's own loop saw the new file
    assert (await stub.GetItem(request, metadata=bearer(WRITER_TOKEN))).found

    # A broken version is refused: the policy in force stays (it neither opens nor closes the gateway).
    write_atomically(
        policy, "rules:\n  - callers: [token:writer]\n    tables: ['*']\n    acces: read-write\n"
    )
    assert security.reload_now() is False
    assert (await stub.GetItem(request, metadata=bearer(WRITER_TOKEN))).found
    assert security.policy is not None and security.policy.generation == 2


# ---------------------------------------------------------------- the rules themselves


def test_policy_files_name_their_mistakes() -> None:
    for text, message in (
        ("rules: {}\n", "`rules` must be a list"),
        (
            "rules:\n  - {callers: [a], tables: [t]}\n",
            r"rules\[0\]: give exactly one of `access` and `operations`",
        ),
        (
            "rules:\n  - {callers: [a], tables: [t], operations: [Scan, DropTable]}\n",
            r"unknown \['DropTable'\]",
        ),
        ("rules:\n  - {callers: [], tables: [t], access: read-only}\n", r"rules\[0\]\.callers: at least one"),
        ("other: 1\n", "expected a mapping with `rules`"),
    ):
        with pytest.raises(SecurityConfigError, match=message):
            parse_policy(text.encode(), "p.yaml")


def test_every_table_of_a_request_is_an_access() -> None:
    batch = {"RequestItems": {"a": [], "b": []}}
    assert accesses_of("BatchWriteItem", batch) == [
        Access("BatchWriteItem", "a"),
        Access("BatchWriteItem", "b"),
    ]
    transaction = {
        "TransactItems": [
            {"Put": {"TableName": "a"}},
            {"Update": {"TableName": "c"}},
            {"Get": {"TableName": "a"}},
        ]
    }
    assert [access.table for access in accesses_of("TransactWriteItems", transaction)] == ["a", "c"]
    assert accesses_of("Query", {"TableName": "t", "IndexName": "i"}) == [Access("Query", "t", "i")]


def test_wildcards_and_explicit_operations() -> None:
    from dynamo_gateway_server.security.files import WatchedFile

    policy = parse_policy(
        b"rules:\n"
        b"  - {callers: ['jwt:system:serviceaccount:etl:*'], tables: ['*'], operations: [Scan, ParallelScan]}\n"
        b"  - {callers: [anonymous], tables: ['arn:aws:dynamodb:*:*:table/shared'], operations: ['*']}\n"
    )

    class Fixed(WatchedFile):  # type: ignore[type-arg]  # any parsed value will do
        def __init__(self) -> None:
            self.value = policy

    authorizer = Authorizer(Fixed())
    etl = Identity("jwt:system:serviceaccount:etl:loader", ("jwt:system:serviceaccount:etl:loader",), "jwt")
    authorizer.check(etl, "ParallelScan", {"TableName": "anything"})
    for operation in ("GetItem", "PutItem"):
        with pytest.raises(Exception, match=f"may not run {operation}"):
            authorizer.check(etl, operation, {"TableName": "anything"})
    anonymous = Identity("anonymous", ("anonymous",), "none")
    authorizer.check(anonymous, "PutItem", {"TableName": "arn:aws:dynamodb:us-east-1:1:table/shared"})
    with pytest.raises(Exception, match="may not run PutItem on table 'shared'"):
        # A table named plainly is matched by its name: an ARN pattern does not cover it (nor the reverse).
        authorizer.check(anonymous, "PutItem", {"TableName": "shared"})


def test_the_example_files_are_valid() -> None:
    from dynamo_gateway_server.security.auth import parse_tokens

    root = pathlib.Path(__file__).resolve().parents[2] / "examples"
    policy = parse_policy((root / "policy.yaml").read_bytes())
    orders = Identity(
        "jwt:system:serviceaccount:shop:orders", ("jwt:system:serviceaccount:shop:orders",), "jwt"
    )
    assert policy.allows(orders, Access("TransactWriteItems", "orders-archive"))
    assert not policy.allows(orders, Access("GetItem", "app"))
    assert len(parse_tokens((root / "tokens.yaml").read_bytes()).by_digest) == 1
