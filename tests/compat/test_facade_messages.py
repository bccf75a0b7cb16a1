"""DynamoDB's own words where the gateway or the facade refuses a request itself, and
`Config(parameter_validation=False)` answered as DynamoDB answers it.

Each case runs through the facade and a gateway to an emulator, and through boto3 straight
to another emulator of the same kind. The facade must give DynamoDB's exact message (from
dynamo_gateway.dynamodb_messages, whose docstrings say where each text was checked); the
emulator's own answer is compared too, and where it strays from DynamoDB's the case says how
(dynalite predates DynamoDB's "1 validation error detected: " envelope and quotes requests
as JSON; moto takes some requests DynamoDB refuses, or words them its own way).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import grpc
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

from dynamo_gateway import dynamodb_messages as messages
from dynamo_gateway.boto3_compat import DynamoDBClient, client
from dynamo_gateway.boto3_compat import _errors as facade_errors
from dynamo_gateway.boto3_compat._unvalidated import checked
from dynamo_gateway.errors import GatewayError
from tests.compat import harness
from tests.compat.conftest import Stack
from tests.compat.script import APP, BLOBS, HASH, SCRATCH, TABLES

S = messages  # short alias for the expected texts below


def _key(pk: str, sk: str | None = None) -> dict[str, Any]:
    key = {"pk": {"S": pk}}
    return key if sk is None else {**key, "sk": {"S": sk}}


# ---------------------------------------------------------------- the cases


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "leaf"}
    for _ in range(levels):
        value = {"L": [value]}
    return value


@dataclass(frozen=True)
class Refusal:
    name: str
    method: str
    params: dict[str, Any]
    # DynamoDB's answer: (exception class name, Error.Code, Error.Message).
    code: str
    message: str
    # Emulator kind -> how boto3 straight to it compares: "same" (DynamoDB's exact answer),
    # a regex its message matches (the same refusal, quoted differently), "accepts" (the
    # emulator takes the request), or another message (its own words), with the reason.
    emulators: dict[str, str] = field(default_factory=dict)
    transactions: bool = False
    validate: bool = True  # the client's parameter_validation

    @property
    def exception(self) -> str:
        return "ClientError"  # ValidationException and SerializationException are not modeled


ENVELOPE = "1 validation error detected: "
_DYNALITE_BARE = "bare"  # dynalite answers DynamoDB's text without the envelope

REFUSALS = [
    # The envelope DynamoDB puts on empty sets, empty update expressions and empty values.
    Refusal(
        "an empty string set in PutItem's item",
        "put_item",
        {"TableName": SCRATCH, "Item": {**_key("x"), "ss": {"SS": []}}},
        "ValidationException",
        ENVELOPE + S.EMPTY_STRING_SET,
        {"moto": "same", "dynalite": _DYNALITE_BARE},
    ),
    Refusal(
        "an empty string set among UpdateItem's values",
        "update_item",
        {
            "TableName": HASH,
            "Key": _key("x"),
            "UpdateExpression": "ADD tags :empty",
            "ExpressionAttributeValues": {":empty": {"SS": []}},
        },
        "ValidationException",
        ENVELOPE + S.EMPTY_STRING_SET,
        # dynalite: its older "ExpressionAttributeValues contains invalid value: ... for key :empty".
        {
            "moto": "same",
            "dynalite": r"^ExpressionAttributeValues contains invalid value: .* for key :empty$",
        },
    ),
    Refusal(
        "an empty number set among Query's values",
        "query",
        {
            "TableName": APP,
            "KeyConditionExpression": "pk = :p",
            "FilterExpression": "contains(:none, qty)",
            "ExpressionAttributeValues": {":p": {"S": "x"}, ":none": {"NS": []}},
        },
        "ValidationException",
        ENVELOPE + S.EMPTY_NUMBER_SET,
        {"moto": "same", "dynalite": r"^ExpressionAttributeValues contains invalid value: .* for key :none$"},
    ),
    Refusal(
        "an empty UpdateExpression",
        "update_item",
        {"TableName": HASH, "Key": _key("x"), "UpdateExpression": ""},
        "ValidationException",
        ENVELOPE + "Invalid UpdateExpression: The expression can not be empty;",
        {"moto": "same", "dynalite": _DYNALITE_BARE},
    ),
    Refusal(
        "empty ExpressionAttributeValues in UpdateItem",
        "update_item",
        {
            "TableName": HASH,
            "Key": _key("x"),
            "UpdateExpression": "SET v = :v",
            "ExpressionAttributeValues": {},
        },
        "ValidationException",
        ENVELOPE + S.EMPTY_VALUES,
        {"moto": "same", "dynalite": _DYNALITE_BARE},
    ),
    Refusal(
        "empty ExpressionAttributeValues in a transaction's update (bare there)",
        "transact_write_items",
        {
            "TransactItems": [
                {
                    "Update": {
                        "TableName": HASH,
                        "Key": _key("x"),
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {},
                    }
                }
            ]
        },
        "ValidationException",
        S.EMPTY_VALUES,
        {"moto": "same"},
        transactions=True,
    ),
    # Key sizes: the gateway refuses them before DynamoDB, in DynamoDB's words.
    Refusal(
        "a partition key over 2048 bytes",
        "put_item",
        {"TableName": SCRATCH, "Item": _key("x" * 2049)},
        "ValidationException",
        S.HASH_KEY_TOO_LONG,
        {"moto": "same", "dynalite": "same"},
    ),
    Refusal(
        "a sort key over 1024 bytes",
        "put_item",
        {"TableName": APP, "Item": _key("x", "y" * 1025)},
        "ValidationException",
        S.RANGE_KEY_TOO_LONG,
        {"moto": "same", "dynalite": "same"},
    ),
    Refusal(
        "a partition key over 2048 bytes in GetItem",
        "get_item",
        {"TableName": HASH, "Key": _key("x" * 2049)},
        "ValidationException",
        S.HASH_KEY_TOO_LONG,
        {"moto": "accepts", "dynalite": "same"},
    ),
    # The gateway's input rules, in DynamoDB's words (the facade reads them from ErrorInfo).
    Refusal(
        "a value nested 33 levels deep",
        "put_item",
        {"TableName": SCRATCH, "Item": {**_key("x"), "deep": _nested(33)}},
        "ValidationException",
        S.NESTING_TOO_DEEP,
        {"moto": "accepts", "dynalite": "accepts"},  # neither counts levels
    ),
    Refusal(
        "a ConditionExpression over 4 KB",
        "put_item",
        {
            "TableName": SCRATCH,
            "Item": _key("x"),
            "ConditionExpression": f"attribute_not_exists({'a' * 4200})",
        },
        "ValidationException",
        ENVELOPE + S.expression_too_long("ConditionExpression", 4222),
        {"moto": "accepts", "dynalite": "accepts"},  # neither measures expressions
    ),
    Refusal(
        "a binary set with duplicates",
        "put_item",
        {"TableName": SCRATCH, "Item": {**_key("x"), "bs": {"BS": [b"\x00", b"\x00"]}}},
        "ValidationException",
        S.binary_set_duplicates(["AA==", "AA=="]),  # quoted as the base64 DynamoDB read
        {"moto": "accepts", "dynalite": "same"},
    ),
    # Batches and transactions.
    Refusal(
        "26 writes to one table",
        "batch_write_item",
        {"RequestItems": {SCRATCH: [{"PutRequest": {"Item": _key(f"w{i}")}} for i in range(26)]}},
        "ValidationException",
        S.batch_write_lists("{scratch=[... 26 WriteRequest ...]}"),
        # dynalite quotes the request as JSON where DynamoDB writes Java's toString.
        {
            "moto": "accepts",
            "dynalite": r"^1 validation error detected: Value '\{.*\}' at 'requestItems' failed to satisfy "
            r"constraint: Map value must satisfy constraint: \[Member must have length less than or equal "
            r"to 25, Member must have length greater than or equal to 1\]$",
        },
    ),
    Refusal(
        "26 writes over two tables",
        "batch_write_item",
        {
            "RequestItems": {
                SCRATCH: [{"PutRequest": {"Item": _key(f"w{i}")}} for i in range(13)],
                # Both emulators take these (they count per table): only tables no read looks at.
                BLOBS: [{"PutRequest": {"Item": {"pk": {"B": bytes([i])}}}} for i in range(13)],
            }
        },
        "ValidationException",
        S.too_many_requested("BatchWriteItem"),
        {"moto": "accepts", "dynalite": "accepts"},  # both count per table
    ),
    Refusal(
        "an invalid table name in BatchWriteItem",
        "batch_write_item",
        {"RequestItems": {"bad name!": [{"PutRequest": {"Item": _key("x")}}]}},
        "ValidationException",
        S.batch_table_names("{bad name!=[... 1 WriteRequest ...]}"),
        {
            "moto": "ResourceNotFoundException",  # moto looks any name up
            "dynalite": r"^1 validation error detected: Value '\{.*\}' at 'requestItems' failed to satisfy "
            r"constraint: Map keys must satisfy constraint: \[Member must have length less than or equal "
            r"to 255, Member must have length greater than or equal to 3, Member must satisfy regular "
            r"expression pattern: \[a-zA-Z0-9_.-\]\+\]$",
        },
    ),
    Refusal(
        "a table name too short in BatchGetItem",
        "batch_get_item",
        {"RequestItems": {"ab": {"Keys": [_key("x")]}}},
        "ValidationException",
        S.batch_table_names("{ab={Keys=[... 1 Key ...]}}"),
        {"moto": "ResourceNotFoundException", "dynalite": r"^1 validation error detected: Value .* Map keys"},
    ),
    Refusal(
        "an invalid table name in a transaction's put",
        "transact_write_items",
        {
            "TransactItems": [
                {"Put": {"TableName": HASH, "Item": _key("t")}},
                {"Put": {"TableName": "bad name!", "Item": _key("t")}},
            ]
        },
        "ValidationException",
        ENVELOPE
        + "Value 'bad name!' at 'transactItems.2.member.put.tableName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        {"moto": "ResourceNotFoundException"},
        transactions=True,
    ),
    Refusal(
        "a table name too short in TransactGetItems",
        "transact_get_items",
        {"TransactItems": [{"Get": {"TableName": "ab", "Key": _key("t")}}]},
        "ValidationException",
        ENVELOPE + "Value 'ab' at 'transactItems.1.member.get.tableName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3",
        {"moto": "ResourceNotFoundException"},
        transactions=True,
    ),
    Refusal(
        "101 actions in a transaction",
        "transact_write_items",
        {"TransactItems": [{"Put": {"TableName": SCRATCH, "Item": _key(f"t{i}")}} for i in range(101)]},
        "ValidationException",
        ENVELOPE + "Value '[... 101 TransactWriteItem ...]' at 'transactItems' failed to satisfy constraint: "
        "Member must have length less than or equal to 100",
        # moto leaves out the value (and adds a period); DynamoDB quotes every action.
        {
            "moto": r"^1 validation error detected at 'transactItems' failed to satisfy constraint: Member must "
        },
        transactions=True,
    ),
    # parameter_validation=False: what botocore's validator would have refused.
    Refusal(
        "Limit 0 without parameter validation",
        "query",
        {
            "TableName": APP,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "x"}},
            "Limit": 0,
        },
        "ValidationException",
        ENVELOPE
        + "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
        {"moto": "accepts", "dynalite": "same"},
        validate=False,
    ),
    Refusal(
        "Segment -1 without parameter validation",
        "scan",
        {"TableName": HASH, "Segment": -1, "TotalSegments": 2},
        "ValidationException",
        ENVELOPE
        + "Value '-1' at 'segment' failed to satisfy constraint: Member must have value greater than or equal to 0",
        {"moto": "accepts", "dynalite": "same"},
        validate=False,
    ),
    Refusal(
        "a missing Key without parameter validation",
        "get_item",
        {"TableName": HASH},
        "ValidationException",
        ENVELOPE + "Value null at 'key' failed to satisfy constraint: Member must not be null",
        {"moto": "500", "dynalite": "same"},  # moto answers an HTML 500
        validate=False,
    ),
    Refusal(
        "no RequestItems without parameter validation",
        "batch_write_item",
        {"RequestItems": {}},
        "ValidationException",
        S.request_items_required("BatchWriteItem"),
        # dynalite: the validation framework's minimum length, as DynamoDB answered before.
        {"moto": "accepts", "dynalite": r"^1 validation error detected: Value '\{\}' at 'requestItems' "},
        validate=False,
    ),
    Refusal(
        "no TransactItems without parameter validation",
        "transact_write_items",
        {"TransactItems": []},
        "ValidationException",
        S.transaction_size(0, "TransactWriteItem"),
        {"moto": "accepts"},
        transactions=True,
        validate=False,
    ),
    Refusal(
        "a string for Limit without parameter validation",
        "scan",
        {"TableName": HASH, "Limit": "5"},
        "SerializationException",
        "STRING_VALUE can not be converted to an Integer",
        # dynalite: its older wording of the same exception ("cannot be converted to Integer").
        {"moto": "accepts", "dynalite": r"^STRING_VALUE cannot be converted to Integer$"},
        validate=False,
    ),
    Refusal(
        "a number for a string without parameter validation",
        "put_item",
        {"TableName": SCRATCH, "Item": {"pk": {"S": 7}}},
        "SerializationException",
        "NUMBER_VALUE can not be converted to a String",
        {
            "moto": r"^NUMBER_VALUE cannot be converted to String$",
            "dynalite": r"^NUMBER_VALUE cannot be converted to String$",
        },
        validate=False,
    ),
]


def _cases(kind: str) -> Iterator[Refusal]:
    for case in REFUSALS:
        if case.transactions and kind == "dynalite":
            continue
        yield case


def _boto3_client(endpoint_url: str, validate: bool) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, parameter_validation=validate),
    )


def _answer(call: Callable[..., Any], params: dict[str, Any]) -> tuple[str, str, str] | None:
    """(class name, Error.Code, Error.Message) of a refusal, or None when the call succeeded."""
    try:
        call(**copy.deepcopy(params))
    except ClientError as error:
        return type(error).__name__, error.response["Error"]["Code"], error.response["Error"]["Message"]
    return None


@pytest.fixture(scope="module")
def tables(stack: Stack) -> Stack:
    """The script's tables on both emulators (created if missing: other modules' data stays)."""
    for endpoint in (stack.direct.endpoint_url, stack.behind.endpoint_url):
        control = harness.direct_client(endpoint)
        existing = set(control.list_tables()["TableNames"])
        for spec in TABLES:
            if spec["TableName"] not in existing:
                control.create_table(**spec)
                control.get_waiter("table_exists").wait(
                    TableName=spec["TableName"], WaiterConfig={"Delay": 0.05}
                )
    return stack


def test_the_facade_answers_with_dynamodbs_words(tables: Stack) -> None:
    stack = tables
    found = []
    for validate in (True, False):
        config = Config(parameter_validation=validate)
        with client("dynamodb", target=stack.gateway.target, config=config) as facade:
            for case in _cases(stack.kind):
                if case.validate != validate:
                    continue
                got = _answer(getattr(facade, case.method), case.params)
                want = (case.exception, case.code, case.message)
                if got != want:
                    found.append(f"{case.name}:\n    DynamoDB: {want!r}\n    facade:   {got!r}")
    assert not found, "\n".join(found)


def test_the_emulators_answer_as_each_case_says(tables: Stack) -> None:
    """boto3 straight to the emulator: DynamoDB's answer, or the stated difference."""
    stack = tables
    found = []
    for case in _cases(stack.kind):
        direct = _boto3_client(stack.direct.endpoint_url, case.validate)
        got = _answer(getattr(direct, case.method), case.params)
        expected = case.emulators.get(stack.kind, "same")
        if expected == "same":
            ok = got == (case.exception, case.code, case.message)
        elif expected == "accepts":
            ok = got is None
        elif expected == _DYNALITE_BARE:
            ok = got == (case.exception, case.code, case.message.removeprefix(ENVELOPE))
        elif expected.startswith("^"):
            ok = got is not None and got[1] == case.code and re.search(expected, got[2], re.S) is not None
        else:  # another error code altogether
            ok = got is not None and got[1] == expected
        if not ok:
            found.append(f"{case.name} on {stack.kind}: expected {expected!r}, boto3 got {got!r}")
    assert not found, "\n".join(found)


