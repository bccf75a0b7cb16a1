"""What the differential script cannot show call by call: paginators, unsupported calls,
boto3's calling conventions, the opt-in for large batches and an unreachable gateway."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.paginate import TokenDecoder

from dynamo_gateway.boto3_compat import DynamoDBClient, UnsupportedOperationError, async_client, client
from dynamo_gateway_server.backends.memory import free_loopback_port
from tests.compat import harness
from tests.compat.conftest import Stack

PAGES = "pages"
PAGES_TABLE = {
    "TableName": PAGES,
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "N"},
    ],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "BillingMode": "PAY_PER_REQUEST",
}


def _fill_pages(dynamodb: Any) -> None:
    for start in range(0, 23, 10):
        writes = [
            {"PutRequest": {"Item": {"pk": {"S": "p"}, "sk": {"N": str(i)}, "v": {"S": f"value {i}"}}}}
            for i in range(start, min(start + 10, 23))
        ]
        assert dynamodb.batch_write_item(RequestItems={PAGES: writes})["UnprocessedItems"] == {}


@pytest.fixture(scope="module")
def paged(stack: Stack) -> Iterator[tuple[Any, DynamoDBClient, Stack]]:
    """23 items in a `pages` table on both emulators, written by boto3 and by the facade."""
    direct = harness.direct_client(stack.direct.endpoint_url)
    behind = harness.direct_client(stack.behind.endpoint_url)
    for control in (direct, behind):
        if PAGES not in control.list_tables()["TableNames"]:
            control.create_table(**PAGES_TABLE)
            control.get_waiter("table_exists").wait(TableName=PAGES, WaiterConfig={"Delay": 0.05})
    facade = client("dynamodb", target=stack.gateway.target)
    _fill_pages(direct)
    _fill_pages(facade)
    yield direct, facade, stack
    facade.close()


PAGINATIONS = [
    (
        "query",
        {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p"}}},
        {"PageSize": 5},
    ),
    (
        "query",
        {
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "p"}},
            "ScanIndexForward": False,
        },
        {"PageSize": 4, "MaxItems": 9},
    ),
    (
        "scan",
        {"FilterExpression": "sk > :n", "ExpressionAttributeValues": {":n": {"N": "3"}}},
        {"PageSize": 6},
    ),
    ("scan", {}, {"MaxItems": 7, "PageSize": 3}),
]


def _token(token: str | None) -> Any:
    # Tokens encode a key as JSON; attribute order is not part of a DynamoDB key (nor kept by protobuf maps).
    return None if token is None else TokenDecoder().decode(token)


def _pages(paginator: Any, params: dict[str, Any], config: dict[str, Any]) -> tuple[list[Any], Any]:
    iterator = paginator.paginate(TableName=PAGES, **copy.deepcopy(params), PaginationConfig=config)
    pages = [{k: v for k, v in page.items() if k != "ResponseMetadata"} for page in iterator]
    return pages, _token(iterator.resume_token)


@pytest.mark.parametrize(("operation", "params", "config"), PAGINATIONS)
def test_sync_paginator_pages_as_boto3(
    paged: Any, operation: str, params: dict[str, Any], config: dict[str, Any]
) -> None:
    direct, facade, _ = paged
    want_pages, want_token = _pages(direct.get_paginator(operation), params, config)
    got_pages, got_token = _pages(facade.get_paginator(operation), params, config)
    assert got_pages == want_pages
    assert got_token == want_token
    if want_token is not None:  # resuming from the token continues exactly as boto3 does
        resumed = {
            **config,
            "StartingToken": direct.get_paginator(operation)
            .paginate(TableName=PAGES, **copy.deepcopy(params), PaginationConfig=config)
            .build_full_result()["NextToken"],
        }
        assert _pages(facade.get_paginator(operation), params, resumed) == _pages(
            direct.get_paginator(operation), params, resumed
        )


@pytest.mark.parametrize(("operation", "params", "config"), PAGINATIONS)
async def test_async_paginator_pages_as_boto3(
    paged: Any, operation: str, params: dict[str, Any], config: dict[str, Any]
) -> None:
    direct, _, stack = paged
    want_pages, want_token = _pages(direct.get_paginator(operation), params, config)
    want_full = (
        direct.get_paginator(operation)
        .paginate(TableName=PAGES, **copy.deepcopy(params), PaginationConfig=config)
        .build_full_result()
    )
    async with async_client("dynamodb", target=stack.gateway.target) as facade:
        iterator = facade.get_paginator(operation).paginate(
            TableName=PAGES, **copy.deepcopy(params), PaginationConfig=config
        )
        got_pages = [{k: v for k, v in page.items() if k != "ResponseMetadata"} async for page in iterator]
        assert got_pages == want_pages
        assert _token(iterator.resume_token) == want_token
        full = (
            await facade.get_paginator(operation)
            .paginate(TableName=PAGES, **copy.deepcopy(params), PaginationConfig=config)
            .build_full_result()
        )
        next_token = want_full.pop("NextToken", None)
        assert _token(full.pop("NextToken", None)) == _token(next_token)
        assert full == want_full
        if next_token is not None:  # resuming from boto3's token continues exactly as boto3 does
            resumed = {**config, "StartingToken": next_token}
            resumed_pages = [
                {k: v for k, v in page.items() if k != "ResponseMetadata"}
                async for page in facade.get_paginator(operation).paginate(
                    TableName=PAGES, **copy.deepcopy(params), PaginationConfig=resumed
                )
            ]
            assert resumed_pages == _pages(direct.get_paginator(operation), params, resumed)[0]
        values = [
            v
            async for v in facade.get_paginator(operation)
            .paginate(TableName=PAGES, **copy.deepcopy(params), PaginationConfig=config)
            .search("Items[].sk.N")
        ]
        assert values == [item["sk"]["N"] for page in want_pages for item in page.get("Items", [])]


def test_only_query_and_scan_paginate(paged: Any) -> None:
    direct, facade, _ = paged
    for name in ("query", "scan", "list_tables", "get_item"):
        assert facade.can_paginate(name) == (name in ("query", "scan"))
    assert direct.can_paginate("query") and direct.can_paginate("scan")


def test_modeled_exceptions_are_caught_as_with_boto3(paged: Any) -> None:
    _, facade, _ = paged
    with pytest.raises(facade.exceptions.ConditionalCheckFailedException) as caught:
        facade.put_item(
            TableName=PAGES,
            Item={"pk": {"S": "p"}, "sk": {"N": "1"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    assert isinstance(caught.value, ClientError)
    assert caught.value.operation_name == "PutItem"
    assert "ConditionalCheckFailedException" in str(caught.value)
    assert caught.value.gateway_error.reason == "ConditionalCheck.ConditionFailed"


def test_control_plane_calls_say_what_to_use_instead(paged: Any) -> None:
    _, facade, _ = paged
    with pytest.raises(
        UnsupportedOperationError, match=r"CreateTable is not served by dynamo-gateway: .*--tables-file"
    ):
        facade.create_table(TableName="x")
    with pytest.raises(UnsupportedOperationError, match=r"ExecuteStatement .* PartiQL"):
        facade.execute_statement(Statement="SELECT * FROM pages")
    with pytest.raises(UnsupportedOperationError, match="UpdateTimeToLive"):
        facade.update_time_to_live(TableName=PAGES, TimeToLiveSpecification={})
    with pytest.raises(AttributeError):
        facade.no_such_method()


def test_legacy_parameters_are_translated_not_refused(paged: Any) -> None:
    """Older code's Expected and KeyConditions work as on DynamoDB (the differential script covers
    every operator; this is the smoke test of the path)."""
    item = {"pk": {"S": "legacy"}, "sk": {"N": "1"}}
    for dynamodb in paged[:2]:  # boto3 straight to the emulator, then the facade: both tables alike
        dynamodb.put_item(TableName=PAGES, Item=item, Expected={"pk": {"Exists": False}})
        with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
            dynamodb.put_item(TableName=PAGES, Item=item, Expected={"pk": {"Exists": False}})
        found = dynamodb.query(
            TableName=PAGES,
            KeyConditions={"pk": {"AttributeValueList": [{"S": "legacy"}], "ComparisonOperator": "EQ"}},
        )
        assert found["Items"] == [item]


def test_methods_take_keywords_only_like_boto3(paged: Any) -> None:
    direct, facade, _ = paged
    with pytest.raises(TypeError):
        direct.get_item({"TableName": PAGES})
    with pytest.raises(TypeError):
        facade.get_item({"TableName": PAGES})


def test_describe_table_carries_what_the_gateway_serves(paged: Any) -> None:
    direct, facade, _ = paged
    want = direct.describe_table(TableName=PAGES)["Table"]
    got = facade.describe_table(TableName=PAGES)["Table"]
    for key in ("TableName", "KeySchema", "AttributeDefinitions", "TableStatus", "ItemCount", "TableArn"):
        assert got[key] == want[key], key
    assert got["BillingModeSummary"]["BillingMode"] == want["BillingModeSummary"]["BillingMode"]
    # A subset: the gateway's TableDescription leaves out ids, timestamps and throughput history.
    assert set(got) <= set(want) | {"ProvisionedThroughput"}


def test_gateway_batches_opt_in_lets_the_gateway_split(paged: Any) -> None:
    _, facade, stack = paged
    writes = [{"PutRequest": {"Item": {"pk": {"S": "many"}, "sk": {"N": str(i)}}}} for i in range(60)]
    # DynamoDB's length constraint on one table's writes (more than 25 in all: "Too many items requested").
    with pytest.raises(ClientError, match=r"at 'requestItems' failed to satisfy constraint: Map value must"):
        facade.batch_write_item(RequestItems={PAGES: writes})
    with client("dynamodb", target=stack.gateway.target, gateway_batches=True) as lenient:
        assert lenient.batch_write_item(RequestItems={PAGES: writes})["UnprocessedItems"] == {}
        keys = [{"pk": {"S": "many"}, "sk": {"N": str(i)}} for i in range(60)]
        got = lenient.batch_get_item(RequestItems={PAGES: {"Keys": keys}})["Responses"][PAGES]
    assert sorted(int(i["sk"]["N"]) for i in got) == list(range(60))


def test_unreachable_gateway_is_an_endpoint_connection_error_as_in_boto3() -> None:
    port = free_loopback_port()  # nothing listens there
    with pytest.raises(EndpointConnectionError):
        harness.direct_client(f"http://127.0.0.1:{port}").get_item(TableName=PAGES, Key={"pk": {"S": "p"}})
    with (
        client("dynamodb", target=f"127.0.0.1:{port}", timeout_s=5) as facade,
        pytest.raises(EndpointConnectionError),
    ):
        facade.get_item(TableName=PAGES, Key={"pk": {"S": "p"}})


def test_only_dynamodb_is_served() -> None:
    with pytest.raises(UnsupportedOperationError, match="DynamoDB only"):
        client("s3", target="127.0.0.1:1")
