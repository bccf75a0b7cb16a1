"""Pure conversion between our protobuf messages and DynamoDB's request/response shapes.

Owns: validating what a caller sent (raising InvalidRequestError that names the
field, in DynamoDB's own words where DynamoDB refuses the same request:
dynamo_gateway.dynamodb_messages) and building the parameter dicts DynamoDB's API takes, then turning
DynamoDB's response dicts back into protobuf. The dicts use botocore's shapes:
attribute values as {"S": str}, {"N": str}, {"B": bytes}, ...

Must not import gRPC, the backends or anything that does I/O.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from dynamo_gateway import dynamodb_messages as messages
from dynamo_gateway.v1 import options_pb2, service_pb2, table_pb2, value_pb2

if TYPE_CHECKING:
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper

    # Any: each generated enum's values are a NewType of int of its own.
    _ProtoEnum = _EnumTypeWrapper[Any]

Wire = dict[str, Any]

# The responses that share a shape, so one filler serves each family.
_WriteResponse = TypeVar(
    "_WriteResponse",
    service_pb2.PutItemResponse,
    service_pb2.UpdateItemResponse,
    service_pb2.DeleteItemResponse,
)
_PageResponse = TypeVar(
    "_PageResponse",
    service_pb2.QueryResponse,
    service_pb2.ScanResponse,
    service_pb2.ParallelScanResponse,
)

MAX_PARALLEL_SCAN_SEGMENTS = 1_000_000
# ASCII digits only: \d would also accept other scripts' digits, which DynamoDB does not.
_NUMBER_SYNTAX = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_MAX_NUMBER_DIGITS = 38
_MIN_NUMBER_EXPONENT = -130
_MAX_NUMBER_EXPONENT = 125


_TYPE_MISMATCH = "Validation.TypeMismatch"
_MISSING_KEY = "Validation.MissingRequiredKey"


class InvalidRequestError(ValueError):
    """A request the gateway rejects before it reaches DynamoDB."""

    def __init__(
        self,
        field: str,
        description: str,
        reason: str = "Validation.InvalidParameter",
        *,
        dynamodb_message: str = "",
    ) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description
        # The error taxonomy leaf (dynamo_gateway.taxonomy) this mistake belongs to.
        self.reason = reason
        # DynamoDB's own words when DynamoDB refuses the same request (dynamodb_messages): ErrorInfo
        # carries them as metadata "dynamodb_message", which the boto3 facade shows as the Message.
        self.dynamodb_message = dynamodb_message


def refused(
    field: str, dynamodb_message: str, reason: str = "Validation.InvalidParameter"
) -> InvalidRequestError:
    """A refusal DynamoDB makes too, described in DynamoDB's words (the field says where)."""
    return InvalidRequestError(field, dynamodb_message, reason, dynamodb_message=dynamodb_message)


# ---------------------------------------------------------------- values: proto -> wire


def check_number(text: str, field: str) -> str:
    """Returns text unchanged if DynamoDB can store it as a number, else raises."""
    if not _NUMBER_SYNTAX.fullmatch(text):
        raise refused(field, messages.not_a_number(text), _TYPE_MISMATCH)
    if len(text) <= _MAX_NUMBER_DIGITS and "e" not in text and "E" not in text:
        # Without an exponent, 38 characters hold at most 38 digits and stay far inside the
        # exponent range: valid, without the Decimal (most numbers, on every request).
        return text
    number = Decimal(text)
    if number.is_zero():
        return text
    # DynamoDB's order: the magnitude, then the digits.
    exponent = number.adjusted()
    if exponent > _MAX_NUMBER_EXPONENT:
        raise refused(field, messages.NUMBER_OVERFLOW, _TYPE_MISMATCH)
    if exponent < _MIN_NUMBER_EXPONENT:
        raise refused(field, messages.NUMBER_UNDERFLOW, _TYPE_MISMATCH)
    significant = "".join(map(str, number.as_tuple().digits)).strip("0")
    if len(significant) > _MAX_NUMBER_DIGITS:
        raise refused(field, messages.NUMBER_TOO_PRECISE, _TYPE_MISMATCH)
    return text


def _check_set(values: Sequence[Any], field: str, kind: str, identity: Callable[[Any], Any]) -> None:
    """`kind`: SS, NS or BS."""
    if not values:
        raise refused(field, messages.EMPTY_SETS[kind], _TYPE_MISMATCH)
    seen = set()
    for value in values:
        key = identity(value)
        if key in seen:
            if kind == "SS":
                raise refused(field, messages.string_set_duplicates(values))
            if kind == "NS":
                raise refused(field, messages.NUMBER_SET_DUPLICATES)
            # DynamoDB quotes binary members as the base64 text it read.
            raise refused(field, messages.binary_set_duplicates(base64.b64encode(v).decode() for v in values))
        seen.add(key)


