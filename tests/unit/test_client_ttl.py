"""Expiring items on the client side: what each expires_in / expires_at form puts in the request
(single writes, transaction actions, batch puts, `dgw --expires-in`), what is refused before
anything is sent, and include_expired reaching every read (client and `dgw --include-expired`).
A fake stub records the requests; no gateway runs."""

from __future__ import annotations

import datetime
import json
import pathlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from dynamo_gateway import cli
from dynamo_gateway.client import (
    GatewayClient,
    TransactConditionCheck,
    TransactDelete,
    TransactPut,
    TransactUpdate,
)
from dynamo_gateway.json_codec import ItemJson
from dynamo_gateway.transfer import TransferError, export_table
from dynamo_gateway.v1 import service_pb2
from dynamo_gateway.values import fill_item

KEY = {"pk": "user#1"}
UTC = datetime.UTC
# 2030-01-01T00:00:00Z
EPOCH_2030 = 1893456000


class _Stream:
    """A server-streaming call of a grpc.aio stub: an async iterator that can be cancelled.
    An exception among the messages is raised where it stands."""

    def __init__(self, messages: list[Any]) -> None:
        self._messages = iter(messages)

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> Any:
        try:
            message = next(self._messages)
        except StopIteration:
            raise StopAsyncIteration from None
        if isinstance(message, BaseException):
            raise message
        return message

    def cancel(self) -> bool:
        return False


class RecordingStub:
    """Answers each call with the next scripted response of that method, else an empty response
    of its type, and keeps a copy of every request (callers may reuse a request for the next page)."""

    def __init__(self, scripted: dict[str, list[Any]] | None = None) -> None:
        self.requests: list[Any] = []
        self.scripted = scripted or {}

    def _record(self, request: Any) -> None:
        copy = type(request)()
        copy.CopyFrom(request)
        self.requests.append(copy)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        answers = self.scripted.get(name, [])
        if name == "ParallelScan":

            def stream(request: Any, **options: Any) -> _Stream:
                self._record(request)
                return _Stream(answers)

            return stream
        response = getattr(service_pb2, f"{name}Response")

        async def call(request: Any, **options: Any) -> Any:  # options: call_unary's timeout=
            self._record(request)
            return answers.pop(0) if answers else response()

        return call


@pytest.fixture
async def client() -> AsyncIterator[GatewayClient]:
    # A channel that is never used: the stub is replaced before any call.
    async with GatewayClient(grpc.aio.insecure_channel("127.0.0.1:1")) as gateway:
        gateway.stub = RecordingStub()  # type: ignore[assignment]
        yield gateway


def _requests(client: GatewayClient) -> list[Any]:
    stub: RecordingStub = client.stub  # type: ignore[assignment]
    return stub.requests


def _expiry(holder: Any) -> tuple[str | None, Any]:
    """(the expiry field set, its value); (None, None) when neither is; a failure when both are."""
    has_in, has_at = holder.HasField("expires_in"), holder.HasField("expires_at")
    assert not (has_in and has_at), "both expires_in and expires_at are set"
    if has_in:
        return "expires_in", holder.expires_in
    if has_at:
        return "expires_at", holder.expires_at
    return None, None


def _duration(seconds: int, nanos: int = 0) -> tuple[str, duration_pb2.Duration]:
    return "expires_in", duration_pb2.Duration(seconds=seconds, nanos=nanos)


def _timestamp(seconds: int, nanos: int = 0) -> tuple[str, timestamp_pb2.Timestamp]:
    return "expires_at", timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


async def _every_write(client: GatewayClient, **expiry: Any) -> list[Any]:
    """The expiry-carrying part of each kind of write, sent with the same expiry options."""
    await client.put_item("app", {**KEY, "n": 1}, **expiry)
    await client.update_item("app", KEY, "SET n = :n", values={":n": 2}, **expiry)
    await client.transact_write(
        [
            TransactPut("app", {"pk": "user#2"}, **expiry),
            TransactUpdate("app", {"pk": "user#3"}, "SET n = :n", **expiry),
        ]
    )
    await client.batch_write({"app": [{"pk": "user#4"}]}, **expiry)
    put, update, transaction, batch = _requests(client)
    assert [type(r) for r in (put, update, transaction, batch)] == [
        service_pb2.PutItemRequest,
        service_pb2.UpdateItemRequest,
        service_pb2.TransactWriteItemsRequest,
        service_pb2.BatchWriteItemRequest,
    ]
    return [
        put,
        update,
        transaction.transact_items[0].put,
        transaction.transact_items[1].update,
        batch.request_items["app"].requests[0].put_request,
    ]


