"""The errors no emulator produces, end to end through the facade: what a boto3 user catches.

Gateways here run in this process (the real Gateway, as tests/integration and tests/security
start them), in front of moto's server mode, some behind a FaultProxy that answers DynamoDB's
errors for tables named after them (tests/support/emulators.py). Every case asserts the
botocore exception class, Error.Code and Error.Message of the facade's exception, through the
async facade and the sync one (in a thread: the gateway serves on this event loop); where
DynamoDB's own error reaches the caller, boto3 straight to the same proxy must raise the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import pathlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dynamo_gateway.boto3_compat import async_client, client
from dynamo_gateway.errors import ServiceUnavailableError
from dynamo_gateway_server.app import Clocks, Gateway
from dynamo_gateway_server.backends.memory import MotoServerProcess
from dynamo_gateway_server.config import Settings
from tests.compat import harness
from tests.security.conftest import bearer, create_table, write_atomically, write_tokens
from tests.support.backends import HeldCalls, aws_backend_for, no_sleep
from tests.support.emulators import FaultProxy

KEY = {"pk": {"S": "k"}, "sk": {"S": "0"}}
_numbers = itertools.count()


@contextlib.asynccontextmanager
async def serving(
    endpoint: str, wrap: Callable[[Any], Any] | None = None, **settings: Any
) -> AsyncIterator[str]:
    """A gateway in front of `endpoint` with `settings`; yields its target. Its breaker never opens
    (these tests fail calls on purpose) and its backoffs do not wait."""
    config = Settings(
        **{
            "port": 0,
            "backend": "aws",
            "grace_period_s": 0,
            "endpoint_url": endpoint,
            "breaker_failure_threshold": 10**9,
            **settings,
        }
    )
    backend = await aws_backend_for(endpoint)
    gateway = Gateway(config, backend, endpoint=endpoint, clocks=Clocks(sleep=no_sleep), around_retries=wrap)
    await gateway.start()
    try:
        yield f"127.0.0.1:{gateway.port}"
    finally:
        await gateway.stop(0)


async def refusal(target: str, method: str, params: dict[str, Any], **options: Any) -> ClientError:
    """The facade's exception for one call, the same through the async and the sync flavour."""
    async with async_client("dynamodb", target=target, **options) as facade:
        with pytest.raises(ClientError) as raised:
            await getattr(facade, method)(**copy.deepcopy(params))

    def sync() -> ClientError:
        with client("dynamodb", target=target, **options) as facade:
            with pytest.raises(ClientError) as caught:
                getattr(facade, method)(**copy.deepcopy(params))
            return caught.value

    from_sync = await asyncio.to_thread(sync)
    assert type(from_sync) is type(raised.value)
    assert from_sync.response["Error"] == raised.value.response["Error"]
    return raised.value


async def direct_refusal(endpoint: str, method: str, params: dict[str, Any]) -> ClientError:
    """boto3's own exception for the call, straight to `endpoint` (in a thread, as above)."""

    def call() -> ClientError:
        with pytest.raises(ClientError) as caught:
            getattr(harness.direct_client(endpoint), method)(**copy.deepcopy(params))
        return caught.value

    return await asyncio.to_thread(call)


def seen(error: ClientError) -> tuple[str, str, str, int]:
    """What a boto3 user sees: the class, Error.Code, Error.Message and the HTTP status."""
    return (
        type(error).__name__,
        error.response["Error"]["Code"],
        error.response["Error"]["Message"],
        error.response["ResponseMetadata"]["HTTPStatusCode"],
    )


# ---------------------------------------------------------------- DynamoDB's failures, through a FaultProxy


@pytest.fixture(scope="module")
async def proxy(moto: MotoServerProcess) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(moto.endpoint_url)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture(scope="module")
async def faulty(proxy: FaultProxy) -> AsyncIterator[str]:
    async with serving(proxy.endpoint_url) as target:
        yield target


def _get(table: str) -> dict[str, Any]:
    return {"TableName": table, "Key": KEY}


async def test_throttling_left_after_the_gateways_retries(faulty: str, proxy: FaultProxy) -> None:
    table = f"throttled-{next(_numbers)}"
    before = proxy.requests[("GetItem", table)]
    error = await refusal(faulty, "get_item", _get(table))
    assert seen(error) == (
        "ProvisionedThroughputExceededException",
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
        400,
    )
    # Already retried by the gateway (README: "a throttle you see has already been retried").
    assert proxy.requests[("GetItem", table)] - before > 2
    assert seen(error) == seen(await direct_refusal(proxy.endpoint_url, "get_item", _get(table)))
    with client("dynamodb", target=faulty) as facade:
        assert isinstance(error, facade.exceptions.ProvisionedThroughputExceededException)