def value_to_wire(value: value_pb2.AttributeValue, field: str) -> Wire:
    kind = value.WhichOneof("value")
    if kind == "s":
        return {"S": value.s}
    if kind == "n":
        return {"N": check_number(value.n, field)}
    if kind == "b":
        return {"B": value.b}
    if kind == "m":
        return {"M": item_to_wire(value.m.fields, field)}
    if kind == "l":
        return {"L": [value_to_wire(v, f"{field}[{i}]") for i, v in enumerate(value.l.values)]}
    if kind == "bool":
        return {"BOOL": value.bool}
    if kind == "null":
        if not value.null:
            raise refused(field, messages.NULL_NOT_TRUE, _TYPE_MISMATCH)
        return {"NULL": True}
    if kind == "ss":
        _check_set(value.ss.values, field, "SS", lambda v: v)
        return {"SS": list(value.ss.values)}
    if kind == "ns":
        numbers = [check_number(v, f"{field}[{i}]") for i, v in enumerate(value.ns.values)]
        _check_set(numbers, field, "NS", Decimal)
        return {"NS": numbers}
    if kind == "bs":
        _check_set(value.bs.values, field, "BS", lambda v: v)
        return {"BS": list(value.bs.values)}
    raise refused(field, messages.EMPTY_VALUE, _TYPE_MISMATCH)


def item_to_wire(item: Mapping[str, value_pb2.AttributeValue], field: str) -> Wire:
    wire: Wire = {}
    # By key, not .items(): a protobuf map's items() is a generic view yielding pairs in Python.
    for name in item:
        value = item[name]
        # Strings need no check, so they skip building the field path, which only errors name.
        wire[name] = (
            {"S": value.s} if value.WhichOneof("value") == "s" else value_to_wire(value, f"{field}.{name}")
        )
    return wire


def _key_to_wire(key: Mapping[str, value_pb2.AttributeValue], field: str) -> Wire:
    if not key:
        raise refused(field, messages.KEY_MISMATCH, _MISSING_KEY)
    return item_to_wire(key, field)


# ---------------------------------------------------------------- values: wire -> proto


def fill_value(target: value_pb2.AttributeValue, wire: Mapping[str, Any]) -> None:
    """Writes a DynamoDB attribute value into target, in place (no intermediate copies)."""
    ((tag, data),) = wire.items()
    if tag == "S":
        target.s = data
    elif tag == "N":
        target.n = data
    elif tag == "B":
        target.b = data
    elif tag == "M":
        target.m.SetInParent()  # an empty map is still a map
        fill_item(target.m.fields, data)
    elif tag == "L":
        target.l.SetInParent()
        for element in data:
            fill_value(target.l.values.add(), element)
    elif tag == "BOOL":
        target.bool = data
    elif tag == "NULL":
        target.null = True
    elif tag == "SS":
        target.ss.values.extend(data)
    elif tag == "NS":
        target.ns.values.extend(data)
    elif tag == "BS":
        target.bs.values.extend(data)
    else:
        raise ValueError(f"unknown DynamoDB attribute type {tag!r}")


def fill_item(target: MutableMapping[str, value_pb2.AttributeValue], wire: Mapping[str, Any]) -> None:
    for name, value in wire.items():
        # Strings and numbers are most values of most items: set here, without a call per value
        # (a fifth less CPU for a page of items); fill_value checks everything else.
        if len(value) == 1:
            if "S" in value:
                target[name].s = value["S"]
                continue
            if "N" in value:
                target[name].n = value["N"]
                continue
        fill_value(target[name], value)


def _fill_items(target: Any, wire_items: Iterable[Mapping[str, Any]]) -> None:
    for wire_item in wire_items:
        fill_item(target.add().attributes, wire_item)


# ---------------------------------------------------------------- enums and shared fields


def _enum_name(value: int, enum: _ProtoEnum, prefix: str, field: str) -> str | None:
    """DynamoDB's spelling of an enum value, or None for UNSPECIFIED (DynamoDB's default)."""
    if value == 0:
        return None
    try:
        return enum.Name(value).removeprefix(prefix)
    except ValueError:
        raise InvalidRequestError(field, f"{value} is not a valid {enum.DESCRIPTOR.name}") from None


def _set_enum(params: Wire, param: str, value: int, enum: _ProtoEnum, prefix: str, field: str) -> None:
    name = _enum_name(value, enum, prefix, field)
    if name is not None:
        params[param] = name


def _set_if(params: Wire, param: str, value: Any) -> None:
    if value:
        params[param] = value


# DynamoDB's table naming rule; an ARN (arn:...:table/NAME) names a table too.
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}|arn:[^:]+:dynamodb:[^:]*:[0-9]*:table/[A-Za-z0-9_.-]{3,255}")


def _table_name(name: str, field: str = "table_name", path: str = "tableName") -> str:
    """`path`: the member as DynamoDB names it in its refusal (in a transaction,
    "transactItems.1.member.put.tableName")."""
    if not _TABLE_NAME.fullmatch(name):
        # Checked here because emulators differ (moto accepts any name); DynamoDB does not.
        raise refused(field, messages.table_name(name, path) or "", "Configuration.InvalidTable")
    return name


