"""TTL rules: a declared TTL attribute must hold epoch seconds DynamoDB will act on."""

from __future__ import annotations

from typing import Any

import pytest

from dynamo_gateway_server.codec import InvalidRequestError
from dynamo_gateway_server.ttl import LARGEST_SECONDS, OLDEST_S, TtlRules, ttl_problem
from dynamo_gateway_server.update_expression import set_values

NOW = 1_800_000_000.0  # 2027-01-15, in epoch seconds


@pytest.mark.parametrize(
    ("text", "refused_for"),
    [
        (str(int(NOW) + 3600), None),  # an hour from now
        ("1800000000.5", None),  # fractions are numbers too
        (str(int(NOW) - OLDEST_S + 1), None),  # just inside DynamoDB's five years
        (str(int(NOW) - OLDEST_S - 1), "five years"),
        ("0", "five years"),
        ("-1", "five years"),
        (str(int(NOW * 1000)), "milliseconds"),
        (str(int(NOW * 1_000_000)), "milliseconds or microseconds"),
        (str(LARGEST_SECONDS - 1), None),  # the year 5138, in seconds: odd but seconds
        (str(LARGEST_SECONDS), "milliseconds"),
    ],
)
def test_which_numbers_dynamodb_would_act_on(text: str, refused_for: str | None) -> None:
    problem = ttl_problem(text, NOW)
    if refused_for is None:
        assert problem is None
    else:
        assert problem is not None and refused_for in problem and text in problem


async def _refused(rules: TtlRules, operation: str, params: dict[str, Any]) -> InvalidRequestError | None:
    try:
        await rules.check(operation, params)
    except InvalidRequestError as error:
        return error
    return None


MS = {"N": str(int(NOW * 1000))}
LATER = {"N": str(int(NOW) + 60)}


async def test_every_written_item_of_a_declared_table_is_checked_and_named() -> None:
    rules = TtlRules({"sessions": "expires_at"}, clock=lambda: NOW)
    put = {"TableName": "sessions", "Item": {"id": {"S": "a"}, "expires_at": MS}}
    refused = await _refused(rules, "PutItem", put)
    assert refused is not None and refused.field == "item.expires_at"
    assert refused.reason == "Validation.InvalidParameter"
    batch = {
        "RequestItems": {
            "sessions": [
                {"PutRequest": {"Item": {"id": {"S": "a"}, "expires_at": LATER}}},
                {"PutRequest": {"Item": {"id": {"S": "b"}, "expires_at": MS}}},
            ]
        }
    }
    refused = await _refused(rules, "BatchWriteItem", batch)
    assert (
        refused is not None
        and refused.field == "request_items[sessions].requests[1].put_request.item.expires_at"
    )
    transaction = {"TransactItems": [{"Put": {"TableName": "sessions", "Item": {"expires_at": MS}}}]}
    refused = await _refused(rules, "TransactWriteItems", transaction)
    assert refused is not None and refused.field == "transact_items[0].put.item.expires_at"


async def test_what_the_rules_leave_alone() -> None:
    rules = TtlRules({"sessions": "expires_at"}, clock=lambda: NOW)
    ignored = [
        ("PutItem", {"TableName": "sessions", "Item": {"expires_at": LATER}}),  # a good value
        ("PutItem", {"TableName": "other", "Item": {"expires_at": MS}}),  # no TTL declared there
        ("PutItem", {"TableName": "sessions", "Item": {"expires_at": {"S": "tomorrow"}}}),  # TTL ignores it
        ("PutItem", {"TableName": "sessions", "Item": {"id": {"S": "a"}}}),  # no TTL: never expires
        ("GetItem", {"TableName": "sessions", "Key": {"expires_at": MS}}),  # keys are not written items
    ]
    for operation, params in ignored:
        assert await _refused(rules, operation, params) is None, params


@pytest.mark.parametrize(
    ("expression", "names", "expected"),
    [
        ("SET expires_at = :t", {}, [("expires_at", ":t")]),
        ("set #e = :t, hits = hits + :one", {"#e": "expires_at"}, [("expires_at", ":t")]),
        ("REMOVE old SET a = :set, b = if_not_exists(b, :b) ADD n :add", {}, [("a", ":set"), ("b", ":b")]),
        ("SET l = list_append(l, :more), expires_at = expires_at + :delta", {}, []),
        ("ADD expires_at :n DELETE tags :gone", {}, []),
    ],
)
def test_the_set_actions_that_set_a_value(
    expression: str, names: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    assert list(set_values(expression, names)) == expected


async def test_an_update_setting_the_ttl_is_checked_too() -> None:
    rules = TtlRules({"sessions": "expires_at"}, clock=lambda: NOW)
    update = {
        "TableName": "sessions",
        "Key": {"id": {"S": "a"}},
        "UpdateExpression": "SET #e = if_not_exists(#e, :t), hits = :one",
        "ExpressionAttributeNames": {"#e": "expires_at"},
        "ExpressionAttributeValues": {":t": MS, ":one": {"N": "1"}},
    }
    refused = await _refused(rules, "UpdateItem", update)
    assert refused is not None and refused.field == "expression_attribute_values[:t]"
    in_transaction = {"TransactItems": [{"Update": {**update, "ExpressionAttributeValues": {":t": MS}}}]}
    refused = await _refused(rules, "TransactWriteItems", in_transaction)
    assert refused is not None and refused.field == "transact_items[0].update.expression_attribute_values[:t]"
    fine = {**update, "ExpressionAttributeValues": {":t": LATER, ":one": MS}}  # :one is not the TTL
    assert await _refused(rules, "UpdateItem", fine) is None
