"""Server codec: request messages -> DynamoDB parameter dicts, and DynamoDB responses -> messages."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from dynamo_gateway.v1 import options_pb2, service_pb2, table_pb2, value_pb2
from dynamo_gateway_server import codec

opt = options_pb2


def _s(text: str) -> value_pb2.AttributeValue:
    return value_pb2.AttributeValue(s=text)


def _n(text: str) -> value_pb2.AttributeValue:
    return value_pb2.AttributeValue(n=text)


KEY = {"pk": _s("user#1"), "sk": _n("7")}
WIRE_KEY = {"pk": {"S": "user#1"}, "sk": {"N": "7"}}


def _invalid(build: Any, request: Any) -> codec.InvalidRequestError:
    with pytest.raises(codec.InvalidRequestError) as caught:
        build(request)
    return caught.value


# ---------------------------------------------------------------- GetItem


def test_get_item_minimal() -> None:
    request = service_pb2.GetItemRequest(table_name="tbl", key=KEY)
    assert codec.get_item_request(request) == {"TableName": "tbl", "Key": WIRE_KEY}


def test_get_item_full() -> None:
    request = service_pb2.GetItemRequest(
        table_name="tbl",
        key=KEY,
        consistent_read=True,
        projection_expression="#a, b",
        expression_attribute_names={"#a": "a"},
        return_consumed_capacity=opt.RETURN_CONSUMED_CAPACITY_INDEXES,
    )
    assert codec.get_item_request(request) == {
        "TableName": "tbl",
        "Key": WIRE_KEY,
        "ConsistentRead": True,
        "ProjectionExpression": "#a, b",
        "ExpressionAttributeNames": {"#a": "a"},
        "ReturnConsumedCapacity": "INDEXES",
    }


def test_get_item_rejects_empty_table_name_and_key() -> None:
    assert _invalid(codec.get_item_request, service_pb2.GetItemRequest(key=KEY)).field == "table_name"
    assert _invalid(codec.get_item_request, service_pb2.GetItemRequest(table_name="tbl")).field == "key"


def test_get_item_bad_key_value_named_by_path() -> None:
    request = service_pb2.GetItemRequest(table_name="tbl", key={"pk": _n("NaN")})
    assert _invalid(codec.get_item_request, request).field == "key.pk"


def test_unknown_enum_number_rejected_naming_the_field() -> None:
    request = service_pb2.GetItemRequest(table_name="tbl", key=KEY, return_consumed_capacity=99)
    error = _invalid(codec.get_item_request, request)
    assert error.field == "return_consumed_capacity"
    assert "99" in error.description
    assert "ReturnConsumedCapacity" in error.description


# ---------------------------------------------------------------- PutItem / UpdateItem / DeleteItem


def test_put_item_full() -> None:
    request = service_pb2.PutItemRequest(
        table_name="tbl",
        item={**KEY, "name": _s("ann")},
        condition_expression="attribute_not_exists(pk) OR #v < :v",
        expression_attribute_names={"#v": "version"},
        expression_attribute_values={":v": _n("3")},
        return_values=opt.RETURN_VALUE_ALL_OLD,
        return_consumed_capacity=opt.RETURN_CONSUMED_CAPACITY_TOTAL,
        return_item_collection_metrics=opt.RETURN_ITEM_COLLECTION_METRICS_SIZE,
        return_values_on_condition_check_failure=opt.RETURN_VALUES_ON_CONDITION_CHECK_FAILURE_ALL_OLD,
    )
    assert codec.put_item_request(request) == {
        "TableName": "tbl",
        "Item": {**WIRE_KEY, "name": {"S": "ann"}},
        "ConditionExpression": "attribute_not_exists(pk) OR #v < :v",
        "ExpressionAttributeNames": {"#v": "version"},
        "ExpressionAttributeValues": {":v": {"N": "3"}},
        "ReturnValues": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
        "ReturnItemCollectionMetrics": "SIZE",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def test_put_item_omits_unspecified_enums_and_empty_strings() -> None:
    request = service_pb2.PutItemRequest(
        table_name="tbl",
        item=KEY,
        condition_expression="",
        return_values=opt.RETURN_VALUE_UNSPECIFIED,
        return_consumed_capacity=opt.RETURN_CONSUMED_CAPACITY_UNSPECIFIED,
    )
    assert codec.put_item_request(request) == {"TableName": "tbl", "Item": WIRE_KEY}


def test_explicit_none_enum_is_sent() -> None:
    request = service_pb2.PutItemRequest(table_name="tbl", item=KEY, return_values=opt.RETURN_VALUE_NONE)
    assert codec.put_item_request(request)["ReturnValues"] == "NONE"


def test_put_item_rejections() -> None:
    assert _invalid(codec.put_item_request, service_pb2.PutItemRequest(item=KEY)).field == "table_name"
    assert _invalid(codec.put_item_request, service_pb2.PutItemRequest(table_name="tbl")).field == "item"
    error = _invalid(
        codec.put_item_request, service_pb2.PutItemRequest(table_name="tbl", item=KEY, return_values=99)
    )
    assert error.field == "return_values"
    assert "99" in error.description
    bad_value = service_pb2.PutItemRequest(
        table_name="tbl", item=KEY, expression_attribute_values={":v": value_pb2.AttributeValue()}
    )
    assert _invalid(codec.put_item_request, bad_value).field == "expression_attribute_values.:v"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("return_consumed_capacity", 42),
        ("return_item_collection_metrics", 7),
        ("return_values_on_condition_check_failure", 3),
    ],
)
def test_write_enums_out_of_range_name_their_field(field: str, value: int) -> None:
    request = service_pb2.DeleteItemRequest(table_name="tbl", key=KEY, **{field: value})
    assert _invalid(codec.delete_item_request, request).field == field


def test_update_item_full() -> None:
    request = service_pb2.UpdateItemRequest(
        table_name="tbl",
        key=KEY,
        update_expression="SET #c = #c + :one",
        condition_expression="attribute_exists(pk)",
        expression_attribute_names={"#c": "count"},
        expression_attribute_values={":one": _n("1")},
        return_values=opt.RETURN_VALUE_UPDATED_NEW,
    )
    assert codec.update_item_request(request) == {
        "TableName": "tbl",
        "Key": WIRE_KEY,
        "UpdateExpression": "SET #c = #c + :one",
        "ConditionExpression": "attribute_exists(pk)",
        "ExpressionAttributeNames": {"#c": "count"},
        "ExpressionAttributeValues": {":one": {"N": "1"}},
        "ReturnValues": "UPDATED_NEW",
    }


def test_update_item_rejections() -> None:
    assert _invalid(codec.update_item_request, service_pb2.UpdateItemRequest(table_name="tbl")).field == "key"
    assert _invalid(codec.update_item_request, service_pb2.UpdateItemRequest(key=KEY)).field == "table_name"


def test_delete_item() -> None:
    request = service_pb2.DeleteItemRequest(
        table_name="tbl",
        key=KEY,
        condition_expression="attribute_exists(pk)",
        return_values=opt.RETURN_VALUE_ALL_OLD,
        return_values_on_condition_check_failure=opt.RETURN_VALUES_ON_CONDITION_CHECK_FAILURE_NONE,
    )
    assert codec.delete_item_request(request) == {
        "TableName": "tbl",
        "Key": WIRE_KEY,
        "ConditionExpression": "attribute_exists(pk)",
        "ReturnValues": "ALL_OLD",
        "ReturnValuesOnConditionCheckFailure": "NONE",
    }
    assert _invalid(codec.delete_item_request, service_pb2.DeleteItemRequest(table_name="tbl")).field == "key"


# ---------------------------------------------------------------- Query


def test_query_full() -> None:
    request = service_pb2.QueryRequest(
        table_name="tbl",
        index_name="gsi1",
        key_condition_expression="pk = :p",
        filter_expression="size(tags) > :z",
        projection_expression="pk, tags",
        expression_attribute_values={":p": _s("a"), ":z": _n("0")},
        select=opt.SELECT_SPECIFIC_ATTRIBUTES,
        limit=25,
        consistent_read=True,
        scan_index_forward=False,
        exclusive_start_key=KEY,
        return_consumed_capacity=opt.RETURN_CONSUMED_CAPACITY_TOTAL,
    )
    assert codec.query_request(request) == {
        "TableName": "tbl",
        "IndexName": "gsi1",
        "KeyConditionExpression": "pk = :p",
        "FilterExpression": "size(tags) > :z",
        "ProjectionExpression": "pk, tags",
        "ExpressionAttributeValues": {":p": {"S": "a"}, ":z": {"N": "0"}},
        "Select": "SPECIFIC_ATTRIBUTES",
        "Limit": 25,
        "ConsistentRead": True,
        "ScanIndexForward": False,
        "ExclusiveStartKey": WIRE_KEY,
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_query_minimal_omits_scan_index_forward_unless_set() -> None:
    request = service_pb2.QueryRequest(table_name="tbl", key_condition_expression="pk = :p")
    assert codec.query_request(request) == {"TableName": "tbl", "KeyConditionExpression": "pk = :p"}
    request.scan_index_forward = True
    assert codec.query_request(request)["ScanIndexForward"] is True
    request.scan_index_forward = False  # explicitly false is still sent
    assert codec.query_request(request)["ScanIndexForward"] is False


def test_query_rejections() -> None:
    assert (
        _invalid(codec.query_request, service_pb2.QueryRequest(table_name="tbl")).field
        == "key_condition_expression"
    )
    assert (
        _invalid(codec.query_request, service_pb2.QueryRequest(key_condition_expression="x")).field
        == "table_name"
    )
    negative = service_pb2.QueryRequest(table_name="tbl", key_condition_expression="x", limit=-1)
    assert _invalid(codec.query_request, negative).field == "limit"
    bad_select = service_pb2.QueryRequest(table_name="tbl", key_condition_expression="x", select=9)
    assert _invalid(codec.query_request, bad_select).field == "select"
    bad_start = service_pb2.QueryRequest(
        table_name="tbl", key_condition_expression="x", exclusive_start_key={"pk": _n("1x")}
    )
    assert _invalid(codec.query_request, bad_start).field == "exclusive_start_key.pk"


# ---------------------------------------------------------------- Scan


def test_scan_minimal_and_full() -> None:
    assert codec.scan_request(service_pb2.ScanRequest(table_name="tbl")) == {"TableName": "tbl"}
    request = service_pb2.ScanRequest(
        table_name="tbl",
        index_name="i",
        filter_expression="a = :a",
        expression_attribute_names={"#x": "x"},
        expression_attribute_values={":a": value_pb2.AttributeValue(bool=True)},
        select=opt.SELECT_COUNT,
        limit=10,
        consistent_read=True,
        exclusive_start_key=KEY,
        segment=2,
        total_segments=4,
        return_consumed_capacity=opt.RETURN_CONSUMED_CAPACITY_NONE,
    )
    assert codec.scan_request(request) == {
        "TableName": "tbl",
        "IndexName": "i",
        "FilterExpression": "a = :a",
        "ExpressionAttributeNames": {"#x": "x"},
        "ExpressionAttributeValues": {":a": {"BOOL": True}},
        "Select": "COUNT",
        "Limit": 10,
        "ConsistentRead": True,
        "Segment": 2,
        "TotalSegments": 4,
        "ExclusiveStartKey": WIRE_KEY,
        "ReturnConsumedCapacity": "NONE",
    }


def test_scan_segment_zero_of_one_is_sent() -> None:
    params = codec.scan_request(service_pb2.ScanRequest(table_name="tbl", segment=0, total_segments=1))
    assert params["Segment"] == 0
    assert params["TotalSegments"] == 1


@pytest.mark.parametrize(
    ("segment", "total", "field"),
    [
        (0, 1_000_001, "total_segments"),
        (3, 0, "total_segments"),
        (-1, 4, "segment"),
        (4, 4, "segment"),
        (0, -2, "total_segments"),
    ],
)
def test_scan_segment_rejections(segment: int, total: int, field: str) -> None:
    request = service_pb2.ScanRequest(table_name="tbl", segment=segment, total_segments=total)
    assert _invalid(codec.scan_request, request).field == field


def test_scan_largest_segment_count_accepted() -> None:
    request = service_pb2.ScanRequest(table_name="tbl", segment=999_999, total_segments=1_000_000)
    assert codec.scan_request(request)["TotalSegments"] == 1_000_000


def test_scan_negative_limit() -> None:
    assert _invalid(codec.scan_request, service_pb2.ScanRequest(table_name="tbl", limit=-5)).field == "limit"


# ---------------------------------------------------------------- ParallelScan


def test_parallel_scan_plan_fresh() -> None:
    request = service_pb2.ParallelScanRequest(
        table_name="tbl",
        total_segments=3,
        page_limit=50,
        filter_expression="a > :a",
        expression_attribute_values={":a": _n("1")},
    )
    params, starts = codec.parallel_scan_plan(request)
    assert params == {
        "TableName": "tbl",
        "FilterExpression": "a > :a",
        "ExpressionAttributeValues": {":a": {"N": "1"}},
        "Limit": 50,
        "TotalSegments": 3,
    }
    assert starts == {0: None, 1: None, 2: None}


def test_parallel_scan_plan_resume() -> None:
    request = service_pb2.ParallelScanRequest(
        table_name="tbl",
        total_segments=8,
        segments=[
            service_pb2.SegmentStart(segment=5, exclusive_start_key=KEY),
            service_pb2.SegmentStart(segment=1),
        ],
    )
    params, starts = codec.parallel_scan_plan(request)
    assert params == {"TableName": "tbl", "TotalSegments": 8}
    assert starts == {5: WIRE_KEY, 1: None}


@pytest.mark.parametrize("total", [0, 1_000_001, -1])
def test_parallel_scan_total_segments_out_of_range(total: int) -> None:
    request = service_pb2.ParallelScanRequest(table_name="tbl", total_segments=total)
    assert _invalid(codec.parallel_scan_plan, request).field == "total_segments"


def test_parallel_scan_resume_rejections() -> None:
    out_of_range = service_pb2.ParallelScanRequest(
        table_name="tbl", total_segments=4, segments=[service_pb2.SegmentStart(segment=0), {"segment": 4}]
    )
    assert _invalid(codec.parallel_scan_plan, out_of_range).field == "segments[1].segment"
    duplicate = service_pb2.ParallelScanRequest(
        table_name="tbl",
        total_segments=4,
        segments=[{"segment": 2}, {"segment": 3}, {"segment": 2, "exclusive_start_key": KEY}],
    )
    error = _invalid(codec.parallel_scan_plan, duplicate)
    assert error.field == "segments[2].segment"
    assert "twice" in error.description
    bad_key = service_pb2.ParallelScanRequest(
        table_name="tbl", total_segments=2, segments=[{"segment": 1, "exclusive_start_key": {"pk": _n("")}}]
    )
    assert _invalid(codec.parallel_scan_plan, bad_key).field == "segments[0].exclusive_start_key.pk"
    negative = service_pb2.ParallelScanRequest(table_name="tbl", total_segments=2, page_limit=-1)
    assert _invalid(codec.parallel_scan_plan, negative).field == "page_limit"


# ---------------------------------------------------------------- BatchGetItem / BatchWriteItem


def test_batch_get_item_request() -> None:
    request = service_pb2.BatchGetItemRequest(
        request_items={
            "aaa": service_pb2.KeysAndAttributes(
                keys=[value_pb2.Item(attributes=KEY), value_pb2.Item(attributes={"pk": _s("x")})],
                consistent_read=True,
                projection_expression="#p",
                expression_attribute_names={"#p": "pk"},
            ),
            "bbb": service_pb2.KeysAndAttributes(keys=[value_pb2.Item(attributes={"id": _n("1")})]),
        },
        return_consumed_capacity=opt.RETURN_CONSUMED_CAPACITY_TOTAL,
    )
    assert codec.batch_get_item_request(request) == {
        "RequestItems": {
            "aaa": {
                "Keys": [WIRE_KEY, {"pk": {"S": "x"}}],
                "ConsistentRead": True,
                "ProjectionExpression": "#p",
                "ExpressionAttributeNames": {"#p": "pk"},
            },
            "bbb": {"Keys": [{"id": {"N": "1"}}]},
        },
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_batch_get_item_rejections() -> None:
    assert _invalid(codec.batch_get_item_request, service_pb2.BatchGetItemRequest()).field == "request_items"
    no_keys = service_pb2.BatchGetItemRequest(request_items={"aaa": service_pb2.KeysAndAttributes()})
    assert _invalid(codec.batch_get_item_request, no_keys).field == "request_items[aaa].keys"
    empty_key = service_pb2.BatchGetItemRequest(
        request_items={"aaa": {"keys": [value_pb2.Item(attributes=KEY), value_pb2.Item()]}}
    )
    assert _invalid(codec.batch_get_item_request, empty_key).field == "request_items[aaa].keys[1]"
    no_table = service_pb2.BatchGetItemRequest(
        request_items={"": service_pb2.KeysAndAttributes(keys=[value_pb2.Item(attributes=KEY)])}
    )
    assert _invalid(codec.batch_get_item_request, no_table).field == "request_items[]"


def test_batch_write_item_request() -> None:
    request = service_pb2.BatchWriteItemRequest(
        request_items={
            "tbl": service_pb2.WriteRequestList(
                requests=[
                    service_pb2.WriteRequest(put_request=service_pb2.PutRequest(item=KEY)),
                    service_pb2.WriteRequest(delete_request=service_pb2.DeleteRequest(key={"pk": _s("z")})),
                ]
            )
        },
        return_consumed_capacity=opt.RETURN_CONSUMED_CAPACITY_INDEXES,
        return_item_collection_metrics=opt.RETURN_ITEM_COLLECTION_METRICS_SIZE,
    )
    assert codec.batch_write_item_request(request) == {
        "RequestItems": {
            "tbl": [
                {"PutRequest": {"Item": WIRE_KEY}},
                {"DeleteRequest": {"Key": {"pk": {"S": "z"}}}},
            ]
        },
        "ReturnConsumedCapacity": "INDEXES",
        "ReturnItemCollectionMetrics": "SIZE",
    }


def test_batch_write_item_rejections() -> None:
    build = codec.batch_write_item_request
    assert _invalid(build, service_pb2.BatchWriteItemRequest()).field == "request_items"
    no_writes = service_pb2.BatchWriteItemRequest(request_items={"tbl": service_pb2.WriteRequestList()})
    assert _invalid(build, no_writes).field == "request_items[tbl].requests"
    neither = service_pb2.BatchWriteItemRequest(
        request_items={
            "tbl": {"requests": [{"put_request": {"item": KEY}}, service_pb2.WriteRequest()]},
        }
    )
    error = _invalid(build, neither)
    assert error.field == "request_items[tbl].requests[1]"
    assert (
        error.description
        == "1 validation error detected: WriteRequest must have one of PutRequest or DeleteRequest"
    )
    empty_put = service_pb2.BatchWriteItemRequest(request_items={"tbl": {"requests": [{"put_request": {}}]}})
    assert _invalid(build, empty_put).field == "request_items[tbl].requests[0].put_request.item"
    empty_delete = service_pb2.BatchWriteItemRequest(
        request_items={"tbl": {"requests": [{"delete_request": {}}]}}
    )
    assert _invalid(build, empty_delete).field == "request_items[tbl].requests[0].delete_request.key"
    bad_value = service_pb2.BatchWriteItemRequest(
        request_items={"tbl": {"requests": [{"put_request": {"item": {"aaa": _n("1E+126")}}}]}}
    )
    assert _invalid(build, bad_value).field == "request_items[tbl].requests[0].put_request.item.aaa"


# ---------------------------------------------------------------- transactions


def test_transact_get_items_request() -> None:
    request = service_pb2.TransactGetItemsRequest(
        transact_items=[
            service_pb2.TransactGetItem(get=service_pb2.Get(table_name="aaa", key=KEY)),
            service_pb2.TransactGetItem(
                get=service_pb2.Get(
                    table_name="bbb",
                    key={"id": _n("2")},
                    projection_expression="#n",
                    expression_attribute_names={"#n": "name"},
                )
            ),
        ],
        return_consumed_capacity=opt.RETURN_CONSUMED_CAPACITY_TOTAL,
    )
    assert codec.transact_get_items_request(request) == {
        "TransactItems": [
            {"Get": {"TableName": "aaa", "Key": WIRE_KEY}},
            {
                "Get": {
                    "TableName": "bbb",
                    "Key": {"id": {"N": "2"}},
                    "ProjectionExpression": "#n",
                    "ExpressionAttributeNames": {"#n": "name"},
                }
            },
        ],
        "ReturnConsumedCapacity": "TOTAL",
    }


def test_transact_get_items_rejections() -> None:
    build = codec.transact_get_items_request
    assert _invalid(build, service_pb2.TransactGetItemsRequest()).field == "transact_items"
    no_get = service_pb2.TransactGetItemsRequest(
        transact_items=[{"get": {"table_name": "aaa", "key": KEY}}, service_pb2.TransactGetItem()]
    )
    assert _invalid(build, no_get).field == "transact_items[1].get"
    no_table = service_pb2.TransactGetItemsRequest(transact_items=[{"get": {"key": KEY}}])
    assert _invalid(build, no_table).field == "transact_items[0].get.table_name"
    no_key = service_pb2.TransactGetItemsRequest(transact_items=[{"get": {"table_name": "aaa"}}])
    assert _invalid(build, no_key).field == "transact_items[0].get.key"


def test_transact_write_items_request() -> None:
    request = service_pb2.TransactWriteItemsRequest(
        transact_items=[
            service_pb2.TransactWriteItem(
                condition_check=service_pb2.ConditionCheck(
                    table_name="aaa",
                    key=KEY,
                    condition_expression="attribute_exists(pk)",
                    return_values_on_condition_check_failure=opt.RETURN_VALUES_ON_CONDITION_CHECK_FAILURE_ALL_OLD,
                )
            ),
            service_pb2.TransactWriteItem(
                put=service_pb2.Put(
                    table_name="bbb",
                    item={"id": _n("1")},
                    condition_expression="attribute_not_exists(id)",
                )
            ),
            service_pb2.TransactWriteItem(delete=service_pb2.Delete(table_name="ccc", key={"id": _s("x")})),
            service_pb2.TransactWriteItem(
                update=service_pb2.Update(
                    table_name="ddd",
                    key={"id": _s("y")},
                    update_expression="SET #n = :n",
                    condition_expression="#n <> :n",
                    expression_attribute_names={"#n": "n"},
                    expression_attribute_values={":n": _n("5")},
                )
            ),
        ],
        return_consumed_capacity=opt.RETURN_CONSUMED_CAPACITY_TOTAL,
        return_item_collection_metrics=opt.RETURN_ITEM_COLLECTION_METRICS_SIZE,
        client_request_token="token-123",
    )
    assert codec.transact_write_items_request(request) == {
        "TransactItems": [
            {
                "ConditionCheck": {
                    "TableName": "aaa",
                    "Key": WIRE_KEY,
                    "ConditionExpression": "attribute_exists(pk)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Put": {
                    "TableName": "bbb",
                    "Item": {"id": {"N": "1"}},
                    "ConditionExpression": "attribute_not_exists(id)",
                }
            },
            {"Delete": {"TableName": "ccc", "Key": {"id": {"S": "x"}}}},
            {
                "Update": {
                    "TableName": "ddd",
                    "Key": {"id": {"S": "y"}},
                    "UpdateExpression": "SET #n = :n",
                    "ConditionExpression": "#n <> :n",
                    "ExpressionAttributeNames": {"#n": "n"},
                    "ExpressionAttributeValues": {":n": {"N": "5"}},
                }
            },
        ],
        "ReturnConsumedCapacity": "TOTAL",
        "ReturnItemCollectionMetrics": "SIZE",
        "ClientRequestToken": "token-123",
    }


def test_transact_write_without_token_omits_it() -> None:
    request = service_pb2.TransactWriteItemsRequest(
        transact_items=[{"delete": {"table_name": "ccc", "key": KEY}}]
    )
    assert codec.transact_write_items_request(request) == {
        "TransactItems": [{"Delete": {"TableName": "ccc", "Key": WIRE_KEY}}]
    }


def test_transact_write_items_rejections() -> None:
    build = codec.transact_write_items_request
    assert _invalid(build, service_pb2.TransactWriteItemsRequest()).field == "transact_items"
    no_action = service_pb2.TransactWriteItemsRequest(
        transact_items=[{"delete": {"table_name": "ccc", "key": KEY}}, service_pb2.TransactWriteItem()]
    )
    error = _invalid(build, no_action)
    assert error.field == "transact_items[1]"
    assert error.description == (
        "1 validation error detected: TransactWriteItem must have one of ConditionCheck, Put, Update or Delete"
    )
    empty_put = service_pb2.TransactWriteItemsRequest(transact_items=[{"put": {"table_name": "bbb"}}])
    assert _invalid(build, empty_put).field == "transact_items[0].put.item"
    no_key = service_pb2.TransactWriteItemsRequest(transact_items=[{"update": {"table_name": "ddd"}}])
    assert _invalid(build, no_key).field == "transact_items[0].update.key"
    no_table = service_pb2.TransactWriteItemsRequest(transact_items=[{"condition_check": {"key": KEY}}])
    assert _invalid(build, no_table).field == "transact_items[0].condition_check.table_name"
    bad_enum = service_pb2.TransactWriteItemsRequest(
        transact_items=[
            {"delete": {"table_name": "ccc", "key": KEY, "return_values_on_condition_check_failure": 9}}
        ]
    )
    assert (
        _invalid(build, bad_enum).field == "transact_items[0].delete.return_values_on_condition_check_failure"
    )
    bad_value = service_pb2.TransactWriteItemsRequest(
        transact_items=[
            {
                "update": {
                    "table_name": "ddd",
                    "key": KEY,
                    "expression_attribute_values": {":v": {"null": False}},
                }
            }
        ]
    )
    assert _invalid(build, bad_value).field == "transact_items[0].update.expression_attribute_values.:v"


def test_describe_table_request() -> None:
    assert codec.describe_table_request(service_pb2.DescribeTableRequest(table_name="tbl")) == {
        "TableName": "tbl"
    }
    assert _invalid(codec.describe_table_request, service_pb2.DescribeTableRequest()).field == "table_name"


# ---------------------------------------------------------------- responses


def _py(item: Any) -> dict[str, Any]:
    """Attribute map -> {name: wire dict}, via the codec's own inverse (checked in test_codec_values)."""
    return codec.item_to_wire(item, "x")