def _batch_table_names(operation: str, counts: list[tuple[str, int]]) -> None:
    """DynamoDB refuses a batch naming a table it cannot have with one message quoting all of RequestItems."""
    if not counts:
        raise refused("request_items", messages.request_items_required(operation))
    for table, _ in counts:
        if not _TABLE_NAME.fullmatch(table):
            message = messages.batch_table_names(messages.request_items(operation, counts))
            raise refused(f"request_items[{table}]", message, "Configuration.InvalidTable")


def _set_expressions(params: Wire, request: Any, field: str, **expressions: str) -> None:
    """Copies the named expression fields and their attribute names/values, when set."""
    for param, attribute in expressions.items():
        _set_if(params, param, getattr(request, attribute))
    if request.expression_attribute_names:
        params["ExpressionAttributeNames"] = dict(request.expression_attribute_names)
    # Some requests (GetItem's) have no values: the descriptor says so cheaply, a failed getattr does not.
    if "expression_attribute_values" in request.DESCRIPTOR.fields_by_name:
        values = request.expression_attribute_values
        if values:
            params["ExpressionAttributeValues"] = item_to_wire(values, f"{field}expression_attribute_values")


def _set_return_consumed_capacity(params: Wire, value: int, field: str = "return_consumed_capacity") -> None:
    _set_enum(
        params,
        "ReturnConsumedCapacity",
        value,
        options_pb2.ReturnConsumedCapacity,
        "RETURN_CONSUMED_CAPACITY_",
        field,
    )


def _set_return_item_collection_metrics(params: Wire, value: int) -> None:
    _set_enum(
        params,
        "ReturnItemCollectionMetrics",
        value,
        options_pb2.ReturnItemCollectionMetrics,
        "RETURN_ITEM_COLLECTION_METRICS_",
        "return_item_collection_metrics",
    )


def _set_return_values(params: Wire, value: int) -> None:
    _set_enum(params, "ReturnValues", value, options_pb2.ReturnValue, "RETURN_VALUE_", "return_values")


def _set_rvoccf(params: Wire, value: int, field: str) -> None:
    _set_enum(
        params,
        "ReturnValuesOnConditionCheckFailure",
        value,
        options_pb2.ReturnValuesOnConditionCheckFailure,
        "RETURN_VALUES_ON_CONDITION_CHECK_FAILURE_",
        f"{field}return_values_on_condition_check_failure",
    )


def _set_select(params: Wire, value: int) -> None:
    _set_enum(params, "Select", value, options_pb2.Select, "SELECT_", "select")


def _set_limit(params: Wire, param: str, value: int, field: str) -> None:
    if value < 0:  # 0 is no limit: the proto cannot tell it from none
        raise refused(field, messages.below_minimum("limit", value, 1))
    if value:
        params[param] = value


def _set_start_key(params: Wire, key: Mapping[str, value_pb2.AttributeValue], field: str) -> None:
    if key:
        params["ExclusiveStartKey"] = item_to_wire(key, field)


# ---------------------------------------------------------------- shared response fields


def fill_capacity(target: options_pb2.Capacity, wire: Mapping[str, Any]) -> None:
    target.capacity_units = wire.get("CapacityUnits", 0.0)
    target.read_capacity_units = wire.get("ReadCapacityUnits", 0.0)
    target.write_capacity_units = wire.get("WriteCapacityUnits", 0.0)


def fill_consumed_capacity(target: options_pb2.ConsumedCapacity, wire: Mapping[str, Any]) -> None:
    target.table_name = wire.get("TableName", "")
    target.capacity_units = wire.get("CapacityUnits", 0.0)
    target.read_capacity_units = wire.get("ReadCapacityUnits", 0.0)
    target.write_capacity_units = wire.get("WriteCapacityUnits", 0.0)
    if "Table" in wire:
        fill_capacity(target.table, wire["Table"])
    for name, capacity in wire.get("LocalSecondaryIndexes", {}).items():
        fill_capacity(target.local_secondary_indexes[name], capacity)
    for name, capacity in wire.get("GlobalSecondaryIndexes", {}).items():
        fill_capacity(target.global_secondary_indexes[name], capacity)


def _fill_capacity_field(response: Any, wire: Mapping[str, Any]) -> None:
    if "ConsumedCapacity" in wire:
        fill_consumed_capacity(response.consumed_capacity, wire["ConsumedCapacity"])


def _fill_capacity_list(response: Any, wire: Mapping[str, Any]) -> None:
    for capacity in wire.get("ConsumedCapacity", ()):
        fill_consumed_capacity(response.consumed_capacity.add(), capacity)


def fill_item_collection_metrics(target: options_pb2.ItemCollectionMetrics, wire: Mapping[str, Any]) -> None:
    fill_item(target.item_collection_key, wire.get("ItemCollectionKey", {}))
    target.size_estimate_range_gb.extend(wire.get("SizeEstimateRangeGB", ()))


