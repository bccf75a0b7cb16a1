"""shards.query_every_shard over a fake DynamoDB that pages each partition as DynamoDB does.

The fake keeps each partition's items sorted by sort key, evaluates `Limit` items per page
before the filter (here: the item's `keep` attribute), and stops a page with the last evaluated
item's key. Whatever the shards hold, the merged pages must give every kept item once, in the
order one unsharded partition gives.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_gateway_server.codec import InvalidRequestError
from dynamo_gateway_server.entities import ShardFanOut
from dynamo_gateway_server.shards import RESUME_ATTRIBUTE, query_every_shard

SHARDS = 4


class PagingDynamo:
    """Partitions of items, each sorted by its sort key; answers Query pages."""

    def __init__(self, items: list[dict[str, Any]], kind: str) -> None:
        self.kind = kind
        self.partitions: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            self.partitions.setdefault(item["pk"]["S"], []).append(item)
        for run in self.partitions.values():
            run.sort(key=self.order)
        self.calls = 0

    def order(self, item: dict[str, Any]) -> Any:
        value = item["sk"][self.kind]
        return Decimal(value) if self.kind == "N" else value.encode()

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        assert operation == "Query"
        self.calls += 1
        run = self.partitions.get(params["ExpressionAttributeValues"][":pk"]["S"], [])
        if not params.get("ScanIndexForward", True):
            run = run[::-1]
        start = params.get("ExclusiveStartKey")
        if start is not None:
            position = next(i for i, item in enumerate(run) if item["sk"] == start["sk"])
            run = run[position + 1 :]
        evaluated = run[: params["Limit"]] if "Limit" in params else run
        answer: dict[str, Any] = {
            "Items": [item for item in evaluated if item["keep"]["BOOL"]],
            "ScannedCount": len(evaluated),
        }
        if len(evaluated) < len(run):
            answer["LastEvaluatedKey"] = {"pk": evaluated[-1]["pk"], "sk": evaluated[-1]["sk"]}
        return answer

    async def close(self) -> None:
        pass


def fan_out(kind: str) -> ShardFanOut:
    return ShardFanOut(":pk", [{"S": f"P#{n}"} for n in range(SHARDS)], ("pk", "sk"), "sk", kind)


async def every_page(dynamo: PagingDynamo, kind: str, limit: int | None, forward: bool) -> list[list[Any]]:
    pages, start = [], None
    while True:
        params: dict[str, Any] = {
            "TableName": "t",
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "P#0"}},
            "ScanIndexForward": forward,
        }
        if limit is not None:
            params["Limit"] = limit
        if start is not None:
            params["ExclusiveStartKey"] = start
        answer = await query_every_shard(dynamo, params, fan_out(kind))
        pages.append([item["sk"][kind] for item in answer["Items"]])
        start = answer.get("LastEvaluatedKey")
        if start is None:
            return pages


sort_texts = st.text(alphabet=st.sampled_from("ab\uffff\U0001f600"), min_size=1, max_size=4)
sort_numbers = st.decimals(min_value=-1000, max_value=1000, places=1, allow_nan=False).map(str)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    kind=st.sampled_from(["S", "N"]),
    data=st.data(),
    limit=st.none() | st.integers(min_value=1, max_value=5),
    forward=st.booleans(),
)
def test_the_pages_give_every_kept_item_once_in_partition_order(
    kind: str, data: st.DataObject, limit: int | None, forward: bool
) -> None:
    # Synchronous, with its own loop: hypothesis runs each example as a plain call.
    keys = data.draw(
        st.lists(
            sort_texts if kind == "S" else sort_numbers,
            unique_by=lambda k: Decimal(k) if kind == "N" else k,
            max_size=25,
        )
    )
    items = [
        {
            "pk": {"S": f"P#{data.draw(st.integers(0, SHARDS - 1))}"},
            "sk": {kind: key},
            "keep": {"BOOL": data.draw(st.booleans())},
        }
        for key in keys
    ]
    dynamo = PagingDynamo(items, kind)
    pages = asyncio.run(every_page(dynamo, kind, limit, forward))

    unsharded = sorted((i for i in items if i["keep"]["BOOL"]), key=dynamo.order, reverse=not forward)
    assert [key for page in pages for key in page] == [item["sk"][kind] for item in unsharded]
    if limit is not None:
        assert all(len(page) <= limit for page in pages)


async def test_without_a_limit_a_page_reads_each_shard_once() -> None:
    items = [
        {"pk": {"S": f"P#{n % SHARDS}"}, "sk": {"S": f"{n:03}"}, "keep": {"BOOL": True}} for n in range(40)
    ]
    dynamo = PagingDynamo(items, "S")
    pages = await every_page(dynamo, "S", None, True)
    assert pages == [[f"{n:03}" for n in range(40)]]
    assert dynamo.calls == SHARDS


@pytest.mark.parametrize(
    ("start", "field"),
    [
        ({"pk": {"S": "P#0"}, "sk": {"S": "a"}}, "exclusive_start_key"),  # a plain key, not a token
        ({RESUME_ATTRIBUTE: {"S": "not base64 json"}}, "exclusive_start_key"),
    ],
)
async def test_a_start_key_that_is_not_a_resume_token_is_refused(start: dict[str, Any], field: str) -> None:
    params = {
        "TableName": "t",
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "P#0"}},
        "ExclusiveStartKey": start,
    }
    with pytest.raises(InvalidRequestError) as raised:
        await query_every_shard(PagingDynamo([], "S"), params, fan_out("S"))
    assert raised.value.field == field


async def test_a_projection_without_the_keys_gets_them_for_the_merge_only() -> None:
    items = [
        {"pk": {"S": f"P#{n % SHARDS}"}, "sk": {"S": f"{n}"}, "keep": {"BOOL": True}, "x": {"N": "1"}}
        for n in range(6)
    ]
    seen: list[dict[str, Any]] = []

    class Projecting(PagingDynamo):
        async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
            seen.append(params)
            answer = await super().call(operation, params)
            names = params["ExpressionAttributeNames"]
            wanted = {
                names.get(part.strip(), part.strip()) for part in params["ProjectionExpression"].split(",")
            }
            answer["Items"] = [{k: v for k, v in item.items() if k in wanted} for item in answer["Items"]]
            return answer

    params = {
        "TableName": "t",
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "P#0"}},
        "ProjectionExpression": "x",
    }
    answer = await query_every_shard(Projecting(items, "S"), params, fan_out("S"))
    assert answer["Items"] == [{"x": {"N": "1"}}] * 6
    assert seen[0]["ProjectionExpression"] == "x, #dgw_key, #dgw_key2"
