"""The scripted calls of the differential test: every data-plane operation, option and error kind.

Each Case is one boto3 call. The script runs in order (writes before the reads that
see them) once through boto3 straight to an emulator and once through the facade
and a gateway in front of another emulator of the same kind, on identically created
tables. Outcomes are compared case by case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from dynamo_gateway_server.tables import TableSpec, create_table_params
from tests.support.tables import APP_TABLE

APP = "app"  # pk S, sk S; gsi1 (gsi1pk, gsi1sk); lsi1 (pk, created_at N)
HASH = "hash"  # pk S
BLOBS = "blobs"  # pk B
MISSING = "no-such-table"
SCRATCH = "scratch"  # pk S; the target of refused writes, which no read looks at

TABLES: list[dict[str, Any]] = [
    create_table_params(replace(APP_TABLE, name=APP)),
    *(
        create_table_params(TableSpec(name=name, attributes={"pk": kind}, partition_key="pk"))
        for name, kind in ((HASH, "S"), (SCRATCH, "S"), (BLOBS, "B"))
    ),
]


def S(text: str) -> dict[str, str]:
    return {"S": text}


def N(text: str) -> dict[str, str]:
    return {"N": text}


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": S(pk), "sk": S(sk)}


EVERY_TYPE = {
    **key("user#1", "profile"),
    "s": S("héllo"),
    "empty_s": S(""),
    "n": N("42"),
    "n_frac": N("-0.125"),
    "n_big": N("1234567890123456789012345678901234567.8"),
    "b": {"B": bytes(range(256))},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"\x00", b"\xff"]},
    "m": {"M": {"nested": {"M": {"deeper": {"L": [N("1"), S("two"), {"NULL": True}, {"BOOL": True}]}}}}},
    "empty_m": {"M": {}},
    "l": {"L": [N("1"), S("x"), {"B": b"y"}, {"M": {"z": {"BOOL": False}}}, {"L": []}]},
    "null": {"NULL": True},
    "bool": {"BOOL": False},
    "gsi1pk": S("org#1"),
    "gsi1sk": S("user#1"),
    "created_at": N("100"),
}


Outcome = dict[str, Any]


@dataclass(frozen=True)
class Differs:
    """A known, explained difference: on `kinds`, the facade must answer `expect(boto3's outcome)`."""

    kinds: frozenset[str]
    # "emulator": the emulator strays from DynamoDB and the facade answers as DynamoDB does.
    # "gateway": a deliberate behaviour of the gateway the facade cannot hide (documented).
    who: str
    why: str
    expect: Callable[[Outcome], Outcome]


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    params: dict[str, Any]
    # Needs transactions (dynalite has none).
    transactions: bool = False
    differs: tuple[Differs, ...] = ()

    def differs_on(self, kind: str) -> Differs | None:
        return next((d for d in self.differs if kind in d.kinds), None)


MOTO = frozenset({"moto"})
DYNALITE = frozenset({"dynalite"})
BOTH = MOTO | DYNALITE


def validation(message: str) -> Callable[[Outcome], Outcome]:
    """DynamoDB's ValidationException (not a modeled error: plain ClientError, no `message` member)."""
    return lambda _: {
        "error": "ClientError",
        "response": {"Error": {"Message": message, "Code": "ValidationException"}},
    }


def without(*keys: str) -> Callable[[Outcome], Outcome]:
    """boto3's successful outcome without response keys DynamoDB would not have sent."""
    return lambda outcome: {"ok": {k: v for k, v in outcome["ok"].items() if k not in keys}}


def moto_unasked_capacity(*extra: str) -> Differs:
    return Differs(
        MOTO,
        "emulator",
        "moto sends ConsumedCapacity (and ItemCollectionMetrics) nobody asked for; DynamoDB does not",
        without("ConsumedCapacity", *extra),
    )


def _orders() -> list[Case]:
    cases = []
    for index in range(7):
        item = {
            **key("order#1", f"line#{index}"),
            "qty": N(str(index)),
            "gsi1pk": S("org#1"),
            "gsi1sk": S(f"order#{index}"),
            "created_at": N(str(200 + index)),
        }
        cases.append(Case(f"put order line {index}", "put_item", {"TableName": APP, "Item": item}))
    return cases