def test_get_item_response_found() -> None:
    response = codec.get_item_response({"Item": {"pk": {"S": "a"}, "n": {"N": "1.5"}}})
    assert response.found is True
    assert response.item["pk"].s == "a"
    assert response.item["n"].n == "1.5"
    assert not response.HasField("consumed_capacity")


def test_get_item_response_not_found() -> None:
    response = codec.get_item_response({})
    assert response.found is False
    assert len(response.item) == 0


def test_get_item_response_found_with_empty_projection() -> None:
    response = codec.get_item_response({"Item": {}})
    assert response.found is True
    assert len(response.item) == 0


def test_consumed_capacity_with_table_and_indexes() -> None:
    response = codec.get_item_response(
        {
            "ConsumedCapacity": {
                "TableName": "tbl",
                "CapacityUnits": 3.5,
                "ReadCapacityUnits": 3.0,
                "Table": {"CapacityUnits": 1.5, "ReadCapacityUnits": 1.0},
                "GlobalSecondaryIndexes": {"gsi1": {"CapacityUnits": 1.0, "WriteCapacityUnits": 2.0}},
                "LocalSecondaryIndexes": {"lsi1": {"ReadCapacityUnits": 0.5}},
            }
        }
    )
    capacity = response.consumed_capacity
    assert response.HasField("consumed_capacity")
    assert capacity.table_name == "tbl"
    assert capacity.capacity_units == 3.5
    assert capacity.read_capacity_units == 3.0
    assert capacity.write_capacity_units == 0.0
    assert capacity.table == options_pb2.Capacity(capacity_units=1.5, read_capacity_units=1.0)
    assert dict(capacity.global_secondary_indexes) == {
        "gsi1": options_pb2.Capacity(capacity_units=1.0, write_capacity_units=2.0)
    }
    assert dict(capacity.local_secondary_indexes) == {"lsi1": options_pb2.Capacity(read_capacity_units=0.5)}


