"""Write sharding on both emulators: a sharded partition reads exactly as the same data unsharded.

One table declares two entities that differ only in sharding (and their partition key's prefix):
`event` spreads each feed over 4 random shards, `event_plain` keeps it in one partition. Every
generated item is written as both; every generated query is paged through as both, and the
sharded answer must be the same items in the same order as the unsharded one (DynamoDB's own).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import grpc
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dynamo_gateway import GatewayClient
from dynamo_gateway_server import entities
from dynamo_gateway_server.backends import BackendError
from dynamo_gateway_server.tables import TableSpec, load_tables_file
from tests.integration.conftest import Emulator, gateway_declaring
from tests.support.backends import aws_backend_for
from tests.support.emulators import FaultPlan, FaultProxy

TABLES = """\
tables:
  - name: feed
    attributes: {pk: S, sk: S}
    key: {partition: pk, sort: sk}
    entities:
      - name: event
        attributes: {feed: S, at: S, event_id: S}
        keys: {pk: "FEED#{feed}", sk: "EVENT#{at}#{event_id}"}
        shards: 4
      - name: event_plain
        attributes: {feed: S, at: S, event_id: S}
        keys: {pk: "PLAIN#{feed}", sk: "EVENT#{at}#{event_id}"}
      - name: post
        attributes: {feed: S, post_id: S}
        keys: {pk: "POSTS#{feed}", sk: "POST#{post_id}"}
        shards: {count: 4, by: post_id}
"""
# What differs between a sharded item and its plain twin: compared by presence only.
DIFFERING = {"pk", "_entity"}
_numbers = itertools.count()


def _feed_table(directory: Path, name: str) -> TableSpec:
    path = directory / "tables.yaml"
    path.write_text(TABLES)
    (spec,) = load_tables_file(path)
    return dataclasses.replace(spec, name=name)


@dataclass
class Feeds:
    client: GatewayClient
    table: str
    proxy: FaultProxy


@pytest.fixture(scope="module")
async def feeds(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Feeds]:
    """One gateway and table for the module: each example uses a feed (logical key) of its own."""
    await emulator.ensure_running()
    spec = _feed_table(tmp_path_factory.mktemp("sharded"), f"sharded-{next(_numbers)}")
    proxy = FaultProxy(emulator.endpoint_url)
    await proxy.start()
    try:
        async with (
            gateway_declaring(proxy.endpoint_url, [spec]) as gateway,
            grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel,
        ):
            yield Feeds(GatewayClient(channel, timeout_s=20), spec.name, proxy)
    finally:
        await proxy.stop()


# ---------------------------------------------------------------- the property

# Few characters, so sort keys share prefixes and collide on their first parts; "\uffff" and
# "\U0001f600" sort one way by UTF-8 bytes (DynamoDB's order) and the other by UTF-16 units.
_CHARACTERS = ["a", "b", "0", "\u00e9", "\uffff", "\U0001f600", " ", "~"]
# Some `at`s repeat often, so that a query by an `at` prefix finds several items.
ats = st.sampled_from(["a", "ab", "\uffff", "\U0001f600"]) | st.text(_CHARACTERS, min_size=1, max_size=3)
event_ids = st.text(["x", "y", "\u00e9", "\uffff", "\U0001f600"], min_size=1, max_size=3)
events = st.lists(
    st.fixed_dictionaries(
        {"at": ats, "event_id": event_ids, "score": st.integers(0, 9)},
        optional={"tag": st.sampled_from(["red", "blue"])},
    ),
    min_size=10,
    max_size=30,
    # A key written twice is one item unsharded but may be two sharded (a random shard each time).
    unique_by=lambda event: (event["at"], event["event_id"]),
)


@dataclass(frozen=True)
class QueryShape:
    page_size: int | None
    forward: bool
    # Keeps items whose score is at least this (a filter on a non-key attribute), or all.
    min_score: int | None
    # Only this `at` (the sort key's first part: a begins_with on the sort key), or every item.
    at: str | None
    # Answers only these attributes (the shards' merge needs the keys: the gateway adds them).
    projected: bool

    def options(self, feed: str) -> dict[str, Any]:
        entity_key = {"feed": feed} | ({"at": self.at} if self.at is not None else {})
        names: dict[str, str] = {}
        options: dict[str, Any] = {
            "entity_key": entity_key,
            "forward": self.forward,
            "page_size": self.page_size,
        }
        if self.min_score is not None:
            names["#score"] = "score"
            options |= {"filter": "#score >= :min", "values": {":min": self.min_score}}
        if self.projected:
            names["#at"] = "at"  # AT is one of DynamoDB's reserved words
            options["projection"] = "#at, event_id, tag"
        return options | ({"names": names} if names else {})


def query_shapes(items: list[dict[str, Any]]) -> st.SearchStrategy[QueryShape]:
    return st.builds(
        QueryShape,
        # Small pages and filters most (hypothesis favours the first of a list): a shard's page
        # then often keeps nothing, and the merge must read that shard on before it may answer
        # another's item.
        page_size=st.sampled_from([1, 2, 3, 1, 5, None]),
        forward=st.booleans(),
        min_score=st.sampled_from([5, 3, 8, None]),
        # An `at` some item has, so that a query by prefix finds something.
        at=st.one_of(st.none(), st.none(), st.sampled_from([item["at"] for item in items])),
        projected=st.booleans(),
    )


async def every_page(feeds: Feeds, entity: str, options: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The pages of a query followed to its end, each item's entity and partition key blanked out."""
    pages, start = [], None
    while True:
        page = await feeds.client.query_page(
            feeds.table, entity=entity, consistent_read=True, exclusive_start_key=start, **options
        )
        pages.append([{k: k if k in DIFFERING else v for k, v in item.items()} for item in page.items])
        start = page.last_evaluated_key
        if start is None:
            return pages
        assert len(pages) <= 100, f"{entity}'s query never ends"


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: each step would write and query again on a live emulator, for minutes, past
    # the test's timeout; a failure reports its example at once, and derandomize replays it.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), items=events, shard_draws=st.randoms(use_true_random=False))
