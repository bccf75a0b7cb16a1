"""boto3's request and response dicts <-> the gateway's protobuf messages, per operation.

Requests arrive already checked by botocore's validator (types, required members,
lengths), or with parameter_validation=False by _unvalidated, in DynamoDB's words.
What the proto3 contracts cannot carry (an empty expression is the same as none,
Segment 0 the same as no Segment) and DynamoDB's limits on batches are refused here
with DynamoDB's own ValidationException message (dynamo_gateway.dynamodb_messages),
so the caller sees what boto3 would have shown. Legacy parameters (AttributesToGet,
KeyConditions, Expected, ...) never get here: _legacy translates them into
expressions first. Pure: no I/O, no grpc.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dynamo_gateway.v1 import options_pb2, service_pb2, table_pb2

from .. import dynamodb_messages as messages
from .. import wire
from . import _checks, _model
from ._failures import LocalValidationError, UnsupportedOperationError

Params = Mapping[str, Any]

# The largest batches DynamoDB takes in one call (the gateway splits larger ones).
MAX_BATCH_WRITES = messages.MAX_BATCH_WRITES
MAX_BATCH_KEYS = messages.MAX_BATCH_KEYS


# boto3 parameter -> (proto enum, prefix of its value names, the values in the order
# DynamoDB lists them when it refuses another).
_ENUMS: dict[str, tuple[Any, str, tuple[str, ...]]] = {
    "ReturnValues": (
        options_pb2.ReturnValue,
        "RETURN_VALUE_",
        ("ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW"),
    ),
    "ReturnConsumedCapacity": (
        options_pb2.ReturnConsumedCapacity,
        "RETURN_CONSUMED_CAPACITY_",
        ("INDEXES", "TOTAL", "NONE"),
    ),
    "ReturnItemCollectionMetrics": (
        options_pb2.ReturnItemCollectionMetrics,
        "RETURN_ITEM_COLLECTION_METRICS_",
        ("SIZE", "NONE"),
    ),
    "ReturnValuesOnConditionCheckFailure": (
        options_pb2.ReturnValuesOnConditionCheckFailure,
        "RETURN_VALUES_ON_CONDITION_CHECK_FAILURE_",
        ("ALL_OLD", "NONE"),
    ),
    "Select": (
        options_pb2.Select,
        "SELECT_",
        ("SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES"),
    ),
}

_EXPRESSIONS = (
    "ProjectionExpression",
    "ConditionExpression",
    "UpdateExpression",
    "KeyConditionExpression",
    "FilterExpression",
)

# boto3 parameter -> proto field, for the ones copied as they are.
_SCALARS = {
    "TableName": "table_name",
    "IndexName": "index_name",
    "ConsistentRead": "consistent_read",
    "Limit": "limit",
    "ScanIndexForward": "scan_index_forward",
    "Segment": "segment",
    "TotalSegments": "total_segments",
    "ClientRequestToken": "client_request_token",
    "ProjectionExpression": "projection_expression",
    "ConditionExpression": "condition_expression",
    "UpdateExpression": "update_expression",
    "KeyConditionExpression": "key_condition_expression",
    "FilterExpression": "filter_expression",
}
_ITEMS = {
    "Key": "key",
    "Item": "item",
    "ExclusiveStartKey": "exclusive_start_key",
    "ExpressionAttributeValues": "expression_attribute_values",
}


def _camel(name: str) -> str:
    return messages.camel(name)


# Where an empty set is enveloped in some operations (dynamodb_messages.ENVELOPED).
_EMPTY_SET_FAMILIES = {"Item": "empty_set_in_item", "ExpressionAttributeValues": "empty_set_in_values"}


def _values(target: Any, values: Mapping[str, Any], family: str | None = None) -> None:
    """`family`: the envelope family of an empty set among these values (see _checks.value)."""
    _checks.item(values, family)
    try:
        wire.fill_item(target, values)
    except wire.WireValueError as error:
        raise LocalValidationError(str(error)) from None


def _fill(message: Any, params: Params, path: str = "") -> None:
    """Copies boto3 parameters into the proto message of the same meaning."""
    for name, value in params.items():
        # Inside a transaction's action (path set), DynamoDB words these refusals bare.
        top = not path
        if name in _EXPRESSIONS and value == "":
            family = "empty_update_expression" if top and name == "UpdateExpression" else None
            raise LocalValidationError(messages.empty_expression(name), family=family)
        if name == "TableName" and top:
            _checks.table_name(value)
        if name in _SCALARS:
            setattr(message, _SCALARS[name], value)
        elif name in _ITEMS:
            if name == "Key" and not value:
                raise LocalValidationError(messages.KEY_MISMATCH)
            if name == "ExpressionAttributeValues" and not value:
                raise LocalValidationError(messages.EMPTY_VALUES, family="empty_values" if top else None)
            _values(getattr(message, _ITEMS[name]), value, _EMPTY_SET_FAMILIES.get(name) if top else None)
        elif name == "ExpressionAttributeNames":
            if not value:
                raise LocalValidationError(messages.EMPTY_NAMES)
            message.expression_attribute_names.update(value)
        elif name in _ENUMS:
            enum, prefix, allowed = _ENUMS[name]
            if value not in allowed:
                raise LocalValidationError(
                    messages.validation_errors(
                        [messages.constraint(_camel(path + name), messages.enum(allowed), value)]
                    )
                )
            setattr(message, _snake(name), enum.Value(prefix + value))
        else:
            raise UnsupportedOperationError(f"{path}{name} is not served by the gateway")


def _snake(name: str) -> str:
    from botocore import xform_name

    return xform_name(name)


def _check_segments(params: Params) -> None:
    segment, total = params.get("Segment"), params.get("TotalSegments")
    if segment is not None and total is None:
        raise LocalValidationError(messages.SEGMENT_WITHOUT_TOTAL)
    if total is not None and segment is None:
        raise LocalValidationError(messages.TOTAL_WITHOUT_SEGMENT)
    if segment is not None and total is not None and segment >= total:
        raise LocalValidationError(messages.segment_not_below_total(segment, total))


# ---------------------------------------------------------------- requests


def _filled(message_type: Callable[[], Any]) -> Callable[[Params], Any]:
    """The builder of a request whose fields are boto3's parameters by name alone, nothing to check first."""

    def build(params: Params) -> Any:
        request = message_type()
        _fill(request, params)
        return request

    return build


