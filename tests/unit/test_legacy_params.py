"""The facade's legacy parameters: their expression form, operator by operator, and DynamoDB's refusals.

The expressions are written out by hand from DynamoDB's documented meaning of each legacy
parameter (and what DynamoDB was seen to do where the documentation is silent: NOT_CONTAINS
is false for a missing attribute); the refusals are DynamoDB's own texts. tests/compat runs
the same requests against the emulators, through the gateway.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from dynamo_gateway.boto3_compat import _legacy, client
from dynamo_gateway.boto3_compat._failures import LocalValidationError

INVALID = "One or more parameter values were invalid: "


def S(text: str) -> dict[str, str]:
    return {"S": text}


def N(text: str) -> dict[str, str]:
    return {"N": text}


def cond(operator: str, *values: dict[str, Any]) -> dict[str, Any]:
    return {"ComparisonOperator": operator, "AttributeValueList": list(values)}


def refusal(operation: str, params: dict[str, Any]) -> str:
    with pytest.raises(LocalValidationError) as caught:
        _legacy.translate(operation, params)
    return caught.value.message


# ---------------------------------------------------------------- conditions, operator by operator


@pytest.mark.parametrize(
    ("condition", "expression", "values"),
    [
        (cond("EQ", S("x")), "#l0 = :l0", {":l0": S("x")}),
        (cond("EQ", {"SS": ["a", "b"]}), "#l0 = :l0", {":l0": {"SS": ["a", "b"]}}),
        (cond("EQ", {"BOOL": True}), "#l0 = :l0", {":l0": {"BOOL": True}}),
        (cond("NE", {"M": {}}), "#l0 <> :l0", {":l0": {"M": {}}}),
        (cond("LE", N("1")), "#l0 <= :l0", {":l0": N("1")}),
        (cond("LT", {"B": b"\x01"}), "#l0 < :l0", {":l0": {"B": b"\x01"}}),
        (cond("GE", S("x")), "#l0 >= :l0", {":l0": S("x")}),
        (cond("GT", N("1")), "#l0 > :l0", {":l0": N("1")}),
        (cond("NOT_NULL"), "attribute_exists(#l0)", {}),
        ({"ComparisonOperator": "NULL"}, "attribute_not_exists(#l0)", {}),
        (cond("CONTAINS", S("x")), "contains(#l0, :l0)", {":l0": S("x")}),
        (cond("CONTAINS", {"NULL": True}), "contains(#l0, :l0)", {":l0": {"NULL": True}}),
        # DynamoDB: false for a missing attribute, where NOT contains() would be true.
        (cond("NOT_CONTAINS", N("2")), "attribute_exists(#l0) AND NOT contains(#l0, :l0)", {":l0": N("2")}),
        (cond("BEGINS_WITH", S("pre")), "begins_with(#l0, :l0)", {":l0": S("pre")}),
        (cond("IN", N("1")), "#l0 IN (:l0)", {":l0": N("1")}),
        (
            cond("IN", S("a"), S("b"), S("c")),
            "#l0 IN (:l0, :l1, :l2)",
            {":l0": S("a"), ":l1": S("b"), ":l2": S("c")},
        ),
        (cond("BETWEEN", N("1"), N("1")), "#l0 BETWEEN :l0 AND :l1", {":l0": N("1"), ":l1": N("1")}),
    ],
)
def test_each_operator_of_a_scan_filter(
    condition: dict[str, Any], expression: str, values: dict[str, Any]
) -> None:
    out = _legacy.translate("Scan", {"TableName": "app", "ScanFilter": {"a.b": condition}})
    assert out["FilterExpression"] == expression
    # A legacy name is a whole top-level attribute name, never a document path.
    assert out["ExpressionAttributeNames"] == {"#l0": "a.b"}
    assert out.get("ExpressionAttributeValues", {}) == values
    assert "ScanFilter" not in out


@pytest.mark.parametrize(("operator", "joiner"), [(None, " AND "), ("AND", " AND "), ("OR", " OR ")])
def test_conditional_operator_joins_the_conditions(operator: str | None, joiner: str) -> None:
    params: dict[str, Any] = {
        "TableName": "app",
        "KeyConditions": {"pk": cond("EQ", S("p"))},
        "QueryFilter": {"a": cond("GT", N("1")), "b": cond("NOT_CONTAINS", S("x"))},
    }
    if operator:
        params["ConditionalOperator"] = operator
    out = _legacy.translate("Query", params)
    assert out["FilterExpression"] == joiner.join(
        ["(#l0 > :l0)", "(attribute_exists(#l1) AND NOT contains(#l1, :l1))"]
    )
    # ConditionalOperator is QueryFilter's: key conditions are always ANDed.
    assert out["KeyConditionExpression"] == "#l2 = :l2"
    assert "ConditionalOperator" not in out


def test_key_conditions_with_a_query_filter_and_attributes_to_get() -> None:
    out = _legacy.translate(
        "Query",
        {
            "TableName": "app",
            "IndexName": "gsi1",
            "KeyConditions": {"g": cond("EQ", S("org")), "s": cond("BETWEEN", S("a"), S("m"))},
            "QueryFilter": {"qty": cond("GE", N("2"))},
            "AttributesToGet": ["s", "qty", "other"],
            "Select": "SPECIFIC_ATTRIBUTES",
            "Limit": 5,
        },
    )
    assert out == {
        "TableName": "app",
        "IndexName": "gsi1",
        "Select": "SPECIFIC_ATTRIBUTES",
        "Limit": 5,
        # Placeholders in the order DynamoDB checks the parameters: QueryFilter, then KeyConditions.
        "KeyConditionExpression": "#l1 = :l1 AND #l2 BETWEEN :l2 AND :l3",
        "FilterExpression": "#l0 >= :l0",
        "ProjectionExpression": "#l2, #l0, #l3",
        "ExpressionAttributeNames": {"#l0": "qty", "#l1": "g", "#l2": "s", "#l3": "other"},
        "ExpressionAttributeValues": {":l0": N("2"), ":l1": S("org"), ":l2": S("a"), ":l3": S("m")},
    }


def test_placeholders_skip_the_ones_the_request_uses() -> None:
    # KeyConditions may go with the caller's own FilterExpression, names and values.
    out = _legacy.translate(
        "Query",
        {
            "TableName": "app",
            "KeyConditions": {"pk": cond("EQ", S("p")), "sk": cond("BEGINS_WITH", S("x"))},
            "FilterExpression": "#l0 < :l0 AND #l1 > :l2",
            "ExpressionAttributeNames": {"#l0": "qty", "#l1": "n"},
            "ExpressionAttributeValues": {":l0": N("4"), ":l2": N("0")},
        },
    )
    assert out["KeyConditionExpression"] == "#l2 = :l1 AND begins_with(#l3, :l3)"
    assert out["FilterExpression"] == "#l0 < :l0 AND #l1 > :l2"
    assert out["ExpressionAttributeNames"] == {"#l0": "qty", "#l1": "n", "#l2": "pk", "#l3": "sk"}
    assert out["ExpressionAttributeValues"] == {":l0": N("4"), ":l2": N("0"), ":l1": S("p"), ":l3": S("x")}


def test_an_empty_filter_is_no_filter() -> None:
    out = _legacy.translate("Scan", {"TableName": "app", "ScanFilter": {}, "Limit": 3})
    assert out == {"TableName": "app", "Limit": 3}


def test_a_request_without_legacy_parameters_is_left_alone() -> None:
    params = {"TableName": "app", "FilterExpression": "a = :a", "ExpressionAttributeValues": {":a": S("x")}}
    assert _legacy.translate("Scan", params) == params
    batch = {"RequestItems": {"app": {"Keys": [{"pk": S("x")}], "ProjectionExpression": "a"}}}
    assert _legacy.translate("BatchGetItem", batch) == batch
    assert _legacy.translate("DescribeTable", {"TableName": "app"}) == {"TableName": "app"}


# ---------------------------------------------------------------- Expected


@pytest.mark.parametrize(
    ("expected", "expression", "values"),
    [
        ({"a": {"Value": S("x")}}, "#l0 = :l0", {":l0": S("x")}),
        ({"a": {"Exists": True, "Value": S("x")}}, "#l0 = :l0", {":l0": S("x")}),
        ({"a": {"Exists": False}}, "attribute_not_exists(#l0)", {}),
        # A Value counts as the operator's one value.
        ({"a": {"ComparisonOperator": "GT", "Value": N("1")}}, "#l0 > :l0", {":l0": N("1")}),
        ({"a": {"ComparisonOperator": "NOT_NULL"}}, "attribute_exists(#l0)", {}),
        ({"a": cond("NULL")}, "attribute_not_exists(#l0)", {}),
        (
            {"a": {"Value": S("x")}, "b": cond("IN", N("1"), N("2"))},
            "(#l0 = :l0) AND (#l1 IN (:l1, :l2))",
            {":l0": S("x"), ":l1": N("1"), ":l2": N("2")},
        ),
    ],
)
def test_expected_is_a_condition_expression(
    expected: dict[str, Any], expression: str, values: dict[str, Any]
) -> None:
    out = _legacy.translate("PutItem", {"TableName": "app", "Item": {"pk": S("x")}, "Expected": expected})
    assert out["ConditionExpression"] == expression
    assert out.get("ExpressionAttributeValues", {}) == values
    assert "Expected" not in out


def test_expected_ored_in_a_delete_and_an_empty_expected() -> None:
    out = _legacy.translate(
        "DeleteItem",
        {
            "TableName": "app",
            "Key": {"pk": S("x")},
            "Expected": {"a": {"Exists": False}, "b": {"Value": N("1")}},
            "ConditionalOperator": "OR",
            "ReturnValues": "ALL_OLD",
        },
    )
    assert out["ConditionExpression"] == "(attribute_not_exists(#l0)) OR (#l1 = :l0)"
    assert out["ReturnValues"] == "ALL_OLD"
    assert _legacy.translate("PutItem", {"TableName": "app", "Item": {"pk": S("x")}, "Expected": {}}) == {
        "TableName": "app",
        "Item": {"pk": S("x")},
    }


# ---------------------------------------------------------------- AttributeUpdates


def test_attribute_updates_is_an_update_expression() -> None:
    out = _legacy.translate(
        "UpdateItem",
        {
            "TableName": "app",
            "Key": {"pk": S("x")},
            "AttributeUpdates": {
                "s": {"Value": S("v")},  # PUT is the default action
                "m": {"Action": "PUT", "Value": {"M": {"k": S("v")}}},
                "gone": {"Action": "DELETE"},
                "tags": {"Action": "DELETE", "Value": {"SS": ["a"]}},
                "n": {"Action": "ADD", "Value": N("-1")},
                "ns": {"Action": "ADD", "Value": {"NS": ["1"]}},
                "l": {"Action": "ADD", "Value": {"L": [S("x")]}},
            },
            "Expected": {"n": {"Value": N("2")}},
            "ReturnValues": "UPDATED_NEW",
        },
    )
    assert out["UpdateExpression"] == (
        "SET #l0 = :l0, #l1 = :l1, #l6 = list_append(if_not_exists(#l6, :l5), :l6) "
        "REMOVE #l2 ADD #l4 :l3, #l5 :l4 DELETE #l3 :l2"
    )
    assert out["ExpressionAttributeNames"] == {
        "#l0": "s",
        "#l1": "m",
        "#l2": "gone",
        "#l3": "tags",
        "#l4": "n",
        "#l5": "ns",
        "#l6": "l",
    }
    assert out["ExpressionAttributeValues"][":l5"] == {"L": []}
    assert out["ConditionExpression"] == "#l4 = :l7"
    assert out["ExpressionAttributeValues"][":l7"] == N("2")
    assert "AttributeUpdates" not in out and "Expected" not in out


def test_an_update_without_actions_sends_none() -> None:
    out = _legacy.translate("UpdateItem", {"TableName": "app", "Key": {"pk": S("x")}, "AttributeUpdates": {}})
    assert out == {"TableName": "app", "Key": {"pk": S("x")}}


# ---------------------------------------------------------------- AttributesToGet


def test_attributes_to_get_is_a_projection() -> None:
    out = _legacy.translate(
        "GetItem", {"TableName": "app", "Key": {"pk": S("x")}, "AttributesToGet": ["a", "b.c", "#d"]}
    )
    assert out["ProjectionExpression"] == "#l0, #l1, #l2"
    assert out["ExpressionAttributeNames"] == {"#l0": "a", "#l1": "b.c", "#l2": "#d"}
    batch = _legacy.translate(
        "BatchGetItem",
        {
            "RequestItems": {
                "app": {"Keys": [{"pk": S("x")}], "AttributesToGet": ["a"], "ConsistentRead": True},
                "other": {
                    "Keys": [{"pk": S("y")}],
                    "ProjectionExpression": "#b",
                    "ExpressionAttributeNames": {"#b": "b"},
                },
            },
            "ReturnConsumedCapacity": "TOTAL",
        },
    )
    assert batch == {
        "RequestItems": {
            "app": {
                "Keys": [{"pk": S("x")}],
                "ConsistentRead": True,
                "ProjectionExpression": "#l0",
                "ExpressionAttributeNames": {"#l0": "a"},
            },
            "other": {
                "Keys": [{"pk": S("y")}],
                "ProjectionExpression": "#b",
                "ExpressionAttributeNames": {"#b": "b"},
            },
        },
        "ReturnConsumedCapacity": "TOTAL",
    }


# ---------------------------------------------------------------- DynamoDB's refusals


def mixing(legacy: str, expressions: str) -> str:
    return (
        "Can not use both expression and non-expression parameters in the same request: "
        f"Non-expression parameters: {{{legacy}}} Expression parameters: {{{expressions}}}"
    )


@pytest.mark.parametrize(
    ("operation", "params", "message"),
    [
        (
            "GetItem",
            {"Key": {}, "AttributesToGet": ["a"], "ProjectionExpression": "a"},
            mixing("AttributesToGet", "ProjectionExpression"),
        ),
        (
            "PutItem",
            {"Item": {}, "Expected": {}, "ConditionalOperator": "OR", "ConditionExpression": "a = b"},
            mixing("Expected, ConditionalOperator", "ConditionExpression"),
        ),
        (
            "DeleteItem",
            {"Key": {}, "ConditionalOperator": "OR", "ConditionExpression": "a = b"},
            mixing("ConditionalOperator", "ConditionExpression"),
        ),
        (
            "UpdateItem",
            {
                "Key": {},
                "AttributeUpdates": {},
                "Expected": {},
                "ConditionalOperator": "AND",
                "UpdateExpression": "SET a = b",
                "ConditionExpression": "a = b",
            },
            mixing(
                "AttributeUpdates, Expected, ConditionalOperator", "UpdateExpression, ConditionExpression"
            ),
        ),
        (
            "Query",
            {
                "AttributesToGet": ["a"],
                "QueryFilter": {},
                "ConditionalOperator": "OR",
                "KeyConditions": {},
                "ProjectionExpression": "a",
                "FilterExpression": "a = b",
                "KeyConditionExpression": "a = b",
            },
            mixing(
                "AttributesToGet, QueryFilter, ConditionalOperator, KeyConditions",
                "ProjectionExpression, FilterExpression, KeyConditionExpression",
            ),
        ),
        # KeyConditions is mixed only with KeyConditionExpression.
        (
            "Query",
            {"QueryFilter": {}, "KeyConditions": {}, "FilterExpression": "a = b"},
            mixing("QueryFilter", "FilterExpression"),
        ),
        (
            "Scan",
            {
                "AttributesToGet": ["a"],
                "ScanFilter": {},
                "ConditionalOperator": "OR",
                "FilterExpression": "a = b",
            },
            mixing("AttributesToGet, ScanFilter, ConditionalOperator", "FilterExpression"),
        ),
        (
            "GetItem",
            {"Key": {}, "AttributesToGet": ["a"], "ExpressionAttributeNames": {"#a": "a"}},
            "ExpressionAttributeNames can only be specified when using expressions",
        ),
        (
            "PutItem",
            {"Item": {}, "Expected": {}, "ExpressionAttributeValues": {":a": S("x")}},
            "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null",
        ),
        (
            "UpdateItem",
            {"Key": {}, "AttributeUpdates": {}, "ExpressionAttributeValues": {":a": S("x")}},
            "ExpressionAttributeValues can only be specified when using expressions: "
            "UpdateExpression and ConditionExpression are null",
        ),
        (
            "Query",
            {"KeyConditions": {"pk": cond("EQ", S("x"))}, "ExpressionAttributeValues": {":a": S("x")}},
            "ExpressionAttributeValues can only be specified when using expressions: "
            "FilterExpression and KeyConditionExpression are null",
        ),
    ],
)
def test_styles_do_not_mix(operation: str, params: dict[str, Any], message: str) -> None:
    assert refusal(operation, {"TableName": "app", **params}) == message


def test_batch_get_refuses_mixing_per_table() -> None:
    params = {"RequestItems": {"app": {"Keys": [], "AttributesToGet": ["a"], "ProjectionExpression": "a"}}}
    assert refusal("BatchGetItem", params) == mixing("AttributesToGet", "ProjectionExpression")
    params = {"RequestItems": {"app": {"Keys": [], "AttributesToGet": ["a", "b", "a"]}}}
    assert refusal("BatchGetItem", params) == f"{INVALID}Duplicate value in attribute name: a"


@pytest.mark.parametrize(
    ("operation", "params", "message"),
    [
        (
            "PutItem",
            {"Item": {}, "ConditionalOperator": "AND"},
            "ConditionalOperator cannot be used without Filter or Expected",
        ),
        (
            "UpdateItem",
            {"Key": {}, "Expected": {}, "ConditionalOperator": "OR"},
            "ConditionalOperator cannot be used without Filter or Expected",
        ),
        (
            "DeleteItem",
            {"Key": {}, "Expected": {"a": {"Exists": False}}, "ConditionalOperator": "OR"},
            "ConditionalOperator can only be used when Filter or Expected has two or more elements",
        ),
        # KeyConditions are not what it joins; and it is checked before the missing key condition.
        (
            "Query",
            {"KeyConditions": {"pk": cond("EQ", S("x"))}, "ConditionalOperator": "AND"},
            "ConditionalOperator cannot be used without Filter or Expected",
        ),
        (
            "Query",
            {"ConditionalOperator": "AND"},
            "ConditionalOperator cannot be used without Filter or Expected",
        ),
        (
            "Scan",
            {"ScanFilter": {"a": cond("NOT_NULL")}, "ConditionalOperator": "OR"},
            "ConditionalOperator can only be used when Filter or Expected has two or more elements",
        ),
        (
            "Scan",
            {"AttributesToGet": ["a", "b"], "ConditionalOperator": "OR"},
            "ConditionalOperator cannot be used without Filter or Expected",
        ),
    ],
)
def test_conditional_operator_needs_two_conditions(
    operation: str, params: dict[str, Any], message: str
) -> None:
    assert refusal(operation, {"TableName": "app", **params}) == message


ENUM_OF_OPERATORS = (
    "[IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"
)


@pytest.mark.parametrize(
    ("operation", "params", "message"),
    [
        (
            "PutItem",
            {
                "Item": {},
                "Expected": {"a": {"Exists": False}, "b": {"Exists": False}},
                "ConditionalOperator": "XOR",
            },
            "1 validation error detected: Value 'XOR' at 'conditionalOperator' failed to satisfy constraint: "
            "Member must satisfy enum value set: [OR, AND]",
        ),
        (
            "PutItem",
            {"Item": {}, "Expected": {"a": cond("EQUALS", S("x"))}},
            "1 validation error detected: Value 'EQUALS' at 'expected.a.member.comparisonOperator' failed to "
            f"satisfy constraint: Member must satisfy enum value set: {ENUM_OF_OPERATORS}",
        ),
        (
            "UpdateItem",
            {"Key": {}, "AttributeUpdates": {"a": {"Action": "REPLACE", "Value": S("x")}}},
            "1 validation error detected: Value 'REPLACE' at 'attributeUpdates.a.member.action' failed to "
            "satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]",
        ),
        # Constraint errors come together, and before any other check of the legacy parameters.
        (
            "Query",
            {
                "KeyConditions": {"pk": cond("eq", S("x"))},
                "QueryFilter": {"a": {"AttributeValueList": []}},
                "ConditionalOperator": "and",
                "ProjectionExpression": "a",
            },
            "3 validation errors detected: Value 'and' at 'conditionalOperator' failed to satisfy constraint: "
            "Member must satisfy enum value set: [OR, AND]; Value 'eq' at 'keyConditions.pk.member.comparisonOperator' "
            f"failed to satisfy constraint: Member must satisfy enum value set: {ENUM_OF_OPERATORS}; "
            "Value null at 'queryFilter.a.member.comparisonOperator' failed to satisfy constraint: Member must not be null",
        ),
        # The table name is checked first of all.
        (
            "Scan",
            {"TableName": "ab", "ConditionalOperator": "OR", "FilterExpression": "a = b"},
            "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
            "Member must have length greater than or equal to 3",
        ),
    ],
)
def test_enum_values_and_table_names(operation: str, params: dict[str, Any], message: str) -> None:
    assert refusal(operation, {"TableName": "app", **params}) == message


@pytest.mark.parametrize(
    ("operator", "counts"),
    [
        *(
            (op, (0, 2))
            for op in ("EQ", "NE", "LE", "LT", "GE", "GT", "CONTAINS", "NOT_CONTAINS", "BEGINS_WITH")
        ),
        ("NULL", (1,)),
        ("NOT_NULL", (1, 2)),
        ("IN", (0,)),
        ("BETWEEN", (0, 1, 3)),
    ],
)
def test_wrong_numbers_of_values(operator: str, counts: tuple[int, ...]) -> None:
    message = f"{INVALID}Invalid number of argument(s) for the {operator} ComparisonOperator"
    for count in counts:
        values = [S(f"{index}") for index in range(count)]
        scan = {"TableName": "app", "ScanFilter": {"a": cond(operator, *values)}}
        assert refusal("Scan", scan) == message, count
        put = {"TableName": "app", "Item": {}, "Expected": {"a": cond(operator, *values)}}
        assert refusal("PutItem", put) == message, count


@pytest.mark.parametrize(
    ("operator", "refused", "taken"),
    [
        (op, ("BOOL", "NULL", "SS", "NS", "BS", "M", "L"), ("S", "N", "B"))
        for op in ("LT", "LE", "GT", "GE", "IN")
    ]
    + [
        ("BEGINS_WITH", ("N", "BOOL", "NULL", "SS", "NS", "BS", "M", "L"), ("S", "B")),
        ("CONTAINS", ("SS", "NS", "BS", "M", "L"), ("S", "N", "B", "BOOL", "NULL")),
        ("NOT_CONTAINS", ("SS", "NS", "BS", "M", "L"), ("S", "N", "B", "BOOL", "NULL")),
        ("EQ", (), ("S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "M", "L")),
        ("NE", (), ("S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "M", "L")),
    ],
)
def test_value_types_each_operator_takes(
    operator: str, refused: tuple[str, ...], taken: tuple[str, ...]
) -> None:
    samples: dict[str, Any] = {
        "S": "s",
        "N": "1",
        "B": b"b",
        "BOOL": True,
        "NULL": True,
        "SS": ["s"],
        "NS": ["1"],
        "BS": [b"b"],
        "M": {},
        "L": [],
    }
    for kind in refused:
        params = {"TableName": "app", "QueryFilter": {"a": cond(operator, {kind: samples[kind]})}}
        assert (
            refusal("Query", params)
            == f"{INVALID}ComparisonOperator {operator} is not valid for {kind} AttributeValue type"
        )
    for kind in taken:
        out = _legacy.translate(
            "Scan", {"TableName": "app", "ScanFilter": {"a": cond(operator, {kind: samples[kind]})}}
        )
        assert out["ExpressionAttributeValues"] == {":l0": {kind: samples[kind]}}
    # BETWEEN takes two of a kind.
    assert refusal(
        "Scan", {"TableName": "app", "ScanFilter": {"a": cond("BETWEEN", {"SS": ["a"]}, {"SS": ["b"]})}}
    ) == (f"{INVALID}ComparisonOperator BETWEEN is not valid for SS AttributeValue type")


@pytest.mark.parametrize(
    ("low", "high", "refused"),
    [
        (N("10"), N("9"), True),
        (N("9"), N("10"), False),  # numerically, not as text
        (N("1.0"), N("1"), False),
        (S("b"), S("a"), True),
        (S("Z"), S("a"), False),
        (S("é"), S("z"), True),  # UTF-8 bytes: é is 0xC3 0xA9
        ({"B": b"\x80"}, {"B": b"\x7f"}, True),  # bytes are unsigned
        ({"B": "b"}, {"B": b"a"}, True),  # boto3 sends a str's UTF-8 bytes
    ],
)
def test_between_bounds_in_order(low: dict[str, Any], high: dict[str, Any], refused: bool) -> None:
    params = {
        "TableName": "app",
        "KeyConditions": {"pk": cond("EQ", S("p")), "sk": cond("BETWEEN", low, high)},
    }
    if refused:
        assert refusal("Query", params) == (
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
        )
    else:
        assert (
            _legacy.translate("Query", params)["KeyConditionExpression"]
            == "#l0 = :l0 AND #l1 BETWEEN :l1 AND :l2"
        )


def test_values_of_two_types_and_invalid_values() -> None:
    params = {"TableName": "app", "ScanFilter": {"a": cond("IN", S("1"), N("1"))}}
    assert (
        refusal("Scan", params) == f"{INVALID}AttributeValues inside AttributeValueList must be of same type"
    )
    # A value is checked as DynamoDB checks any value, in the words it uses for any value.
    params = {"TableName": "app", "ScanFilter": {"a": cond("EQ", {"SS": []})}}
    assert refusal("Scan", params) == f"{INVALID}An string set  may not be empty"
    params = {"TableName": "app", "Item": {}, "Expected": {"a": {"Value": N("1" * 39)}}}
    assert refusal("PutItem", params) == "Attempting to store more than 38 significant digits in a Number"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"Exists": True}, "Value must be provided when Exists is true for Attribute: a"),
        ({}, "Value must be provided when Exists is null for Attribute: a"),
        ({"Exists": False, "Value": S("x")}, "Value cannot be used when Exists is false for Attribute: a"),
        (
            {"Exists": False, **cond("EQ", S("x"))},
            "Exists and ComparisonOperator cannot be used together for Attribute: a",
        ),
        (
            {"Value": S("x"), **cond("EQ", S("x"))},
            "Value and AttributeValueList cannot be used together for Attribute: a",
        ),
        (
            {"AttributeValueList": [S("x")]},
            "AttributeValueList can only be used with a ComparisonOperator for Attribute: a",
        ),
        (
            {"Exists": True, "AttributeValueList": [S("x")]},
            "AttributeValueList can only be used with a ComparisonOperator for Attribute: a",
        ),
        (
            {"ComparisonOperator": "LT"},
            "Value or AttributeValueList must be used with ComparisonOperator: LT for Attribute: a",
        ),
        (
            {"ComparisonOperator": "NULL", "Value": S("x")},
            "Invalid number of argument(s) for the NULL ComparisonOperator",
        ),
        (
            {"ComparisonOperator": "BETWEEN", "Value": N("1")},
            "Invalid number of argument(s) for the BETWEEN ComparisonOperator",
        ),
    ],
)
def test_expected_attribute_value_refusals(entry: dict[str, Any], message: str) -> None:
    assert (
        refusal("UpdateItem", {"TableName": "app", "Key": {}, "Expected": {"a": entry}}) == INVALID + message
    )


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"Action": "PUT"}, "Only DELETE action is allowed when no attribute value is specified"),
        ({}, "Only DELETE action is allowed when no attribute value is specified"),
        ({"Action": "ADD"}, "Only DELETE action is allowed when no attribute value is specified"),
        *(
            (
                {"Action": "DELETE", "Value": value},
                f"DELETE action with value is not supported for the type {kind}",
            )
            for kind, value in [
                ("S", S("x")),
                ("N", N("1")),
                ("B", {"B": b"x"}),
                ("BOOL", {"BOOL": True}),
                ("L", {"L": []}),
            ]
        ),
        *(
            ({"Action": "ADD", "Value": value}, f"ADD action is not supported for the type {kind}")
            for kind, value in [
                ("S", S("x")),
                ("B", {"B": b"x"}),
                ("BOOL", {"BOOL": True}),
                ("NULL", {"NULL": True}),
                ("M", {"M": {}}),
            ]
        ),
        ({"Action": "ADD", "Value": {"NS": []}}, "An number set  may not be empty"),
    ],
)
def test_attribute_update_refusals(update: dict[str, Any], message: str) -> None:
    assert (
        refusal("UpdateItem", {"TableName": "app", "Key": {}, "AttributeUpdates": {"a": update}})
        == INVALID + message
    )


@pytest.mark.parametrize(
    ("operation", "params", "message"),
    [
        (
            "GetItem",
            {"Key": {}, "AttributesToGet": ["a", "b", "a"]},
            f"{INVALID}Duplicate value in attribute name: a",
        ),
        ("Scan", {"AttributesToGet": ["a", "a"]}, f"{INVALID}Duplicate value in attribute name: a"),
        # Query words it with the constraint prefix, Scan without (as DynamoDB does).
        (
            "Query",
            {
                "KeyConditions": {"pk": cond("EQ", S("x"))},
                "AttributesToGet": ["a"],
                "Select": "ALL_ATTRIBUTES",
            },
            "1 validation error detected: Cannot specify the AttributesToGet when choosing to get ALL_ATTRIBUTES",
        ),
        (
            "Query",
            {"KeyConditions": {"pk": cond("EQ", S("x"))}, "AttributesToGet": ["a"], "Select": "COUNT"},
            "1 validation error detected: Cannot specify the AttributesToGet when choosing to get only the Count",
        ),
        (
            "Scan",
            {"AttributesToGet": ["a"], "Select": "ALL_PROJECTED_ATTRIBUTES"},
            "Cannot specify the AttributesToGet when choosing to get ALL_PROJECTED_ATTRIBUTES",
        ),
        (
            "Query",
            {"QueryFilter": {"a": cond("EQ", S("x"))}},
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
        ),
        ("Query", {"KeyConditions": {}}, "Conditions can be of length 1 or 2 only"),
        (
            "Query",
            {"KeyConditions": {"a": cond("EQ", S("x")), "b": cond("EQ", S("x")), "c": cond("EQ", S("x"))}},
            "Conditions can be of length 1 or 2 only",
        ),
        *(
            (
                "Query",
                {"KeyConditions": {"pk": cond(op, *([S("x")] if op not in ("NULL", "NOT_NULL") else []))}},
                "Attempted conditional constraint is not an indexable operation",
            )
            for op in ("NE", "NULL", "NOT_NULL", "CONTAINS", "NOT_CONTAINS", "IN")
        ),
    ],
)
def test_reads_refused(operation: str, params: dict[str, Any], message: str) -> None:
    assert refusal(operation, {"TableName": "app", **params}) == message


def test_attributes_to_get_with_select_specific_attributes() -> None:
    out = _legacy.translate(
        "Scan", {"TableName": "app", "AttributesToGet": ["a"], "Select": "SPECIFIC_ATTRIBUTES"}
    )
    assert out["ProjectionExpression"] == "#l0" and out["Select"] == "SPECIFIC_ATTRIBUTES"


def test_the_facade_raises_them_as_validation_exceptions() -> None:
    facade = client("dynamodb", target="127.0.0.1:9")  # never reached: refused before sending
    try:
        with pytest.raises(ClientError) as caught:
            facade.query(TableName="app", KeyConditions={"pk": cond("NE", S("x"))})
    finally:
        facade.close()
    assert caught.value.response["Error"] == {
        "Message": "Attempted conditional constraint is not an indexable operation",
        "Code": "ValidationException",
    }
    assert caught.value.operation_name == "Query"
    assert isinstance(caught.value, facade.exceptions.ClientError)


# ---------------------------------------------------------------- answers


class FakeClientError(Exception):
    """Shaped as botocore's ClientError: built from a parsed response and an operation name."""

    gateway_error: Any = None

    def __init__(self, response: dict[str, Any], operation_name: str) -> None:
        super().__init__(response["Error"]["Message"])
        self.response = response
        self.operation_name = operation_name


