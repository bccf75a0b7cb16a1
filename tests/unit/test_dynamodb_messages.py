"""DynamoDB's words for the gateway's own refusals: the one table (dynamo_gateway.dynamodb_messages)
and the server's checks that use it (codec, input rules, batches), which keep naming the field in
BadRequest and carry DynamoDB's text as ErrorInfo metadata for callers that answer as DynamoDB."""

from __future__ import annotations

from typing import Any

import pytest
from google.rpc import error_details_pb2

from dynamo_gateway import dynamodb_messages as messages
from dynamo_gateway.v1 import service_pb2
from dynamo_gateway_server import codec, errors
from dynamo_gateway_server.input_rules import InputRules
from dynamo_gateway_server.key_schema import KeySchema

KEY = {"pk": {"s": "k"}}


# ---------------------------------------------------------------- the table's own forms


def test_constraint_messages_count_their_errors() -> None:
    one = messages.constraint("limit", messages.min_value(1), 0)
    assert messages.validation_errors([one]) == (
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )
    assert messages.validation_errors([one, one]).startswith("2 validation errors detected: Value '0'")
    assert messages.constraint("key", messages.MUST_NOT_BE_NULL) == (
        "Value null at 'key' failed to satisfy constraint: Member must not be null"
    )
    assert (
        messages.constraint("a", "rule", show_value=False)
        == "Value at 'a' failed to satisfy constraint: rule"
    )


@pytest.mark.parametrize(
    ("name", "rules"),
    [
        ("orders", []),
        ("a.b_c-1", []),
        ("x" * 255, []),
        ("ab", ["Member must have length greater than or equal to 3"]),
        ("x" * 256, ["Member must have length less than or equal to 255"]),
        ("bad name!", ["Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"]),
        (
            "",
            [
                "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
                "Member must have length greater than or equal to 3",
            ],
        ),
    ],
)
def test_table_names_break_dynamodbs_rules_in_its_order(name: str, rules: list[str]) -> None:
    assert messages.table_name_rules(name) == rules
    refusal = messages.table_name(name, "transactItems.1.member.put.tableName")
    if not rules:
        assert refusal is None
    else:
        assert refusal == messages.validation_errors(
            [
                f"Value '{name}' at 'transactItems.1.member.put.tableName' failed to satisfy constraint: {r}"
                for r in rules
            ]
        )


def test_the_texts_dynamodb_writes_with_its_own_quirks() -> None:
    assert "limit of2048 bytes" in messages.HASH_KEY_TOO_LONG  # no space, as DynamoDB writes it
    assert messages.RANGE_KEY_TOO_LONG.endswith("has exceeded the size limit of 1024 bytes")
    assert "An string set  may not be empty" in messages.EMPTY_STRING_SET  # two spaces
    assert messages.binary_set_duplicates(["AA==", "AA=="]).endswith(
        "[AA==, AA==]of type BS contains duplicates."
    )
    assert (
        messages.cannot_convert("STRING_VALUE", "Integer")
        == "STRING_VALUE can not be converted to an Integer"
    )
    assert (
        messages.cannot_convert("NUMBER_VALUE", "String") == "NUMBER_VALUE can not be converted to a String"
    )