async def test_a_throttling_exception_left_after_retries(faulty: str, proxy: FaultProxy) -> None:
    table = f"fault-ThrottlingException-{next(_numbers)}"
    error = await refusal(
        faulty,
        "query",
        {
            "TableName": table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "k"}},
        },
    )
    assert seen(error) == ("ThrottlingException", "ThrottlingException", f"injected for {table}", 400)


@pytest.mark.parametrize(
    ("table", "seen_by_boto3"),
    [
        (
            "fault-InternalServerError-{}",
            ("InternalServerError", "InternalServerError", "injected for {}", 500),
        ),
        ("unavailable-{}", ("ClientError", "ServiceUnavailable", "Service is unavailable.", 503)),
    ],
)
async def test_a_5xx_left_after_retries(
    faulty: str, proxy: FaultProxy, table: str, seen_by_boto3: tuple[str, str, str, int]
) -> None:
    name = table.format(next(_numbers))
    error = await refusal(faulty, "get_item", _get(name))
    want = (*seen_by_boto3[:2], seen_by_boto3[2].format(name), seen_by_boto3[3])
    assert seen(error) == want
    assert seen(error) == seen(await direct_refusal(proxy.endpoint_url, "get_item", _get(name)))


async def test_an_outcome_unknown_keeps_dynamodbs_code_and_says_so(faulty: str, proxy: FaultProxy) -> None:
    """A non-idempotent write answered with a 5xx after it was sent is not repeated: DynamoDB's code
    stays, the message says the outcome is unknown (README: What differs from boto3)."""
    table = f"fault-InternalServerError-{next(_numbers)}"
    update = {
        "TableName": table,
        "Key": KEY,
        "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    before = proxy.requests[("UpdateItem", table)]
    error = await refusal(faulty, "update_item", update)
    kind, code, message, status = seen(error)
    assert (kind, code, status) == ("InternalServerError", "InternalServerError", 500)
    assert re.fullmatch(r"UpdateItem may or may not have been applied \(.+\); read before retrying", message)
    assert proxy.requests[("UpdateItem", table)] - before == 2  # sent once per flavour, never repeated
    gateway_error = error.gateway_error  # type: ignore[attr-defined]
    assert isinstance(gateway_error, ServiceUnavailableError) and gateway_error.outcome_unknown
    direct = await direct_refusal(proxy.endpoint_url, "update_item", update)
    assert seen(direct)[:2] == (kind, code) and seen(direct)[3] == status


# ---------------------------------------------------------------- the gateway's own security: Caller.*

WRITER = "dgw_writer_0123456789abcdef0123456789abc"
POLICY = """
rules:
  - callers: ["token:writer"]
    tables: ["open-*"]
    access: read-write
"""


@pytest.fixture(scope="module")
async def admin(moto: MotoServerProcess) -> AsyncIterator[Any]:
    backend = await aws_backend_for(moto.endpoint_url)
    yield backend
    await backend.close()


async def test_unauthenticated_callers(moto: MotoServerProcess, tmp_path: pathlib.Path) -> None:
    tokens = write_tokens(tmp_path / "tokens.yaml", {"writer": WRITER})
    async with serving(moto.endpoint_url, auth_tokens_file=str(tokens)) as target:
        missing = await refusal(target, "get_item", _get("open-x"))
        assert seen(missing) == (
            "ClientError",
            "UnrecognizedClientException",
            "this gateway needs a bearer token",
            400,
        )
        wrong = await refusal(target, "get_item", _get("open-x"), metadata=bearer("dgw_nobody_" + "0" * 30))
        assert seen(wrong) == (
            "ClientError",
            "UnrecognizedClientException",
            "the bearer token is not valid",
            400,
        )
        assert wrong.gateway_error.reason == "Caller.Unauthenticated"  # type: ignore[attr-defined]


async def test_callers_the_policy_denies(moto: MotoServerProcess, admin: Any, tmp_path: pathlib.Path) -> None:
    tokens = write_tokens(tmp_path / "tokens.yaml", {"writer": WRITER})
    policy = tmp_path / "policy.yaml"
    write_atomically(policy, POLICY)
    closed = await create_table(admin, "closed")
    async with serving(moto.endpoint_url, auth_tokens_file=str(tokens), policy_file=str(policy)) as target:
        error = await refusal(target, "put_item", {"TableName": closed, "Item": KEY}, metadata=bearer(WRITER))
    assert seen(error) == (
        "ClientError",
        "AccessDeniedException",
        f"caller 'token:writer' may not run PutItem on table '{closed}'",
        400,
    )
    assert error.gateway_error.reason == "Caller.PermissionDenied"  # type: ignore[attr-defined]


async def test_requests_over_the_gateways_size_limit(moto: MotoServerProcess) -> None:
    async with serving(moto.endpoint_url, max_request_bytes=4096) as target:
        error = await refusal(
            target, "put_item", {"TableName": "open-x", "Item": {**KEY, "v": {"S": "x" * 5000}}}
        )
    kind, code, message, status = seen(error)
    assert (kind, code, status) == ("ClientError", "ValidationException", 400)
    assert re.fullmatch(r"the request is \d+ bytes; this gateway takes at most 4096", message)
    assert error.gateway_error.reason == "Caller.RequestTooLarge"  # type: ignore[attr-defined]


async def test_callers_over_the_in_flight_limit(moto: MotoServerProcess, admin: Any) -> None:
    table = await create_table(admin, "busy")
    gates: list[HeldCalls] = []

    def gate(backend: Any) -> HeldCalls:
        gates.append(HeldCalls(backend))
        return gates[-1]

    async with serving(moto.endpoint_url, max_inflight_rpcs=1, wrap=gate) as target:
        async with async_client("dynamodb", target=target) as holder:
            held = asyncio.ensure_future(holder.get_item(**_get(table)))
            await gates[0].reached.wait()
            error = await refusal(target, "get_item", _get(table))
            gates[0].opened.set()
            assert "Item" not in await held
    kind, code, message, status = seen(error)
    assert (kind, code, status) == ("ThrottlingException", "ThrottlingException", 400)
    assert re.fullmatch(r".*limit of 1 RPCs in flight is reached; try again shortly", message)
    assert error.gateway_error.reason == "Caller.ConcurrencyLimitExceeded"  # type: ignore[attr-defined]


# ---------------------------------------------------------------- invalid table names inside batches and transactions


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        (
            "batch_write_item",
            {
                "RequestItems": {
                    "open-ok": [{"PutRequest": {"Item": KEY}}],
                    "no way": [{"DeleteRequest": {"Key": KEY}}],
                }
            },
            "1 validation error detected: Value '{no way=[... 1 WriteRequest ...], open-ok=[... 1 WriteRequest ...]}' "
            "at 'requestItems' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have "
            "length less than or equal to 255, Member must have length greater than or equal to 3, Member must "
            "satisfy regular expression pattern: [a-zA-Z0-9_.-]+]",
        ),
        (
            "batch_get_item",
            {"RequestItems": {"x" * 256: {"Keys": [KEY, {**KEY, "sk": {"S": "1"}}]}}},
            "1 validation error detected: Value '{"
            + "x" * 256
            + "={Keys=[... 2 Key ...]}}' at 'requestItems' "
            "failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or "
            "equal to 255, Member must have length greater than or equal to 3, Member must satisfy regular "
            "expression pattern: [a-zA-Z0-9_.-]+]",
        ),
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {
                        "ConditionCheck": {
                            "TableName": "open-ok",
                            "Key": KEY,
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    {"Delete": {"TableName": "ab", "Key": KEY}},
                ]
            },
            "1 validation error detected: Value 'ab' at 'transactItems.2.member.delete.tableName' failed to "
            "satisfy constraint: Member must have length greater than or equal to 3",
        ),
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {
                        "ConditionCheck": {
                            "TableName": "a b",
                            "Key": KEY,
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    }
                ]
            },
            "1 validation error detected: Value 'a b' at 'transactItems.1.member.conditionCheck.tableName' failed "
            "to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ),
        (
            "transact_get_items",
            {
                "TransactItems": [
                    {"Get": {"TableName": "open-ok", "Key": KEY}},
                    {"Get": {"TableName": "é!", "Key": KEY}},
                ]
            },
            "2 validation errors detected: Value 'é!' at 'transactItems.2.member.get.tableName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value 'é!' at "
            "'transactItems.2.member.get.tableName' failed to satisfy constraint: Member must have length greater "
            "than or equal to 3",
        ),
    ],
    ids=[
        "batch-write",
        "batch-get-too-long",
        "transact-write-too-short",
        "transact-check-pattern",
        "transact-get-both",
    ],
)
async def test_invalid_table_names_inside_batches_and_transactions(
    moto: MotoServerProcess, method: str, params: dict[str, Any], message: str
) -> None:
    """Refused by the gateway (the facade leaves these to it), answered in DynamoDB's words: the
    facade reads them from ErrorInfo, while the gateway's BadRequest still names the field."""
    async with serving(moto.endpoint_url) as target:
        error = await refusal(target, method, params)
    assert seen(error) == ("ClientError", "ValidationException", message, 400)
    gateway_error = error.gateway_error  # type: ignore[attr-defined]
    assert gateway_error.reason == "Configuration.InvalidTable"
    assert gateway_error.metadata["dynamodb_message"] == message
    (field, description), *_ = gateway_error.field_violations
    assert field.startswith(("request_items[", "transact_items[")) and description == message
