"""Versioned writes on the client side: what each expected_version form puts in the request (single
writes, transaction actions, `dgw --expect-version`), what is refused before anything is sent,
and how `dgw` reports a version conflict. A fake stub records the requests; no gateway runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from dynamo_gateway import cli, errors
from dynamo_gateway.client import (
    GatewayClient,
    TransactConditionCheck,
    TransactDelete,
    TransactPut,
    TransactUpdate,
)
from dynamo_gateway.v1 import service_pb2

KEY = {"pk": "user#1"}


RESPONSES: dict[str, Any] = {
    "PutItem": service_pb2.PutItemResponse,
    "UpdateItem": service_pb2.UpdateItemResponse,
    "DeleteItem": service_pb2.DeleteItemResponse,
    "TransactWriteItems": service_pb2.TransactWriteItemsResponse,
}


class RecordingStub:
    """Answers every call with an empty response of its type and keeps the requests."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        response = RESPONSES[name]

        async def call(request: Any, **options: Any) -> Any:  # options: call_unary's timeout=
            self.requests.append(request)
            return response()

        return call


@pytest.fixture
async def client() -> AsyncIterator[GatewayClient]:
    # A channel that is never used: the stub is replaced before any call.
    async with GatewayClient(grpc.aio.insecure_channel("127.0.0.1:1")) as gateway:
        gateway.stub = RecordingStub()  # type: ignore[assignment]
        yield gateway


def _expected(request: Any) -> tuple[str | None, Any]:
    """(which field of the oneof is set, its value); (None, None) when expected_version is unset."""
    if not request.HasField("expected_version"):
        return None, None
    which = request.expected_version.WhichOneof("expected")
    return which, getattr(request.expected_version, which) if which else None


async def _single_writes(client: GatewayClient, expected_version: Any) -> list[Any]:
    await client.put_item("app", {**KEY, "n": 1}, expected_version=expected_version)
    await client.update_item("app", KEY, "SET n = :n", values={":n": 2}, expected_version=expected_version)
    await client.delete_item("app", KEY, expected_version=expected_version)
    stub: RecordingStub = client.stub  # type: ignore[assignment]
    return stub.requests


@pytest.mark.parametrize(
    ("expected_version", "field"),
    [
        (None, (None, None)),
        (7, ("version", 7)),
        (0, ("version", 0)),  # 0 is a version, not "unset": the oneof says which
        (-(2**63), ("version", -(2**63))),
        (2**63 - 1, ("version", 2**63 - 1)),
        ("absent", ("absent", True)),
    ],
)
async def test_single_writes_set_the_expected_version(
    client: GatewayClient, expected_version: Any, field: tuple[str | None, Any]
) -> None:
    requests = await _single_writes(client, expected_version)
    assert [type(r) for r in requests] == [
        service_pb2.PutItemRequest,
        service_pb2.UpdateItemRequest,
        service_pb2.DeleteItemRequest,
    ]
    assert [_expected(r) for r in requests] == [field] * 3
    # The rest of each request is as before.
    assert requests[0].item["n"].n == "1" and requests[1].update_expression == "SET n = :n"


@pytest.mark.parametrize(
    ("expected_version", "error", "words"),
    [
        (True, TypeError, "not bool"),
        (False, TypeError, "not bool"),
        (3.0, TypeError, "not float"),
        ("3", ValueError, "not '3'"),
        ("ABSENT", ValueError, "not 'ABSENT'"),
        (2**63, ValueError, "out of range"),
        (-(2**63) - 1, ValueError, "out of range"),
    ],
)
async def test_a_bad_expected_version_is_refused_before_any_call(
    client: GatewayClient, expected_version: Any, error: type[Exception], words: str
) -> None:
    stub: RecordingStub = client.stub  # type: ignore[assignment]
    with pytest.raises(error, match=words):
        await client.put_item("app", KEY, expected_version=expected_version)
    with pytest.raises(error, match=words):
        await client.update_item("app", KEY, "SET n = :n", expected_version=expected_version)
    with pytest.raises(error, match=words):
        await client.delete_item("app", KEY, expected_version=expected_version)
    with pytest.raises(error, match=words):
        await client.transact_write(
            [TransactPut("app", KEY), TransactDelete("app", KEY, expected_version=expected_version)]
        )
    assert stub.requests == []