@pytest.mark.parametrize(
    ("expiry", "field"),
    [
        ({}, (None, None)),
        ({"expires_in": None, "expires_at": None}, (None, None)),
        ({"expires_in": datetime.timedelta(minutes=15)}, _duration(900)),
        ({"expires_in": datetime.timedelta(days=7, microseconds=250)}, _duration(7 * 86400, 250_000)),
        ({"expires_in": 90}, _duration(90)),
        ({"expires_in": 1.5}, _duration(1, 500_000_000)),
        # A float is taken at its exact value and rounded to nanoseconds: 0.1 is not 0.1000000000000000055.
        ({"expires_in": 0.1}, _duration(0, 100_000_000)),
        ({"expires_at": datetime.datetime(2030, 1, 1, tzinfo=UTC)}, _timestamp(EPOCH_2030)),
        # The same instant in another zone is the same Timestamp.
        (
            {
                "expires_at": datetime.datetime(
                    2030, 1, 1, 1, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
                )
            },
            _timestamp(EPOCH_2030),
        ),
        (
            {
                "expires_at": datetime.datetime(
                    2029, 12, 31, 19, 0, 0, 500, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
                )
            },
            _timestamp(EPOCH_2030, 500_000),
        ),
        ({"expires_at": EPOCH_2030}, _timestamp(EPOCH_2030)),
        ({"expires_at": EPOCH_2030 + 0.25}, _timestamp(EPOCH_2030, 250_000_000)),
        ({"expires_at": float(EPOCH_2030)}, _timestamp(EPOCH_2030)),
    ],
)
async def test_every_write_sets_the_expiry_it_is_given(
    client: GatewayClient, expiry: dict[str, Any], field: tuple[str | None, Any]
) -> None:
    holders = await _every_write(client, **expiry)
    assert [_expiry(holder) for holder in holders] == [field] * 5
    # The rest of each write is as before.
    put, update, transaction_put, transaction_update, batch_put = holders
    assert put.item["n"].n == "1" and update.update_expression == "SET n = :n"
    assert transaction_put.item["pk"].s == "user#2" and transaction_update.key["pk"].s == "user#3"
    assert batch_put.item["pk"].s == "user#4"