get_item = _filled(service_pb2.GetItemRequest)
put_item = _filled(service_pb2.PutItemRequest)
update_item = _filled(service_pb2.UpdateItemRequest)
delete_item = _filled(service_pb2.DeleteItemRequest)


def query(params: Params) -> service_pb2.QueryRequest:
    if "KeyConditionExpression" not in params and "KeyConditions" not in params:
        raise LocalValidationError(messages.KEY_CONDITION_REQUIRED)
    request = service_pb2.QueryRequest()
    _fill(request, params)
    return request


def scan(params: Params) -> service_pb2.ScanRequest:
    _check_segments(params)
    request = service_pb2.ScanRequest()
    _fill(request, params)
    return request


def _check_batch(operation: str, per_table: Mapping[str, int], *, limits: bool) -> None:
    """DynamoDB's refusals of a batch's size, before any key or write: no tables, a table with no
    entries or (with `limits`) more than DynamoDB takes, and then more than it takes in all. (Table
    names it cannot have are the gateway's to refuse, in the same words.)"""
    if not per_table:
        raise LocalValidationError(messages.request_items_required(operation))
    most = MAX_BATCH_WRITES if operation == "BatchWriteItem" else MAX_BATCH_KEYS
    for table, count in per_table.items():
        if operation == "BatchWriteItem" and (count == 0 or (limits and count > most)):
            quoted = messages.request_items(operation, per_table.items())
            raise LocalValidationError(messages.batch_write_lists(quoted))
        if operation == "BatchGetItem" and limits and count > most:
            raise LocalValidationError(messages.batch_get_keys(table))
    if limits and sum(per_table.values()) > most:
        raise LocalValidationError(messages.too_many_requested(operation))


def batch_get_item(params: Params, *, limits: bool) -> service_pb2.BatchGetItemRequest:
    request = service_pb2.BatchGetItemRequest()
    items = params["RequestItems"]
    _check_batch("BatchGetItem", {t: len(spec.get("Keys", ())) for t, spec in items.items()}, limits=limits)
    for table, spec in items.items():
        entry = request.request_items[table]
        for key in spec["Keys"]:
            _values(entry.keys.add().attributes, key)
        _fill(entry, {k: v for k, v in spec.items() if k != "Keys"}, f"RequestItems.{table}.")
    _fill(request, {k: v for k, v in params.items() if k != "RequestItems"})
    return request