def test_requests_are_quoted_elided_in_name_order() -> None:
    quoted = messages.request_items("BatchWriteItem", [("b-table", 26), ("a-table", 0)])
    assert quoted == "{a-table=[], b-table=[... 26 WriteRequest ...]}"
    assert messages.request_items("BatchGetItem", [("t", 3)]) == "{t={Keys=[... 3 Key ...]}}"
    assert messages.transaction_size(101, "TransactWriteItem") == (
        "1 validation error detected: Value '[... 101 TransactWriteItem ...]' at 'transactItems' failed to "
        "satisfy constraint: Member must have length less than or equal to 100"
    )
    assert messages.transaction_size(0, "TransactGetItem") == (
        "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


@pytest.mark.parametrize(
    ("family", "enveloped", "bare"),
    [
        ("empty_set_in_item", ["PutItem"], ["BatchWriteItem", "TransactWriteItems", "UpdateItem"]),
        (
            "empty_set_in_values",
            ["PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"],
            ["TransactWriteItems"],
        ),
        ("empty_values", ["PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"], ["TransactWriteItems"]),
        ("empty_update_expression", ["UpdateItem"], ["TransactWriteItems"]),
        ("expression_too_long", ["PutItem", "UpdateItem"], ["GetItem", "Query", "Scan"]),
    ],
)
def test_the_envelope_family_by_family(family: str, enveloped: list[str], bare: list[str]) -> None:
    for operation in enveloped:
        assert messages.in_envelope(family, operation, "text") == "1 validation error detected: text"
    for operation in bare:
        assert messages.in_envelope(family, operation, "text") == "text"


# ---------------------------------------------------------------- the codec's refusals


def _refusal(build: Any, request: Any) -> codec.InvalidRequestError:
    with pytest.raises(codec.InvalidRequestError) as caught:
        build(request)
    return caught.value


@pytest.mark.parametrize(
    ("build", "proto", "field", "message"),
    [
        (
            codec.batch_write_item_request,
            service_pb2.BatchWriteItemRequest(
                request_items={
                    "ok-t": {"requests": [{"delete_request": {"key": KEY}}]},
                    "no!": {"requests": []},
                }
            ),
            "request_items[no!]",
            messages.batch_table_names("{no!=[], ok-t=[... 1 WriteRequest ...]}"),
        ),
        (
            codec.batch_write_item_request,
            service_pb2.BatchWriteItemRequest(request_items={"tbl": {"requests": []}}),
            "request_items[tbl].requests",
            messages.batch_write_lists("{tbl=[]}"),
        ),
        (
            codec.batch_write_item_request,
            service_pb2.BatchWriteItemRequest(),
            "request_items",
            "The requestItems parameter is required for BatchWriteItem",
        ),
        (
            codec.batch_get_item_request,
            service_pb2.BatchGetItemRequest(request_items={"ab": {"keys": [{"attributes": KEY}]}}),
            "request_items[ab]",
            messages.batch_table_names("{ab={Keys=[... 1 Key ...]}}"),
        ),
        (
            codec.transact_write_items_request,
            service_pb2.TransactWriteItemsRequest(
                transact_items=[
                    {"put": {"table_name": "tbl", "item": KEY}},
                    {"condition_check": {"table_name": "a b", "key": KEY, "condition_expression": "a = b"}},
                ]
            ),
            "transact_items[1].condition_check.table_name",
            "1 validation error detected: Value 'a b' at 'transactItems.2.member.conditionCheck.tableName' "
            "failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ),
        (
            codec.transact_write_items_request,
            service_pb2.TransactWriteItemsRequest(),
            "transact_items",
            messages.transaction_size(0, "TransactWriteItem"),
        ),
        (
            codec.transact_get_items_request,
            service_pb2.TransactGetItemsRequest(transact_items=[{"get": {"table_name": "", "key": KEY}}]),
            "transact_items[0].get.table_name",
            messages.table_name("", "transactItems.1.member.get.tableName"),
        ),
        (
            codec.query_request,
            service_pb2.QueryRequest(table_name="tbl", key_condition_expression="pk = :p", limit=-1),
            "limit",
            "1 validation error detected: Value '-1' at 'limit' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1",
        ),
        (
            codec.scan_request,
            service_pb2.ScanRequest(table_name="tbl", segment=3, total_segments=3),
            "segment",
            messages.segment_not_below_total(3, 3),
        ),
        (
            codec.get_item_request,
            service_pb2.GetItemRequest(table_name="tbl"),
            "key",
            "The provided key element does not match the schema",
        ),
    ],
    ids=[
        "batch-write-table-name",
        "batch-write-no-writes",
        "batch-write-no-tables",
        "batch-get-table-name",
        "transact-table-name",
        "transact-empty",
        "transact-get-empty-name",
        "negative-limit",
        "segment",
        "no-key",
    ],
)
def test_the_codec_refuses_in_dynamodbs_words_naming_the_field(
    build: Any, proto: Any, field: str, message: str
) -> None:
    error = _refusal(build, proto)
    assert (error.field, error.description, error.dynamodb_message) == (field, message, message)


def test_the_status_keeps_the_field_and_carries_dynamodbs_words() -> None:
    error = _refusal(codec.get_item_request, service_pb2.GetItemRequest(table_name="ab", key=KEY))
    status = errors.status_of(error)
    info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    status.details[0].Unpack(info)
    status.details[1].Unpack(bad_request)
    message = messages.table_name("ab")
    assert status.message == f"invalid table_name: {message}"
    assert info.reason == "Configuration.InvalidTable"
    assert dict(info.metadata) == {"field": "table_name", "dynamodb_message": message}
    assert [(v.field, v.description) for v in bad_request.field_violations] == [("table_name", message)]
    # The gateway's own rules (none of DynamoDB's) carry no such metadata.
    own = errors.status_of(codec.InvalidRequestError("expires_in", "must be a positive duration"))
    own.details[0].Unpack(info)
    assert dict(info.metadata) == {"field": "expires_in"}


# ---------------------------------------------------------------- DynamoDB's input rules


async def _schema(table: str) -> KeySchema | None:
    return KeySchema("pk", "sk")


async def _rules_refusal(operation: str, params: dict[str, Any]) -> codec.InvalidRequestError:
    with pytest.raises(codec.InvalidRequestError) as caught:
        await InputRules(_schema).check(operation, params)
    return caught.value


async def test_a_transaction_of_101_actions() -> None:
    actions = [{"Put": {"TableName": "t", "Item": {"pk": {"S": str(i)}}}} for i in range(101)]
    error = await _rules_refusal("TransactWriteItems", {"TransactItems": actions})
    assert error.field == "transact_items"
    assert error.dynamodb_message == error.description == messages.transaction_size(101, "TransactWriteItem")
    gets = [{"Get": {"TableName": "t", "Key": {"pk": {"S": str(i)}}}} for i in range(101)]
    error = await _rules_refusal("TransactGetItems", {"TransactItems": gets})
    assert "[... 101 TransactGetItem ...]" in error.description


@pytest.mark.parametrize(
    ("item", "field", "message"),
    [
        ({"pk": {"S": "é" * 1025}, "sk": {"S": "s"}}, "item.pk", messages.HASH_KEY_TOO_LONG),
        ({"pk": {"S": "p"}, "sk": {"B": b"\x00" * 1025}}, "item.sk", messages.RANGE_KEY_TOO_LONG),
    ],
)
async def test_keys_over_dynamodbs_sizes(item: dict[str, Any], field: str, message: str) -> None:
    error = await _rules_refusal("PutItem", {"TableName": "t", "Item": item})
    assert (error.field, error.reason, error.dynamodb_message) == (field, "Validation.InvalidKey", message)
    # The gateway's callers also learn the size it found.
    assert error.description.startswith(message + " (the value is ")


@pytest.mark.parametrize(
    ("operation", "params", "field", "enveloped"),
    [
        (
            "PutItem",
            {"TableName": "t", "Item": {"pk": {"S": "p"}}, "ConditionExpression": "a" * 4097},
            "condition_expression",
            True,
        ),
        (
            "UpdateItem",
            {"TableName": "t", "Key": {"pk": {"S": "p"}}, "UpdateExpression": "a" * 4097},
            "update_expression",
            True,
        ),
        (
            "Query",
            {"TableName": "t", "KeyConditionExpression": "a" * 4097},
            "key_condition_expression",
            False,
        ),
        (
            "TransactWriteItems",
            {
                "TransactItems": [
                    {
                        "ConditionCheck": {
                            "TableName": "t",
                            "Key": {"pk": {"S": "p"}},
                            "ConditionExpression": "a" * 4097,
                        }
                    }
                ]
            },
            "transact_items[0].condition_check.condition_expression",
            False,
        ),
    ],
)
async def test_expressions_over_4_kb(
    operation: str, params: dict[str, Any], field: str, enveloped: bool
) -> None:
    error = await _rules_refusal(operation, params)
    parameter = "".join(part.title() for part in field.rsplit(".", 1)[-1].split("_"))
    bare = (
        f"Invalid {parameter}: Expression size has exceeded the maximum allowed size; expression size: 4097"
    )
    assert error.field == field
    assert error.dynamodb_message == ("1 validation error detected: " + bare if enveloped else bare)


async def test_values_nested_too_deep() -> None:
    deep: dict[str, Any] = {"S": "leaf"}
    for _ in range(33):
        deep = {"L": [deep]}
    error = await _rules_refusal("PutItem", {"TableName": "t", "Item": {"pk": {"S": "p"}, "doc": deep}})
    assert error.field == "item.doc"
    assert error.dynamodb_message == messages.NESTING_TOO_DEEP
    assert "33 levels" in error.description


async def test_an_item_over_400_kb() -> None:
    error = await _rules_refusal(
        "PutItem", {"TableName": "t", "Item": {"pk": {"S": "p"}, "v": {"S": "x" * 410_000}}}
    )
    assert (error.reason, error.dynamodb_message) == ("Item.ItemTooLarge", messages.ITEM_TOO_LARGE)


def test_long_values_are_quoted_cut_so_the_status_fits_its_trailer() -> None:
    name = "x" * 5000
    refusal = messages.table_name(name)
    assert refusal is not None
    assert f"Value '{'x' * messages.MAX_QUOTED}...' at 'tableName'" in refusal
    assert len(refusal) < 1200
    quote = messages.request_items("BatchWriteItem", [(f"t{i:03}-{'y' * 200}", 1) for i in range(50)])
    assert len(messages.batch_table_names(quote)) < 1500
    # Names DynamoDB can have are quoted whole.
    assert messages.quoted("z" * 1024) == "'" + "z" * 1024 + "'"