async def test_transaction_actions_carry_their_own_expected_version(client: GatewayClient) -> None:
    await client.transact_write(
        [
            TransactPut("app", {**KEY, "n": 1}, expected_version="absent"),
            TransactUpdate("app", {"pk": "user#2"}, "SET n = :n", values={":n": 2}, expected_version=4),
            TransactDelete("app", {"pk": "user#3"}, expected_version=0),
            TransactConditionCheck("app", {"pk": "user#4"}, expected_version=9),
            TransactConditionCheck("app", {"pk": "user#5"}, "attribute_exists(pk)"),
            TransactPut("app", {"pk": "user#6"}),
        ]
    )
    stub: RecordingStub = client.stub  # type: ignore[assignment]
    (request,) = stub.requests
    actions = [getattr(entry, entry.WhichOneof("action")) for entry in request.transact_items]
    assert [entry.WhichOneof("action") for entry in request.transact_items] == [
        "put",
        "update",
        "delete",
        "condition_check",
        "condition_check",
        "put",
    ]
    assert [_expected(action) for action in actions] == [
        ("absent", True),
        ("version", 4),
        ("version", 0),
        ("version", 9),
        (None, None),
        (None, None),
    ]
    # A condition check on the version alone sends no condition expression of its own.
    assert actions[3].condition_expression == ""
    assert actions[4].condition_expression == "attribute_exists(pk)"


async def test_a_condition_check_needs_a_condition_or_an_expected_version(client: GatewayClient) -> None:
    with pytest.raises(ValueError, match="action 1: a condition check needs"):
        await client.transact_write([TransactPut("app", KEY), TransactConditionCheck("app", KEY)])
    stub: RecordingStub = client.stub  # type: ignore[assignment]
    assert stub.requests == []


# ---------------------------------------------------------------- dgw


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["put", "app", "{}"], None),
        (["put", "app", "{}", "--expect-version", "3"], 3),
        (["update", "app", "{}", "--update", "SET a = :a", "--expect-version", "0"], 0),
        (["delete", "app", "{}", "--expect-version", "absent"], "absent"),
        (["put", "app", "{}", "--expect-version=-2"], -2),
    ],
)
def test_expect_version_parses_an_integer_or_absent(argv: list[str], expected: Any) -> None:
    assert cli._parser().parse_args(argv).expect_version == expected


@pytest.mark.parametrize("value", ["three", "1.5", "Absent", ""])
def test_expect_version_refuses_anything_else(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli._parser().parse_args(["put", "app", "{}", "--expect-version", value])
    assert exited.value.code == cli.EXIT_USAGE
    assert "neither an integer version nor 'absent'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["put", "app", '{"pk": "user#1"}', "--expect-version", "3"], ("version", 3)),
        (
            ["update", "app", '{"pk": "user#1"}', "--update", "SET a = :a", "--values", '{":a": 1}'],
            (None, None),
        ),
        (
            ["update", "app", '{"pk": "user#1"}', "--update", "SET a = :a", "--expect-version", "absent"],
            ("absent", True),
        ),
        (["delete", "app", '{"pk": "user#1"}', "--expect-version", "0"], ("version", 0)),
    ],
)
async def test_dgw_sends_the_expected_version(argv: list[str], field: tuple[str | None, Any]) -> None:
    stub = RecordingStub()
    args = cli._parser().parse_args(argv)
    assert await getattr(cli.Cli(args, stub), args.command)() == cli.EXIT_OK
    (request,) = stub.requests
    assert _expected(request) == field


def _conflict(
    current_version: int | None, current_item: dict[str, Any] | None
) -> errors.VersionConflictError:
    error = errors.VersionConflictError(
        grpc.StatusCode.FAILED_PRECONDITION, "version mismatch", reason="ConditionalCheck.VersionConflict"
    )
    error.expected_version = 3
    error.current_version = current_version
    error.current_item = current_item
    return error


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (_conflict(5, {"pk": "user#1", "v": 5}), "version mismatch (current version 5)"),
        (_conflict(None, {"pk": "user#1"}), "version mismatch (the item has no version)"),
        (_conflict(None, None), "version mismatch (no item exists)"),
    ],
)
def test_dgw_reports_a_version_conflict_with_the_current_version(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: errors.GatewayError, line: str
) -> None:
    async def conflict(args: Any) -> int:
        raise error

    monkeypatch.setattr(cli, "_run", conflict)
    with pytest.raises(SystemExit) as exited:
        cli.main(["put", "app", '{"pk": "user#1"}', "--expect-version", "3"])
    assert exited.value.code == cli.EXIT_CONDITION
    assert capsys.readouterr() == ("", f"dgw: ConditionalCheck.VersionConflict: {line}\n")


def test_dgw_reports_a_condition_failure_as_before(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def failed(args: Any) -> int:
        raise errors.ConditionFailedError(
            grpc.StatusCode.FAILED_PRECONDITION, "failed", reason="ConditionalCheck.ConditionFailed"
        )

    monkeypatch.setattr(cli, "_run", failed)
    with pytest.raises(SystemExit) as exited:
        cli.main(["put", "app", '{"pk": "user#1"}'])
    assert exited.value.code == cli.EXIT_CONDITION
    assert capsys.readouterr().err == "dgw: ConditionalCheck.ConditionFailed: failed\n"