def batch_write_item(params: Params, *, limits: bool) -> service_pb2.BatchWriteItemRequest:
    request = service_pb2.BatchWriteItemRequest()
    items = params["RequestItems"]
    _check_batch("BatchWriteItem", {t: len(w) for t, w in items.items()}, limits=limits)
    for table, table_writes in items.items():
        target = request.request_items[table]
        for write in table_writes:
            entry = target.requests.add()
            if len(write) != 1:
                raise LocalValidationError(messages.TWO_TYPES if write else messages.WRITE_REQUEST_EMPTY)
            if "PutRequest" in write:
                _values(entry.put_request.item, write["PutRequest"]["Item"])
                entry.put_request.SetInParent()
            else:
                _values(entry.delete_request.key, write["DeleteRequest"]["Key"])
                entry.delete_request.SetInParent()
    _fill(request, {k: v for k, v in params.items() if k != "RequestItems"})
    return request


def transact_get_items(params: Params) -> service_pb2.TransactGetItemsRequest:
    request = service_pb2.TransactGetItemsRequest()
    for index, entry in enumerate(params["TransactItems"]):
        _fill(request.transact_items.add().get, entry["Get"], f"TransactItems.{index + 1}.member.get.")
    _fill(request, {k: v for k, v in params.items() if k != "TransactItems"})
    return request


_ACTIONS = {"ConditionCheck": "condition_check", "Put": "put", "Delete": "delete", "Update": "update"}


def transact_write_items(params: Params) -> service_pb2.TransactWriteItemsRequest:
    request = service_pb2.TransactWriteItemsRequest()
    for index, entry in enumerate(params["TransactItems"]):
        actions = [name for name in _ACTIONS if name in entry]
        if len(actions) != 1:
            raise LocalValidationError(
                messages.TRANSACT_ITEM_TWO_ACTIONS if actions else messages.TRANSACT_ITEM_EMPTY
            )
        name = actions[0]
        target = getattr(request.transact_items.add(), _ACTIONS[name])
        _fill(target, entry[name], f"TransactItems.{index + 1}.member.{_camel(name)}.")
    _fill(request, {k: v for k, v in params.items() if k != "TransactItems"})
    return request


describe_table = _filled(service_pb2.DescribeTableRequest)


# ---------------------------------------------------------------- responses


def _capacity(capacity: options_pb2.Capacity | options_pb2.ConsumedCapacity) -> dict[str, float]:
    out = {"CapacityUnits": capacity.capacity_units}
    if capacity.read_capacity_units:
        out["ReadCapacityUnits"] = capacity.read_capacity_units
    if capacity.write_capacity_units:
        out["WriteCapacityUnits"] = capacity.write_capacity_units
    return out


def consumed_capacity(capacity: options_pb2.ConsumedCapacity) -> dict[str, Any]:
    # proto3 doubles have no presence: units DynamoDB did not send arrive as 0 and are left out.
    out: dict[str, Any] = {"TableName": capacity.table_name, **_capacity(capacity)}
    if capacity.HasField("table"):
        out["Table"] = _capacity(capacity.table)
    if capacity.local_secondary_indexes:
        out["LocalSecondaryIndexes"] = {
            name: _capacity(c) for name, c in capacity.local_secondary_indexes.items()
        }
    if capacity.global_secondary_indexes:
        out["GlobalSecondaryIndexes"] = {
            name: _capacity(c) for name, c in capacity.global_secondary_indexes.items()
        }
    return out


def _metrics(metrics: options_pb2.ItemCollectionMetrics) -> dict[str, Any]:
    return {
        "ItemCollectionKey": wire.item_to_wire(metrics.item_collection_key),
        "SizeEstimateRangeGB": list(metrics.size_estimate_range_gb),
    }


def _with_capacity(out: dict[str, Any], response: Any) -> dict[str, Any]:
    if response.HasField("consumed_capacity"):
        out["ConsumedCapacity"] = consumed_capacity(response.consumed_capacity)
    return out


def _asked(params: Params, name: str, values: tuple[str, ...]) -> bool:
    return params.get(name) in values


def _request_tables(params: Params) -> list[str]:
    if "RequestItems" in params:
        return list(params["RequestItems"])
    tables = []
    for entry in params.get("TransactItems", ()):
        for action in entry.values():
            if action.get("TableName") not in tables:
                tables.append(action.get("TableName"))
    return tables


def _capacity_list(out: dict[str, Any], response: Any, params: Params) -> dict[str, Any]:
    # DynamoDB answers with the key whenever capacity was asked for; the gateway sends none otherwise.
    if _asked(params, "ReturnConsumedCapacity", ("TOTAL", "INDEXES")) or len(response.consumed_capacity):
        # One entry per table, in the order the request named them (protobuf maps have no order).
        order = {table: index for index, table in enumerate(_request_tables(params))}
        entries = sorted(response.consumed_capacity, key=lambda c: order.get(c.table_name, len(order)))
        out["ConsumedCapacity"] = [consumed_capacity(c) for c in entries]
    return out


