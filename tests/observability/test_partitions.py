"""Partition awareness: a skewed workload is flagged, a uniform one is not; sequential write keys warn."""

from __future__ import annotations

import random

from dynamo_gateway import GatewayClient
from dynamo_gateway_server.observability.hot_partitions import HotPartitionDetector, SequentialKeyDetector
from dynamo_gateway_server.observability.keys import KeyRenderer

from .conftest import value

HASH = KeyRenderer("hashed").hash
DETECTION = {
    "hot_partition_window": 50,
    "hot_partition_share": 0.3,
    "hot_partition_top_k": 3,
    "sequential_key_window": 20,
}


async def test_a_skewed_workload_is_flagged_and_a_uniform_one_is_not(
    observe, table_factory, capture_logs
) -> None:
    logs = capture_logs("INFO")
    observed = await observe(**DETECTION)
    client = GatewayClient(observed.channel)
    skewed, uniform = await table_factory(), await table_factory()
    for table in (skewed, uniform):
        await client.put_item(table, {"pk": "warm-up", "sk": "x"})  # teaches the gateway the key schema
    await observed.learnt()
    # One window of 50 requests each: 30 to one key and 20 spread out, or 2 to each of 25 keys.
    skewed_keys = ["celebrity"] * 30 + [f"fan{n}" for n in range(20)]
    random.Random(7).shuffle(skewed_keys)
    for key in skewed_keys:
        await client.get_item(skewed, {"pk": key, "sk": "x"})
    for key in [f"user{n}" for n in range(25)] * 2:
        await client.get_item(uniform, {"pk": key, "sk": "x"})

    m = await observed.scrape()
    celebrity = HASH({"S": "celebrity"})
    assert value(m, "dynamodb_hot_partitions_detected_total", table=skewed) == 1
    assert value(m, "dynamodb_hot_partition_key_share", table=skewed, key_hash=celebrity) == 0.6
    assert value(m, "dynamodb_hot_partitions_detected_total", table=uniform) == 0
    uniform_shares = [
        v
        for (name, labels), v in m.items()
        if name == "dynamodb_hot_partition_key_share" and ("table", uniform) in labels
    ]
    assert len(uniform_shares) == 3 and max(uniform_shares) <= 0.04  # top k only, each a small share
    warnings = [line for line in logs.lines() if line["message"] == "hot partition key"]
    assert [(line["level"], line["table"], line["key_hash"]) for line in warnings] == [
        ("WARNING", skewed, celebrity)
    ]
    # 0.6 of the writes over 3 shards is 0.2 each, under the 0.3 threshold.
    assert warnings[0]["suggested_shards"] == 3
    assert "celebrity" not in logs.text() + await observed.scrape_text()  # only the hash is shown


async def test_increasing_write_keys_warn_once_and_random_ones_do_not(
    observe, table_factory, capture_logs
) -> None:
    logs = capture_logs("INFO")
    observed = await observe(**DETECTION)
    client = GatewayClient(observed.channel)
    sequential, scattered = await table_factory(sort_key=False), await table_factory(sort_key=False)
    for table in (sequential, scattered):
        await client.put_item(table, {"pk": "0"})
    for second in range(30):
        await client.put_item(sequential, {"pk": f"2026-01-01T00:00:{second:02d}Z"})  # a timestamp as key
    generator = random.Random(11)
    for _ in range(30):
        await client.put_item(scattered, {"pk": f"{generator.getrandbits(64):016x}"})
    m = await observed.scrape()
    assert value(m, "dynamodb_sequential_partition_keys_detected_total", table=sequential) == 1
    assert value(m, "dynamodb_sequential_partition_keys_detected_total", table=scattered) == 0
    warned = [line["table"] for line in logs.lines() if "monotonically increasing" in line["message"]]
    assert warned == [sequential]


def test_space_saving_keeps_a_heavy_key_among_many_light_ones() -> None:
    detector = HotPartitionDetector(window=1000, share=0.2, top_k=3)
    keys = ["heavy"] * 300 + [f"k{n}" for n in range(700)]  # 700 distinct keys, far more than the counters
    random.Random(3).shuffle(keys)
    reports = [report for key in keys if (report := detector.record("t", key))]
    (report,) = reports
    assert report.requests == 1000
    assert report.top[0].key_hash == "heavy" and report.hot == (report.top[0],)
    assert 0.2 < report.top[0].share <= 0.3  # a guaranteed lower bound, never an overstatement


def test_detectors_stay_bounded_in_tables() -> None:
    hot = HotPartitionDetector(window=10, share=0.5, top_k=2, max_tables=4)
    sequential = SequentialKeyDetector(window=5, max_tables=4)
    for number in range(100):
        hot.record(f"table{number}", "k")
        sequential.record(f"table{number}", {"N": str(number)})
    assert len(hot._tables) <= 4 and len(sequential._tables) <= 4


def test_sequential_detection_rearms_after_the_pattern_stops() -> None:
    detector = SequentialKeyDetector(window=10)
    rising = [detector.record("t", {"N": str(n)}) for n in range(30)]
    assert rising.count(True) == 1
    generator = random.Random(5)
    for _ in range(30):
        detector.record("t", {"N": str(generator.randint(0, 10**9))})
    again = [detector.record("t", {"N": str(10**10 + n)}) for n in range(30)]
    assert again.count(True) == 1
