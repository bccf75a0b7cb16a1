"""The one walker: every table, item and key a request touches, with the caller's field path."""

from __future__ import annotations

from typing import Any

from dynamo_gateway_server.request_shape import ITEM, KEY, TABLE, has_expressions, tables, walk

A = {"pk": {"S": "a"}}
B = {"pk": {"S": "b"}}


def _parts(operation: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (part.kind, part.table, part.field, part.writes, part.index_name, part.position)
        for part in walk(operation, params)
    ]


def test_a_single_item_request_touches_its_table_and_its_key() -> None:
    assert _parts("GetItem", {"TableName": "t", "Key": A}) == [
        (TABLE, "t", "", False, None, -1),
        (KEY, "t", "key", False, None, -1),
    ]
    assert _parts("UpdateItem", {"TableName": "t", "Key": A}) == [
        (TABLE, "t", "", True, None, -1),
        (KEY, "t", "key", True, None, -1),
    ]
    assert _parts("PutItem", {"TableName": "t", "Item": A}) == [
        (TABLE, "t", "", True, None, -1),
        (ITEM, "t", "item", True, None, -1),
    ]


def test_a_query_names_its_index() -> None:
    assert _parts("Query", {"TableName": "t", "IndexName": "gsi1"}) == [(TABLE, "t", "", False, "gsi1", -1)]


def test_batch_writes_keep_their_table_and_position() -> None:
    params = {
        "RequestItems": {
            "t1": [{"PutRequest": {"Item": A}}, {"DeleteRequest": {"Key": B}}],
            "t2": [{"PutRequest": {"Item": B}}],
        }
    }
    assert _parts("BatchWriteItem", params) == [
        (TABLE, "t1", "request_items[t1]", True, None, -1),
        (ITEM, "t1", "request_items[t1].requests[0].put_request.item", True, None, 0),
        (KEY, "t1", "request_items[t1].requests[1].delete_request.key", True, None, 1),
        (TABLE, "t2", "request_items[t2]", True, None, -1),
        (ITEM, "t2", "request_items[t2].requests[0].put_request.item", True, None, 0),
    ]


def test_batch_gets_are_keys_read() -> None:
    params = {"RequestItems": {"t": {"Keys": [A, B], "ProjectionExpression": "pk"}}}
    parts = list(walk("BatchGetItem", params))
    assert [(p.kind, p.field, p.writes, p.position) for p in parts] == [
        (TABLE, "request_items[t]", False, -1),
        (KEY, "request_items[t].keys[0]", False, 0),
        (KEY, "request_items[t].keys[1]", False, 1),
    ]
    assert has_expressions(parts[0].value)


def test_transaction_actions_name_their_kind_and_whether_they_write() -> None:
    params = {
        "TransactItems": [
            {"Put": {"TableName": "a", "Item": A}},
            {"ConditionCheck": {"TableName": "b", "Key": B, "ConditionExpression": "attribute_exists(pk)"}},
            {"Get": {"TableName": "c", "Key": A}},
        ]
    }
    assert _parts("TransactWriteItems", params) == [
        (TABLE, "a", "transact_items[0].put", True, None, -1),
        (ITEM, "a", "transact_items[0].put.item", True, None, -1),
        (TABLE, "b", "transact_items[1].condition_check", False, None, -1),
        (KEY, "b", "transact_items[1].condition_check.key", False, None, -1),
        (TABLE, "c", "transact_items[2].get", False, None, -1),
        (KEY, "c", "transact_items[2].get.key", False, None, -1),
    ]


def test_tables_are_listed_once_in_a_stable_order() -> None:
    assert tables("GetItem", {"TableName": "t"}) == ("t",)
    batch = {"RequestItems": {"z": [{"PutRequest": {"Item": A}}], "a": [{"DeleteRequest": {"Key": A}}]}}
    assert tables("BatchWriteItem", batch) == ("a", "z")
    transaction = {"TransactItems": [{"Put": {"TableName": "b"}}, {"Update": {"TableName": "b"}}]}
    assert tables("TransactWriteItems", transaction) == ("b",)
    assert tables("ListTables", {}) == ("",)