def test_write_responses_carry_attributes_capacity_and_metrics() -> None:
    wire = {
        "Attributes": {"pk": {"S": "a"}, "tags": {"SS": ["x", "y"]}},
        "ConsumedCapacity": {"TableName": "tbl", "CapacityUnits": 1.0},
        "ItemCollectionMetrics": {"ItemCollectionKey": {"pk": {"S": "a"}}, "SizeEstimateRangeGB": [0.0, 1.0]},
    }
    for build in (codec.put_item_response, codec.update_item_response, codec.delete_item_response):
        response = build(wire)
        assert _py(response.attributes) == wire["Attributes"]
        assert response.consumed_capacity.capacity_units == 1.0
        assert _py(response.item_collection_metrics.item_collection_key) == {"pk": {"S": "a"}}
        assert list(response.item_collection_metrics.size_estimate_range_gb) == [0.0, 1.0]
    bare = codec.put_item_response({})
    assert len(bare.attributes) == 0
    assert not bare.HasField("item_collection_metrics")
    assert not bare.HasField("consumed_capacity")


@pytest.mark.parametrize("build", [codec.query_response, codec.scan_response])
def test_query_and_scan_responses(build: Any) -> None:
    wire = {
        "Items": [{"pk": {"S": "a"}}, {"pk": {"S": "b"}, "l": {"L": []}}],
        "Count": 2,
        "ScannedCount": 5,
        "LastEvaluatedKey": {"pk": {"S": "b"}},
        "ConsumedCapacity": {"TableName": "tbl", "CapacityUnits": 0.5},
    }
    response = build(wire)
    assert [_py(item.attributes) for item in response.items] == wire["Items"]
    assert response.count == 2
    assert response.scanned_count == 5
    assert _py(response.last_evaluated_key) == {"pk": {"S": "b"}}
    assert response.consumed_capacity.capacity_units == 0.5
    last_page = build({"Items": [], "Count": 0, "ScannedCount": 0})
    assert len(last_page.items) == 0
    assert len(last_page.last_evaluated_key) == 0