def _fill_metrics_field(response: Any, wire: Mapping[str, Any]) -> None:
    if "ItemCollectionMetrics" in wire:
        fill_item_collection_metrics(response.item_collection_metrics, wire["ItemCollectionMetrics"])


def _fill_metrics_by_table(response: Any, wire: Mapping[str, Any]) -> None:
    for table, metrics in wire.get("ItemCollectionMetrics", {}).items():
        target = response.item_collection_metrics[table]
        for entry in metrics:
            fill_item_collection_metrics(target.metrics.add(), entry)


# ---------------------------------------------------------------- single-item operations


def get_item_request(request: service_pb2.GetItemRequest) -> Wire:
    params: Wire = {"TableName": _table_name(request.table_name), "Key": _key_to_wire(request.key, "key")}
    _set_if(params, "ConsistentRead", request.consistent_read)
    _set_expressions(params, request, "", ProjectionExpression="projection_expression")
    _set_return_consumed_capacity(params, request.return_consumed_capacity)
    return params


def get_item_response(wire: Mapping[str, Any]) -> service_pb2.GetItemResponse:
    response = service_pb2.GetItemResponse()
    if "Item" in wire:
        response.found = True
        fill_item(response.item, wire["Item"])
    _fill_capacity_field(response, wire)
    return response


def _write_options(params: Wire, request: Any) -> None:
    _set_return_values(params, request.return_values)
    _set_return_consumed_capacity(params, request.return_consumed_capacity)
    _set_return_item_collection_metrics(params, request.return_item_collection_metrics)
    _set_rvoccf(params, request.return_values_on_condition_check_failure, "")


def put_item_request(request: service_pb2.PutItemRequest) -> Wire:
    if not request.item:
        raise InvalidRequestError("item", "an item is required")
    params: Wire = {"TableName": _table_name(request.table_name), "Item": item_to_wire(request.item, "item")}
    _set_expressions(params, request, "", ConditionExpression="condition_expression")
    _write_options(params, request)
    return params


def update_item_request(request: service_pb2.UpdateItemRequest) -> Wire:
    params: Wire = {"TableName": _table_name(request.table_name), "Key": _key_to_wire(request.key, "key")}
    _set_expressions(
        params,
        request,
        "",
        UpdateExpression="update_expression",
        ConditionExpression="condition_expression",
    )
    _write_options(params, request)
    return params


def delete_item_request(request: service_pb2.DeleteItemRequest) -> Wire:
    params: Wire = {"TableName": _table_name(request.table_name), "Key": _key_to_wire(request.key, "key")}
    _set_expressions(params, request, "", ConditionExpression="condition_expression")
    _write_options(params, request)
    return params


def _write_response(response: _WriteResponse, wire: Mapping[str, Any]) -> _WriteResponse:
    fill_item(response.attributes, wire.get("Attributes", {}))
    _fill_capacity_field(response, wire)
    _fill_metrics_field(response, wire)
    return response


def put_item_response(wire: Mapping[str, Any]) -> service_pb2.PutItemResponse:
    return _write_response(service_pb2.PutItemResponse(), wire)


def update_item_response(wire: Mapping[str, Any]) -> service_pb2.UpdateItemResponse:
    return _write_response(service_pb2.UpdateItemResponse(), wire)


def delete_item_response(wire: Mapping[str, Any]) -> service_pb2.DeleteItemResponse:
    return _write_response(service_pb2.DeleteItemResponse(), wire)


# ---------------------------------------------------------------- query and scan


def query_request(request: service_pb2.QueryRequest) -> Wire:
    params: Wire = {"TableName": _table_name(request.table_name)}
    _set_if(params, "IndexName", request.index_name)
    if not request.key_condition_expression and not (request.entity or request.collection):  # built later
        raise refused(
            "key_condition_expression", messages.KEY_CONDITION_REQUIRED, "Validation.InvalidExpression"
        )
    _set_expressions(
        params,
        request,
        "",
        KeyConditionExpression="key_condition_expression",
        FilterExpression="filter_expression",
        ProjectionExpression="projection_expression",
    )
    _set_select(params, request.select)
    _set_limit(params, "Limit", request.limit, "limit")
    _set_if(params, "ConsistentRead", request.consistent_read)
    if request.HasField("scan_index_forward"):
        params["ScanIndexForward"] = request.scan_index_forward
    _set_start_key(params, request.exclusive_start_key, "exclusive_start_key")
    _set_return_consumed_capacity(params, request.return_consumed_capacity)
    return params


def _page_response(response: _PageResponse, wire: Mapping[str, Any]) -> _PageResponse:
    _fill_items(response.items, wire.get("Items", ()))
    response.count = wire.get("Count", 0)
    response.scanned_count = wire.get("ScannedCount", 0)
    fill_item(response.last_evaluated_key, wire.get("LastEvaluatedKey", {}))
    _fill_capacity_field(response, wire)
    return response


def query_response(wire: Mapping[str, Any]) -> service_pb2.QueryResponse:
    return _page_response(service_pb2.QueryResponse(), wire)