# ---------------------------------------------------------------- machine-readable reasons


def test_the_gateway_says_dynamodbs_words_in_error_info_not_only_in_text(tables: Stack) -> None:
    """A refusal the gateway makes itself carries DynamoDB's text as ErrorInfo metadata, and the
    BadRequest still names the field, for the gateway's own callers."""
    stack = tables
    with client("dynamodb", target=stack.gateway.target) as facade:
        with pytest.raises(ClientError) as caught:
            facade.batch_write_item(
                RequestItems={
                    SCRATCH: [
                        {"PutRequest": {"Item": {**_key("dup"), "v": {"N": "1"}}}},
                        {"DeleteRequest": {"Key": _key("dup")}},
                    ]
                }
            )
    error = caught.value.gateway_error
    assert error.metadata["dynamodb_message"] == S.DUPLICATE_KEYS
    assert error.field_violations[0][0] == f"request_items[{SCRATCH}].requests[1]"
    assert error.field_violations[0][1].startswith(S.DUPLICATE_KEYS + ": ")
    assert caught.value.response["Error"] == {"Message": S.DUPLICATE_KEYS, "Code": "ValidationException"}


def _gateway_error(message: str, metadata: dict[str, str], violations: list[tuple[str, str]]) -> GatewayError:
    return GatewayError(
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
        reason="Validation.InvalidParameter",
        metadata=metadata,
        field_violations=violations,
    )