@pytest.mark.parametrize(
    ("expiry", "error", "words"),
    [
        (
            {"expires_in": 60, "expires_at": EPOCH_2030},
            ValueError,
            "set expires_in or expires_at, not both",
        ),
        (
            {
                "expires_in": datetime.timedelta(hours=1),
                "expires_at": datetime.datetime(2030, 1, 1, tzinfo=UTC),
            },
            ValueError,
            "not both",
        ),
        ({"expires_at": datetime.datetime(2030, 1, 1)}, ValueError, "naive, an ambiguous timezone"),
        ({"expires_in": -5}, ValueError, "must be positive"),
        ({"expires_in": 0}, ValueError, "must be positive"),
        ({"expires_in": -0.5}, ValueError, "must be positive"),
        ({"expires_in": 1e-12}, ValueError, "must be positive"),  # rounds to no time at all
        ({"expires_in": datetime.timedelta(0)}, ValueError, "must be positive"),
        ({"expires_in": datetime.timedelta(seconds=-1)}, ValueError, "must be positive"),
        ({"expires_in": float("nan")}, ValueError, "finite"),
        ({"expires_at": float("inf")}, ValueError, "finite"),
        ({"expires_in": True}, TypeError, "not bool"),
        ({"expires_at": "2030-01-01T00:00:00Z"}, TypeError, "not str"),
        (
            {"expires_in": datetime.datetime(2030, 1, 1, tzinfo=UTC)},
            TypeError,
            "pass a datetime as expires_at",
        ),
        ({"expires_at": datetime.timedelta(hours=1)}, TypeError, "pass a timedelta as expires_in"),
    ],
)
async def test_a_bad_expiry_is_refused_before_any_call(
    client: GatewayClient, expiry: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        await client.put_item("app", KEY, **expiry)
    with pytest.raises(error, match=words):
        await client.update_item("app", KEY, "SET n = :n", **expiry)
    with pytest.raises(error, match=words):
        await client.transact_write([TransactDelete("app", KEY), TransactPut("app", KEY, **expiry)])
    with pytest.raises(error, match=words):
        await client.transact_write([TransactUpdate("app", KEY, "SET n = :n", **expiry)])
    with pytest.raises(error, match=words):
        await client.batch_write({"app": [KEY]}, **expiry)
    # Also with no puts to apply it to: a mistake is a mistake.
    with pytest.raises(error, match=words):
        await client.batch_write(deletes={"app": [KEY]}, **expiry)
    assert _requests(client) == []


async def test_batch_write_applies_its_expiry_to_every_put_and_no_delete(client: GatewayClient) -> None:
    await client.batch_write(
        {"app": [{"pk": "a"}, {"pk": "b"}], "other": [{"pk": "c"}]},
        {"app": [{"pk": "d"}]},
        expires_in=datetime.timedelta(hours=2),
    )
    (request,) = _requests(client)
    writes = [(table, w) for table, entry in request.request_items.items() for w in entry.requests]
    puts = [(table, w.put_request) for table, w in writes if w.WhichOneof("request") == "put_request"]
    deletes = [w.delete_request for _, w in writes if w.WhichOneof("request") == "delete_request"]
    assert sorted((table, put.item["pk"].s) for table, put in puts) == [
        ("app", "a"),
        ("app", "b"),
        ("other", "c"),
    ]
    assert [_expiry(put) for _, put in puts] == [_duration(7200)] * 3
    assert [d.key["pk"].s for d in deletes] == ["d"]  # a DeleteRequest has no expiry fields


async def test_each_transaction_action_carries_its_own_expiry(client: GatewayClient) -> None:
    await client.transact_write(
        [
            TransactPut("app", {"pk": "a"}, expires_in=30),
            TransactUpdate("app", {"pk": "b"}, "SET n = :n", values={":n": 1}, expires_at=EPOCH_2030),
            TransactPut("app", {"pk": "c"}),
            TransactDelete("app", {"pk": "d"}),
            TransactConditionCheck("app", {"pk": "e"}, "attribute_exists(pk)"),
            TransactUpdate(
                "app", {"pk": "f"}, "SET n = :n", values={":n": 1}, expires_in=datetime.timedelta(days=1)
            ),
        ]
    )
    (request,) = _requests(client)
    kinds = [entry.WhichOneof("action") for entry in request.transact_items]
    assert kinds == ["put", "update", "put", "delete", "condition_check", "update"]
    writes = [
        getattr(entry, kind)
        for entry in request.transact_items
        if (kind := entry.WhichOneof("action")) in ("put", "update")
    ]
    assert [_expiry(write) for write in writes] == [
        _duration(30),
        _timestamp(EPOCH_2030),
        (None, None),
        _duration(86400),
    ]


# ---------------------------------------------------------------- include_expired


async def _every_read(client: GatewayClient, **options: Any) -> list[Any]:
    await client.get_item("app", KEY, **options)
    await client.query_page("app", "pk = :pk", values={":pk": "user#1"}, **options)
    await client.scan_page("app", **options)
    await client.batch_get({"app": [KEY], "other": [KEY]}, **options)
    await client.transact_get([("app", KEY), ("other", KEY)], **options)
    async for _ in client.parallel_scan("app", 4, **options):
        pass
    return _requests(client)


@pytest.mark.parametrize(
    ("options", "expected"),
    [({}, False), ({"include_expired": False}, False), ({"include_expired": True}, True)],
)
async def test_include_expired_reaches_every_read(
    client: GatewayClient, options: dict[str, Any], expected: bool
) -> None:
    requests = await _every_read(client, **options)
    assert [type(r) for r in requests] == [
        service_pb2.GetItemRequest,
        service_pb2.QueryRequest,
        service_pb2.ScanRequest,
        service_pb2.BatchGetItemRequest,
        service_pb2.TransactGetItemsRequest,
        service_pb2.ParallelScanRequest,
    ]
    assert [r.include_expired for r in requests] == [expected] * 6


def _page_with_more(response: Any, *, after: str) -> Any:
    """A page of one item that says more follow, from after's key."""
    fill_item(response.items.add().attributes, {"pk": after})
    fill_item(response.last_evaluated_key, {"pk": after})
    return response


@pytest.mark.parametrize("method", ["Query", "Scan"])
async def test_include_expired_goes_with_every_page_of_query_and_scan(method: str) -> None:
    page = getattr(service_pb2, f"{method}Response")
    stub = RecordingStub(
        {method: [_page_with_more(page(), after="a"), _page_with_more(page(), after="b"), page()]}
    )
    async with GatewayClient(grpc.aio.insecure_channel("127.0.0.1:1")) as gateway:
        gateway.stub = stub  # type: ignore[assignment]
        if method == "Query":
            items = [
                i async for i in gateway.query("app", "pk = :pk", values={":pk": "a"}, include_expired=True)
            ]
        else:
            items = [i async for i in gateway.scan("app", include_expired=True)]
    assert items == [{"pk": "a"}, {"pk": "b"}]
    assert [r.include_expired for r in stub.requests] == [True, True, True]
    assert [dict(r.exclusive_start_key) != {} for r in stub.requests] == [False, True, True]


# ---------------------------------------------------------------- dgw


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("1.5", 1.5),
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("7d", 7 * 86400),
        ("0.5h", 1800),
        (".5m", 30),
        ("0.000001", 0.000001),
    ],
)
def test_expires_in_parses_seconds_or_a_suffixed_number(text: str, seconds: float) -> None:
    for argv in (["put", "app", "{}"], ["update", "app", "{}", "--update", "SET a = :a"]):
        args = cli._parser().parse_args([*argv, "--expires-in", text])
        assert args.expires_in == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "is not a duration"),
        ("15 m", "is not a duration"),
        ("15M", "is not a duration"),
        ("2w", "is not a duration"),
        ("m", "is not a duration"),
        ("1e3", "is not a duration"),
        ("-5", "is not a duration"),
        ("inf", "is not a duration"),
        ("nan", "is not a duration"),
        ("P1D", "is not a duration"),
        ("0", "is not a positive duration"),
        ("0s", "is not a positive duration"),
        ("0.0000001", "is not a positive duration"),  # less than timedelta's microsecond
        ("99999999999999d", "too long"),
    ],
)
def test_expires_in_refuses_anything_else(value: str, words: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli._parser().parse_args(["put", "app", "{}", f"--expires-in={value}"])
    assert exited.value.code == cli.EXIT_USAGE
    assert words in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", [["delete", "app", "{}"], ["get", "app", "{}"], ["import", "app", "-i", "x"]]
)
def test_expires_in_is_only_for_put_and_update(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli._parser().parse_args([*command, "--expires-in", "1h"])
    assert exited.value.code == cli.EXIT_USAGE
    assert "unrecognized arguments: --expires-in" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["put", "app", '{"pk": "user#1"}'], (None, None)),
        (["put", "app", '{"pk": "user#1"}', "--expires-in", "15m"], _duration(900)),
        (["put", "app", '{"pk": "user#1"}', "--expires-in", "1.25"], _duration(1, 250_000_000)),
        (
            ["update", "app", '{"pk": "user#1"}', "--update", "SET a = :a", "--values", '{":a": 1}'],
            (None, None),
        ),
        (
            [
                "update",
                "app",
                '{"pk": "user#1"}',
                "--update",
                "SET a = :a",
                "--expires-in=7d",
                "--expect-version",
                "2",
            ],
            _duration(604800),
        ),
    ],
)
async def test_dgw_sends_the_expiry(
    argv: list[str], field: tuple[str | None, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    stub = RecordingStub()
    args = cli._parser().parse_args(argv)
    assert await getattr(cli.Cli(args, stub), args.command)() == cli.EXIT_OK
    (request,) = stub.requests
    assert _expiry(request) == field
    if "--expect-version" in argv:
        assert request.expected_version.version == 2  # the two options go together
    assert capsys.readouterr() == ("", "")  # nothing new is printed


def _found(item: dict[str, Any]) -> service_pb2.GetItemResponse:
    response = service_pb2.GetItemResponse(found=True)
    fill_item(response.item, item)
    return response


@pytest.mark.parametrize("include", [False, True])
@pytest.mark.parametrize(
    ("argv", "request_type"),
    [
        (["get", "app", '{"pk": "user#1"}'], service_pb2.GetItemRequest),
        (
            ["query", "app", "--key-condition", "pk = :pk", "--values", '{":pk": "user#1"}'],
            service_pb2.QueryRequest,
        ),
        (["scan", "app"], service_pb2.ScanRequest),
        (["scan", "app", "--segments", "3"], service_pb2.ParallelScanRequest),
    ],
)
async def test_dgw_include_expired_reaches_the_read(
    argv: list[str], request_type: type[Any], include: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    stub = RecordingStub({"GetItem": [_found({"pk": "user#1"})]})
    args = cli._parser().parse_args([*argv, "--include-expired"] if include else argv)
    assert await getattr(cli.Cli(args, stub), args.command)() == cli.EXIT_OK
    (request,) = stub.requests
    assert type(request) is request_type
    assert request.include_expired is include
    # The output is what it was: the item, or nothing for empty pages.
    assert capsys.readouterr() == ('{"pk": "user#1"}\n' if argv[0] == "get" else "", "")


@pytest.mark.parametrize("include", [False, True])
async def test_dgw_export_include_expired_reaches_the_parallel_scan(
    include: bool, tmp_path: pathlib.Path
) -> None:
    stub = RecordingStub()
    argv = ["export", "app", "-o", str(tmp_path / "app.jsonl"), "--segments", "2", "--no-progress"]
    args = cli._parser().parse_args([*argv, "--include-expired"] if include else argv)
    assert await cli.Cli(args, stub).export() == cli.EXIT_OK
    describe, scan = stub.requests
    assert type(describe) is service_pb2.DescribeTableRequest
    assert type(scan) is service_pb2.ParallelScanRequest
    assert scan.include_expired is include and scan.total_segments == 2


@pytest.fixture
def interrupted_export(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """The output of an export interrupted before its first page, by a version without
    include_expired (its state has no such field)."""
    output = tmp_path / "app.jsonl"
    output.write_bytes(b"")
    state = {
        "version": 1,
        "table": "app",
        "dynamodb_json": False,
        "total_segments": 2,
        "items": 0,
        "bytes": 0,
        "segments": {"0": {"done": False, "key": None}, "1": {"done": True, "key": None}},
    }
    (tmp_path / "app.jsonl.state.json").write_text(json.dumps(state))
    yield output


async def test_an_export_resumes_only_as_it_was_started(interrupted_export: pathlib.Path) -> None:
    stub = RecordingStub()
    with pytest.raises(TransferError, match="made without --include-expired: resume it the same way"):
        await export_table(
            stub,
            "app",
            interrupted_export,
            item_json=ItemJson(False),
            total_segments=2,
            resume=True,
            include_expired=True,
        )
    assert [type(r) for r in stub.requests] == [service_pb2.DescribeTableRequest]  # no scan
    # Without it, the old state resumes as before.
    await export_table(
        stub, "app", interrupted_export, item_json=ItemJson(False), total_segments=2, resume=True
    )
    scan = stub.requests[-1]
    assert type(scan) is service_pb2.ParallelScanRequest and not scan.include_expired
    assert [s.segment for s in scan.segments] == [0]


async def test_an_export_records_include_expired_for_its_resume(tmp_path: pathlib.Path) -> None:
    output = tmp_path / "app.jsonl"
    page = service_pb2.ParallelScanResponse(segment=0, segment_done=False)
    fill_item(page.items.add().attributes, {"pk": "a"})
    fill_item(page.last_evaluated_key, {"pk": "a"})

    class Interrupted(Exception):
        pass

    with pytest.raises(Interrupted):
        stub = RecordingStub({"ParallelScan": [page, Interrupted()]})
        await export_table(
            stub, "app", output, item_json=ItemJson(False), total_segments=2, include_expired=True
        )
    state = json.loads((tmp_path / "app.jsonl.state.json").read_text())
    assert state["include_expired"] is True and state["items"] == 1
    with pytest.raises(TransferError, match="made with --include-expired"):
        await export_table(
            RecordingStub(), "app", output, item_json=ItemJson(False), total_segments=2, resume=True
        )
    resumed = RecordingStub()
    await export_table(
        resumed, "app", output, item_json=ItemJson(False), total_segments=2, resume=True, include_expired=True
    )
    assert resumed.requests[-1].include_expired is True