def _check_segments(segment: int, total_segments: int, field: str) -> None:
    if total_segments < 1:
        raise refused("total_segments", messages.below_minimum("totalSegments", total_segments, 1))
    if total_segments > MAX_PARALLEL_SCAN_SEGMENTS:
        raise refused(
            "total_segments",
            messages.above_maximum("totalSegments", total_segments, MAX_PARALLEL_SCAN_SEGMENTS),
        )
    if segment < 0:
        raise refused(field, messages.below_minimum("segment", segment, 0))
    if segment >= total_segments:
        raise refused(field, messages.segment_not_below_total(segment, total_segments))


def _scan_params(request: Any, limit_field: str) -> Wire:
    params: Wire = {"TableName": _table_name(request.table_name)}
    _set_if(params, "IndexName", request.index_name)
    _set_expressions(
        params,
        request,
        "",
        FilterExpression="filter_expression",
        ProjectionExpression="projection_expression",
    )
    _set_select(params, request.select)
    _set_limit(params, "Limit", getattr(request, limit_field), limit_field)
    _set_if(params, "ConsistentRead", request.consistent_read)
    _set_return_consumed_capacity(params, request.return_consumed_capacity)
    return params


def scan_request(request: service_pb2.ScanRequest) -> Wire:
    params = _scan_params(request, "limit")
    if request.total_segments or request.segment:
        _check_segments(request.segment, request.total_segments, "segment")
        params["Segment"] = request.segment
        params["TotalSegments"] = request.total_segments
    _set_start_key(params, request.exclusive_start_key, "exclusive_start_key")
    return params


def scan_response(wire: Mapping[str, Any]) -> service_pb2.ScanResponse:
    return _page_response(service_pb2.ScanResponse(), wire)


class EverySegment(Mapping[int, None]):
    """Segments 0..total-1, each from its start, without a million-entry dict for a million segments."""

    def __init__(self, total: int) -> None:
        self._total = total

    def __getitem__(self, segment: int) -> None:
        if not 0 <= segment < self._total:
            raise KeyError(segment)
        return None

    def __iter__(self) -> Iterator[int]:
        return iter(range(self._total))

    def __len__(self) -> int:
        return self._total


def parallel_scan_plan(request: service_pb2.ParallelScanRequest) -> tuple[Wire, Mapping[int, Wire | None]]:
    """The Scan parameters shared by every segment, and each segment's start key (None: from the start)."""
    params = _scan_params(request, "page_limit")
    total = request.total_segments
    _check_segments(0, total, "total_segments")
    params["TotalSegments"] = total
    if not request.segments:
        return params, EverySegment(total)
    starts: dict[int, Wire | None] = {}
    for index, start in enumerate(request.segments):
        field = f"segments[{index}]"
        _check_segments(start.segment, total, f"{field}.segment")
        if start.segment in starts:
            raise InvalidRequestError(f"{field}.segment", f"segment {start.segment} is listed twice")
        key = start.exclusive_start_key
        starts[start.segment] = item_to_wire(key, f"{field}.exclusive_start_key") if key else None
    return params, starts


def parallel_scan_response(segment: int, wire: Mapping[str, Any]) -> service_pb2.ParallelScanResponse:
    response = _page_response(service_pb2.ParallelScanResponse(segment=segment), wire)
    response.segment_done = "LastEvaluatedKey" not in wire
    return response


# ---------------------------------------------------------------- batches


def batch_get_item_request(request: service_pb2.BatchGetItemRequest) -> Wire:
    _batch_table_names("BatchGetItem", [(t, len(k.keys)) for t, k in request.request_items.items()])
    request_items: Wire = {}
    for table, keys_and_attributes in request.request_items.items():
        request_items[table] = _keys_and_attributes_to_wire(keys_and_attributes, table)
    params: Wire = {"RequestItems": request_items}
    _set_return_consumed_capacity(params, request.return_consumed_capacity)
    return params


def _keys_and_attributes_to_wire(keys_and_attributes: service_pb2.KeysAndAttributes, table: str) -> Wire:
    field = f"request_items[{table}]"
    if not keys_and_attributes.keys:
        path = f"requestItems.{table}.member.keys"
        raise refused(
            f"{field}.keys",
            messages.validation_errors([messages.constraint(path, messages.min_length(1), "[]")]),
        )
    wire: Wire = {
        "Keys": [
            _key_to_wire(key.attributes, f"{field}.keys[{i}]")
            for i, key in enumerate(keys_and_attributes.keys)
        ]
    }
    _set_if(wire, "ConsistentRead", keys_and_attributes.consistent_read)
    _set_expressions(wire, keys_and_attributes, f"{field}.", ProjectionExpression="projection_expression")
    return wire


def _fill_keys_and_attributes(target: service_pb2.KeysAndAttributes, wire: Mapping[str, Any]) -> None:
    _fill_items(target.keys, wire.get("Keys", ()))
    target.consistent_read = wire.get("ConsistentRead", False)
    target.projection_expression = wire.get("ProjectionExpression", "")
    target.expression_attribute_names.update(wire.get("ExpressionAttributeNames", {}))


