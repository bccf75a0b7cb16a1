"""Differential test: the lean backend answers exactly as the aiobotocore backend, call by call.

One scripted set of calls (every operation, binary values, pagination, and every
error kind the emulators produce) runs through both backends against the same
emulator, each on its own table; results and errors must be equal once table
names and per-call noise (request ids, timestamps) are set aside.
"""

from __future__ import annotations

import json
from typing import Any

from dynamo_gateway_server.backends import BackendError
from dynamo_gateway_server.backends.aws import AwsBackend
from dynamo_gateway_server.backends.json_protocol import JsonProtocolBackend
from dynamo_gateway_server.tables import TableSpec, create_table_params
from tests.support.backends import backend_options

SPEC = TableSpec(name="", attributes={"pk": "S", "sk": "S"}, partition_key="pk", sort_key="sk")
ITEM = {
    "pk": {"S": "p"},
    "sk": {"S": "1"},
    "b": {"B": b"\x00\x01\xfe\xff"},
    "bs": {"BS": [b"\x01", b"\x02"]},
    "n": {"N": "12.50"},
    "ns": {"NS": ["1", "2.5"]},
    "m": {"M": {"B": {"S": "a map attribute named B"}, "l": {"L": [{"B": b"x"}, {"NULL": True}]}}},
    "bool": {"BOOL": False},
}


def script(table: str, transactions: bool) -> list[tuple[str, dict[str, Any]]]:
    key = {"pk": {"S": "p"}, "sk": {"S": "1"}}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("PutItem", {"TableName": table, "Item": ITEM}),
        ("PutItem", {"TableName": table, "Item": {**ITEM, "n": {"N": "13"}}, "ReturnValues": "ALL_OLD"}),
        ("GetItem", {"TableName": table, "Key": key, "ConsistentRead": True}),
        (
            "GetItem",
            {
                "TableName": table,
                "Key": key,
                "ProjectionExpression": "b, #m",
                "ExpressionAttributeNames": {"#m": "m"},
            },
        ),
        ("GetItem", {"TableName": table, "Key": {"pk": {"S": "none"}, "sk": {"S": "x"}}}),
        (
            "UpdateItem",
            {
                "TableName": table,
                "Key": key,
                "UpdateExpression": "SET n = n + :one ADD bs :more",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":more": {"BS": [b"\x03"]}},
                "ReturnValues": "ALL_NEW",
            },
        ),
        ("PutItem", {"TableName": table, "Item": ITEM, "ConditionExpression": "attribute_not_exists(pk)"}),
        (
            "BatchWriteItem",
            {
                "RequestItems": {
                    table: [
                        {"PutRequest": {"Item": {"pk": {"S": "q"}, "sk": {"S": str(i)}}}} for i in range(5)
                    ]
                }
            },
        ),
        (
            "BatchGetItem",
            {
                "RequestItems": {
                    table: {
                        "Keys": [{"pk": {"S": "q"}, "sk": {"S": str(i)}} for i in range(3)],
                        "ConsistentRead": True,
                    }
                }
            },
        ),
        (
            "Query",
            {
                "TableName": table,
                "KeyConditionExpression": "pk = :q",
                "ExpressionAttributeValues": {":q": {"S": "q"}},
                "Limit": 2,
                "ScanIndexForward": False,
            },
        ),
        ("Scan", {"TableName": table, "Segment": 0, "TotalSegments": 1, "ReturnConsumedCapacity": "TOTAL"}),
        (
            "DeleteItem",
            {"TableName": table, "Key": {"pk": {"S": "q"}, "sk": {"S": "0"}}, "ReturnValues": "ALL_OLD"},
        ),
        # Errors
        ("GetItem", {"TableName": table + "-missing", "Key": key}),
        ("GetItem", {"TableName": table, "Key": {"pk": {"S": "p"}}}),
        ("PutItem", {"TableName": table, "Item": ITEM, "ConditionExpression": "not an ( expression"}),
        ("UpdateItem", {"TableName": table, "Key": key, "UpdateExpression": "SET x = :missing"}),
    ]
    if transactions:
        calls += [
            (
                "TransactWriteItems",
                {
                    "TransactItems": [
                        {
                            "Put": {
                                "TableName": table,
                                "Item": {"pk": {"S": "t"}, "sk": {"S": "1"}, "b": {"B": b"\x09"}},
                            }
                        },
                        {"Update": {"TableName": table, "Key": key, "UpdateExpression": "REMOVE bool"}},
                    ]
                },
            ),
            (
                "TransactWriteItems",
                {
                    "TransactItems": [
                        {"Put": {"TableName": table, "Item": {"pk": {"S": "t"}, "sk": {"S": "2"}}}},
                        {
                            "ConditionCheck": {
                                "TableName": table,
                                "Key": key,
                                "ConditionExpression": "attribute_not_exists(pk)",
                                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                            }
                        },
                    ]
                },
            ),
            (
                "TransactGetItems",
                {
                    "TransactItems": [
                        {"Get": {"TableName": table, "Key": key}},
                        {"Get": {"TableName": table, "Key": {"pk": {"S": "t"}, "sk": {"S": "1"}}}},
                    ]
                },
            ),
        ]
    return calls


def _normal(value: Any, table: str) -> Any:
    """JSON text with the table name made neutral, for comparison."""
    return json.loads(json.dumps(value, default=lambda b: b.hex(), sort_keys=True).replace(table, "TABLE"))


async def _run(backend: Any, table: str, transactions: bool) -> list[Any]:
    outcomes = []
    for operation, params in script(table, transactions):
        try:
            response = await backend.call(operation, params)
            response.pop("ResponseMetadata", None)
            if operation == "BatchGetItem":  # DynamoDB promises no order within a batch's answer
                for items in response.get("Responses", {}).values():
                    items.sort(key=lambda item: json.dumps(item, default=repr, sort_keys=True))
            outcomes.append(("ok", operation, _normal(response, table)))
        except BackendError as error:
            outcomes.append(
                (
                    "error",
                    operation,
                    error.code,
                    error.http_status,
                    error.message.replace(table, "TABLE"),
                    _normal(error.item, table),
                    _normal(error.cancellation_reasons, table),
                )
            )
    return outcomes


async def test_lean_backend_answers_as_aiobotocore(emulator) -> None:
    options = backend_options(emulator.endpoint_url, max_concurrency=4)
    sdk, lean = await AwsBackend.start(options), await JsonProtocolBackend.start(options)
    try:
        results = []
        for backend, table in ((sdk, "diff-sdk"), (lean, "diff-lean")):
            await sdk.call("CreateTable", create_table_params(TableSpec(**{**SPEC.__dict__, "name": table})))
            results.append(await _run(backend, table, emulator.supports_transactions))
        by_sdk, by_lean = results
        assert len(by_sdk) == len(by_lean)
        for expected, got in zip(by_sdk, by_lean, strict=True):
            assert got == expected
        kinds = {outcome[0] for outcome in by_sdk}
        assert kinds == {"ok", "error"}, "the script must exercise both answers and errors"
    finally:
        await sdk.close()
        await lean.close()
