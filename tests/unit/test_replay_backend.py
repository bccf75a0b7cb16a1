"""Record and replay: RecordingBackend writes each call, ReplayBackend answers it again.

DynamoDB is a scripted fake. Each call runs as its own task with an empty context, as an RPC
does, so the values it notes with made_here.noted() are its own and no test depends on
another (tracking itself is a process-wide flag the backends turn on).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from google.protobuf import message as pb_message
from google.rpc import error_details_pb2, status_pb2

from dynamo_gateway_server import errors, failures, made_here
from dynamo_gateway_server.backends import (
    BackendError,
    BackendUnavailableError,
    DeadlineExceededError,
    ReplayMismatchError,
)
from dynamo_gateway_server.backends.cassette import CassetteWriter, load
from dynamo_gateway_server.backends.recording import RecordingBackend
from dynamo_gateway_server.backends.replay import ReplayBackend, canonical, differences

T = TypeVar("T")
Detail = TypeVar("Detail", bound=pb_message.Message)
FAILED_PRECONDITION = 9  # google.rpc.Code, spelled out so a wrong name in the taxonomy cannot hide

OK = {"Item": {"pk": {"S": "a"}, "total": {"N": "12.5"}}}


def get(key: str, table: str = "orders") -> tuple[str, dict[str, Any]]:
    return "GetItem", {"TableName": table, "Key": {"pk": {"S": key}}}


def throttled() -> BackendError:
    return BackendError(
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded",
        http_status=400,
        request_id="THROTTLE1",
    )


# ---------------------------------------------------------------- fakes and helpers


class ScriptedDynamo:
    """DynamoDB stand-in: answers with the next scripted answer, or raises the next scripted error."""

    def __init__(self, *outcomes: dict[str, Any] | BaseException) -> None:
        self._outcomes = collections.deque(outcomes)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.closed = False

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, params))
        outcome = self._outcomes.popleft()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def close(self) -> None:
        self.closed = True


class HangingDynamo:
    """DynamoDB that never answers: the caller's cancel ends the call."""

    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.called.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        pass