async def test_a_sharded_query_answers_what_the_same_data_unsharded_answers(
    feeds: Feeds, data: st.DataObject, items: list[dict[str, Any]], shard_draws: random.Random
) -> None:
    feed = f"f{next(_numbers)}"  # a logical partition of its own: no table per example
    # The gateway (in this process) draws each write's shard from hypothesis's generator, so a
    # failing example replays with its items in the same shards.
    with mock.patch.object(entities, "random", shard_draws):
        for item in items:  # one after another: the draws go to the items in order
            await feeds.client.put_item(feeds.table, {"feed": feed, **item}, entity="event")
    await asyncio.gather(
        *(feeds.client.put_item(feeds.table, {"feed": feed, **item}, entity="event_plain") for item in items)
    )
    for _ in range(4):
        shape = data.draw(query_shapes(items), label="query")
        sharded, plain = await asyncio.gather(
            every_page(feeds, "event", shape.options(feed)),
            every_page(feeds, "event_plain", shape.options(feed)),
        )
        assert [item for page in sharded for item in page] == [item for page in plain for item in page]
        if shape.page_size is not None:
            # Limit counts the items answered (DynamoDB's, those evaluated): every page is full but the last.
            assert all(len(page) == shape.page_size for page in sharded[:-1])
            assert len(sharded[-1]) <= shape.page_size


# ---------------------------------------------------------------- a calculated shard


async def test_a_calculated_shard_is_found_by_key_and_queried_alone(feeds: Feeds) -> None:
    feed = f"p{next(_numbers)}"
    post_ids = [f"post-{n}" for n in range(12)]
    for post_id in post_ids:
        await feeds.client.put_item(feeds.table, {"feed": feed, "post_id": post_id, "n": 1}, entity="post")
    shards_used = {zlib.crc32(post_id.encode()) % 4 for post_id in post_ids}
    assert len(shards_used) > 1, "the posts should spread over several shards"

    post = await feeds.client.get_item(
        feeds.table, {"feed": feed, "post_id": "post-7"}, entity="post", consistent_read=True
    )
    shard = zlib.crc32(b"post-7") % 4  # crc32 of the `by` attribute, modulo the count
    assert post is not None and post["pk"] == f"POSTS#{feed}#{shard}" and post["sk"] == "POST#post-7"

    queries = feeds.proxy.requests
    before = queries[("Query", feeds.table)]
    found = [
        item
        async for item in feeds.client.query(
            feeds.table, entity="post", entity_key={"feed": feed, "post_id": "post-7"}, consistent_read=True
        )
    ]
    assert [item["post_id"] for item in found] == ["post-7"]
    assert queries[("Query", feeds.table)] - before == 1, "the `by` attribute picks the one shard to read"

    before = queries[("Query", feeds.table)]
    every = [
        item
        async for item in feeds.client.query(
            feeds.table, entity="post", entity_key={"feed": feed}, consistent_read=True
        )
    ]
    assert [item["post_id"] for item in every] == sorted(post_ids)
    assert queries[("Query", feeds.table)] - before == 4, "without it, every shard is read"


# ---------------------------------------------------------------- the bench's hot partition


async def test_the_fault_proxy_limits_each_partitions_writes(emulator: Emulator, feeds: Feeds) -> None:
    """bench/sharding.py's emulator: a partition key value takes so many writes a second, no more."""
    rate = 4.0
    proxy = FaultProxy(emulator.endpoint_url, FaultPlan(partition_writes_per_s=rate))
    await proxy.start()
    backend = await aws_backend_for(proxy.endpoint_url)

    def put(pk: str, sk: str) -> dict[str, Any]:
        return {"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"S": sk}}}}

    try:
        began = time.monotonic()
        outcomes = []
        for n in range(10):
            try:
                await backend.call("PutItem", {"TableName": feeds.table, **put("hot", f"{n}")["PutRequest"]})
                outcomes.append("accepted")
            except BackendError as error:
                outcomes.append(error.code)
        # A second's worth at once, and what refilled while the calls ran.
        most = rate + int((time.monotonic() - began) * rate)
        assert rate <= outcomes.count("accepted") <= most, outcomes
        assert set(outcomes) == {"accepted", "ProvisionedThroughputExceededException"}
        # Another partition has writes of its own.
        await backend.call("PutItem", {"TableName": feeds.table, **put("cold", "0")["PutRequest"]})
        # A batch's writes over the limit come back unprocessed (its partitions' buckets are full,
        # and are counted down at once); the others are written.
        batch = [put("batch", f"{n}") for n in range(7)] + [put("other", "0")]
        answer = await backend.call("BatchWriteItem", {"RequestItems": {feeds.table: batch}})
        unprocessed = answer.get("UnprocessedItems", {}).get(feeds.table, [])
        assert unprocessed == batch[4:7]
        for write in batch:
            key = write["PutRequest"]["Item"]
            stored = await backend.call(
                "GetItem", {"TableName": feeds.table, "Key": key, "ConsistentRead": True}
            )
            assert ("Item" in stored) == (write not in unprocessed)
        assert proxy.injected["partition_throttle:PutItem"] == outcomes.count(
            "ProvisionedThroughputExceededException"
        )
    finally:
        await backend.close()
        await proxy.stop()