def test_parallel_scan_response_segment_done() -> None:
    more = codec.parallel_scan_response(
        3,
        {
            "Items": [{"pk": {"S": "a"}}],
            "Count": 1,
            "ScannedCount": 1,
            "LastEvaluatedKey": {"pk": {"S": "a"}},
        },
    )
    assert more.segment == 3
    assert more.segment_done is False
    assert _py(more.last_evaluated_key) == {"pk": {"S": "a"}}
    assert more.count == 1
    done = codec.parallel_scan_response(7, {"Items": [], "Count": 0, "ScannedCount": 4})
    assert done.segment == 7
    assert done.segment_done is True
    assert done.scanned_count == 4


def test_batch_get_item_response_with_unprocessed_keys() -> None:
    wire = {
        "Responses": {"aaa": [{"pk": {"S": "1"}}], "b": []},
        "UnprocessedKeys": {
            "ccc": {
                "Keys": [{"id": {"N": "9"}}],
                "ConsistentRead": True,
                "ProjectionExpression": "#i",
                "ExpressionAttributeNames": {"#i": "id"},
            }
        },
        "ConsumedCapacity": [{"TableName": "aaa", "CapacityUnits": 1.0}, {"TableName": "ccc"}],
    }
    response = codec.batch_get_item_response(wire)
    assert [_py(i.attributes) for i in response.responses["aaa"].items] == [{"pk": {"S": "1"}}]
    assert "b" in response.responses
    assert len(response.responses["b"].items) == 0
    unprocessed = response.unprocessed_keys["ccc"]
    assert [_py(k.attributes) for k in unprocessed.keys] == [{"id": {"N": "9"}}]
    assert unprocessed.consistent_read is True
    assert unprocessed.projection_expression == "#i"
    assert dict(unprocessed.expression_attribute_names) == {"#i": "id"}
    assert [c.table_name for c in response.consumed_capacity] == ["aaa", "ccc"]
    # The unprocessed keys go straight back into a request.
    again = codec.batch_get_item_request(
        service_pb2.BatchGetItemRequest(request_items=dict(response.unprocessed_keys))
    )
    assert again == {"RequestItems": {"ccc": wire["UnprocessedKeys"]["ccc"]}}


