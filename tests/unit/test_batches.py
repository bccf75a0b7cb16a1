"""BatchRunner with a scripted backend: splitting, leftovers retried and reported by position."""

from __future__ import annotations

from typing import Any

import pytest

from dynamo_gateway_server.backends import BackendError
from dynamo_gateway_server.batches import BatchRunner
from dynamo_gateway_server.codec import InvalidRequestError
from dynamo_gateway_server.key_schema import KeySchemaCache
from dynamo_gateway_server.resilience import Backoff, call_deadline


class ScriptedBatches:
    """DynamoDB's batch calls, where a scripted set of entries comes back unprocessed."""

    def __init__(self, leave: int = 0, fail: BaseException | None = None) -> None:
        self.leave = leave  # how many calls leave their last entry unprocessed
        self.fail = fail
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, params))
        if operation == "DescribeTable":
            return {"Table": {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}}
        if self.fail is not None:
            raise self.fail
        table, sent = next(iter(params["RequestItems"].items()))
        response: dict[str, Any] = {"ConsumedCapacity": [{"TableName": table, "CapacityUnits": 1.0}]}
        if operation == "BatchWriteItem":
            response["UnprocessedItems"] = {table: sent[-1:]} if self.leave else {}
        else:
            keys = sent["Keys"]
            kept = keys[:-1] if self.leave else keys
            response["Responses"] = {table: [{**k, "v": {"S": "x"}} for k in kept]}
            response["UnprocessedKeys"] = {table: {**sent, "Keys": keys[-1:]}} if self.leave else {}
        if self.leave:
            self.leave -= 1
        return response

    async def close(self) -> None:
        pass


async def _no_sleep(delay_s: float) -> None:
    pass


def _runner(backend: ScriptedBatches, attempts: int = 3, max_items: int = 1000) -> BatchRunner:
    return BatchRunner(
        backend,
        KeySchemaCache(backend),
        max_items=max_items,
        concurrency=2,
        leftovers=Backoff(attempts, 0.05),
        sleep=_no_sleep,
        rand=lambda: 1.0,
    )


def _puts(count: int) -> dict[str, Any]:
    return {"RequestItems": {"t1": [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}}}} for i in range(count)]}}


def _writes(backend: ScriptedBatches) -> list[dict[str, Any]]:
    return [p for op, p in backend.calls if op == "BatchWriteItem"]


async def test_writes_are_split_into_calls_of_25() -> None:
    backend = ScriptedBatches()
    result = await _runner(backend).write(_puts(60))
    assert [len(p["RequestItems"]["t1"]) for p in _writes(backend)] == [25, 25, 10]
    assert result.unprocessed == []
    assert result.response["ConsumedCapacity"] == [{"TableName": "t1", "CapacityUnits": 3.0}]


async def test_leftovers_are_sent_again_until_processed() -> None:
    backend = ScriptedBatches(leave=2)
    result = await _runner(backend, attempts=3).write(_puts(10))
    sent = [len(p["RequestItems"]["t1"]) for p in _writes(backend)]
    assert sent == [10, 1, 1]
    assert result.unprocessed == []
    assert result.response["UnprocessedItems"] == {}


async def test_what_is_left_after_the_attempts_is_reported_by_position() -> None:
    backend = ScriptedBatches(leave=5)
    result = await _runner(backend, attempts=3).write(_puts(10))
    assert [(u.table, u.index, u.leaf.reason) for u in result.unprocessed] == [
        ("t1", 9, "Throughput.ProvisionedThroughputExceeded")
    ]
    assert result.response["UnprocessedItems"] == {"t1": [{"PutRequest": {"Item": {"pk": {"S": "k9"}}}}]}


async def test_no_retry_of_leftovers_past_the_deadline() -> None:
    backend = ScriptedBatches(leave=5)
    with call_deadline(0.0):  # no time for a second call
        result = await _runner(backend, attempts=10).write(_puts(3))
    assert len(_writes(backend)) == 1
    assert [u.index for u in result.unprocessed] == [2]


async def test_a_throttled_chunk_becomes_unprocessed_entries() -> None:
    backend = ScriptedBatches(fail=BackendError("ProvisionedThroughputExceededException", "slow down"))
    result = await _runner(backend).write(_puts(30))
    assert sorted(u.index for u in result.unprocessed) == list(range(30))
    assert {u.leaf.grpc_code for u in result.unprocessed} == {"RESOURCE_EXHAUSTED"}


async def test_a_wrong_request_fails_the_whole_batch() -> None:
    backend = ScriptedBatches(
        fail=BackendError("ValidationException", "One or more parameter values were invalid")
    )
    with pytest.raises(BackendError) as caught:
        await _runner(backend).write(_puts(60))
    assert caught.value.code == "ValidationException"


async def test_gets_are_split_into_calls_of_100_and_leftovers_reported() -> None:
    backend = ScriptedBatches(leave=10)
    params = {
        "RequestItems": {"t1": {"Keys": [{"pk": {"S": f"k{i}"}} for i in range(150)], "ConsistentRead": True}}
    }
    result = await _runner(backend, attempts=2).get(params)
    gets = [p for op, p in backend.calls if op == "BatchGetItem"]
    # Two chunks (100 and 50 keys), each sent once more for the key DynamoDB left.
    assert sorted(len(p["RequestItems"]["t1"]["Keys"]) for p in gets) == [1, 1, 50, 100]
    assert all(p["RequestItems"]["t1"]["ConsistentRead"] for p in gets)
    assert sorted(u.index for u in result.unprocessed) == [99, 149]
    assert len(result.response["Responses"]["t1"]) == 148
    assert result.response["UnprocessedKeys"]["t1"]["Keys"] == [{"pk": {"S": "k99"}}, {"pk": {"S": "k149"}}]


async def test_duplicate_keys_are_refused_naming_both() -> None:
    params = _puts(3)
    params["RequestItems"]["t1"].append({"DeleteRequest": {"Key": {"pk": {"S": "k1"}}}})
    with pytest.raises(InvalidRequestError) as caught:
        await _runner(ScriptedBatches()).write(params)
    assert caught.value.field == "request_items[t1].requests[3]"
    assert "requests[1]" in caught.value.description


async def test_more_than_the_limit_is_refused_before_any_call() -> None:
    backend = ScriptedBatches()
    with pytest.raises(InvalidRequestError, match="more than this gateway's batch limit of 50"):
        await _runner(backend, max_items=50).write(_puts(51))
    assert backend.calls == []