CASES: list[Case] = [
    # ------------------------------------------------------------ PutItem
    Case("put every type", "put_item", {"TableName": APP, "Item": EVERY_TYPE}),
    Case(
        "put returning the old item",
        "put_item",
        {"TableName": APP, "Item": {**EVERY_TYPE, "n": N("43")}, "ReturnValues": "ALL_OLD"},
    ),
    Case(
        "put new item returning ALL_OLD has no Attributes",
        "put_item",
        {"TableName": APP, "Item": key("user#2", "profile"), "ReturnValues": "ALL_OLD"},
    ),
    Case(
        "put with a condition and names/values that holds",
        "put_item",
        {
            "TableName": APP,
            "Item": {**key("user#2", "profile"), "v": N("1")},
            "ConditionExpression": "attribute_exists(#pk) AND NOT contains(#pk, :x)",
            "ExpressionAttributeNames": {"#pk": "pk"},
            "ExpressionAttributeValues": {":x": S("zzz")},
        },
    ),
    Case(
        "put with a failing condition",
        "put_item",
        {
            "TableName": APP,
            "Item": key("user#1", "profile"),
            "ConditionExpression": "attribute_not_exists(pk)",
        },
    ),
    Case(
        "put with a failing condition returning the old item",
        "put_item",
        {
            "TableName": APP,
            "Item": key("user#2", "profile"),
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    ),
    Case(
        "put returning consumed capacity TOTAL",
        "put_item",
        {"TableName": HASH, "Item": {"pk": S("h1"), "v": N("1")}, "ReturnConsumedCapacity": "TOTAL"},
    ),
    Case(
        "put returning consumed capacity INDEXES",
        "put_item",
        {
            "TableName": APP,
            "Item": {**key("user#3", "x"), "gsi1pk": S("org#2")},
            "ReturnConsumedCapacity": "INDEXES",
        },
    ),
    Case(
        "put returning item collection metrics",
        "put_item",
        {"TableName": APP, "Item": key("user#3", "y"), "ReturnItemCollectionMetrics": "SIZE"},
    ),
    Case(
        "put with ReturnValues DynamoDB refuses for PutItem",
        "put_item",
        {"TableName": HASH, "Item": {"pk": S("h2")}, "ReturnValues": "ALL_NEW"},
    ),
    Case("put without the sort key", "put_item", {"TableName": APP, "Item": {"pk": S("x")}}),
    Case("put with a key of the wrong type", "put_item", {"TableName": HASH, "Item": {"pk": N("1")}}),
    Case("put into a missing table", "put_item", {"TableName": MISSING, "Item": {"pk": S("x")}}),
    Case(
        "put with an expression syntax error",
        "put_item",
        {"TableName": HASH, "Item": {"pk": S("h3")}, "ConditionExpression": "attribute_not_exists(("},
    ),
    Case(
        "put with an unused expression value",
        "put_item",
        {
            "TableName": HASH,
            "Item": {"pk": S("h3")},
            "ConditionExpression": "attribute_not_exists(pk)",
            "ExpressionAttributeValues": {":unused": S("x")},
        },
    ),
    Case(
        "put a binary key",
        "put_item",
        {"TableName": BLOBS, "Item": {"pk": {"B": b"\x00\x01"}, "v": S("bin")}},
    ),
    Case(
        "put a binary given as str (boto3 sends its UTF-8 bytes)",
        "put_item",
        {"TableName": BLOBS, "Item": {"pk": {"B": "text-key"}, "v": {"B": bytearray(b"ba")}}},
    ),
    Case(
        "put an item over 400 KB",
        "put_item",
        {"TableName": HASH, "Item": {"pk": S("big"), "blob": S("x" * (401 * 1024))}},
    ),
    # Refused before sending, by botocore (boto3) and by the facade alike.
    Case("put a number given as int", "put_item", {"TableName": HASH, "Item": {"pk": S("x"), "n": {"N": 1}}}),
    Case(
        "put with an unknown parameter", "put_item", {"TableName": HASH, "Item": {"pk": S("x")}, "Bogus": 1}
    ),
    Case("put without an Item", "put_item", {"TableName": HASH}),
    Case("put to a table name too short", "put_item", {"TableName": "ab", "Item": {"pk": S("x")}}),
    # Values DynamoDB refuses outright: the gateway refuses them too, in its own words, so the
    # facade checks them first and answers with DynamoDB's.
    Case(
        "put a number of 39 digits",
        "put_item",
        {"TableName": SCRATCH, "Item": {"pk": S("x"), "n": N("1" * 39)}},
    ),
    Case(
        "put a number too large", "put_item", {"TableName": SCRATCH, "Item": {"pk": S("x"), "n": N("1E+126")}}
    ),
    Case(
        "put a number too small", "put_item", {"TableName": SCRATCH, "Item": {"pk": S("x"), "n": N("1E-131")}}
    ),
    Case(
        "put a number that is not one",
        "put_item",
        {"TableName": SCRATCH, "Item": {"pk": S("x"), "n": N("12abc")}},
    ),
    Case(
        "put an empty string set",
        "put_item",
        {"TableName": SCRATCH, "Item": {"pk": S("x"), "ss": {"SS": []}}},
    ),
    Case(
        "put an empty number set",
        "put_item",
        {"TableName": SCRATCH, "Item": {"pk": S("x"), "ns": {"NS": []}}},
    ),
    Case(
        "put an empty binary set",
        "put_item",
        {"TableName": SCRATCH, "Item": {"pk": S("x"), "bs": {"BS": []}}},
    ),
    Case(
        "put a string set with duplicates",
        "put_item",
        {"TableName": SCRATCH, "Item": {"pk": S("x"), "ss": {"SS": ["a", "b", "a"]}}},
    ),
    Case(
        "put a number set with equal numbers",
        "put_item",
        {"TableName": SCRATCH, "Item": {"pk": S("x"), "ns": {"NS": ["1", "1.0"]}}},
    ),
    Case("put NULL false", "put_item", {"TableName": SCRATCH, "Item": {"pk": S("x"), "z": {"NULL": False}}}),
    Case(
        "put a value with two types",
        "put_item",
        {"TableName": SCRATCH, "Item": {"pk": S("x"), "two": {"S": "a", "N": "1"}}},
    ),
    Case("put a value with no type", "put_item", {"TableName": SCRATCH, "Item": {"pk": S("x"), "none": {}}}),
    Case(
        "put a nested bad number",
        "put_item",
        {"TableName": SCRATCH, "Item": {"pk": S("x"), "m": {"M": {"l": {"L": [N("1e999")]}}}}},
    ),
    # Parameters the contracts cannot tell from absent ("" is no expression, {} no names).
    Case(
        "put with an empty condition",
        "put_item",
        {"TableName": SCRATCH, "Item": {"pk": S("x")}, "ConditionExpression": ""},
    ),
    Case(
        "put with empty attribute names",
        "put_item",
        {
            "TableName": SCRATCH,
            "Item": {"pk": S("x")},
            "ConditionExpression": "attribute_not_exists(pk)",
            "ExpressionAttributeNames": {},
        },
    ),
    Case(
        "put with empty attribute values",
        "put_item",
        {
            "TableName": SCRATCH,
            "Item": {"pk": S("x")},
            "ConditionExpression": "attribute_not_exists(pk)",
            "ExpressionAttributeValues": {},
        },
    ),
    Case(
        "put with an unknown ReturnValues",
        "put_item",
        {"TableName": SCRATCH, "Item": {"pk": S("x")}, "ReturnValues": "FOO"},
    ),
    Case(
        "put with an unknown ReturnConsumedCapacity",
        "put_item",
        {"TableName": SCRATCH, "Item": {"pk": S("x")}, "ReturnConsumedCapacity": "ALL"},
    ),
    Case("put to a table name with spaces", "put_item", {"TableName": "bad name!", "Item": {"pk": S("x")}}),
    # ------------------------------------------------------------ GetItem
    Case("get every type", "get_item", {"TableName": APP, "Key": key("user#1", "profile")}),
    Case(
        "get consistently, projected, with names, with capacity",
        "get_item",
        {
            "TableName": APP,
            "Key": key("user#1", "profile"),
            "ConsistentRead": True,
            "ProjectionExpression": "#s, m.nested, l[1], ss",
            "ExpressionAttributeNames": {"#s": "s"},
            "ReturnConsumedCapacity": "TOTAL",
        },
    ),
    Case("get a missing item", "get_item", {"TableName": APP, "Key": key("nobody", "x")}),
    Case("get a binary key", "get_item", {"TableName": BLOBS, "Key": {"pk": {"B": b"\x00\x01"}}}),
    Case("get a key given as str binary", "get_item", {"TableName": BLOBS, "Key": {"pk": {"B": "text-key"}}}),
    Case("get with a partial key", "get_item", {"TableName": APP, "Key": {"pk": S("user#1")}}),
    Case(
        "get with an extra key attribute",
        "get_item",
        {"TableName": HASH, "Key": {"pk": S("h1"), "other": S("x")}},
    ),
    Case("get with an empty key", "get_item", {"TableName": HASH, "Key": {}}),
    Case("get from a missing table", "get_item", {"TableName": MISSING, "Key": {"pk": S("x")}}),
    Case(
        "get with an undefined name in the projection",
        "get_item",
        {"TableName": HASH, "Key": {"pk": S("h1")}, "ProjectionExpression": "#nope"},
    ),
    # ------------------------------------------------------------ UpdateItem
    Case(
        "update SET/ADD/REMOVE returning ALL_NEW",
        "update_item",
        {
            "TableName": APP,
            "Key": key("user#1", "profile"),
            "UpdateExpression": "SET s = :s, l = list_append(l, :more) ADD n :one, ss :tags REMOVE empty_s",
            "ExpressionAttributeValues": {
                ":s": S("new"),
                ":more": {"L": [S("appended")]},
                ":one": N("1"),
                ":tags": {"SS": ["c"]},
            },
            "ReturnValues": "ALL_NEW",
        },
    ),
    Case(
        "update returning UPDATED_OLD",
        "update_item",
        {
            "TableName": APP,
            "Key": key("user#1", "profile"),
            "UpdateExpression": "SET n = n + :one DELETE ss :a",
            "ExpressionAttributeValues": {":one": N("1"), ":a": {"SS": ["a"]}},
            "ReturnValues": "UPDATED_OLD",
        },
    ),
    Case(
        "update returning UPDATED_NEW",
        "update_item",
        {
            "TableName": APP,
            "Key": key("user#1", "profile"),
            "UpdateExpression": "SET #m.nested.extra = :x",
            "ExpressionAttributeNames": {"#m": "m"},
            "ExpressionAttributeValues": {":x": N("7")},
            "ReturnValues": "UPDATED_NEW",
        },
    ),
    Case(
        "update returning ALL_OLD",
        "update_item",
        {
            "TableName": HASH,
            "Key": {"pk": S("h1")},
            "UpdateExpression": "SET v = :v",
            "ExpressionAttributeValues": {":v": N("2")},
            "ReturnValues": "ALL_OLD",
            "ReturnConsumedCapacity": "TOTAL",
        },
    ),
    Case(
        "update creating an item, returning NONE",
        "update_item",
        {
            "TableName": HASH,
            "Key": {"pk": S("h-new")},
            "UpdateExpression": "SET v = :v",
            "ExpressionAttributeValues": {":v": N("1")},
            "ReturnValues": "NONE",
        },
    ),
    Case(
        "update with a failing condition returning the old item",
        "update_item",
        {
            "TableName": HASH,
            "Key": {"pk": S("h1")},
            "UpdateExpression": "SET v = :v",
            "ConditionExpression": "v = :old",
            "ExpressionAttributeValues": {":v": N("3"), ":old": N("999")},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    ),
    Case(
        "update of a key attribute",
        "update_item",
        {
            "TableName": HASH,
            "Key": {"pk": S("h1")},
            "UpdateExpression": "SET pk = :v",
            "ExpressionAttributeValues": {":v": S("other")},
        },
    ),
    Case(
        "update with a syntax error",
        "update_item",
        {"TableName": HASH, "Key": {"pk": S("h1")}, "UpdateExpression": "SET = oops"},
    ),
    Case(
        "update adding to a string",
        "update_item",
        {
            "TableName": APP,
            "Key": key("user#1", "profile"),
            "UpdateExpression": "ADD s :one",
            "ExpressionAttributeValues": {":one": N("1")},
        },
    ),
    # ------------------------------------------------------------ DeleteItem
    Case(
        "delete returning the old item",
        "delete_item",
        {"TableName": HASH, "Key": {"pk": S("h-new")}, "ReturnValues": "ALL_OLD"},
    ),
    Case("delete a missing item", "delete_item", {"TableName": HASH, "Key": {"pk": S("h-new")}}),
    Case(
        "delete with a failing condition returning the old item",
        "delete_item",
        {
            "TableName": HASH,
            "Key": {"pk": S("h1")},
            "ConditionExpression": "attribute_not_exists(v)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ReturnConsumedCapacity": "TOTAL",
        },
    ),
    Case(
        "delete with ReturnValues DynamoDB refuses for DeleteItem",
        "delete_item",
        {"TableName": HASH, "Key": {"pk": S("h1")}, "ReturnValues": "UPDATED_NEW"},
    ),
    # ------------------------------------------------------------ Query
    *_orders(),
    Case(
        "query a partition",
        "query",
        {
            "TableName": APP,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": S("order#1")},
        },
    ),
    Case(
        "query first page with Limit",
        "query",
        {
            "TableName": APP,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": S("order#1")},
            "Limit": 3,
        },
    ),
    Case(
        "query from ExclusiveStartKey, backwards",
        "query",
        {
            "TableName": APP,
            "KeyConditionExpression": "pk = :pk AND sk < :sk",
            "ExpressionAttributeValues": {":pk": S("order#1"), ":sk": S("line#9")},
            "ExclusiveStartKey": key("order#1", "line#5"),
            "ScanIndexForward": False,
            "Limit": 2,
        },
    ),
    Case(
        "query with filter, projection and capacity",
        "query",
        {
            "TableName": APP,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :line)",
            "FilterExpression": "qty >= :two",
            "ProjectionExpression": "sk, qty",
            "ExpressionAttributeValues": {":pk": S("order#1"), ":line": S("line#"), ":two": N("2")},
            "ReturnConsumedCapacity": "TOTAL",
            "ConsistentRead": True,
        },
    ),
    Case(
        "query counting only",
        "query",
        {
            "TableName": APP,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": S("order#1")},
            "Select": "COUNT",
        },
    ),
    Case(
        "query a global index",
        "query",
        {
            "TableName": APP,
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :o AND begins_with(gsi1sk, :p)",
            "ExpressionAttributeValues": {":o": S("org#1"), ":p": S("order#")},
            "Limit": 4,
        },
    ),
    Case(
        "query a local index backwards",
        "query",
        {
            "TableName": APP,
            "IndexName": "lsi1",
            "KeyConditionExpression": "pk = :pk AND created_at BETWEEN :a AND :b",
            "ExpressionAttributeValues": {":pk": S("order#1"), ":a": N("201"), ":b": N("205")},
            "ScanIndexForward": False,
        },
    ),
    Case(
        "query a global index consistently",
        "query",
        {
            "TableName": APP,
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :o",
            "ExpressionAttributeValues": {":o": S("org#1")},
            "ConsistentRead": True,
        },
    ),
    Case(
        "query a missing index",
        "query",
        {
            "TableName": APP,
            "IndexName": "nope",
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": S("x")},
        },
    ),
    Case(
        "query on a non-key attribute",
        "query",
        {"TableName": APP, "KeyConditionExpression": "qty = :q", "ExpressionAttributeValues": {":q": N("1")}},
    ),
    Case(
        "query a missing table",
        "query",
        {
            "TableName": MISSING,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": S("x")},
        },
    ),
    Case("query without a key condition", "query", {"TableName": APP}),
    Case("query with Limit 0", "query", {"TableName": APP, "KeyConditionExpression": "pk = :p", "Limit": 0}),
    # ------------------------------------------------------------ Scan
    Case("scan a table", "scan", {"TableName": HASH}),
    Case(
        "scan first page with Limit",
        "scan",
        {"TableName": APP, "Limit": 4, "ReturnConsumedCapacity": "TOTAL"},
    ),
    Case(
        "scan with a filter and names",
        "scan",
        {
            "TableName": APP,
            "FilterExpression": "#q > :one",
            "ExpressionAttributeNames": {"#q": "qty"},
            "ExpressionAttributeValues": {":one": N("1")},
            "ProjectionExpression": "pk, sk, #q",
        },
    ),
    Case("scan counting only", "scan", {"TableName": APP, "Select": "COUNT"}),
    Case("scan a global index", "scan", {"TableName": APP, "IndexName": "gsi1"}),
    Case("scan one segment", "scan", {"TableName": APP, "Segment": 1, "TotalSegments": 3}),
    Case("scan a missing table", "scan", {"TableName": MISSING}),
    Case("scan a segment without TotalSegments", "scan", {"TableName": APP, "Segment": 0}),
    Case("scan TotalSegments without a segment", "scan", {"TableName": APP, "TotalSegments": 2}),
    Case("scan a segment out of range", "scan", {"TableName": APP, "Segment": 2, "TotalSegments": 2}),
    Case(
        "scan with an invalid filter",
        "scan",
        {"TableName": APP, "FilterExpression": "qty >", "ExpressionAttributeValues": {":x": N("1")}},
    ),
    # ------------------------------------------------------------ BatchWriteItem
    Case(
        "batch write puts and deletes on two tables",
        "batch_write_item",
        {
            "RequestItems": {
                HASH: [{"PutRequest": {"Item": {"pk": S(f"b{i}"), "v": N(str(i))}}} for i in range(10)]
                + [{"DeleteRequest": {"Key": {"pk": S("h2")}}}],
                APP: [{"PutRequest": {"Item": {**key("batch", "1"), "v": S("x")}}}],
            },
            "ReturnConsumedCapacity": "TOTAL",
            "ReturnItemCollectionMetrics": "SIZE",
        },
    ),
    Case(
        "batch write to a missing table",
        "batch_write_item",
        {"RequestItems": {MISSING: [{"PutRequest": {"Item": {"pk": S("x")}}}]}},
    ),
    Case(
        "batch write with a bad key",
        "batch_write_item",
        {"RequestItems": {HASH: [{"PutRequest": {"Item": {"nokey": S("x")}}}]}},
    ),
    Case(
        "batch write of an empty list",
        "batch_write_item",
        {"RequestItems": {HASH: []}},
    ),
    Case(
        "batch write of 26 items",
        "batch_write_item",
        {"RequestItems": {SCRATCH: [{"PutRequest": {"Item": {"pk": S(f"many{i}")}}} for i in range(26)]}},
    ),
    Case(
        "batch write of 26 items over two tables",
        "batch_write_item",
        {
            "RequestItems": {
                SCRATCH: [{"PutRequest": {"Item": {"pk": S(f"many{i}")}}} for i in range(13)],
                BLOBS: [{"PutRequest": {"Item": {"pk": {"B": bytes([i])}}}} for i in range(13)],
            }
        },
    ),
    Case(
        "batch write with a duplicate key",
        "batch_write_item",
        {
            "RequestItems": {
                SCRATCH: [
                    {"PutRequest": {"Item": {"pk": S("dup"), "v": N("1")}}},
                    {"DeleteRequest": {"Key": {"pk": S("dup")}}},
                ]
            }
        },
    ),
    # ------------------------------------------------------------ BatchGetItem
    Case(
        "batch get across tables with projection",
        "batch_get_item",
        {
            "RequestItems": {
                HASH: {
                    "Keys": [{"pk": S(f"b{i}")} for i in range(0, 10, 3)] + [{"pk": S("absent")}],
                    "ConsistentRead": True,
                },
                APP: {
                    "Keys": [key("order#1", "line#1")],
                    "ProjectionExpression": "#q, sk",
                    "ExpressionAttributeNames": {"#q": "qty"},
                },
            },
            "ReturnConsumedCapacity": "TOTAL",
        },
    ),
    Case(
        "batch get from a missing table",
        "batch_get_item",
        {"RequestItems": {MISSING: {"Keys": [{"pk": S("x")}]}}},
    ),
    Case(
        "batch get with a bad key",
        "batch_get_item",
        {"RequestItems": {HASH: {"Keys": [{"other": S("x")}]}}},
    ),
    Case(
        "batch get of 101 keys",
        "batch_get_item",
        {"RequestItems": {HASH: {"Keys": [{"pk": S(f"k{i}")} for i in range(101)]}}},
    ),
    Case(
        "batch get with a duplicate key",
        "batch_get_item",
        {"RequestItems": {HASH: {"Keys": [{"pk": S("b1")}, {"pk": S("b1")}]}}},
    ),
    # ------------------------------------------------------------ transactions
    Case(
        "transact write put, update, delete, check",
        "transact_write_items",
        {
            "TransactItems": [
                {"Put": {"TableName": HASH, "Item": {"pk": S("t1"), "v": N("1")}}},
                {
                    "Update": {
                        "TableName": HASH,
                        "Key": {"pk": S("b1")},
                        "UpdateExpression": "SET v = v + :one",
                        "ExpressionAttributeValues": {":one": N("1")},
                    }
                },
                {"Delete": {"TableName": HASH, "Key": {"pk": S("b2")}}},
                {
                    "ConditionCheck": {
                        "TableName": APP,
                        "Key": key("user#1", "profile"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ],
            "ReturnConsumedCapacity": "TOTAL",
            "ClientRequestToken": "token-1",
        },
        transactions=True,
    ),
    Case(
        "transact write cancelled by a condition, returning the old item",
        "transact_write_items",
        {
            "TransactItems": [
                {"Put": {"TableName": HASH, "Item": {"pk": S("t2")}}},
                {
                    "ConditionCheck": {
                        "TableName": HASH,
                        "Key": {"pk": S("t1")},
                        "ConditionExpression": "v = :nine",
                        "ExpressionAttributeValues": {":nine": N("9")},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ]
        },
        transactions=True,
    ),
    Case(
        "transact write touching one item twice",
        "transact_write_items",
        {
            "TransactItems": [
                {"Put": {"TableName": HASH, "Item": {"pk": S("t3")}}},
                {"Delete": {"TableName": HASH, "Key": {"pk": S("t3")}}},
            ]
        },
        transactions=True,
    ),
    Case(
        "transact write to a missing table",
        "transact_write_items",
        {"TransactItems": [{"Put": {"TableName": MISSING, "Item": {"pk": S("x")}}}]},
        transactions=True,
    ),
    Case(
        "transact write repeating a token with other actions",
        "transact_write_items",
        {
            "TransactItems": [{"Put": {"TableName": HASH, "Item": {"pk": S("t9")}}}],
            "ClientRequestToken": "token-1",
        },
        transactions=True,
    ),
    Case(
        "transact write with two actions in one item",
        "transact_write_items",
        {
            "TransactItems": [
                {
                    "Put": {"TableName": HASH, "Item": {"pk": S("t8")}},
                    "Delete": {"TableName": HASH, "Key": {"pk": S("t8")}},
                }
            ]
        },
        transactions=True,
    ),
    Case(
        "transact get found and missing items",
        "transact_get_items",
        {
            "TransactItems": [
                {"Get": {"TableName": HASH, "Key": {"pk": S("t1")}}},
                {"Get": {"TableName": HASH, "Key": {"pk": S("absent")}}},
                {
                    "Get": {
                        "TableName": APP,
                        "Key": key("user#1", "profile"),
                        "ProjectionExpression": "#s, n",
                        "ExpressionAttributeNames": {"#s": "s"},
                    }
                },
            ],
            "ReturnConsumedCapacity": "TOTAL",
        },
        transactions=True,
    ),
    Case(
        "transact get from a missing table",
        "transact_get_items",
        {"TransactItems": [{"Get": {"TableName": MISSING, "Key": {"pk": S("x")}}}]},
        transactions=True,
    ),
]


def _drop_nested_capacity(outcome: Outcome) -> Outcome:
    ok = {k: v for k, v in outcome["ok"].items() if k != "ItemCollectionMetrics"}
    ok["ConsumedCapacity"] = [
        {k: v for k, v in entry.items() if k != "Table"} for entry in ok["ConsumedCapacity"]
    ]
    return {"ok": ok}


def _gateway_outcome_unknown(outcome: Outcome) -> Outcome:
    error = outcome["response"]["Error"]
    message = "PutItem may or may not have been applied (it has a condition, which a repeat would test against the first attempt's result); read before retrying"
    return {"error": "ClientError", "response": {"Error": {**error, "Message": message}}}


def _emulator(kinds: frozenset[str], why: str, message: str) -> Differs:
    return Differs(kinds, "emulator", why, validation(message))


_MOTO_LAX = "moto accepts the value; DynamoDB refuses it"

# Every known difference between boto3-straight-to-the-emulator and the facade, by case, with why.
DIFFERENCES: dict[str, tuple[Differs, ...]] = {
    "put with an expression syntax error": (
        Differs(
            MOTO,
            "gateway",
            "moto answers this malformed condition with an HTML 500; the gateway does not repeat a "
            "conditional write after a 5xx and says its outcome is unknown instead of relaying the 500's text",
            _gateway_outcome_unknown,
        ),
    ),
    "put to a table name too short": (
        _emulator(
            MOTO,
            "moto looks such a name up (ResourceNotFoundException); DynamoDB refuses it",
            "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
            "Member must have length greater than or equal to 3",
        ),
    ),
    "put to a table name with spaces": (
        _emulator(
            MOTO,
            "moto looks such a name up (ResourceNotFoundException); DynamoDB refuses it",
            "1 validation error detected: Value 'bad name!' at 'tableName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ),
    ),
    "put a number of 39 digits": (
        _emulator(MOTO, _MOTO_LAX, "Attempting to store more than 38 significant digits in a Number"),
    ),
    "put a number too large": (
        _emulator(
            MOTO,
            _MOTO_LAX,
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
        ),
    ),
    "put a nested bad number": (
        _emulator(
            MOTO,
            _MOTO_LAX,
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
        ),
    ),
    "put an empty string set": (
        _emulator(
            MOTO,
            "moto prefixes DynamoDB's text with '1 validation error detected: '",
            "One or more parameter values were invalid: An string set  may not be empty",
        ),
    ),
    "put an empty number set": (
        _emulator(
            MOTO,
            "moto prefixes DynamoDB's text with '1 validation error detected: '",
            "One or more parameter values were invalid: An number set  may not be empty",
        ),
    ),
    "put an empty binary set": (
        _emulator(
            MOTO, _MOTO_LAX, "One or more parameter values were invalid: Binary sets should not be empty"
        ),
    ),
    "put a string set with duplicates": (
        _emulator(
            MOTO,
            _MOTO_LAX,
            "One or more parameter values were invalid: Input collection [a, b, a] contains duplicates.",
        ),
    ),
    "put a number set with equal numbers": (
        _emulator(MOTO, _MOTO_LAX, "Input collection contains duplicates"),
    ),
    "put NULL false": (
        _emulator(
            MOTO,
            "moto leaves out DynamoDB's 'One or more parameter values were invalid: '",
            "One or more parameter values were invalid: Null attribute value types must have the value of true",
        ),
    ),
    "put a value with two types": (
        _emulator(
            MOTO,
            _MOTO_LAX,
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the "
            "supported datatypes",
        ),
    ),
    "put a value with no type": (
        _emulator(
            MOTO,
            "moto fails with an HTML 500",
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
        ),
    ),
    "put with an empty condition": (
        _emulator(
            MOTO,
            "moto ignores an empty condition",
            "Invalid ConditionExpression: The expression can not be empty;",
        ),
    ),
    "put with empty attribute names": (
        _emulator(MOTO, "moto ignores empty attribute names", "ExpressionAttributeNames must not be empty"),
    ),
    "put with empty attribute values": (
        _emulator(
            MOTO,
            "moto prefixes DynamoDB's text with '1 validation error detected: '",
            "ExpressionAttributeValues must not be empty",
        ),
    ),
    "put with an unknown ReturnValues": (
        _emulator(
            MOTO,
            "moto words this refusal its own way",
            "1 validation error detected: Value 'FOO' at 'returnValues' failed to satisfy constraint: "
            "Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]",
        ),
    ),
    "get with an empty key": (
        _emulator(
            MOTO, "moto answers 'Validation Exception'", "The provided key element does not match the schema"
        ),
    ),
    "query without a key condition": (
        _emulator(
            MOTO,
            "moto words this refusal its own way",
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
        ),
    ),
    "scan a segment out of range": (
        _emulator(
            MOTO,
            "moto leaves out the numbers DynamoDB adds",
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
            "Segment: 2 is not less than TotalSegments: 2",
        ),
    ),
    "scan a segment without TotalSegments": (
        _emulator(
            DYNALITE,
            "dynalite lets Segment 0 through without TotalSegments (it tests Segment for truth); "
            "DynamoDB requires both",
            "The TotalSegments parameter is required but was not present in the request when "
            "Segment parameter is present",
        ),
    ),
    "update SET/ADD/REMOVE returning ALL_NEW": (moto_unasked_capacity(),),
    "update returning UPDATED_OLD": (moto_unasked_capacity(),),
    "update returning UPDATED_NEW": (moto_unasked_capacity(),),
    "update creating an item, returning NONE": (moto_unasked_capacity(),),
    "batch write puts and deletes on two tables": (
        Differs(
            MOTO,
            "emulator",
            "moto adds a per-table breakdown to TOTAL capacity and empty ItemCollectionMetrics",
            _drop_nested_capacity,
        ),
    ),
    "batch write of 26 items": (
        Differs(
            BOTH,
            "facade",
            "moto takes 26 writes; DynamoDB and dynalite refuse them, quoting the whole request, which "
            "the facade does not: it refuses with the same code and DynamoDB's words for the total limit",
            validation("Too many items requested for the BatchWriteItem call"),
        ),
    ),
    "batch write of 26 items over two tables": (
        _emulator(
            BOTH,
            "both emulators count writes per table; DynamoDB counts the whole request",
            "Too many items requested for the BatchWriteItem call",
        ),
    ),
    "batch write with a duplicate key": (
        _emulator(
            MOTO,
            "moto finds duplicates only among puts or among deletes, not a put and a delete of one key",
            "Provided list of item keys contains duplicates",
        ),
    ),
    "batch get of 101 keys": (
        Differs(
            BOTH,
            "facade",
            "DynamoDB refuses more than 100 keys quoting the request; the facade refuses with the same code "
            "and DynamoDB's words for the total limit",
            validation("Too many items requested for the BatchGetItem call"),
        ),
    ),
    "transact write put, update, delete, check": (
        Differs(
            MOTO,
            "emulator",
            "moto sends empty ItemCollectionMetrics nobody asked for",
            without("ItemCollectionMetrics"),
        ),
    ),
    "transact write repeating a token with other actions": (moto_unasked_capacity("ItemCollectionMetrics"),),
}


def _with_differences(cases: list[Case]) -> list[Case]:
    names = {c.name for c in cases}
    assert len(names) == len(cases), "case names are unique"
    assert set(DIFFERENCES) <= names, set(DIFFERENCES) - names
    return [replace(c, differs=DIFFERENCES.get(c.name, ())) for c in cases]


CASES = _with_differences(CASES)


def cases_for(kind: str) -> list[Case]:
    return [c for c in CASES if not (c.transactions and kind == "dynalite")]
