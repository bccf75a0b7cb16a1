"""The benchmark's operations, as DynamoDB parameters (for the direct baseline) and as
gRPC request JSON (for ghz through the gateway). One definition, two spellings."""

from __future__ import annotations

from typing import Any

TABLE = "bench"

_KEY = {"pk": {"S": "user#1"}, "sk": {"S": "order#00000001"}}
_ITEM = {**_KEY, "status": {"S": "shipped"}, "amount": {"N": "42"}, "note": {"S": "x" * 64}}


def _batch(n: int) -> list[dict[str, Any]]:
    return [{"PutRequest": {"Item": {**_ITEM, "sk": {"S": f"order#{i:08d}"}}}} for i in range(n)]


def _keys(n: int) -> list[dict[str, Any]]:
    return [{**_KEY, "sk": {"S": f"order#{i:08d}"}} for i in range(n)]


def _transaction(n: int) -> list[dict[str, Any]]:
    return [{"Put": {"TableName": TABLE, "Item": {**_ITEM, "sk": {"S": f"order#{i:08d}"}}}} for i in range(n)]


_UPDATE = {
    "UpdateExpression": "SET #s = :s, amount = :a",
    "ExpressionAttributeNames": {"#s": "status"},
    "ExpressionAttributeValues": {":s": {"S": "delivered"}, ":a": {"N": "43"}},
}


# name -> (DynamoDB operation, its parameters, gRPC method, gRPC request JSON)
WORKLOADS: dict[str, tuple[str, dict[str, Any], str, dict[str, Any]]] = {
    "GetItem": (
        "GetItem",
        {"TableName": TABLE, "Key": _KEY},
        "GetItem",
        {"table_name": TABLE, "key": _KEY},
    ),
    "PutItem": (
        "PutItem",
        {"TableName": TABLE, "Item": _ITEM},
        "PutItem",
        {"table_name": TABLE, "item": _ITEM},
    ),
    "Query100": (
        "Query",
        {
            "TableName": TABLE,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "user#1"}},
        },
        "Query",
        {
            "table_name": TABLE,
            "key_condition_expression": "pk = :pk",
            "expression_attribute_values": {":pk": {"S": "user#1"}},
        },
    ),
    "UpdateItem": (
        "UpdateItem",
        {"TableName": TABLE, "Key": _KEY, **_UPDATE},
        "UpdateItem",
        {
            "table_name": TABLE,
            "key": _KEY,
            "update_expression": _UPDATE["UpdateExpression"],
            "expression_attribute_names": _UPDATE["ExpressionAttributeNames"],
            "expression_attribute_values": _UPDATE["ExpressionAttributeValues"],
        },
    ),
    # The stub answers a Query with "Limit": 10 with 10 items (and where to resume).
    "Query10": (
        "Query",
        {
            "TableName": TABLE,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "user#1"}},
            "Limit": 10,
        },
        "Query",
        {
            "table_name": TABLE,
            "key_condition_expression": "pk = :pk",
            "expression_attribute_values": {":pk": {"S": "user#1"}},
            "limit": 10,
        },
    ),
    "BatchGet25": (
        "BatchGetItem",
        {"RequestItems": {TABLE: {"Keys": _keys(25)}}},
        "BatchGetItem",
        {"request_items": {TABLE: {"keys": [{"attributes": key} for key in _keys(25)]}}},
    ),
    "TransactWrite5": (
        "TransactWriteItems",
        {"TransactItems": _transaction(5)},
        "TransactWriteItems",
        {
            "transact_items": [
                {"put": {"table_name": TABLE, "item": t["Put"]["Item"]}} for t in _transaction(5)
            ]
        },
    ),
    "BatchWrite25": (
        "BatchWriteItem",
        {"RequestItems": {TABLE: _batch(25)}},
        "BatchWriteItem",
        {
            "request_items": {
                TABLE: {"requests": [{"put_request": {"item": w["PutRequest"]["Item"]}} for w in _batch(25)]}
            }
        },
    ),
    # One call = every page of 4 segments (the stub serves --scan-pages pages of 100 items each).
    "ParallelScan": (
        "Scan",
        {"TableName": TABLE, "TotalSegments": 4},
        "ParallelScan",
        {"table_name": TABLE, "total_segments": 4},
    ),
}