def in_fresh_task(coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """`coroutine` as a task that has noted nothing yet, as each RPC starts."""
    return asyncio.create_task(coroutine, context=contextvars.Context())


async def _noting_then_calling(
    backend: Any, operation: str, params: dict[str, Any], made: tuple[str, ...]
) -> dict[str, Any]:
    for value in made:
        made_here.noted(value)
    return await backend.call(operation, params)  # type: ignore[no-any-return]


async def call(
    backend: Any, operation: str, params: dict[str, Any], made: tuple[str, ...] = ()
) -> dict[str, Any]:
    """One call as the gateway makes it: `made` are the values it made up for it first."""
    return await in_fresh_task(_noting_then_calling(backend, operation, params, made))


async def one_rpc(
    backend: Any, made: tuple[str, ...], *calls: tuple[str, dict[str, Any]]
) -> list[dict[str, Any] | BaseException]:
    """`calls` one after another from one RPC that made up `made` first; each answer or error."""

    async def scenario() -> list[dict[str, Any] | BaseException]:
        for value in made:
            made_here.noted(value)
        outcomes: list[dict[str, Any] | BaseException] = []
        for operation, params in calls:
            try:
                outcomes.append(await backend.call(operation, params))
            except (BackendError, BackendUnavailableError) as error:
                outcomes.append(error)
        return outcomes

    return await in_fresh_task(scenario())


async def wall_time_after(backend: Any, operation: str, params: dict[str, Any]) -> float:
    """What made_here.wall_time() says in the calling task once the call has answered."""

    async def scenario() -> float:
        await backend.call(operation, params)
        return made_here.wall_time()

    return await in_fresh_task(scenario())


def recorder(path: Path, dynamo: Any) -> RecordingBackend:
    writer = CassetteWriter(str(path), values="keep", salt="", max_bytes=1 << 20, keep_files=1)
    return RecordingBackend(dynamo, writer, "us-east-1")


async def record(path: Path, dynamo: Any, *calls: tuple[str, dict[str, Any]]) -> None:
    """Records `calls` against `dynamo`, whatever each one ends with."""
    backend = recorder(path, dynamo)
    for operation, params in calls:
        try:
            await call(backend, operation, params)
        except (BackendError, BackendUnavailableError):
            pass  # recorded all the same
    await backend.close()


def replayer(path: Path, match: str = "match", live: Any = None) -> ReplayBackend:
    return ReplayBackend(load(str(path)), str(path), match, live)


async def record_a_cut_call(path: Path) -> None:
    """Records a GetItem whose caller cancels it while DynamoDB has not answered."""
    dynamo = HangingDynamo()
    backend = recorder(path, dynamo)
    cut = in_fresh_task(backend.call(*get("a")))
    await dynamo.called.wait()
    cut.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cut
    await backend.close()


def cassette_lines(path: Path) -> list[Any]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


# ---------------------------------------------------------------- recording


async def test_the_recorder_writes_the_call_and_passes_the_answer_on(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    dynamo = ScriptedDynamo(OK)
    backend = recorder(path, dynamo)

    answer = await call(backend, *get("a"), made=("token-1",))
    await backend.close()

    assert answer == OK
    assert dynamo.calls == [get("a")]
    assert dynamo.closed
    line = cassette_lines(path)[1]
    assert line["operation"] == "GetItem"
    assert line["region"] == "us-east-1"
    assert line["request"] == get("a")[1]
    assert line["made_here"] == ["token-1"]
    assert line["answer"] == OK
    assert "error" not in line
    assert line["latency_ms"] >= 0


async def test_after_a_recorded_call_wall_time_is_when_it_was_recorded(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    backend = recorder(path, ScriptedDynamo(OK))
    at = await wall_time_after(backend, *get("a"))
    await backend.close()
    assert at == cassette_lines(path)[1]["at"]


async def test_a_call_cut_by_its_caller_is_recorded_as_cut(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record_a_cut_call(path)

    line = cassette_lines(path)[1]
    assert line["error"] == {"kind": "cut"}
    assert "answer" not in line
    assert line["latency_ms"] >= 0


# ---------------------------------------------------------------- round trips


async def test_an_answer_replays_equal_with_binary_values_as_bytes(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    request = {
        "TableName": "files",
        "Key": {"pk": {"B": b"\x00\xffkey"}},
        "ReturnConsumedCapacity": "TOTAL",
    }
    answer = {
        "Item": {
            "pk": {"B": b"\x00\xffkey"},
            "body": {"B": b"\x01\x02\x03"},
            "chunks": {"BS": [b"x", b"\xfe"]},
            "meta": {"M": {"raw": {"B": b"\x7f"}, "names": {"L": [{"S": "a"}]}}},
        },
        "ConsumedCapacity": {"TableName": "files", "CapacityUnits": 0.5},
    }
    await record(path, ScriptedDynamo(answer), ("GetItem", request))

    replayed = await call(replayer(path), "GetItem", request)
    assert replayed == answer
    assert isinstance(replayed["Item"]["body"]["B"], bytes)


async def test_a_dynamodb_error_replays_with_all_its_fields(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    cancelled = BackendError(
        "TransactionCanceledException",
        "Transaction cancelled, please refer cancellation reasons for specific reasons",
        http_status=400,
        request_id="REQ42",
        item={"pk": {"S": "a"}, "blob": {"B": b"\x00\x01"}},
        cancellation_reasons=[
            {
                "Code": "ConditionalCheckFailed",
                "Message": "The conditional request failed",
                "Item": {"pk": {"S": "a"}, "blob": {"B": b"\x00\x01"}},
            },
            {"Code": "None"},
        ],
    )
    request = {"TransactItems": [{"Put": {"TableName": "orders", "Item": {"pk": {"S": "a"}}}}]}
    await record(path, ScriptedDynamo(cancelled), ("TransactWriteItems", request))

    with pytest.raises(BackendError) as raised:
        await call(replayer(path), "TransactWriteItems", request)
    replayed = raised.value
    assert replayed.code == cancelled.code
    assert replayed.message == cancelled.message
    assert replayed.http_status == cancelled.http_status
    assert replayed.request_id == cancelled.request_id
    assert replayed.item == cancelled.item
    assert replayed.cancellation_reasons == cancelled.cancellation_reasons


async def test_a_dynamodb_error_without_item_replays_without_one(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    error = BackendError("InternalServerError", "Internal server error", http_status=500, request_id="R")
    await record(path, ScriptedDynamo(error), get("a"))

    with pytest.raises(BackendError) as raised:
        await call(replayer(path), *get("a"))
    assert raised.value == error


@pytest.mark.parametrize("ambiguous", [True, False])
async def test_an_unavailable_error_replays_with_all_its_fields(tmp_path: Path, ambiguous: bool) -> None:
    path = tmp_path / "calls.jsonl"
    error = BackendUnavailableError("ReadTimeoutError", "Read timeout on endpoint URL", ambiguous)
    await record(path, ScriptedDynamo(error), get("a"))

    with pytest.raises(BackendUnavailableError) as raised:
        await call(replayer(path), *get("a"))
    assert (raised.value.reason, raised.value.message, raised.value.ambiguous) == (
        "ReadTimeoutError",
        "Read timeout on endpoint URL",
        ambiguous,
    )


async def test_a_cut_call_replays_as_long_as_it_took_then_meets_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_bytes(
        b'{"dynamo_gateway_cassette": 1, "values": "keep", "started_at": "2026-12-01T12:00:00Z"}\n'
        + orjson.dumps(
            {
                "seq": 1,
                "at": 1.0,
                "operation": "GetItem",
                "request": get("a")[1],
                "error": {"kind": "cut"},
                "latency_ms": 250.0,
            }
        )
        + b"\n"
    )
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    backend = replayer(path)
    monkeypatch.setattr(asyncio, "sleep", sleep)
    with pytest.raises(DeadlineExceededError) as raised:
        await call(backend, *get("a"))
    assert slept == [0.25]
    assert raised.value.operation == "GetItem"


async def test_a_recorded_cut_call_replays_as_a_cut_call(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record_a_cut_call(path)

    with pytest.raises(DeadlineExceededError):
        await call(replayer(path), *get("a"))


async def test_repeat_never_repeats_a_cut_call(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record(path, ScriptedDynamo(OK), get("a"))
    await record_a_cut_call(path)

    repeating = replayer(path, "repeat")
    answers = [await call(repeating, *get("a")) for _ in range(3)]
    assert answers == [answers[0]] * 3 and "Item" in answers[0]


async def test_replayed_wall_time_is_when_the_answer_was_recorded(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record(path, ScriptedDynamo(OK), get("a"))
    recorded_at = cassette_lines(path)[1]["at"]

    assert await wall_time_after(replayer(path), *get("a")) == recorded_at


async def test_return_consumed_capacity_is_ignored_when_matching(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    operation, params = get("a")
    await record(path, ScriptedDynamo(OK), (operation, {**params, "ReturnConsumedCapacity": "TOTAL"}))

    assert await call(replayer(path), operation, {**params, "ReturnConsumedCapacity": "NONE"}) == OK


# ---------------------------------------------------------------- which recording answers


async def test_match_answers_identical_requests_in_recorded_order_once_each(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    # DynamoDB throttled the first attempt and answered the retry: the replay does the same.
    await record(path, ScriptedDynamo(throttled(), OK), get("a"), get("a"))
    backend = replayer(path)

    with pytest.raises(BackendError) as raised:
        await call(backend, *get("a"))
    assert raised.value.code == "ProvisionedThroughputExceededException"
    assert await call(backend, *get("a")) == OK
    assert backend.replayed == 2

    with pytest.raises(ReplayMismatchError) as used_up:
        await call(backend, *get("a"))
    assert used_up.value.nearest_line == 3  # the last recording of it
    assert "its recordings were all replayed already" in str(used_up.value)
    assert "--replay-match repeat" in str(used_up.value)
    assert backend.replayed == 2


async def test_match_answers_out_of_order(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    answer_a, answer_b = {"Item": {"pk": {"S": "a"}}}, {"Item": {"pk": {"S": "b"}}}
    await record(path, ScriptedDynamo(answer_a, answer_b), get("a"), get("b"))
    backend = replayer(path)

    assert await call(backend, *get("b")) == answer_b
    assert await call(backend, *get("a")) == answer_a


async def test_repeat_answers_with_the_last_recording_once_all_are_used(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record(path, ScriptedDynamo(throttled(), OK), get("a"), get("a"))
    backend = replayer(path, "repeat")

    with pytest.raises(BackendError):
        await call(backend, *get("a"))
    for _ in range(3):
        assert await call(backend, *get("a")) == OK


async def test_each_replay_gets_its_own_copy_of_the_answer(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record(path, ScriptedDynamo(OK), get("a"))
    backend = replayer(path, "repeat")

    first = await call(backend, *get("a"))
    first["Item"]["pk"]["S"] = "changed by a stage above"
    assert await call(backend, *get("a")) == OK


async def test_strict_answers_in_recorded_order(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    answer_a, answer_b = {"Item": {"pk": {"S": "a"}}}, {"Item": {"pk": {"S": "b"}}}
    await record(path, ScriptedDynamo(answer_a, answer_b), get("a"), get("b"))
    backend = replayer(path, "strict")

    assert await call(backend, *get("a")) == answer_a
    assert await call(backend, *get("b")) == answer_b


async def test_strict_refuses_a_call_out_of_order_naming_the_expected_line(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record(path, ScriptedDynamo(OK, OK), get("a"), get("b"))
    backend = replayer(path, "strict")

    with pytest.raises(ReplayMismatchError) as refused:
        await call(backend, *get("b"))
    assert refused.value.nearest_line == 2
    assert refused.value.differences == ['Key.pk.S: recorded "a", called with "b"']
    assert str(refused.value) == (
        f"GetItem is not in cassette {path}: strict order expects the next recording; nearest: line 2 "
        '(Key.pk.S: recorded "a", called with "b")'
    )
    # The refused call used nothing up: the expected one still answers.
    assert await call(backend, *get("a")) == OK


async def test_strict_names_the_operation_it_expected(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record(path, ScriptedDynamo(OK), get("a"))

    with pytest.raises(ReplayMismatchError) as refused:
        await call(replayer(path, "strict"), "DeleteItem", get("a")[1])
    assert refused.value.differences[0] == "the recording is a GetItem"


async def test_strict_says_when_every_recording_was_replayed(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record(path, ScriptedDynamo(OK), get("a"))
    backend = replayer(path, "strict")
    await call(backend, *get("a"))

    with pytest.raises(ReplayMismatchError) as refused:
        await call(backend, *get("a"))
    assert "all 1 recordings were replayed already (strict order)" in str(refused.value)
    assert refused.value.nearest_line is None


# ---------------------------------------------------------------- mismatches


async def test_a_mismatch_names_the_nearest_recording_and_how_it_differs(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    # Line 2 differs from the call in two places, line 3 in one: line 3 is the nearest.
    await record(path, ScriptedDynamo(OK, OK), get("x", table="archive"), get("a"))

    with pytest.raises(ReplayMismatchError) as refused:
        await call(replayer(path), *get("b"))
    error = refused.value
    assert error.nearest_line == 3
    assert error.differences == ['Key.pk.S: recorded "a", called with "b"']
    message = str(error)
    assert message.startswith(f"GetItem is not in cassette {path}: no recording of this request")
    assert "nearest: line 3" in message
    assert 'Key.pk.S: recorded "a", called with "b"' in message


async def test_between_equally_near_recordings_the_earliest_is_named(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record(path, ScriptedDynamo(OK, OK), get("a"), get("c"))

    with pytest.raises(ReplayMismatchError) as refused:
        await call(replayer(path), *get("b"))
    assert refused.value.nearest_line == 2


async def test_a_mismatch_says_what_the_call_adds_or_lacks(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    operation, params = get("a")
    await record(path, ScriptedDynamo(OK), (operation, {**params, "ConsistentRead": True}))

    with pytest.raises(ReplayMismatchError) as refused:
        await call(replayer(path), operation, {**params, "ProjectionExpression": "pk"})
    assert refused.value.differences == [
        "ConsistentRead: recorded true, absent from the call",
        'ProjectionExpression: "pk" in the call, absent from the recording',
    ]


async def test_a_mismatch_shows_at_most_five_differences_and_cuts_long_values(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    recorded = {"TableName": "t", "Key": {f"k{n}": {"S": "a"} for n in range(8)}}
    called = {"TableName": "t", "Key": {f"k{n}": {"S": "b" * 100} for n in range(8)}}
    await record(path, ScriptedDynamo(OK), ("GetItem", recorded))

    with pytest.raises(ReplayMismatchError) as refused:
        await call(replayer(path), "GetItem", called)
    shown = refused.value.differences
    assert len(shown) == 5
    assert shown[0] == f'Key.k0.S: recorded "a", called with "{"b" * 56}...'


async def test_a_cassette_without_the_operation_says_so(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record(path, ScriptedDynamo(OK), get("a"))

    with pytest.raises(ReplayMismatchError) as refused:
        await call(replayer(path), "Query", {"TableName": "orders"})
    assert str(refused.value) == f"Query is not in cassette {path}: it holds no Query call"
    assert refused.value.nearest_line is None


async def test_an_empty_cassette_holds_no_call(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record(path, ScriptedDynamo())

    with pytest.raises(ReplayMismatchError, match="it holds no GetItem call"):
        await call(replayer(path), *get("a"))


def test_differences_of_nested_lists() -> None:
    recorded = {"Items": [{"S": "a"}, {"S": "b"}]}
    called = {"Items": [{"S": "a"}]}
    assert differences(recorded, called) == ['Items[1].S: recorded "b", absent from the call']


# ---------------------------------------------------------------- values the gateway made up


def test_canonical_masks_made_up_values_by_position_and_drops_consumed_capacity() -> None:
    request = {
        "TableName": "orders",
        "ClientRequestToken": "tok-2",
        "Item": {"version": {"S": "tok-1"}, "note": {"S": "plain"}},
        "ReturnConsumedCapacity": "TOTAL",
    }
    assert canonical(request, ("tok-1", "tok-2")) == {
        "TableName": "orders",
        "ClientRequestToken": "<made here #2>",
        "Item": {"version": {"S": "<made here #1>"}, "note": {"S": "plain"}},
    }


def put_versioned(token: str) -> tuple[str, dict[str, Any]]:
    """A versioned write: the version token is one the gateway made up."""
    return "PutItem", {
        "TableName": "orders",
        "Item": {"pk": {"S": "a"}, "version": {"S": token}},
        "ReturnValues": "ALL_NEW",
    }


async def test_a_made_up_token_matches_and_its_own_answer_is_as_recorded(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    recorded_answer = {"Attributes": {"pk": {"S": "a"}, "version": {"S": "recorded-token"}}}
    backend = recorder(path, ScriptedDynamo(recorded_answer))
    await call(backend, *put_versioned("recorded-token"), made=("recorded-token",))
    await backend.close()
    assert cassette_lines(path)[1]["made_here"] == ["recorded-token"]

    # The call sent the token itself: its answer comes back byte for byte.
    replayed = await call(replayer(path), *put_versioned("live-token"), made=("live-token",))
    assert replayed == recorded_answer


async def test_a_token_made_earlier_in_the_rpc_is_the_live_one_in_a_later_answer(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    read_back = get("a")
    stored = {"Item": {"pk": {"S": "a"}, "version": {"S": "recorded-token"}}}
    backend = recorder(path, ScriptedDynamo({}, stored))
    await one_rpc(backend, ("recorded-token",), put_versioned("recorded-token"), read_back)
    await backend.close()

    # The read-back looks for the token its RPC wrote: it finds the live one.
    _, found = await one_rpc(replayer(path), ("live-token",), put_versioned("live-token"), read_back)
    assert found == {"Item": {"pk": {"S": "a"}, "version": {"S": "live-token"}}}


async def test_a_token_made_earlier_in_the_rpc_is_the_live_one_in_a_later_error(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    delete = (
        "DeleteItem",
        {
            "TableName": "orders",
            "Key": {"pk": {"S": "a"}},
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    )
    failed = BackendError(
        "ConditionalCheckFailedException",
        "The conditional request failed",
        item={"pk": {"S": "a"}, "version": {"S": "recorded-token"}},
    )
    backend = recorder(path, ScriptedDynamo({}, failed))
    await one_rpc(backend, ("recorded-token",), put_versioned("recorded-token"), delete)
    await backend.close()

    _, error = await one_rpc(replayer(path), ("live-token",), put_versioned("live-token"), delete)
    assert isinstance(error, BackendError)
    assert error.item == {"pk": {"S": "a"}, "version": {"S": "live-token"}}


async def test_made_up_values_match_by_position_not_by_presence(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"

    def update(version_token: str, request_token: str) -> dict[str, Any]:
        return {
            "TableName": "orders",
            "Key": {"pk": {"S": "a"}},
            "ExpressionAttributeValues": {":v": {"S": version_token}},
            "ClientRequestToken": request_token,
        }

    backend = recorder(path, ScriptedDynamo(OK))
    await call(backend, "UpdateItem", update("old-1", "old-2"), made=("old-1", "old-2"))
    await backend.close()

    # The same two made-up values, but each where the other one was recorded.
    with pytest.raises(ReplayMismatchError) as refused:
        await call(replayer(path), "UpdateItem", update("new-2", "new-1"), made=("new-1", "new-2"))
    assert 'ClientRequestToken: recorded "<made here #2>", called with "<made here #1>"' in (
        refused.value.differences
    )
    # In their recorded places they match.
    assert await call(replayer(path), "UpdateItem", update("new-1", "new-2"), made=("new-1", "new-2")) == OK


async def test_a_value_not_made_up_must_be_equal(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    params = {"TableName": "orders", "ClientRequestToken": "recorded-token"}
    await record(path, ScriptedDynamo(OK), ("TransactWriteItems", params))

    # The caller chose this token (nothing noted it): a different one is a different request.
    with pytest.raises(ReplayMismatchError):
        await call(replayer(path), "TransactWriteItems", {**params, "ClientRequestToken": "other"})


# ---------------------------------------------------------------- live fallback (new_episodes)


async def test_a_call_not_in_the_cassette_goes_live_when_there_is_a_live_backend(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record(path, ScriptedDynamo(OK), get("a"))
    live_answer = {"Item": {"pk": {"S": "b"}}}
    live = ScriptedDynamo(live_answer)
    backend = replayer(path, live=live)

    assert await call(backend, *get("a")) == OK
    assert await call(backend, *get("b")) == live_answer
    assert live.calls == [get("b")]
    assert backend.replayed == 1
    await backend.close()
    assert live.closed


async def test_new_episodes_are_recorded_into_the_cassette(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record(path, ScriptedDynamo(OK), get("a"))
    live_answer = {"Item": {"pk": {"S": "b"}}}
    backend = replayer(path, live=recorder(path, ScriptedDynamo(live_answer)))

    assert await call(backend, *get("b")) == live_answer
    await backend.close()

    # Replayed afresh, the cassette answers both without DynamoDB.
    again = replayer(path)
    assert await call(again, *get("a")) == OK
    assert await call(again, *get("b")) == live_answer


# ---------------------------------------------------------------- what the caller sees


def detail(status: status_pb2.Status, kind: type[Detail]) -> Detail:
    """The one detail of type `kind` in `status` (none, or two, fails)."""
    (packed,) = [packed for packed in status.details if packed.Is(kind.DESCRIPTOR)]
    unpacked = kind()
    assert packed.Unpack(unpacked)
    return unpacked


async def test_a_mismatch_renders_as_failed_precondition_with_the_cassette_line(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    await record(path, ScriptedDynamo(OK), get("a"))
    with pytest.raises(ReplayMismatchError) as refused:
        await call(replayer(path), *get("b"))

    status = errors.status_of(refused.value, "orders")
    assert status.code == FAILED_PRECONDITION
    assert status.message == str(refused.value)
    assert len(status.details) == 2
    info = detail(status, error_details_pb2.ErrorInfo)
    assert info.reason == "Configuration.ReplayMismatch"
    assert info.domain == errors.ERROR_DOMAIN
    assert dict(info.metadata) == {"operation": "GetItem", "cassette": str(path), "nearest_line": "2"}
    (violation,) = detail(status, error_details_pb2.PreconditionFailure).violations
    assert violation.type == "REPLAY_MISMATCH"
    assert violation.subject == f"{path}:2"
    assert violation.description == 'Key.pk.S: recorded "a", called with "b"'


def test_a_mismatch_with_no_nearest_line_names_the_cassette_alone() -> None:
    error = ReplayMismatchError("Query", "tests/calls.jsonl", "it holds no Query call", None, [])
    status = errors.from_replay_mismatch(error)

    assert status.code == FAILED_PRECONDITION
    assert "nearest_line" not in detail(status, error_details_pb2.ErrorInfo).metadata
    (violation,) = detail(status, error_details_pb2.PreconditionFailure).violations
    assert violation.subject == "tests/calls.jsonl"
    assert violation.description == str(error)


def test_a_mismatch_counts_as_the_callers_error() -> None:
    error = ReplayMismatchError("GetItem", "c.jsonl", "no recording of this request", 2, [])
    assert failures.status_label(error) == failures.CLIENT_ERROR