def test_the_facade_reads_dynamodbs_words_from_metadata_never_from_the_description() -> None:
    # A description that merely mentions duplicates is not DynamoDB's refusal of them.
    mentions = _gateway_error(
        "invalid item.note: duplicate keys in one batch",
        {"field": "item.note"},
        [("item.note", "duplicate keys in one batch")],
    )
    code, response = facade_errors.error_response(mentions)
    assert (code, response["Error"]["Message"]) == ("ValidationException", mentions.message)
    # The metadata is what counts, whatever the description says.
    worded = _gateway_error(
        "invalid request_items[t].keys[1]: anything",
        {"field": "request_items[t].keys[1]", "dynamodb_message": S.DUPLICATE_KEYS},
        [("request_items[t].keys[1]", "anything")],
    )
    assert facade_errors.error_response(worded)[1]["Error"]["Message"] == S.DUPLICATE_KEYS


# ---------------------------------------------------------------- parameter_validation, without a server


def test_the_facade_takes_botocores_config_as_boto3_does() -> None:
    with client("dynamodb", target="127.0.0.1:1") as facade:
        assert facade.parameter_validation is True
        with pytest.raises(ParamValidationError):
            facade.query(TableName=APP, KeyConditionExpression="pk = :p", Limit=0)
    config = Config(parameter_validation=False, retries={"max_attempts": 3})
    with DynamoDBClient("127.0.0.1:1", config=config) as facade:
        assert facade.parameter_validation is False
        assert facade.config is config
        # Refused before sending (nothing listens on port 1): as DynamoDB refuses it.
        with pytest.raises(ClientError) as caught:
            facade.query(TableName=APP, KeyConditionExpression="pk = :p", Limit=0)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("operation", "params", "code", "message"),
    [
        (
            "Scan",
            {"TableName": HASH, "Limit": True},
            "SerializationException",
            "TRUE_VALUE can not be converted to an Integer",
        ),
        (
            "Scan",
            {"TableName": HASH, "Limit": 1.5},
            "SerializationException",
            "DECIMAL_VALUE can not be converted to an Integer",
        ),
        (
            "Scan",
            {"TableName": HASH, "Limit": [1]},
            "SerializationException",
            "Start of list found where not expected",
        ),
        (
            "Scan",
            {"TableName": HASH, "Limit": {"a": 1}},
            "SerializationException",
            "Start of structure or map found where not expected.",
        ),
        ("Scan", {"TableName": 7}, "SerializationException", "NUMBER_VALUE can not be converted to a String"),
        (
            "Scan",
            {"TableName": True},
            "SerializationException",
            "TRUE_VALUE can not be converted to a String",
        ),
        (
            "GetItem",
            {"TableName": HASH, "Key": {"pk": {"S": "x"}}, "ConsistentRead": "maybe"},
            "SerializationException",
            "STRING_VALUE can not be converted to an Boolean",
        ),
        (
            "GetItem",
            {"TableName": HASH, "Key": {"pk": {"S": "x"}}, "ConsistentRead": 1},
            "SerializationException",
            "NUMBER_VALUE can not be converted to a Boolean",
        ),
        (
            "GetItem",
            {"TableName": HASH, "Key": {"pk": {"B": 5}}},
            "SerializationException",
            "only base-64-encoded strings are convertible to bytes",
        ),
        ("GetItem", {"TableName": HASH, "Key": "pk"}, "SerializationException", "Expected null"),
        (
            "PutItem",
            {"TableName": HASH, "Item": {"pk": {"SS": "abc"}}},
            "SerializationException",
            "Expected list or null",
        ),
        (
            "Scan",
            {"TableName": HASH, "Limit": 0, "Segment": 1_000_000, "TotalSegments": 2_000_000},
            "ValidationException",
            "3 validation errors detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater "
            "than or equal to 1; Value '2000000' at 'totalSegments' failed to satisfy constraint: Member must have value less "
            "than or equal to 1000000; Value '1000000' at 'segment' failed to satisfy constraint: Member must have value less "
            "than or equal to 999999",
        ),
        (
            "PutItem",
            {},
            "ValidationException",
            "2 validation errors detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null; "
            "Value null at 'item' failed to satisfy constraint: Member must not be null",
        ),
        (
            "TransactWriteItems",
            {"TransactItems": [{"Put": {"TableName": HASH}}]},
            "ValidationException",
            "1 validation error detected: Value null at 'transactItems.1.member.put.item' failed to satisfy constraint: "
            "Member must not be null",
        ),
        (
            "Query",
            {"TableName": APP, "IndexName": "ab", "KeyConditionExpression": "pk = :p"},
            "ValidationException",
            "1 validation error detected: Value 'ab' at 'indexName' failed to satisfy constraint: Member must have length "
            "greater than or equal to 3",
        ),
        (
            "TransactWriteItems",
            {"TransactItems": [{"Put": {"TableName": HASH, "Item": _key("x")}}], "ClientRequestToken": ""},
            "ValidationException",
            "1 validation error detected: Value '' at 'clientRequestToken' failed to satisfy constraint: Member must have "
            "length greater than or equal to 1",
        ),
    ],
)
def test_unvalidated_requests_get_dynamodbs_answer(
    operation: str, params: dict[str, Any], code: str, message: str
) -> None:
    from dynamo_gateway.boto3_compat._failures import LocalValidationError

    with pytest.raises(LocalValidationError) as caught:
        checked(operation, params)
    assert (caught.value.code, caught.value.message) == (code, message)


def test_unvalidated_requests_read_as_dynamodb_reads_json() -> None:
    # null members are absent; "true"/"false" text is a boolean; values are otherwise kept.
    params = {
        "TableName": HASH,
        "Key": {"pk": {"S": "x"}},
        "ConsistentRead": "TRUE",
        "ProjectionExpression": None,
    }
    assert checked("GetItem", params) == {
        "TableName": HASH,
        "Key": {"pk": {"S": "x"}},
        "ConsistentRead": True,
    }
    # A value JSON cannot carry never reaches DynamoDB: boto3 fails (TypeError); the facade says so as botocore does.
    with pytest.raises(ParamValidationError, match="cannot be sent as JSON"):
        checked("GetItem", {"TableName": HASH, "Key": {"pk": {"S": b"bytes"}}})