def batch_get_item_response(wire: Mapping[str, Any]) -> service_pb2.BatchGetItemResponse:
    response = service_pb2.BatchGetItemResponse()
    for table, items in wire.get("Responses", {}).items():
        _fill_items(response.responses[table].items, items)
    for table, keys_and_attributes in wire.get("UnprocessedKeys", {}).items():
        _fill_keys_and_attributes(response.unprocessed_keys[table], keys_and_attributes)
    _fill_capacity_list(response, wire)
    return response


def _write_request_to_wire(write: service_pb2.WriteRequest, field: str) -> Wire:
    kind = write.WhichOneof("request")
    if kind == "put_request":
        if not write.put_request.item:
            raise InvalidRequestError(f"{field}.put_request.item", "an item is required")
        return {"PutRequest": {"Item": item_to_wire(write.put_request.item, f"{field}.put_request.item")}}
    if kind == "delete_request":
        return {
            "DeleteRequest": {"Key": _key_to_wire(write.delete_request.key, f"{field}.delete_request.key")}
        }
    raise refused(field, messages.WRITE_REQUEST_EMPTY)


def batch_write_item_request(request: service_pb2.BatchWriteItemRequest) -> Wire:
    counts = [(t, len(w.requests)) for t, w in request.request_items.items()]
    _batch_table_names("BatchWriteItem", counts)
    request_items: Wire = {}
    for table, writes in request.request_items.items():
        field = f"request_items[{table}]"
        if not writes.requests:
            message = messages.batch_write_lists(messages.request_items("BatchWriteItem", counts))
            raise refused(f"{field}.requests", message)
        request_items[table] = [
            _write_request_to_wire(write, f"{field}.requests[{i}]") for i, write in enumerate(writes.requests)
        ]
    params: Wire = {"RequestItems": request_items}
    _set_return_consumed_capacity(params, request.return_consumed_capacity)
    _set_return_item_collection_metrics(params, request.return_item_collection_metrics)
    return params


def batch_write_item_response(wire: Mapping[str, Any]) -> service_pb2.BatchWriteItemResponse:
    response = service_pb2.BatchWriteItemResponse()
    for table, writes in wire.get("UnprocessedItems", {}).items():
        target = response.unprocessed_items[table]
        for write in writes:
            entry = target.requests.add()
            if "PutRequest" in write:
                fill_item(entry.put_request.item, write["PutRequest"]["Item"])
            else:
                fill_item(entry.delete_request.key, write["DeleteRequest"]["Key"])
    _fill_metrics_by_table(response, wire)
    _fill_capacity_list(response, wire)
    return response


# ---------------------------------------------------------------- transactions


def transact_get_items_request(request: service_pb2.TransactGetItemsRequest) -> Wire:
    if not request.transact_items:
        raise refused("transact_items", messages.transaction_size(0, "TransactGetItem"))
    items = []
    for index, entry in enumerate(request.transact_items):
        field = f"transact_items[{index}].get"
        path = f"transactItems.{index + 1}.member.get"
        if not entry.HasField("get"):
            raise refused(
                field, messages.validation_errors([messages.constraint(path, messages.MUST_NOT_BE_NULL)])
            )
        get = entry.get
        wire: Wire = {
            "TableName": _table_name(get.table_name, f"{field}.table_name", f"{path}.tableName"),
            "Key": _key_to_wire(get.key, f"{field}.key"),
        }
        _set_expressions(wire, get, f"{field}.", ProjectionExpression="projection_expression")
        items.append({"Get": wire})
    params: Wire = {"TransactItems": items}
    _set_return_consumed_capacity(params, request.return_consumed_capacity)
    return params


def transact_get_items_response(wire: Mapping[str, Any]) -> service_pb2.TransactGetItemsResponse:
    response = service_pb2.TransactGetItemsResponse()
    for entry in wire.get("Responses", ()):
        target = response.responses.add()
        if "Item" in entry:
            target.found = True
            fill_item(target.item, entry["Item"])
    _fill_capacity_list(response, wire)
    return response


_TRANSACT_ACTIONS = {
    "condition_check": ("ConditionCheck", {"ConditionExpression": "condition_expression"}),
    "put": ("Put", {"ConditionExpression": "condition_expression"}),
    "delete": ("Delete", {"ConditionExpression": "condition_expression"}),
    "update": (
        "Update",
        {"UpdateExpression": "update_expression", "ConditionExpression": "condition_expression"},
    ),
}


def _transact_write_to_wire(entry: service_pb2.TransactWriteItem, position: int) -> Wire:
    field = f"transact_items[{position}]"
    kind = entry.WhichOneof("action")
    if kind is None:
        raise refused(field, messages.TRANSACT_ITEM_EMPTY)
    action = getattr(entry, kind)
    name, expressions = _TRANSACT_ACTIONS[kind]
    field = f"{field}.{kind}"
    path = f"transactItems.{position + 1}.member.{messages.camel(name)}.tableName"
    wire: Wire = {"TableName": _table_name(action.table_name, f"{field}.table_name", path)}
    if kind == "put":
        if not action.item:
            raise InvalidRequestError(f"{field}.item", "an item is required")
        wire["Item"] = item_to_wire(action.item, f"{field}.item")
    else:
        wire["Key"] = _key_to_wire(action.key, f"{field}.key")
    _set_expressions(wire, action, f"{field}.", **expressions)
    _set_rvoccf(wire, action.return_values_on_condition_check_failure, f"{field}.")
    return {name: wire}


