"""The async facade's paginator against botocore's own, over one fake Query: the same calls,
pages, resume tokens (byte for byte) and full results for every PaginationConfig, including
tokens that stop inside a page, botocore's old `token___index` form and garbage. No server:
this pins the port of botocore's page loop, which the emulator tests only sample."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
from botocore.paginate import Paginator

from dynamo_gateway.boto3_compat import AsyncPaginator, _model

ITEMS = 11


class FakeQuery:
    """DynamoDB's Query over ITEMS items with sort keys 0..ITEMS-1, recording every call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(copy.deepcopy(kwargs))
        start = kwargs.get("ExclusiveStartKey")
        if start is not None and not isinstance(start, dict):
            raise TypeError(f"ExclusiveStartKey must be a map, not {start!r}")
        first = int(start["sk"]["N"]) + 1 if start else 0
        last = min(first + kwargs.get("Limit", ITEMS), ITEMS)
        page: dict[str, Any] = {
            "Items": [{"pk": {"S": "p"}, "sk": {"N": str(i)}} for i in range(first, last)],
            "Count": last - first,
            "ScannedCount": last - first,
            "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5},
        }
        if "Limit" in kwargs and last - first == kwargs["Limit"]:
            page["LastEvaluatedKey"] = {"pk": {"S": "p"}, "sk": {"N": str(last - 1)}}
        return page


def _paginators() -> tuple[Paginator[Any], AsyncPaginator, FakeQuery, FakeQuery]:
    sync_query, async_query = FakeQuery(), FakeQuery()

    async def query(**kwargs: Any) -> dict[str, Any]:
        return async_query(**kwargs)

    config, model = _model.paginator_configs()["Query"], _model.operation("Query")
    return Paginator(sync_query, config, model), AsyncPaginator(query, config, model), sync_query, async_query


def _outcome(run: Any) -> Any:
    try:
        return run()
    except Exception as error:
        return ("raised", type(error), str(error))


async def _async_outcome(run: Any) -> Any:
    try:
        return await run()
    except Exception as error:
        return ("raised", type(error), str(error))


def _resume_tokens() -> list[str]:
    """Tokens botocore hands out: on page boundaries and inside pages, after resumed starts too."""
    tokens = []
    for page_size, max_items in itertools.product((1, 3, 4), (1, 2, 5, 7)):
        paginator = _paginators()[0]
        config = {"PageSize": page_size, "MaxItems": max_items}
        token = paginator.paginate(PaginationConfig=config).build_full_result().get("NextToken")
        if token is not None:
            tokens.append(token)
            resumed = paginator.paginate(PaginationConfig={**config, "StartingToken": token})
            again = resumed.build_full_result().get("NextToken")
            if again is not None:
                tokens.append(again)
    return tokens


CONFIGS = [
    {
        key: value
        for key, value in zip(("PageSize", "MaxItems", "StartingToken"), values, strict=True)
        if value
    }
    for values in itertools.product(
        (None, 1, 3, 5, "4"),
        (None, 1, 4, 7, 11, 30),
        (None, *_resume_tokens()[::3], "None", "None___2", "x___2", "a___b___c", "not a token"),
    )
]


@pytest.mark.parametrize("config", CONFIGS, ids=str)
async def test_async_paginator_pages_as_botocore(config: dict[str, Any]) -> None:
    sync_paginator, async_paginator, sync_query, async_query = _paginators()

    def sync_pages() -> Any:
        iterator = sync_paginator.paginate(PaginationConfig=dict(config))
        return [copy.deepcopy(page) for page in iterator], iterator.resume_token, iterator.non_aggregate_part

    async def async_pages() -> Any:
        iterator = async_paginator.paginate(PaginationConfig=dict(config))
        return (
            [copy.deepcopy(page) async for page in iterator],
            iterator.resume_token,
            iterator.non_aggregate_part,
        )

    assert await _async_outcome(async_pages) == _outcome(sync_pages)
    assert async_query.calls == sync_query.calls
    full = await _async_outcome(async_paginator.paginate(PaginationConfig=dict(config)).build_full_result)
    assert full == _outcome(sync_paginator.paginate(PaginationConfig=dict(config)).build_full_result)


async def test_page_size_needs_a_limit_key_as_in_botocore() -> None:
    config = {"input_token": "NextToken", "output_token": "NextToken", "result_key": "Tags"}
    model = _model.operation("ListTagsOfResource")
    want = _outcome(lambda: Paginator(FakeQuery(), config, model).paginate(PaginationConfig={"PageSize": 2}))

    async def query(**kwargs: Any) -> dict[str, Any]:
        raise AssertionError("no call expected")

    got = _outcome(lambda: AsyncPaginator(query, config, model).paginate(PaginationConfig={"PageSize": 2}))
    assert got == want
    assert got[0] == "raised"
