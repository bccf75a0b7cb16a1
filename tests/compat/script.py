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


# ------------------------------------------------------------ legacy parameters
# The facade rewrites them as expressions; these cases hold it to DynamoDB's meaning of each.

LEGACY_KEY = {"pk": S("legacy#1")}
# Conditional puts write this same item whether their condition holds or not, so a condition an
# emulator judges wrongly leaves both emulators' tables alike.
LEGACY_ITEM = {
    **LEGACY_KEY,
    "s": S("hello"),
    "n": N("5"),
    "ss": {"SS": ["a", "b"]},
    "l": {"L": [S("a"), N("1")]},
    "b": {"B": b"\x01\x02\x03"},
    "flag": {"BOOL": True},
}


def cond(operator: str, *values: dict[str, Any]) -> dict[str, Any]:
    return {"ComparisonOperator": operator, "AttributeValueList": list(values)}


def _legacy_puts() -> list[Case]:
    """Expected, one operator (or form) at a time, holding and failing."""
    expectations: list[tuple[str, dict[str, Any]]] = [
        ("EQ holds", {"n": cond("EQ", N("5.0"))}),
        ("EQ fails on another type", {"n": cond("EQ", S("5"))}),
        ("EQ on a set holds", {"ss": cond("EQ", {"SS": ["b", "a"]})}),
        ("NE holds for a missing attribute", {"missing": cond("NE", S("x"))}),
        ("NE fails", {"s": cond("NE", S("hello"))}),
        ("LE holds", {"n": cond("LE", N("5"))}),
        ("LT fails", {"n": cond("LT", N("5"))}),
        ("GE holds on a string", {"s": cond("GE", S("hello"))}),
        ("GT fails on binary", {"b": cond("GT", {"B": b"\x01\x02\x03"})}),
        ("NOT_NULL holds", {"s": cond("NOT_NULL")}),
        ("NOT_NULL fails", {"missing": cond("NOT_NULL")}),
        ("NULL holds without a list", {"missing": {"ComparisonOperator": "NULL"}}),
        ("NULL fails", {"flag": cond("NULL")}),
        ("CONTAINS holds on a set", {"ss": cond("CONTAINS", S("a"))}),
        ("CONTAINS holds on a list", {"l": cond("CONTAINS", N("1"))}),
        ("CONTAINS fails on a string", {"s": cond("CONTAINS", S("zzz"))}),
        ("NOT_CONTAINS holds", {"s": cond("NOT_CONTAINS", S("zzz"))}),
        ("NOT_CONTAINS fails for a missing attribute", {"missing": cond("NOT_CONTAINS", S("zzz"))}),
        ("BEGINS_WITH holds", {"s": cond("BEGINS_WITH", S("hel"))}),
        ("BEGINS_WITH holds on binary", {"b": cond("BEGINS_WITH", {"B": b"\x01"})}),
        ("IN holds", {"n": cond("IN", N("1"), N("5"))}),
        ("IN fails", {"n": cond("IN", N("2"), N("3"))}),
        ("BETWEEN holds", {"n": cond("BETWEEN", N("1"), N("9"))}),
        ("BETWEEN fails", {"s": cond("BETWEEN", S("a"), S("b"))}),
        ("operator with a Value", {"n": {"ComparisonOperator": "GT", "Value": N("1")}}),
        ("Value holds", {"s": {"Value": S("hello")}}),
        ("Exists true with a Value fails", {"s": {"Exists": True, "Value": S("bye")}}),
        ("Exists false holds", {"missing": {"Exists": False}}),
        ("Exists false fails", {"pk": {"Exists": False}}),
        ("AND fails", {"s": {"Value": S("hello")}, "n": cond("GT", N("5"))}),
        ("empty map holds", {}),
    ]
    cases = [
        Case(
            f"legacy put, Expected {name}",
            "put_item",
            {"TableName": HASH, "Item": LEGACY_ITEM, "Expected": expected},
        )
        for name, expected in expectations
    ]
    return [
        Case("legacy put a first item", "put_item", {"TableName": HASH, "Item": LEGACY_ITEM, "Expected": {}}),
        *cases,
        Case(
            "legacy put, Expected ORed holds",
            "put_item",
            {
                "TableName": HASH,
                "Item": LEGACY_ITEM,
                "Expected": {
                    "s": {"Value": S("bye")},
                    "missing": cond("NOT_CONTAINS", S("x")),
                    "n": cond("GT", N("1")),
                },
                "ConditionalOperator": "OR",
            },
        ),
        Case(
            "legacy put, Expected ANDed explicitly fails, returning the old item",
            "put_item",
            {
                "TableName": HASH,
                "Item": LEGACY_ITEM,
                "Expected": {"s": {"Value": S("hello")}, "missing": {"Exists": True, "Value": S("x")}},
                "ConditionalOperator": "AND",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        Case(
            "legacy put returning the old item",
            "put_item",
            {
                "TableName": HASH,
                "Item": LEGACY_ITEM,
                "Expected": {"n": {"Value": N("5")}},
                "ReturnValues": "ALL_OLD",
            },
        ),
    ]


def _legacy_refused_puts() -> list[Case]:
    """What DynamoDB refuses in Expected and ConditionalOperator, before it looks at an item."""
    refused: list[tuple[str, dict[str, Any]]] = [
        ("Exists true without a Value", {"Expected": {"a": {"Exists": True}}}),
        ("neither Exists nor Value", {"Expected": {"a": {}}}),
        ("Exists false with a Value", {"Expected": {"a": {"Exists": False, "Value": S("x")}}}),
        ("Exists with an operator", {"Expected": {"a": {"Exists": True, **cond("EQ", S("x"))}}}),
        ("a Value and a list", {"Expected": {"a": {"Value": S("x"), **cond("EQ", S("x"))}}}),
        ("a list without an operator", {"Expected": {"a": {"AttributeValueList": [S("x")]}}}),
        ("an operator without values", {"Expected": {"a": {"ComparisonOperator": "LT"}}}),
        ("BETWEEN with one value", {"Expected": {"a": cond("BETWEEN", N("1"))}}),
        ("NULL with a value", {"Expected": {"a": {"ComparisonOperator": "NULL", "Value": S("x")}}}),
        ("IN with no values", {"Expected": {"a": cond("IN")}}),
        ("EQ with two values", {"Expected": {"a": cond("EQ", S("x"), S("y"))}}),
        ("values of two types", {"Expected": {"a": cond("IN", S("x"), N("1"))}}),
        ("LT with a set", {"Expected": {"a": cond("LT", {"SS": ["x"]})}}),
        ("CONTAINS with a list", {"Expected": {"a": cond("CONTAINS", {"L": [N("1")]})}}),
        ("BEGINS_WITH with a number", {"Expected": {"a": cond("BEGINS_WITH", N("1"))}}),
        ("BETWEEN bounds reversed", {"Expected": {"a": cond("BETWEEN", S("b"), S("a"))}}),
        ("an unknown operator", {"Expected": {"a": cond("EQUALS", S("x"))}}),
        ("an empty string set", {"Expected": {"a": {"Value": {"SS": []}}}}),
        (
            "an unknown ConditionalOperator",
            {"Expected": {"a": {"Exists": False}}, "ConditionalOperator": "XOR"},
        ),
        (
            "ConditionalOperator with one condition",
            {"Expected": {"a": {"Exists": False}}, "ConditionalOperator": "OR"},
        ),
        ("ConditionalOperator without Expected", {"ConditionalOperator": "AND"}),
        (
            "Expected and ConditionExpression",
            {"Expected": {"a": {"Exists": False}}, "ConditionExpression": "attribute_not_exists(a)"},
        ),
        (
            "Expected, ConditionalOperator and ConditionExpression",
            {
                "Expected": {"a": {"Exists": False}, "b": {"Exists": False}},
                "ConditionalOperator": "AND",
                "ConditionExpression": "attribute_not_exists(a)",
            },
        ),
        (
            "Expected and names",
            {"Expected": {"a": {"Exists": False}}, "ExpressionAttributeNames": {"#a": "a"}},
        ),
        (
            "Expected and values",
            {"Expected": {"a": {"Exists": False}}, "ExpressionAttributeValues": {":a": S("x")}},
        ),
    ]
    return [
        Case(
            f"legacy put refused: {name}",
            "put_item",
            {"TableName": SCRATCH, "Item": {"pk": S("x")}, **params},
        )
        for name, params in refused
    ]


LEGACY_UPDATED = {"pk": S("legacy#2")}


def _legacy_updates() -> list[Case]:
    return [
        Case(
            "legacy update PUT, ADD and DELETE creating an item, returning ALL_NEW",
            "update_item",
            {
                "TableName": HASH,
                "Key": LEGACY_UPDATED,
                "AttributeUpdates": {
                    "s": {"Value": S("hello")},
                    "n": {"Action": "ADD", "Value": N("3")},
                    "ss": {"Action": "ADD", "Value": {"SS": ["a", "b"]}},
                    "ns": {"Action": "ADD", "Value": {"NS": ["1", "2"]}},
                    "l": {"Action": "ADD", "Value": {"L": [S("x")]}},
                    "gone": {"Action": "DELETE"},
                },
                "ReturnValues": "ALL_NEW",
            },
        ),
        Case(
            "legacy update ADD to a number, a set and a list, DELETE from a set and REMOVE, returning UPDATED_NEW",
            "update_item",
            {
                "TableName": HASH,
                "Key": LEGACY_UPDATED,
                "AttributeUpdates": {
                    "n": {"Action": "ADD", "Value": N("-1.5")},
                    "ss": {"Action": "ADD", "Value": {"SS": ["c"]}},
                    "l": {"Action": "ADD", "Value": {"L": [N("2")]}},
                    "ns": {"Action": "DELETE", "Value": {"NS": ["1", "3"]}},
                    "s": {"Action": "DELETE"},
                    "m": {"Action": "PUT", "Value": {"M": {"k": S("v")}}},
                },
                "ReturnValues": "UPDATED_NEW",
            },
        ),
        Case(
            "legacy update with Expected holding, returning UPDATED_OLD",
            "update_item",
            {
                "TableName": HASH,
                "Key": LEGACY_UPDATED,
                "AttributeUpdates": {
                    "n": {"Action": "PUT", "Value": N("10")},
                    "ss": {"Action": "DELETE", "Value": {"SS": ["a"]}},
                },
                "Expected": {"n": cond("EQ", N("1.5")), "ss": cond("CONTAINS", S("c"))},
                "ReturnValues": "UPDATED_OLD",
            },
        ),
        Case(
            "legacy update with Expected failing, returning the old item",
            "update_item",
            {
                "TableName": HASH,
                "Key": LEGACY_UPDATED,
                "AttributeUpdates": {"n": {"Value": N("11")}},
                "Expected": {"n": {"Value": N("1")}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        Case(
            "legacy get the updated item",
            "get_item",
            {"TableName": HASH, "Key": LEGACY_UPDATED, "ConsistentRead": True},
        ),
        # Nothing reads the item after these.
        Case(
            "legacy update DELETE of every member removes the set",
            "update_item",
            {
                "TableName": HASH,
                "Key": LEGACY_UPDATED,
                "AttributeUpdates": {"ss": {"Action": "DELETE", "Value": {"SS": ["b", "c"]}}},
                "ReturnValues": "ALL_NEW",
            },
        ),
        Case(
            "legacy update DELETE from a set the item lacks",
            "update_item",
            {
                "TableName": HASH,
                "Key": LEGACY_UPDATED,
                "AttributeUpdates": {"bs": {"Action": "DELETE", "Value": {"BS": [b"\x00"]}}},
                "ReturnValues": "ALL_NEW",
            },
        ),
        Case(
            "legacy update with an empty AttributeUpdates creates the item",
            "update_item",
            {
                "TableName": HASH,
                "Key": {"pk": S("legacy#3")},
                "AttributeUpdates": {},
                "ReturnValues": "ALL_NEW",
            },
        ),
        Case(
            "legacy update with Expected alone",
            "update_item",
            {
                "TableName": HASH,
                "Key": {"pk": S("legacy#3")},
                "Expected": {"pk": cond("NOT_NULL")},
                "ReturnValues": "ALL_OLD",
            },
        ),
        # Refused updates go to SCRATCH, which no read looks at.
        Case(
            "legacy put a scratch item",
            "put_item",
            {
                "TableName": SCRATCH,
                "Item": {"pk": S("legacy"), "n": N("1"), "ss": {"SS": ["a"]}, "s": S("x")},
            },
        ),
        *(
            Case(
                f"legacy update refused: {name}",
                "update_item",
                {"TableName": SCRATCH, "Key": {"pk": S("legacy")}, **params},
            )
            for name, params in [
                ("PUT without a value", {"AttributeUpdates": {"a": {"Action": "PUT"}}}),
                ("ADD without a value", {"AttributeUpdates": {"a": {"Action": "ADD"}}}),
                (
                    "DELETE of a string value",
                    {"AttributeUpdates": {"a": {"Action": "DELETE", "Value": S("x")}}},
                ),
                ("ADD of a string", {"AttributeUpdates": {"a": {"Action": "ADD", "Value": S("x")}}}),
                ("ADD of a map", {"AttributeUpdates": {"a": {"Action": "ADD", "Value": {"M": {}}}}}),
                ("an unknown action", {"AttributeUpdates": {"a": {"Action": "REPLACE", "Value": S("x")}}}),
                (
                    "ADD of a set to a number",
                    {"AttributeUpdates": {"n": {"Action": "ADD", "Value": {"SS": ["q"]}}}},
                ),
                (
                    "ADD of a number to a set",
                    {"AttributeUpdates": {"ss": {"Action": "ADD", "Value": N("1")}}},
                ),
                (
                    "DELETE of a number set from a string set",
                    {"AttributeUpdates": {"ss": {"Action": "DELETE", "Value": {"NS": ["1"]}}}},
                ),
                (
                    "ADD of a list to a string",
                    {"AttributeUpdates": {"s": {"Action": "ADD", "Value": {"L": [S("x")]}}}},
                ),
                ("of a key attribute", {"AttributeUpdates": {"pk": {"Value": S("other")}}}),
                ("an empty number set", {"AttributeUpdates": {"a": {"Action": "ADD", "Value": {"NS": []}}}}),
                (
                    "AttributeUpdates and UpdateExpression",
                    {
                        "AttributeUpdates": {"a": {"Value": S("x")}},
                        "UpdateExpression": "SET b = :b",
                        "ExpressionAttributeValues": {":b": S("y")},
                    },
                ),
                (
                    "AttributeUpdates and ConditionExpression",
                    {
                        "AttributeUpdates": {"a": {"Value": S("x")}},
                        "ConditionExpression": "attribute_exists(pk)",
                    },
                ),
                (
                    "Expected and UpdateExpression",
                    {
                        "Expected": {"a": {"Exists": False}},
                        "UpdateExpression": "SET b = :b",
                        "ExpressionAttributeValues": {":b": S("y")},
                    },
                ),
                (
                    "values without an expression",
                    {
                        "AttributeUpdates": {"a": {"Value": S("x")}},
                        "ExpressionAttributeValues": {":b": S("y")},
                    },
                ),
                (
                    "ConditionalOperator without Expected",
                    {"AttributeUpdates": {"a": {"Value": S("x")}}, "ConditionalOperator": "OR"},
                ),
            ]
        ),
    ]


def _legacy_deletes() -> list[Case]:
    key = {"pk": S("legacy#4")}
    return [
        Case("legacy put an item to delete", "put_item", {"TableName": HASH, "Item": {**key, "v": N("4")}}),
        Case(
            "legacy delete with Expected failing",
            "delete_item",
            {"TableName": HASH, "Key": key, "Expected": {"v": {"Exists": False}}},
        ),
        Case(
            "legacy delete with Expected ORed holding, returning the old item",
            "delete_item",
            {
                "TableName": HASH,
                "Key": key,
                "Expected": {"v": {"Value": N("5")}, "other": {"Exists": False}},
                "ConditionalOperator": "OR",
                "ReturnValues": "ALL_OLD",
            },
        ),
        Case(
            "legacy delete refused: Expected and ConditionExpression",
            "delete_item",
            {
                "TableName": SCRATCH,
                "Key": {"pk": S("x")},
                "Expected": {"a": {"Exists": False}},
                "ConditionExpression": "attribute_exists(a)",
            },
        ),
    ]


def _legacy_gets() -> list[Case]:
    return [
        Case(
            "legacy get with AttributesToGet",
            "get_item",
            {"TableName": HASH, "Key": LEGACY_KEY, "AttributesToGet": ["s", "ss", "missing"]},
        ),
        Case(
            "legacy get consistently with AttributesToGet that name nothing stored",
            "get_item",
            {
                "TableName": HASH,
                "Key": LEGACY_KEY,
                "AttributesToGet": ["missing", "a.b"],
                "ConsistentRead": True,
            },
        ),
        Case(
            "legacy get with AttributesToGet of a missing item",
            "get_item",
            {"TableName": HASH, "Key": {"pk": S("nobody")}, "AttributesToGet": ["s"]},
        ),
        Case(
            "legacy get refused: a name twice",
            "get_item",
            {"TableName": HASH, "Key": LEGACY_KEY, "AttributesToGet": ["s", "n", "s"]},
        ),
        Case(
            "legacy get refused: AttributesToGet and ProjectionExpression",
            "get_item",
            {"TableName": HASH, "Key": LEGACY_KEY, "AttributesToGet": ["s"], "ProjectionExpression": "n"},
        ),
        Case(
            "legacy get refused: AttributesToGet and names",
            "get_item",
            {
                "TableName": HASH,
                "Key": LEGACY_KEY,
                "AttributesToGet": ["s"],
                "ExpressionAttributeNames": {"#s": "s"},
            },
        ),
        Case(
            "legacy batch get with AttributesToGet beside a projection",
            "batch_get_item",
            {
                "RequestItems": {
                    HASH: {
                        # Items of one attribute each: the comparison orders BatchGetItem's items by their text.
                        "Keys": [LEGACY_KEY, {"pk": S("b3")}],
                        "AttributesToGet": ["n", "v"],
                        "ConsistentRead": True,
                    },
                    APP: {"Keys": [key("order#1", "line#2")], "ProjectionExpression": "qty"},
                }
            },
        ),
        Case(
            "legacy batch get refused: AttributesToGet and ProjectionExpression",
            "batch_get_item",
            {
                "RequestItems": {
                    HASH: {"Keys": [LEGACY_KEY], "AttributesToGet": ["n"], "ProjectionExpression": "s"}
                }
            },
        ),
        Case(
            "legacy transact get refused: AttributesToGet, which TransactGetItems does not take",
            "transact_get_items",
            {"TransactItems": [{"Get": {"TableName": HASH, "Key": LEGACY_KEY, "AttributesToGet": ["n"]}}]},
            transactions=True,
        ),
        Case(
            "legacy batch get refused: a name twice",
            "batch_get_item",
            {"RequestItems": {HASH: {"Keys": [LEGACY_KEY], "AttributesToGet": ["n", "n"]}}},
        ),
    ]


LEGACY_PARTITION = "legacy"


def _legacy_rows() -> list[Case]:
    cases = []
    for index in range(1, 6):
        item = {
            **key(LEGACY_PARTITION, f"row#{index}"),
            "qty": N(str(index)),
            "word": S(["apple", "banana", "cherry", "apricot", "blueberry"][index - 1]),
            "flag": {"BOOL": index % 2 == 0},
            "gsi1pk": S("legacy-org"),
            "gsi1sk": S(f"row#{index}"),
            "created_at": N(str(300 + index)),
        }
        if index != 3:
            item["tags"] = {"SS": ["x", "y"] if index % 2 else ["y"]}
        cases.append(Case(f"legacy put row {index}", "put_item", {"TableName": APP, "Item": item}))
    return cases


def partition(*range_condition: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """KeyConditions on the legacy partition, and optionally its sort key."""
    conditions = {"pk": cond("EQ", S(LEGACY_PARTITION))}
    conditions.update(dict(range_condition))
    return conditions


def _legacy_queries() -> list[Case]:
    def query(name: str, **params: Any) -> Case:
        return Case(f"legacy query {name}", "query", {"TableName": APP, **params})

    return [
        query("a partition", KeyConditions=partition()),
        query("sort key BEGINS_WITH", KeyConditions=partition(("sk", cond("BEGINS_WITH", S("row#"))))),
        query("sort key EQ", KeyConditions=partition(("sk", cond("EQ", S("row#2"))))),
        query("sort key LT", KeyConditions=partition(("sk", cond("LT", S("row#3"))))),
        query(
            "sort key LE backwards",
            KeyConditions=partition(("sk", cond("LE", S("row#3")))),
            ScanIndexForward=False,
        ),
        query("sort key GT", KeyConditions=partition(("sk", cond("GT", S("row#3"))))),
        query("sort key GE with Limit", KeyConditions=partition(("sk", cond("GE", S("row#2")))), Limit=2),
        query(
            "sort key BETWEEN from ExclusiveStartKey",
            KeyConditions=partition(("sk", cond("BETWEEN", S("row#2"), S("row#5")))),
            ExclusiveStartKey=key(LEGACY_PARTITION, "row#2"),
        ),
        # The rows: qty 1..5; word apple, banana, cherry, apricot, blueberry; flag true on 2 and 4;
        # tags {x, y} on 1 and 5, {y} on 2 and 4, none on 3.
        query(
            "with a QueryFilter ORed",
            KeyConditions=partition(),
            QueryFilter={"qty": cond("GE", N("4")), "word": cond("BEGINS_WITH", S("ap"))},
            ConditionalOperator="OR",
            AttributesToGet=["sk"],
        ),
        query(
            "with a QueryFilter ANDed and Select COUNT",
            KeyConditions=partition(),
            QueryFilter={"tags": cond("CONTAINS", S("x")), "flag": cond("EQ", {"BOOL": False})},
            Select="COUNT",
        ),
        query(
            "with EQ on a boolean",
            KeyConditions=partition(),
            QueryFilter={"flag": cond("EQ", {"BOOL": True})},
            AttributesToGet=["sk"],
        ),
        query(
            "with NE on a set, which a missing attribute holds",
            KeyConditions=partition(),
            QueryFilter={"tags": cond("NE", {"SS": ["y"]})},
            AttributesToGet=["sk"],
        ),
        query(
            "with NOT_CONTAINS, which a missing attribute fails",
            KeyConditions=partition(),
            QueryFilter={"tags": cond("NOT_CONTAINS", S("x"))},
            AttributesToGet=["sk"],
        ),
        query(
            "with AttributesToGet and a filter on another attribute",
            KeyConditions=partition(("sk", cond("BEGINS_WITH", S("row")))),
            QueryFilter={"word": cond("IN", S("cherry"), S("banana"))},
            AttributesToGet=["sk", "qty"],
        ),
        query(
            "with AttributesToGet and Select SPECIFIC_ATTRIBUTES",
            KeyConditions=partition(),
            AttributesToGet=["word"],
            Select="SPECIFIC_ATTRIBUTES",
        ),
        query(
            "with KeyConditions beside a FilterExpression using #l0 and :l0",
            KeyConditions=partition(("sk", cond("GT", S("row#1")))),
            FilterExpression="#l0 < :l0",
            ExpressionAttributeNames={"#l0": "qty"},
            ExpressionAttributeValues={":l0": N("4")},
        ),
        query(
            "with KeyConditions beside a ProjectionExpression",
            KeyConditions=partition(),
            ProjectionExpression="word, qty",
        ),
        query(
            "a global index with AttributesToGet",
            IndexName="gsi1",
            KeyConditions={"gsi1pk": cond("EQ", S("legacy-org")), "gsi1sk": cond("GT", S("row#3"))},
            AttributesToGet=["gsi1sk", "word"],
        ),
        query(
            "a local index backwards",
            IndexName="lsi1",
            KeyConditions=partition(("created_at", cond("BETWEEN", N("302"), N("304")))),
            ScanIndexForward=False,
        ),
        # Refused.
        query("refused: NE on the partition key", KeyConditions={"pk": cond("NE", S(LEGACY_PARTITION))}),
        query("refused: IN on the sort key", KeyConditions=partition(("sk", cond("IN", S("row#1"))))),
        query("refused: GT on the partition key", KeyConditions={"pk": cond("GT", S(LEGACY_PARTITION))}),
        query(
            "refused: three key conditions",
            KeyConditions=partition(("sk", cond("GT", S("a"))), ("qty", cond("EQ", N("1")))),
        ),
        query("refused: no key condition", KeyConditions={}),
        query(
            "refused: a condition on another attribute", KeyConditions=partition(("qty", cond("EQ", N("1"))))
        ),
        query("refused: a sort key of the wrong type", KeyConditions=partition(("sk", cond("EQ", N("1"))))),
        query(
            "refused: BETWEEN bounds reversed",
            KeyConditions=partition(("sk", cond("BETWEEN", S("b"), S("a")))),
        ),
        query(
            "refused: BETWEEN with three values",
            KeyConditions=partition(("sk", cond("BETWEEN", S("a"), S("b"), S("c")))),
        ),
        query(
            "refused: a QueryFilter on a key",
            KeyConditions=partition(),
            QueryFilter={"sk": cond("EQ", S("row#1"))},
        ),
        query("refused: a QueryFilter without KeyConditions", QueryFilter={"qty": cond("EQ", N("1"))}),
        query(
            "refused: LT with a boolean",
            KeyConditions=partition(),
            QueryFilter={"flag": cond("LT", {"BOOL": True})},
        ),
        query(
            "refused: an unknown operator",
            KeyConditions=partition(),
            QueryFilter={"qty": cond("ABOUT", N("1"))},
        ),
        query(
            "refused: ConditionalOperator with one condition",
            KeyConditions=partition(),
            QueryFilter={"qty": cond("EQ", N("1"))},
            ConditionalOperator="AND",
        ),
        query(
            "refused: ConditionalOperator without a QueryFilter",
            KeyConditions=partition(),
            ConditionalOperator="OR",
        ),
        query(
            "refused: AttributesToGet and Select ALL_ATTRIBUTES",
            KeyConditions=partition(),
            AttributesToGet=["qty"],
            Select="ALL_ATTRIBUTES",
        ),
        query(
            "refused: AttributesToGet and Select COUNT",
            KeyConditions=partition(),
            AttributesToGet=["qty"],
            Select="COUNT",
        ),
        query(
            "refused: KeyConditions and KeyConditionExpression",
            KeyConditions=partition(),
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": S(LEGACY_PARTITION)},
        ),
        query(
            "refused: QueryFilter and FilterExpression",
            KeyConditions=partition(),
            QueryFilter={"qty": cond("EQ", N("1"))},
            FilterExpression="qty = :q",
            ExpressionAttributeValues={":q": N("1")},
        ),
        query(
            "refused: KeyConditions and names only",
            KeyConditions=partition(),
            ExpressionAttributeNames={"#q": "qty"},
        ),
        query(
            "refused: KeyConditions and values only",
            KeyConditions=partition(),
            ExpressionAttributeValues={":q": N("1")},
        ),
    ]


def _legacy_scans() -> list[Case]:
    def scan(name: str, **params: Any) -> Case:
        return Case(f"legacy scan {name}", "scan", {"TableName": APP, **params})

    return [
        scan("EQ on a string", ScanFilter={"word": cond("EQ", S("cherry"))}),
        scan(
            "LT and GT ANDed",
            ScanFilter={"qty": cond("GT", N("1")), "word": cond("LT", S("c"))},
            ConditionalOperator="AND",
        ),
        scan("LE and GE", ScanFilter={"created_at": cond("LE", N("304")), "qty": cond("GE", N("2"))}),
        scan("NOT_NULL", ScanFilter={"tags": cond("NOT_NULL")}, AttributesToGet=["sk", "tags"]),
        scan("NULL on the legacy rows", ScanFilter={"tags": cond("NULL"), "word": cond("NOT_NULL")}),
        scan("CONTAINS a substring", ScanFilter={"word": cond("CONTAINS", S("err"))}),
        scan(
            "NOT_CONTAINS a member",
            ScanFilter={"tags": cond("NOT_CONTAINS", S("x"))},
            AttributesToGet=["sk", "tags"],
        ),
        scan("BEGINS_WITH", ScanFilter={"word": cond("BEGINS_WITH", S("b"))}),
        scan(
            "IN",
            ScanFilter={"qty": cond("IN", N("2"), N("4"), N("9"))},
            Select="SPECIFIC_ATTRIBUTES",
            AttributesToGet=["word"],
        ),
        scan("BETWEEN, counted", ScanFilter={"qty": cond("BETWEEN", N("2"), N("3"))}, Select="COUNT"),
        scan("with an empty ScanFilter and Limit", ScanFilter={}, Limit=3, AttributesToGet=["pk"]),
        scan(
            "refused: AttributesToGet and Select ALL_ATTRIBUTES",
            AttributesToGet=["qty"],
            Select="ALL_ATTRIBUTES",
        ),
        scan("refused: a name twice", AttributesToGet=["qty", "qty"]),
        scan("refused: BEGINS_WITH with a number", ScanFilter={"qty": cond("BEGINS_WITH", N("1"))}),
        scan("refused: IN with a set", ScanFilter={"qty": cond("IN", {"NS": ["1"]})}),
        scan("refused: NOT_NULL with a value", ScanFilter={"qty": cond("NOT_NULL", N("1"))}),
        scan(
            "refused: ConditionalOperator without a ScanFilter",
            ConditionalOperator="AND",
            AttributesToGet=["qty"],
        ),
        scan(
            "refused: ScanFilter, ConditionalOperator and expressions",
            AttributesToGet=["qty"],
            ScanFilter={"qty": cond("EQ", N("1")), "word": cond("EQ", S("x"))},
            ConditionalOperator="OR",
            FilterExpression="qty = :q",
            ProjectionExpression="word",
            ExpressionAttributeValues={":q": N("1")},
        ),
    ]


def _legacy() -> list[Case]:
    return [
        *_legacy_puts(),
        *_legacy_refused_puts(),
        *_legacy_updates(),
        *_legacy_deletes(),
        *_legacy_gets(),
        *_legacy_rows(),
        *_legacy_queries(),
        *_legacy_scans(),
    ]


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
    *_legacy(),
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
            DYNALITE,
            "dynalite predates the '1 validation error detected: ' DynamoDB now puts before an empty set "
            "in PutItem's Item (moto follows DynamoDB: its aws_verified test_put_item_empty_set)",
            "1 validation error detected: One or more parameter values were invalid: An string set  may not be empty",
        ),
    ),
    "put an empty number set": (
        _emulator(
            DYNALITE,
            "dynalite predates the '1 validation error detected: ' DynamoDB now puts before an empty set "
            "in PutItem's Item (moto follows DynamoDB: its aws_verified test_put_item_empty_set)",
            "1 validation error detected: One or more parameter values were invalid: An number set  may not be empty",
        ),
    ),
    "put an empty binary set": (
        _emulator(
            MOTO,
            _MOTO_LAX,
            "1 validation error detected: One or more parameter values were invalid: Binary sets should not be empty",
        ),
        _emulator(
            DYNALITE,
            "dynalite predates the '1 validation error detected: ' DynamoDB now puts before an empty set "
            "in PutItem's Item",
            "1 validation error detected: One or more parameter values were invalid: Binary sets should not be empty",
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
            DYNALITE,
            "dynalite predates the '1 validation error detected: ' DynamoDB now puts before this message "
            "(moto follows DynamoDB: its aws_verified test_update_item_with_empty_values)",
            "1 validation error detected: ExpressionAttributeValues must not be empty",
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
            "moto takes 26 writes; DynamoDB and dynalite refuse them with the length constraint on "
            "requestItems, quoting the whole request (dynalite as JSON, DynamoDB as Java's toString of every "
            "write); the facade gives the same message with the writes elided (dynamodb_messages.elided_list)",
            validation(
                "1 validation error detected: Value '{scratch=[... 26 WriteRequest ...]}' at 'requestItems' "
                "failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less "
                "than or equal to 25, Member must have length greater than or equal to 1]"
            ),
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
        _emulator(
            BOTH,
            "DynamoDB refuses more than 100 keys of one table naming 'RequestItems.<table>.member.Keys' "
            "(captured from DynamoDB); moto spells the path in lowerCamel, dynalite quotes every key",
            "1 validation error detected: Value at 'RequestItems.hash.member.Keys' failed to satisfy "
            "constraint: Member must have length less than or equal to 100",
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


# ------------------------------------------------------------ legacy parameters: known differences

# What DynamoDB says to each refused legacy case (the facade's own checks, or the refusal of the
# expression it sent, worded as DynamoDB words it for the legacy parameter).
LEGACY_REFUSALS: dict[str, str] = {
    "legacy put refused: Exists true without a Value": "One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: a",
    "legacy put refused: neither Exists nor Value": "One or more parameter values were invalid: Value must be provided when Exists is null for Attribute: a",
    "legacy put refused: Exists false with a Value": "One or more parameter values were invalid: Value cannot be used when Exists is false for Attribute: a",
    "legacy put refused: Exists with an operator": "One or more parameter values were invalid: Exists and ComparisonOperator cannot be used together for Attribute: a",
    "legacy put refused: a Value and a list": "One or more parameter values were invalid: Value and AttributeValueList cannot be used together for Attribute: a",
    "legacy put refused: a list without an operator": "One or more parameter values were invalid: AttributeValueList can only be used with a ComparisonOperator for Attribute: a",
    "legacy put refused: an operator without values": "One or more parameter values were invalid: Value or AttributeValueList must be used with ComparisonOperator: LT for Attribute: a",
    "legacy put refused: BETWEEN with one value": "One or more parameter values were invalid: Invalid number of argument(s) for the BETWEEN ComparisonOperator",
    "legacy put refused: NULL with a value": "One or more parameter values were invalid: Invalid number of argument(s) for the NULL ComparisonOperator",
    "legacy put refused: IN with no values": "One or more parameter values were invalid: Invalid number of argument(s) for the IN ComparisonOperator",
    "legacy put refused: EQ with two values": "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator",
    "legacy put refused: values of two types": "One or more parameter values were invalid: AttributeValues inside AttributeValueList must be of same type",
    "legacy put refused: LT with a set": "One or more parameter values were invalid: ComparisonOperator LT is not valid for SS AttributeValue type",
    "legacy put refused: CONTAINS with a list": "One or more parameter values were invalid: ComparisonOperator CONTAINS is not valid for L AttributeValue type",
    "legacy put refused: BEGINS_WITH with a number": "One or more parameter values were invalid: ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type",
    "legacy put refused: BETWEEN bounds reversed": "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
    "legacy put refused: an unknown operator": "1 validation error detected: Value 'EQUALS' at 'expected.a.member.comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]",
    "legacy put refused: an empty string set": "One or more parameter values were invalid: An string set  may not be empty",
    "legacy put refused: an unknown ConditionalOperator": "1 validation error detected: Value 'XOR' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]",
    "legacy put refused: ConditionalOperator with one condition": "ConditionalOperator can only be used when Filter or Expected has two or more elements",
    "legacy put refused: ConditionalOperator without Expected": "ConditionalOperator cannot be used without Filter or Expected",
    "legacy put refused: Expected and ConditionExpression": "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}",
    "legacy put refused: Expected, ConditionalOperator and ConditionExpression": "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected, ConditionalOperator} Expression parameters: {ConditionExpression}",
    "legacy put refused: Expected and names": "ExpressionAttributeNames can only be specified when using expressions",
    "legacy put refused: Expected and values": "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null",
    "legacy update refused: PUT without a value": "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified",
    "legacy update refused: ADD without a value": "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified",
    "legacy update refused: DELETE of a string value": "One or more parameter values were invalid: DELETE action with value is not supported for the type S",
    "legacy update refused: ADD of a string": "One or more parameter values were invalid: ADD action is not supported for the type S",
    "legacy update refused: ADD of a map": "One or more parameter values were invalid: ADD action is not supported for the type M",
    "legacy update refused: an unknown action": "1 validation error detected: Value 'REPLACE' at 'attributeUpdates.a.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]",
    "legacy update refused: ADD of a set to a number": "Type mismatch for attribute to update",
    "legacy update refused: ADD of a number to a set": "Type mismatch for attribute to update",
    "legacy update refused: DELETE of a number set from a string set": "Type mismatch for attribute to update",
    "legacy update refused: ADD of a list to a string": "Type mismatch for attribute to update",
    "legacy update refused: of a key attribute": "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key",
    "legacy update refused: an empty number set": "One or more parameter values were invalid: An number set  may not be empty",
    "legacy update refused: AttributeUpdates and UpdateExpression": "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributeUpdates} Expression parameters: {UpdateExpression}",
    "legacy update refused: AttributeUpdates and ConditionExpression": "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributeUpdates} Expression parameters: {ConditionExpression}",
    "legacy update refused: Expected and UpdateExpression": "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected} Expression parameters: {UpdateExpression}",
    "legacy update refused: values without an expression": "ExpressionAttributeValues can only be specified when using expressions: UpdateExpression and ConditionExpression are null",
    "legacy update refused: ConditionalOperator without Expected": "ConditionalOperator cannot be used without Filter or Expected",
    "legacy delete refused: Expected and ConditionExpression": "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}",
    "legacy get refused: a name twice": "One or more parameter values were invalid: Duplicate value in attribute name: s",
    "legacy get refused: AttributesToGet and ProjectionExpression": "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
    "legacy get refused: AttributesToGet and names": "ExpressionAttributeNames can only be specified when using expressions",
    "legacy batch get refused: AttributesToGet and ProjectionExpression": "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
    "legacy batch get refused: a name twice": "One or more parameter values were invalid: Duplicate value in attribute name: n",
    "legacy query refused: NE on the partition key": "Attempted conditional constraint is not an indexable operation",
    "legacy query refused: IN on the sort key": "Attempted conditional constraint is not an indexable operation",
    "legacy query refused: GT on the partition key": "Query key condition not supported",
    "legacy query refused: three key conditions": "Conditions can be of length 1 or 2 only",
    "legacy query refused: no key condition": "Conditions can be of length 1 or 2 only",
    "legacy query refused: a condition on another attribute": "Query condition missed key schema element: sk",
    "legacy query refused: a sort key of the wrong type": "One or more parameter values were invalid: Condition parameter type does not match schema type",
    "legacy query refused: BETWEEN bounds reversed": "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
    "legacy query refused: BETWEEN with three values": "One or more parameter values were invalid: Invalid number of argument(s) for the BETWEEN ComparisonOperator",
    "legacy query refused: a QueryFilter on a key": "QueryFilter can only contain non-primary key attributes: Primary key attribute: sk",
    "legacy query refused: a QueryFilter without KeyConditions": "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
    "legacy query refused: LT with a boolean": "One or more parameter values were invalid: ComparisonOperator LT is not valid for BOOL AttributeValue type",
    "legacy query refused: an unknown operator": "1 validation error detected: Value 'ABOUT' at 'queryFilter.qty.member.comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]",
    "legacy query refused: ConditionalOperator with one condition": "ConditionalOperator can only be used when Filter or Expected has two or more elements",
    "legacy query refused: ConditionalOperator without a QueryFilter": "ConditionalOperator cannot be used without Filter or Expected",
    "legacy query refused: AttributesToGet and Select ALL_ATTRIBUTES": "1 validation error detected: Cannot specify the AttributesToGet when choosing to get ALL_ATTRIBUTES",
    "legacy query refused: AttributesToGet and Select COUNT": "1 validation error detected: Cannot specify the AttributesToGet when choosing to get only the Count",
    "legacy query refused: KeyConditions and KeyConditionExpression": "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {KeyConditions} Expression parameters: {KeyConditionExpression}",
    "legacy query refused: QueryFilter and FilterExpression": "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {QueryFilter} Expression parameters: {FilterExpression}",
    "legacy query refused: KeyConditions and names only": "ExpressionAttributeNames can only be specified when using expressions",
    "legacy query refused: KeyConditions and values only": "ExpressionAttributeValues can only be specified when using expressions: FilterExpression and KeyConditionExpression are null",
    "legacy scan refused: AttributesToGet and Select ALL_ATTRIBUTES": "Cannot specify the AttributesToGet when choosing to get ALL_ATTRIBUTES",
    "legacy scan refused: a name twice": "One or more parameter values were invalid: Duplicate value in attribute name: qty",
    "legacy scan refused: BEGINS_WITH with a number": "One or more parameter values were invalid: ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type",
    "legacy scan refused: IN with a set": "One or more parameter values were invalid: ComparisonOperator IN is not valid for NS AttributeValue type",
    "legacy scan refused: NOT_NULL with a value": "One or more parameter values were invalid: Invalid number of argument(s) for the NOT_NULL ComparisonOperator",
    "legacy scan refused: ConditionalOperator without a ScanFilter": "ConditionalOperator cannot be used without Filter or Expected",
    "legacy scan refused: ScanFilter, ConditionalOperator and expressions": "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet, ScanFilter, ConditionalOperator} Expression parameters: {ProjectionExpression, FilterExpression}",
}

CONDITION_FAILED: Outcome = {
    "error": "ConditionalCheckFailedException",
    "response": {
        "Error": {"Message": "The conditional request failed", "Code": "ConditionalCheckFailedException"},
        "message": "The conditional request failed",
    },
}
SUCCEEDED: Outcome = {"ok": {}}


def answers(outcome: Outcome) -> Callable[[Outcome], Outcome]:
    """DynamoDB's answer, whatever the emulator's was."""
    return lambda _: outcome


def with_old_item(item: dict[str, Any]) -> Outcome:
    return {"error": CONDITION_FAILED["error"], "response": {**CONDITION_FAILED["response"], "Item": item}}


def rows(*numbers: int) -> Outcome:
    """A query of the legacy partition's five rows answering these, cut to their sort key."""
    items = [{"sk": S(f"row#{number}")} for number in numbers]
    return {"ok": {"Items": items, "Count": len(items), "ScannedCount": 5}}


def projected(*names: str) -> Callable[[Outcome], Outcome]:
    """boto3's answer with every item cut to these attributes, as AttributesToGet has DynamoDB do."""

    def cut(item: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in item.items() if name in names}

    def expect(outcome: Outcome) -> Outcome:
        ok = dict(outcome["ok"])
        if "Item" in ok:
            ok["Item"] = cut(ok["Item"])
        if "Items" in ok:
            ok["Items"] = [cut(item) for item in ok["Items"]]
        return {"ok": ok}

    return expect


def kept(predicate: Callable[[dict[str, Any]], bool]) -> Callable[[Outcome], Outcome]:
    """boto3's answer without the items DynamoDB's filter leaves out."""

    def expect(outcome: Outcome) -> Outcome:
        items = [item for item in outcome["ok"]["Items"] if predicate(item)]
        return {"ok": {**outcome["ok"], "Items": items, "Count": len(items)}}

    return expect


def _update_outcome_unknown(outcome: Outcome) -> Outcome:
    error = outcome["response"]["Error"]
    message = "UpdateItem may or may not have been applied (it has a condition, which a repeat would test against the first attempt's result); read before retrying"
    return {"error": "ClientError", "response": {"Error": {**error, "Message": message}}}


# The updated item once its string set is gone.
_LEGACY_UPDATED_ITEM = {
    **LEGACY_UPDATED,
    "n": N("10"),
    "ns": {"NS": ["2"]},
    "l": {"L": [S("x"), N("2")]},
    "m": {"M": {"k": S("v")}},
}

# Refused legacy cases moto answers as the facade does: it checks these itself, or runs the
# expression the facade sends as wrongly as the legacy request (a sort key of the wrong type, a
# filter on a key attribute).
_MOTO_ALIKE = {
    "legacy update refused: AttributeUpdates and UpdateExpression",
    "legacy get refused: AttributesToGet and ProjectionExpression",
    "legacy get refused: AttributesToGet and names",
    "legacy query refused: GT on the partition key",
    "legacy query refused: a sort key of the wrong type",
    "legacy query refused: a QueryFilter on a key",
    "legacy query refused: AttributesToGet and Select ALL_ATTRIBUTES",
    "legacy query refused: AttributesToGet and Select COUNT",
}
_MOTO_UNCHECKED = (
    "moto does not make DynamoDB's checks of legacy parameters: where DynamoDB refuses the request, moto "
    "runs it, fails with an HTML 500 or words its refusal otherwise"
)
_NOT_CONTAINS = (
    "the emulators take NOT_CONTAINS as true for a missing attribute (dynalite) or fail (moto); DynamoDB takes "
    "it as false, unlike NOT contains() in an expression (ScyllaDB's Alternator tests, run against DynamoDB, "
    "record it)"
)
_OR = (
    "dynalite's ConditionalOperator OR stops at the first condition that fails; DynamoDB's documentation: "
    "with OR, at least one of the conditions must evaluate to true"
)
_MOTO_OR = (
    "moto misjudges these ORed conditions; DynamoDB's documentation: with OR, at least one must be true"
)
_COUNT_OF_CONDITIONS = (
    "the emulators accept ConditionalOperator without two or more conditions to join; DynamoDB refuses it"
)
_MOTO_ATTRIBUTES_TO_GET = "moto ignores AttributesToGet and answers every attribute of each item"


def _legacy_differences() -> dict[str, tuple[Differs, ...]]:
    found: dict[str, list[Differs]] = {}

    def add(name: str, kinds: frozenset[str], why: str, expect: Callable[[Outcome], Outcome]) -> None:
        found.setdefault(name, []).append(Differs(kinds, "emulator", why, expect))

    for name, message in LEGACY_REFUSALS.items():
        if name not in _MOTO_ALIKE:
            add(name, MOTO, _MOTO_UNCHECKED, validation(message))
    for name, why in [
        *(
            (
                f"legacy put refused: {check}",
                "dynalite checks the value types of QueryFilter's and ScanFilter's operators, not Expected's",
            )
            for check in ("LT with a set", "CONTAINS with a list", "BEGINS_WITH with a number")
        ),
        *(
            (name, _COUNT_OF_CONDITIONS)
            for name in (
                "legacy put refused: ConditionalOperator with one condition",
                "legacy put refused: ConditionalOperator without Expected",
                "legacy update refused: ConditionalOperator without Expected",
                "legacy query refused: ConditionalOperator with one condition",
                "legacy query refused: ConditionalOperator without a QueryFilter",
                "legacy scan refused: ConditionalOperator without a ScanFilter",
            )
        ),
        (
            "legacy put refused: Expected, ConditionalOperator and ConditionExpression",
            "dynalite leaves ConditionalOperator out of the non-expression parameters it names",
        ),
        (
            "legacy update refused: an unknown action",
            "dynalite does not check AttributeUpdates' Action against its values",
        ),
        *(
            (
                name,
                "dynalite takes AttributesToGet with any Select; DynamoDB's documentation: only with SPECIFIC_ATTRIBUTES",
            )
            for name in (
                "legacy query refused: AttributesToGet and Select ALL_ATTRIBUTES",
                "legacy query refused: AttributesToGet and Select COUNT",
                "legacy scan refused: AttributesToGet and Select ALL_ATTRIBUTES",
            )
        ),
    ]:
        add(name, DYNALITE, why, validation(LEGACY_REFUSALS[name]))

    # Conditions the emulators judge otherwise than DynamoDB.
    add(
        "legacy put, Expected EQ holds",
        DYNALITE,
        "dynalite compares Expected's numbers as text (5.0 is not 5); DynamoDB's documentation: number comparisons are numeric",
        answers(SUCCEEDED),
    )
    add(
        "legacy put, Expected NOT_CONTAINS fails for a missing attribute",
        BOTH,
        _NOT_CONTAINS,
        answers(CONDITION_FAILED),
    )
    add(
        "legacy put, Expected Exists true with a Value fails",
        BOTH,
        "the emulators take Exists true as 'the attribute exists' and ignore its Value; DynamoDB's documentation: "
        "Exists true checks that the attribute has that value",
        answers(CONDITION_FAILED),
    )
    add("legacy put, Expected ORed holds", DYNALITE, _OR, answers(SUCCEEDED))
    add("legacy put, Expected ORed holds", MOTO, _MOTO_OR, answers(SUCCEEDED))
    add(
        "legacy put, Expected operator with a Value",
        MOTO,
        "moto ignores a Value given with a ComparisonOperator; DynamoDB compares with it",
        answers(SUCCEEDED),
    )
    add(
        "legacy put, Expected ANDed explicitly fails, returning the old item",
        MOTO,
        "moto leaves out the old item when an Expected condition fails",
        answers(with_old_item(LEGACY_ITEM)),
    )
    add(
        "legacy update with Expected failing, returning the old item",
        MOTO,
        "moto leaves out the old item when an Expected condition fails",
        answers(with_old_item({**_LEGACY_UPDATED_ITEM, "ss": {"SS": ["b", "c"]}})),
    )
    add(
        "legacy delete with Expected failing",
        MOTO,
        "moto's DeleteItem ignores Expected",
        answers(CONDITION_FAILED),
    )
    deleted = answers({"ok": {"Attributes": {"pk": S("legacy#4"), "v": N("4")}}})
    add("legacy delete with Expected ORed holding, returning the old item", DYNALITE, _OR, deleted)
    add(
        "legacy delete with Expected ORed holding, returning the old item",
        MOTO,
        "moto's DeleteItem ignores Expected, so the case before deleted the item",
        deleted,
    )

    # AttributeUpdates.
    for name in (
        "legacy update PUT, ADD and DELETE creating an item, returning ALL_NEW",
        "legacy update ADD to a number, a set and a list, DELETE from a set and REMOVE, returning UPDATED_NEW",
        "legacy update with Expected holding, returning UPDATED_OLD",
        "legacy batch get with AttributesToGet beside a projection",
    ):
        found.setdefault(name, []).append(moto_unasked_capacity())
    emptied = answers({"ok": {"Attributes": _LEGACY_UPDATED_ITEM}})
    add(
        "legacy update DELETE of every member removes the set",
        MOTO,
        "moto keeps an empty set (and sends ConsumedCapacity nobody asked for); DynamoDB removes the attribute",
        emptied,
    )
    add(
        "legacy update DELETE from a set the item lacks",
        MOTO,
        "moto fails a legacy DELETE from an attribute the item lacks with an HTML 500; DynamoDB does nothing",
        emptied,
    )
    add(
        "legacy update with an empty AttributeUpdates creates the item",
        MOTO,
        "moto fails an UpdateItem without UpdateExpression (the expression form of an empty AttributeUpdates) "
        "with a 500, which the gateway relays; DynamoDB and dynalite create the item",
        answers(
            {
                "error": "ClientError",
                "response": {"Error": {"Message": "Internal Server Error", "Code": "500"}},
            }
        ),
    )
    add(
        "legacy update with Expected alone",
        MOTO,
        "moto fails an UpdateItem without UpdateExpression with an HTML 500; the gateway does not repeat a "
        "conditional write after a 5xx and says its outcome is unknown",
        _update_outcome_unknown,
    )

    # Reads.
    add("legacy get with AttributesToGet", MOTO, _MOTO_ATTRIBUTES_TO_GET, projected("s", "ss", "missing"))
    add(
        "legacy get consistently with AttributesToGet that name nothing stored",
        MOTO,
        _MOTO_ATTRIBUTES_TO_GET,
        projected("missing", "a.b"),
    )
    add("legacy query with a QueryFilter ORed", DYNALITE, _OR, answers(rows(1, 4, 5)))
    add(
        "legacy query with a QueryFilter ORed",
        MOTO,
        "moto answers every attribute, and some items twice, for an ORed QueryFilter",
        answers(rows(1, 4, 5)),
    )
    add(
        "legacy query with a QueryFilter ANDed and Select COUNT",
        DYNALITE,
        "dynalite refuses EQ on a boolean in a QueryFilter; DynamoDB's documentation: EQ is supported for all data types",
        answers({"ok": {"Count": 2, "ScannedCount": 5}}),
    )
    add(
        "legacy query with a QueryFilter ANDed and Select COUNT",
        MOTO,
        "moto fails this QueryFilter with an HTML 500",
        answers({"ok": {"Count": 2, "ScannedCount": 5}}),
    )
    add(
        "legacy query with EQ on a boolean",
        DYNALITE,
        "dynalite refuses EQ on a boolean in a QueryFilter; DynamoDB's documentation: EQ is supported for all data types",
        answers(rows(2, 4)),
    )
    add("legacy query with EQ on a boolean", MOTO, _MOTO_ATTRIBUTES_TO_GET, projected("sk"))
    add(
        "legacy query with NE on a set, which a missing attribute holds",
        MOTO,
        "moto fails NE on a set in a QueryFilter with an HTML 500",
        answers(rows(1, 3, 5)),
    )
    add(
        "legacy query with NOT_CONTAINS, which a missing attribute fails",
        BOTH,
        _NOT_CONTAINS,
        answers(rows(2, 4)),
    )
    add(
        "legacy query with AttributesToGet and a filter on another attribute",
        MOTO,
        "moto answers every attribute, and some items twice, for a QueryFilter with IN",
        answers(
            {
                "ok": {
                    "Items": [{"sk": S("row#2"), "qty": N("2")}, {"sk": S("row#3"), "qty": N("3")}],
                    "Count": 2,
                    "ScannedCount": 5,
                }
            }
        ),
    )
    add(
        "legacy query with AttributesToGet and Select SPECIFIC_ATTRIBUTES",
        MOTO,
        _MOTO_ATTRIBUTES_TO_GET,
        projected("word"),
    )
    add(
        "legacy query a global index with AttributesToGet",
        MOTO,
        _MOTO_ATTRIBUTES_TO_GET,
        projected("gsi1sk", "word"),
    )
    add("legacy scan NOT_NULL", MOTO, _MOTO_ATTRIBUTES_TO_GET, projected("sk", "tags"))
    add("legacy scan NOT_CONTAINS a member", DYNALITE, _NOT_CONTAINS, kept(lambda item: "tags" in item))
    add("legacy scan NOT_CONTAINS a member", MOTO, _MOTO_ATTRIBUTES_TO_GET, projected("sk", "tags"))
    add("legacy scan IN", MOTO, _MOTO_ATTRIBUTES_TO_GET, projected("word"))
    add("legacy scan with an empty ScanFilter and Limit", MOTO, _MOTO_ATTRIBUTES_TO_GET, projected("pk"))
    return {name: tuple(differs) for name, differs in found.items()}


DIFFERENCES |= _legacy_differences()


def _with_differences(cases: list[Case]) -> list[Case]:
    names = {c.name for c in cases}
    assert len(names) == len(cases), "case names are unique"
    assert set(DIFFERENCES) <= names, set(DIFFERENCES) - names
    return [replace(c, differs=DIFFERENCES.get(c.name, ())) for c in cases]


CASES = _with_differences(CASES)


def cases_for(kind: str) -> list[Case]:
    return [c for c in CASES if not (c.transactions and kind == "dynalite")]