def transact_write_items_request(request: service_pb2.TransactWriteItemsRequest) -> Wire:
    if not request.transact_items:
        raise refused("transact_items", messages.transaction_size(0, "TransactWriteItem"))
    params: Wire = {
        "TransactItems": [_transact_write_to_wire(entry, i) for i, entry in enumerate(request.transact_items)]
    }
    _set_return_consumed_capacity(params, request.return_consumed_capacity)
    _set_return_item_collection_metrics(params, request.return_item_collection_metrics)
    _set_if(params, "ClientRequestToken", request.client_request_token)
    return params


def transact_write_items_response(wire: Mapping[str, Any]) -> service_pb2.TransactWriteItemsResponse:
    response = service_pb2.TransactWriteItemsResponse()
    _fill_capacity_list(response, wire)
    _fill_metrics_by_table(response, wire)
    return response


# ---------------------------------------------------------------- versioned writes

# Action position (0 for a single write) -> the version it expects; None: no versioned item yet.
ExpectedVersions = dict[int, int | None]


def _expected_version(expected: service_pb2.ExpectedVersion, field: str) -> int | None:
    kind = expected.WhichOneof("expected")
    if kind == "version":
        return expected.version
    if kind == "absent" and expected.absent:
        return None
    raise InvalidRequestError(
        field, "set version (the version the item has now) or absent: true (no item yet)"
    )


def expected_versions(request: Any) -> ExpectedVersions:
    """The expected_version of a write request, or of each action of a TransactWriteItems."""
    if isinstance(request, service_pb2.TransactWriteItemsRequest):
        found: ExpectedVersions = {}
        for index, entry in enumerate(request.transact_items):
            kind = entry.WhichOneof("action")
            action = getattr(entry, kind) if kind else None
            if action is not None and action.HasField("expected_version"):
                field = f"transact_items[{index}].{kind}.expected_version"
                found[index] = _expected_version(action.expected_version, field)
        return found
    if request.HasField("expected_version"):
        return {0: _expected_version(request.expected_version, "expected_version")}
    return {}


def fill_versions(response: Any, versions: Mapping[int, int], return_values_unknown: bool) -> None:
    """What a versioned write adds to its response: the new version(s), and whether ReturnValues is known."""
    if isinstance(response, service_pb2.TransactWriteItemsResponse):
        response.versions.update(versions)
        return
    if 0 in versions:
        response.version = versions[0]
    response.return_values_unknown = return_values_unknown


def fill_declarations(target: table_pb2.TableDescription, declared: Any) -> None:
    """The tables file's rules for a table (a tables.TableSpec), as DescribeTable shows them."""
    if declared.version is not None:
        version = declared.version
        target.declarations.version_attribute = version.attribute
        target.declarations.version_start = version.start
        target.declarations.version_increment = version.increment
        target.declarations.version_required = version.required
        target.declarations.version_log_attribute = version.log_attribute
    if declared.ttl_attribute:
        target.declarations.ttl_attribute = declared.ttl_attribute
    model = declared.model
    if model is not None:
        target.declarations.entity_attribute = model.entity_attribute
        for entity in model.entities.values():
            target.declarations.entities.add(
                name=entity.name,
                attributes=entity.attributes,
                key_templates={key: template.text for key, template in entity.keys.items()},
                indexes=entity.indexes,
                shards=entity.shards if entity.shards > 1 else 0,
                shard_by=entity.shard_by or "",
            )
        for collection in model.collections.values():
            target.declarations.collections.add(
                name=collection.name, entities=collection.entities, index_name=collection.index
            )


# ---------------------------------------------------------------- expiry options


@dataclass(frozen=True)
class Expiry:
    """When an item a write makes expires: `at_s` (epoch seconds) or `after_s` seconds from now."""

    field: str  # where the caller set it, e.g. "transact_items[1].put.expires_in"
    at_s: Decimal | None = None
    after_s: Decimal | None = None


def _expiry(holder: Any, field: str) -> Expiry | None:
    has_at, has_in = holder.HasField("expires_at"), holder.HasField("expires_in")
    if has_at and has_in:
        raise InvalidRequestError(f"{field}expires_in", "set expires_at or expires_in, not both")
    if has_at:
        at = holder.expires_at
        return Expiry(f"{field}expires_at", at_s=Decimal(at.seconds) + Decimal(at.nanos) / 10**9)
    if has_in:
        after = holder.expires_in
        seconds = Decimal(after.seconds) + Decimal(after.nanos) / 10**9
        if seconds <= 0:
            raise InvalidRequestError(f"{field}expires_in", "must be a positive duration")
        return Expiry(f"{field}expires_in", after_s=seconds)
    return None