def test_batch_write_item_response_with_unprocessed_items_and_metrics() -> None:
    wire = {
        "UnprocessedItems": {
            "tbl": [
                {"PutRequest": {"Item": {"pk": {"S": "a"}, "v": {"N": "1"}}}},
                {"DeleteRequest": {"Key": {"pk": {"S": "b"}}}},
            ]
        },
        "ItemCollectionMetrics": {
            "tbl": [{"ItemCollectionKey": {"pk": {"S": "a"}}, "SizeEstimateRangeGB": [1.0, 2.0]}]
        },
        "ConsumedCapacity": [{"TableName": "tbl", "WriteCapacityUnits": 2.0}],
    }
    response = codec.batch_write_item_response(wire)
    writes = response.unprocessed_items["tbl"].requests
    assert [w.WhichOneof("request") for w in writes] == ["put_request", "delete_request"]
    assert _py(writes[0].put_request.item) == {"pk": {"S": "a"}, "v": {"N": "1"}}
    assert _py(writes[1].delete_request.key) == {"pk": {"S": "b"}}
    (metrics,) = response.item_collection_metrics["tbl"].metrics
    assert _py(metrics.item_collection_key) == {"pk": {"S": "a"}}
    assert list(metrics.size_estimate_range_gb) == [1.0, 2.0]
    assert response.consumed_capacity[0].write_capacity_units == 2.0
    # Unprocessed items can be resent as they are.
    resend = codec.batch_write_item_request(
        service_pb2.BatchWriteItemRequest(request_items=dict(response.unprocessed_items))
    )
    assert resend == {"RequestItems": wire["UnprocessedItems"]}