def _metrics_by_table(out: dict[str, Any], response: Any, params: Params) -> dict[str, Any]:
    # DynamoDB sends metrics only for tables with a local index; none at all leaves the key out.
    if response.item_collection_metrics:
        out["ItemCollectionMetrics"] = {
            table: [_metrics(m) for m in entry.metrics]
            for table, entry in response.item_collection_metrics.items()
        }
    return out


def get_item_response(response: service_pb2.GetItemResponse, params: Params) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if response.found:
        out["Item"] = wire.item_to_wire(response.item)
    return _with_capacity(out, response)


def write_response(response: Any, params: Params) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if response.attributes:
        out["Attributes"] = wire.item_to_wire(response.attributes)
    _with_capacity(out, response)
    if response.HasField("item_collection_metrics"):
        out["ItemCollectionMetrics"] = _metrics(response.item_collection_metrics)
    return out


def page_response(response: Any, params: Params) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # DynamoDB sends no Items at all when only counting.
    if params.get("Select") != "COUNT":
        out["Items"] = [wire.item_to_wire(i.attributes) for i in response.items]
    out["Count"] = response.count
    out["ScannedCount"] = response.scanned_count
    if response.last_evaluated_key:
        out["LastEvaluatedKey"] = wire.item_to_wire(response.last_evaluated_key)
    return _with_capacity(out, response)


def _keys_and_attributes(entry: service_pb2.KeysAndAttributes) -> dict[str, Any]:
    out: dict[str, Any] = {"Keys": [wire.item_to_wire(k.attributes) for k in entry.keys]}
    if entry.consistent_read:
        out["ConsistentRead"] = True
    if entry.projection_expression:
        out["ProjectionExpression"] = entry.projection_expression
    if entry.expression_attribute_names:
        out["ExpressionAttributeNames"] = dict(entry.expression_attribute_names)
    return out


def batch_get_item_response(response: service_pb2.BatchGetItemResponse, params: Params) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Responses": {
            table: [wire.item_to_wire(i.attributes) for i in items.items]
            for table, items in response.responses.items()
        },
        "UnprocessedKeys": {
            table: _keys_and_attributes(entry) for table, entry in response.unprocessed_keys.items()
        },
    }
    return _capacity_list(out, response, params)


def batch_write_item_response(response: service_pb2.BatchWriteItemResponse, params: Params) -> dict[str, Any]:
    unprocessed: dict[str, list[dict[str, Any]]] = {}
    for table, writes in response.unprocessed_items.items():
        unprocessed[table] = [
            {"PutRequest": {"Item": wire.item_to_wire(w.put_request.item)}}
            if w.HasField("put_request")
            else {"DeleteRequest": {"Key": wire.item_to_wire(w.delete_request.key)}}
            for w in writes.requests
        ]
    out: dict[str, Any] = {"UnprocessedItems": unprocessed}
    _metrics_by_table(out, response, params)
    return _capacity_list(out, response, params)


def transact_get_items_response(
    response: service_pb2.TransactGetItemsResponse, params: Params
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Responses": [{"Item": wire.item_to_wire(r.item)} if r.found else {} for r in response.responses]
    }
    return _capacity_list(out, response, params)