def failure(message: str) -> FakeClientError:
    error = FakeClientError({"Error": {"Message": message, "Code": "ValidationException"}}, "Query")
    error.gateway_error = "typed"
    return error


def test_refusals_of_the_expression_form_are_worded_as_for_the_legacy_one() -> None:
    legacy = {"TableName": "app", "KeyConditions": {}, "QueryFilter": {"sk": cond("EQ", S("x"))}}
    worded = _legacy.reworded(
        failure("Filter Expression can only contain non-primary key attributes: Primary key attribute: sk"),
        "Query",
        legacy,
    )
    assert type(worded) is FakeClientError
    assert worded.response["Error"]["Message"] == (
        "QueryFilter can only contain non-primary key attributes: Primary key attribute: sk"
    )
    assert worded.operation_name == "Query" and worded.gateway_error == "typed"
    update = {"TableName": "app", "Key": {}, "AttributeUpdates": {"n": {"Action": "ADD", "Value": N("1")}}}
    for message in (
        "An operand in the update expression has an incorrect data type",
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: "
        "list_append, operand type: S",
    ):
        assert _legacy.reworded(failure(message), "UpdateItem", update).response["Error"]["Message"] == (
            "Type mismatch for attribute to update"
        )
    # Requests in expressions keep the words DynamoDB gave them, and so do other refusals.
    error = failure("An operand in the update expression has an incorrect data type")
    assert (
        _legacy.reworded(error, "UpdateItem", {"TableName": "app", "UpdateExpression": "ADD n :v"}) is error
    )
    error = failure("Query key condition not supported")
    assert _legacy.reworded(error, "Query", legacy) is error


def test_unprocessed_keys_come_back_as_they_were_asked_for() -> None:
    params = {
        "RequestItems": {
            "app": {"Keys": [{"pk": S("x")}], "AttributesToGet": ["a", "b"]},
            "other": {
                "Keys": [{"pk": S("y")}],
                "ProjectionExpression": "#c",
                "ExpressionAttributeNames": {"#c": "c"},
            },
        }
    }
    answer = {
        "Responses": {},
        "UnprocessedKeys": {
            "app": {
                "Keys": [{"pk": S("x")}],
                "ProjectionExpression": "#l0, #l1",
                "ExpressionAttributeNames": {"#l0": "a", "#l1": "b"},
            },
            "other": {
                "Keys": [{"pk": S("y")}],
                "ProjectionExpression": "#c",
                "ExpressionAttributeNames": {"#c": "c"},
            },
        },
    }
    assert _legacy.shaped("BatchGetItem", answer, params)["UnprocessedKeys"] == {
        "app": {"Keys": [{"pk": S("x")}], "AttributesToGet": ["a", "b"]},
        "other": {
            "Keys": [{"pk": S("y")}],
            "ProjectionExpression": "#c",
            "ExpressionAttributeNames": {"#c": "c"},
        },
    }