def test_transact_get_items_response_with_a_missing_item() -> None:
    wire = {
        "Responses": [{"Item": {"pk": {"S": "a"}}}, {}, {"Item": {}}],
        "ConsumedCapacity": [{"TableName": "tbl", "ReadCapacityUnits": 4.0}],
    }
    response = codec.transact_get_items_response(wire)
    assert [r.found for r in response.responses] == [True, False, True]
    assert _py(response.responses[0].item) == {"pk": {"S": "a"}}
    assert len(response.responses[1].item) == 0
    assert len(response.responses[2].item) == 0
    assert response.consumed_capacity[0].read_capacity_units == 4.0


def test_transact_write_items_response() -> None:
    response = codec.transact_write_items_response(
        {
            "ConsumedCapacity": [{"TableName": "a", "CapacityUnits": 2.0}, {"TableName": "b"}],
            "ItemCollectionMetrics": {"a": [{"ItemCollectionKey": {"pk": {"S": "x"}}}]},
        }
    )
    assert [c.table_name for c in response.consumed_capacity] == ["a", "b"]
    assert _py(response.item_collection_metrics["a"].metrics[0].item_collection_key) == {"pk": {"S": "x"}}


def _table_wire(created: Any) -> dict[str, Any]:
    return {
        "TableName": "app",
        "TableArn": "arn:aws:dynamodb:us-east-1:123:table/app",
        "TableStatus": "ACTIVE",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "N"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "gsi1",
                "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["a", "b"]},
                "IndexStatus": "ACTIVE",
                "ItemCount": 4,
                "IndexSizeBytes": 100,
                "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0},
            }
        ],
        "LocalSecondaryIndexes": [
            {
                "IndexName": "lsi1",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 6},
        "ItemCount": 10,
        "TableSizeBytes": 2048,
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "LatestStreamArn": "arn:stream",
        "CreationDateTime": created,
    }


