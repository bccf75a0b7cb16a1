"""The regions file and where each call of a global table may go (global_tables.py)."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from dynamo_gateway_server.global_tables import (
    GlobalTableModeError,
    RegionsConfig,
    RegionsFileError,
    Routes,
    parse_regions,
)

REGIONS = """
regions:
  us-east-1: {}
  eu-west-1: {endpoint: "http://127.0.0.1:9001"}
  ap-southeast-2: {}
"""

TABLES = """
global_tables:
  anywhere: {}
  primary:
    write_mode: one
    primary: eu-west-1
  promoted:
    write_mode: one
    primary: eu-west-1
    promote_on_failure: true
    replicas: [eu-west-1, ap-southeast-2, us-east-1]
  homes:
    write_mode: home
    home:
      key: pk
      prefixes: {"EU#": eu-west-1, "US#": us-east-1, "US#WEST#": ap-southeast-2}
      fallback: {eu-west-1: us-east-1}
  strong:
    consistency: MRSC
"""


def config(extra: str = "", local: str = "us-east-1") -> RegionsConfig:
    return parse_regions((REGIONS + TABLES + extra).encode(), "regions.yaml", local)


def route(operation: str, params: dict[str, Any], extra: str = "") -> tuple[str, ...]:
    return Routes(config(extra)).route(operation, params)


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


# ---------------------------------------------------------------- the file


def test_the_file_gives_regions_endpoints_and_modes() -> None:
    parsed = config()
    assert parsed.local == "us-east-1"
    assert parsed.regions == ("us-east-1", "eu-west-1", "ap-southeast-2")
    assert parsed.endpoints["eu-west-1"] == "http://127.0.0.1:9001"
    assert parsed.endpoints["us-east-1"] is None
    assert parsed.tables["anywhere"].replicas == ("us-east-1", "eu-west-1", "ap-southeast-2")
    assert parsed.tables["primary"].primary == "eu-west-1"
    homes = parsed.tables["homes"].home
    assert homes is not None
    assert homes.home_of("US#WEST#7") == "ap-southeast-2"  # the longest prefix wins
    assert homes.home_of("US#7") == "us-east-1"
    assert homes.home_of("ZZ#7") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("regions: {eu-west-1: {}}\n", "the gateway's own region us-east-1"),
        (REGIONS + "evacuated: [mars-1]\n", "'mars-1' is not one of the regions"),
        (REGIONS + "global_tables: {t: {consistency: MRSC, write_mode: one, primary: us-east-1}}\n", "MRSC"),
        (REGIONS + "global_tables: {t: {write_mode: one}}\n", "needs the primary region"),
        (REGIONS + "global_tables: {t: {write_mode: sometimes}}\n", "not one of any, one, home"),
        (REGIONS + "global_tables: {t: {write_mode: home}}\n", "write mode home needs"),
        (
            REGIONS + "global_tables: {t: {write_mode: home, home: {key: pk, prefixes: {A: us-east-1}, "
            "fallback: {us-east-1: us-east-1}}}}\n",
            "its own fallback",
        ),
        (REGIONS + "global_tables: {t: {replicas: [us-east-1]}}\n", "at least two replicas"),
        (REGIONS + "global_tables: {t: {primary: us-east-1}}\n", "for write mode one"),
        (REGIONS + "global_tables: {t: {colour: blue}}\n", "unknown setting 'colour'"),
        ("regions: {us-east-1: {endpoint: ftp://x}}\n", "http:// or https://"),
        (REGIONS + "replication_heartbeat: {table: nope}\n", "not one of the global tables"),
        ("regions: [\n", "not YAML"),
    ],
)
def test_a_mistake_in_the_file_is_named(text: str, message: str) -> None:
    with pytest.raises(RegionsFileError) as refused:
        parse_regions(textwrap.dedent(text).encode(), "regions.yaml", "us-east-1")
    assert message in str(refused.value)
    assert "regions.yaml" in str(refused.value)


# ---------------------------------------------------------------- routes


def test_a_table_the_file_does_not_name_stays_in_the_local_region() -> None:
    assert route("GetItem", {"TableName": "plain", "Key": key("a")}) == ("us-east-1",)
    assert route("PutItem", {"TableName": "plain", "Item": key("a")}) == ("us-east-1",)


def test_write_to_any_reads_and_writes_locally_first_and_may_fail_over_anywhere() -> None:
    everywhere = ("us-east-1", "eu-west-1", "ap-southeast-2")
    assert route("GetItem", {"TableName": "anywhere", "Key": key("a")}) == everywhere
    assert route("PutItem", {"TableName": "anywhere", "Item": key("a")}) == everywhere
    assert (
        route("BatchWriteItem", {"RequestItems": {"anywhere": [{"PutRequest": {"Item": key("a")}}]}})
        == everywhere
    )


@pytest.mark.parametrize(
    ("operation", "params", "why"),
    [
        (
            "GetItem",
            {"TableName": "anywhere", "Key": key("a"), "ConsistentRead": True},
            "strongly consistent",
        ),
        (
            "PutItem",
            {"TableName": "anywhere", "Item": key("a"), "ConditionExpression": "attribute_not_exists(pk)"},
            "tests a condition",
        ),
        (
            "TransactWriteItems",
            {"TransactItems": [{"Put": {"TableName": "anywhere", "Item": key("a")}}]},
            "transaction",
        ),
        (
            "BatchGetItem",
            {"RequestItems": {"anywhere": {"Keys": [key("a")], "ConsistentRead": True}}},
            "strongly consistent",
        ),
    ],
)
def test_write_to_any_refuses_what_one_region_cannot_answer_for_all(
    operation: str, params: dict[str, Any], why: str
) -> None:
    with pytest.raises(GlobalTableModeError) as refused:
        route(operation, params)
    assert why in str(refused.value)
    assert refused.value.table == "anywhere" and refused.value.write_mode == "any"


def test_write_to_one_sends_writes_and_strong_reads_to_the_primary_only() -> None:
    assert route("PutItem", {"TableName": "primary", "Item": key("a")}) == ("eu-west-1",)
    assert route("GetItem", {"TableName": "primary", "Key": key("a"), "ConsistentRead": True}) == (
        "eu-west-1",
    )
    conditional = {"TableName": "primary", "Key": key("a"), "ConditionExpression": "attribute_exists(pk)"}
    assert route("DeleteItem", conditional) == ("eu-west-1",)
    # Eventually consistent reads stay local.
    assert route("Query", {"TableName": "primary", "KeyConditionExpression": "pk = :p"})[0] == "us-east-1"


def test_write_to_one_with_promotion_fails_over_to_the_other_replicas() -> None:
    assert route("PutItem", {"TableName": "promoted", "Item": key("a")}) == (
        "eu-west-1",
        "us-east-1",
        "ap-southeast-2",
    )


def test_an_evacuated_primary_leaves_writes_nowhere_until_another_is_named() -> None:
    assert route("PutItem", {"TableName": "primary", "Item": key("a")}, "evacuated: [eu-west-1]\n") == ()
    # Reads go on elsewhere.
    assert route("GetItem", {"TableName": "primary", "Key": key("a")}, "evacuated: [us-east-1]\n") == (
        "eu-west-1",
        "ap-southeast-2",
    )


def test_write_to_home_sends_each_item_home_then_to_its_fallback() -> None:
    assert route("PutItem", {"TableName": "homes", "Item": key("EU#1")}) == ("eu-west-1", "us-east-1")
    assert route("PutItem", {"TableName": "homes", "Item": key("US#WEST#1")}) == ("ap-southeast-2",)
    query = {
        "TableName": "homes",
        "KeyConditionExpression": "#k = :p AND begins_with(sk, :s)",
        "ExpressionAttributeNames": {"#k": "pk"},
        "ExpressionAttributeValues": {":p": {"S": "EU#9"}, ":s": {"S": "x"}},
        "ConsistentRead": True,
    }
    assert route("Query", query) == ("eu-west-1", "us-east-1")
    same_home = {
        "RequestItems": {
            "homes": [{"PutRequest": {"Item": key("EU#1")}}, {"DeleteRequest": {"Key": key("EU#2")}}]
        }
    }
    assert route("BatchWriteItem", same_home) == ("eu-west-1", "us-east-1")


@pytest.mark.parametrize(
    ("operation", "params", "why"),
    [
        ("PutItem", {"TableName": "homes", "Item": key("ZZ#1")}, "no home prefix matches"),
        ("PutItem", {"TableName": "homes", "Item": {"other": {"S": "x"}}}, "does not say which region"),
        ("Scan", {"TableName": "homes", "ConsistentRead": True}, "does not say which region"),
        (
            "BatchWriteItem",
            {
                "RequestItems": {
                    "homes": [{"PutRequest": {"Item": key("EU#1")}}, {"PutRequest": {"Item": key("US#1")}}]
                }
            },
            "different home regions",
        ),
    ],
)
def test_write_to_home_refuses_calls_whose_home_cannot_be_told(
    operation: str, params: dict[str, Any], why: str
) -> None:
    with pytest.raises(GlobalTableModeError) as refused:
        route(operation, params)
    assert why in str(refused.value)


def test_mrsc_serves_everything_locally_first_and_fails_over_anywhere() -> None:
    everywhere = ("us-east-1", "eu-west-1", "ap-southeast-2")
    assert route("GetItem", {"TableName": "strong", "Key": key("a"), "ConsistentRead": True}) == everywhere
    transaction = {
        "TransactItems": [{"Put": {"TableName": "strong", "Item": key("a"), "ConditionExpression": "x"}}]
    }
    assert route("TransactWriteItems", transaction) == everywhere


def test_a_request_over_tables_no_one_region_may_serve_is_refused() -> None:
    transaction = {
        "TransactItems": [
            {"Put": {"TableName": "primary", "Item": key("a")}},
            {"Put": {"TableName": "plain", "Item": key("b")}},
        ]
    }
    with pytest.raises(GlobalTableModeError) as refused:
        route("TransactWriteItems", transaction)
    assert "no region may serve both primary (in eu-west-1) and plain (in us-east-1)" in str(refused.value)