def transact_write_items_response(
    response: service_pb2.TransactWriteItemsResponse, params: Params
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _capacity_list(out, response, params)
    return _metrics_by_table(out, response, params)


def _key_schema(elements: Any) -> list[dict[str, str]]:
    return [
        {
            "AttributeName": e.attribute_name,
            "KeyType": table_pb2.KeyType.Name(e.key_type).removeprefix("KEY_TYPE_"),
        }
        for e in elements
    ]


def _throughput(throughput: table_pb2.ProvisionedThroughput) -> dict[str, int]:
    return {
        "ReadCapacityUnits": throughput.read_capacity_units,
        "WriteCapacityUnits": throughput.write_capacity_units,
    }


def _index(index: table_pb2.SecondaryIndex, is_global: bool, billing_mode: str) -> dict[str, Any]:
    projection: dict[str, Any] = {
        "ProjectionType": table_pb2.ProjectionType.Name(index.projection.projection_type).removeprefix(
            "PROJECTION_TYPE_"
        )
    }
    if index.projection.non_key_attributes:
        projection["NonKeyAttributes"] = list(index.projection.non_key_attributes)
    out: dict[str, Any] = {
        "IndexName": index.index_name,
        "KeySchema": _key_schema(index.key_schema),
        "Projection": projection,
        "IndexSizeBytes": index.index_size_bytes,
        "ItemCount": index.item_count,
    }
    if is_global:
        out["IndexStatus"] = index.index_status
        if index.HasField("provisioned_throughput") and billing_mode == "PROVISIONED":
            out["ProvisionedThroughput"] = _throughput(index.provisioned_throughput)
    return out


def describe_table_response(response: service_pb2.DescribeTableResponse, params: Params) -> dict[str, Any]:
    """The part of DynamoDB's TableDescription the gateway's DescribeTable carries."""
    table = response.table
    description: dict[str, Any] = {
        "AttributeDefinitions": [
            {
                "AttributeName": d.attribute_name,
                "AttributeType": table_pb2.ScalarAttributeType.Name(d.attribute_type).removeprefix(
                    "SCALAR_ATTRIBUTE_TYPE_"
                ),
            }
            for d in table.attribute_definitions
        ],
        "TableName": table.table_name,
        "KeySchema": _key_schema(table.key_schema),
        "TableStatus": table.table_status,
        "TableSizeBytes": table.table_size_bytes,
        "ItemCount": table.item_count,
        "TableArn": table.table_arn,
    }
    if table.billing_mode == "PAY_PER_REQUEST":
        description["BillingModeSummary"] = {"BillingMode": "PAY_PER_REQUEST"}
    if table.HasField("provisioned_throughput"):
        description["ProvisionedThroughput"] = _throughput(table.provisioned_throughput)
    if table.local_secondary_indexes:
        description["LocalSecondaryIndexes"] = [
            _index(i, False, table.billing_mode) for i in table.local_secondary_indexes
        ]
    if table.global_secondary_indexes:
        description["GlobalSecondaryIndexes"] = [
            _index(i, True, table.billing_mode) for i in table.global_secondary_indexes
        ]
    if table.stream_specification.stream_enabled:
        description["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": table.stream_specification.stream_view_type,
        }
        description["LatestStreamArn"] = table.stream_specification.latest_stream_arn
    return {"Table": description}


# ---------------------------------------------------------------- the operations


@dataclass(frozen=True)
class Operation:
    """One data-plane operation: its DynamoDB name (also the gRPC method's) and translations."""

    name: str
    request: Callable[..., Any]
    response: Callable[[Any, Params], dict[str, Any]]
    # Whether the request builder takes DynamoDB's batch limits (limits=...).
    batch: bool = False


OPERATIONS: dict[str, Operation] = {
    "get_item": Operation("GetItem", get_item, get_item_response),
    "put_item": Operation("PutItem", put_item, write_response),
    "update_item": Operation("UpdateItem", update_item, write_response),
    "delete_item": Operation("DeleteItem", delete_item, write_response),
    "query": Operation("Query", query, page_response),
    "scan": Operation("Scan", scan, page_response),
    "batch_get_item": Operation("BatchGetItem", batch_get_item, batch_get_item_response, batch=True),
    "batch_write_item": Operation("BatchWriteItem", batch_write_item, batch_write_item_response, batch=True),
    "transact_get_items": Operation("TransactGetItems", transact_get_items, transact_get_items_response),
    "transact_write_items": Operation(
        "TransactWriteItems", transact_write_items, transact_write_items_response
    ),
    "describe_table": Operation("DescribeTable", describe_table, describe_table_response),
}

_INSTEAD = {
    "execute_statement": "PartiQL is not served; use get_item, put_item, update_item, delete_item or query",
    "batch_execute_statement": "PartiQL is not served; use batch_get_item or batch_write_item",
    "execute_transaction": "PartiQL is not served; use transact_get_items or transact_write_items",
    "create_table": "create tables with the gateway's --tables-file (see examples/tables.yaml) "
    "or with your infrastructure tooling against DynamoDB itself",
    "list_tables": "the gateway serves the tables it is configured for; describe_table tells about one",
    "describe_time_to_live": "describe_table's TimeToLive carries it through the gateway's DescribeTable RPC",
}


def unsupported_message(python_name: str) -> str:
    operation_name = _model.python_names().get(python_name, python_name)
    instead = _INSTEAD.get(
        python_name,
        "the gateway serves only DynamoDB's data plane (items, queries, scans, batches, transactions) "
        "and describe_table; manage tables with your infrastructure tooling against DynamoDB itself",
    )
    return f"{operation_name} is not served by dynamo-gateway: {instead}"