def test_describe_table_response() -> None:
    created = datetime.datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=datetime.UTC)
    response = codec.describe_table_response(
        _table_wire(created), {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    )
    T = table_pb2
    expected = T.TableDescription(
        table_name="app",
        table_arn="arn:aws:dynamodb:us-east-1:123:table/app",
        table_status="ACTIVE",
        attribute_definitions=[
            T.AttributeDefinition(attribute_name="pk", attribute_type=T.SCALAR_ATTRIBUTE_TYPE_S),
            T.AttributeDefinition(attribute_name="created_at", attribute_type=T.SCALAR_ATTRIBUTE_TYPE_N),
        ],
        key_schema=[
            T.KeySchemaElement(attribute_name="pk", key_type=T.KEY_TYPE_HASH),
            T.KeySchemaElement(attribute_name="sk", key_type=T.KEY_TYPE_RANGE),
        ],
        global_secondary_indexes=[
            T.SecondaryIndex(
                index_name="gsi1",
                key_schema=[T.KeySchemaElement(attribute_name="gsi1pk", key_type=T.KEY_TYPE_HASH)],
                projection=T.Projection(
                    projection_type=T.PROJECTION_TYPE_INCLUDE, non_key_attributes=["a", "b"]
                ),
                index_status="ACTIVE",
                item_count=4,
                index_size_bytes=100,
                provisioned_throughput=T.ProvisionedThroughput(),
            )
        ],
        local_secondary_indexes=[
            T.SecondaryIndex(
                index_name="lsi1",
                key_schema=[
                    T.KeySchemaElement(attribute_name="pk", key_type=T.KEY_TYPE_HASH),
                    T.KeySchemaElement(attribute_name="created_at", key_type=T.KEY_TYPE_RANGE),
                ],
                projection=T.Projection(projection_type=T.PROJECTION_TYPE_KEYS_ONLY),
            )
        ],
        billing_mode="PAY_PER_REQUEST",
        provisioned_throughput=T.ProvisionedThroughput(read_capacity_units=5, write_capacity_units=6),
        item_count=10,
        table_size_bytes=2048,
        time_to_live=T.TimeToLive(status="ENABLED", attribute_name="expires_at"),
        stream_specification=T.StreamSpecification(
            stream_enabled=True, stream_view_type="NEW_AND_OLD_IMAGES", latest_stream_arn="arn:stream"
        ),
        creation_date_time=1714979289.5,
    )
    assert response.table == expected


def test_describe_table_response_minimal() -> None:
    response = codec.describe_table_response({"TableName": "tbl", "CreationDateTime": 12.25}, None)
    table = response.table
    assert table.table_name == "tbl"
    assert table.billing_mode == "PROVISIONED"
    assert table.creation_date_time == 12.25
    assert table.stream_specification.stream_enabled is False
    assert not table.HasField("time_to_live")
    assert len(table.global_secondary_indexes) == 0