def expiries(request: Any) -> dict[str, Expiry]:
    """The expiry options of a write, keyed by where request_shape.walk() finds what they apply
    to: a put's item ("item", "transact_items[0].put.item", ...) or an update ("", ...)."""
    found: dict[str, Expiry] = {}

    def add(holder: Any, field: str, target: str) -> None:
        expiry = _expiry(holder, field)
        if expiry is not None:
            found[target] = expiry

    if isinstance(request, service_pb2.PutItemRequest):
        add(request, "", "item")
    elif isinstance(request, service_pb2.UpdateItemRequest):
        add(request, "", "")
    elif isinstance(request, service_pb2.TransactWriteItemsRequest):
        for index, entry in enumerate(request.transact_items):
            kind = entry.WhichOneof("action")
            where = f"transact_items[{index}].{kind}"
            if kind == "put":
                add(entry.put, f"{where}.", f"{where}.item")
            elif kind == "update":
                add(entry.update, f"{where}.", where)
    elif isinstance(request, service_pb2.BatchWriteItemRequest):
        for table, writes in request.request_items.items():
            for position, write in enumerate(writes.requests):
                if write.WhichOneof("request") == "put_request":
                    where = f"request_items[{table}].requests[{position}].put_request"
                    add(write.put_request, f"{where}.", f"{where}.item")
    return found


# ---------------------------------------------------------------- describe table


def describe_table_request(request: service_pb2.DescribeTableRequest) -> Wire:
    return {"TableName": _table_name(request.table_name)}


def _fill_key_schema(target: Any, wire: Iterable[Mapping[str, Any]]) -> None:
    for element in wire:
        target.add(
            attribute_name=element["AttributeName"],
            key_type=table_pb2.KeyType.Value(f"KEY_TYPE_{element['KeyType']}"),
        )


def _fill_throughput(target: table_pb2.ProvisionedThroughput, wire: Mapping[str, Any] | None) -> None:
    if wire:
        target.read_capacity_units = wire.get("ReadCapacityUnits", 0)
        target.write_capacity_units = wire.get("WriteCapacityUnits", 0)


def _fill_indexes(target: Any, wire: Iterable[Mapping[str, Any]]) -> None:
    for index in wire:
        entry = target.add(
            index_name=index["IndexName"],
            index_status=index.get("IndexStatus", ""),
            item_count=index.get("ItemCount", 0),
            index_size_bytes=index.get("IndexSizeBytes", 0),
        )
        _fill_key_schema(entry.key_schema, index.get("KeySchema", ()))
        projection = index.get("Projection", {})
        if "ProjectionType" in projection:
            entry.projection.projection_type = table_pb2.ProjectionType.Value(
                f"PROJECTION_TYPE_{projection['ProjectionType']}"
            )
        entry.projection.non_key_attributes.extend(projection.get("NonKeyAttributes", ()))
        _fill_throughput(entry.provisioned_throughput, index.get("ProvisionedThroughput"))


def describe_table_response(
    table: Mapping[str, Any], time_to_live: Mapping[str, Any] | None
) -> service_pb2.DescribeTableResponse:
    """Builds the description from DescribeTable's Table and DescribeTimeToLive's description."""
    response = service_pb2.DescribeTableResponse()
    target = response.table
    target.table_name = table["TableName"]
    target.table_arn = table.get("TableArn", "")
    target.table_status = table.get("TableStatus", "")
    for definition in table.get("AttributeDefinitions", ()):
        target.attribute_definitions.add(
            attribute_name=definition["AttributeName"],
            attribute_type=table_pb2.ScalarAttributeType.Value(
                f"SCALAR_ATTRIBUTE_TYPE_{definition['AttributeType']}"
            ),
        )
    _fill_key_schema(target.key_schema, table.get("KeySchema", ()))
    _fill_indexes(target.global_secondary_indexes, table.get("GlobalSecondaryIndexes", ()))
    _fill_indexes(target.local_secondary_indexes, table.get("LocalSecondaryIndexes", ()))
    target.billing_mode = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    _fill_throughput(target.provisioned_throughput, table.get("ProvisionedThroughput"))
    target.item_count = table.get("ItemCount", 0)
    target.table_size_bytes = table.get("TableSizeBytes", 0)
    if time_to_live:
        target.time_to_live.status = time_to_live.get("TimeToLiveStatus", "")
        target.time_to_live.attribute_name = time_to_live.get("AttributeName", "")
    stream = table.get("StreamSpecification", {})
    target.stream_specification.stream_enabled = stream.get("StreamEnabled", False)
    target.stream_specification.stream_view_type = stream.get("StreamViewType", "")
    target.stream_specification.latest_stream_arn = table.get("LatestStreamArn", "")
    created = table.get("CreationDateTime")
    if created is not None:
        target.creation_date_time = created.timestamp() if hasattr(created, "timestamp") else float(created)
    return response
