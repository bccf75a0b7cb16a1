"""The gateway's errors as boto3 raises DynamoDB's: botocore ClientError subclasses.

One function, to_botocore_error, rebuilds what botocore would have parsed from
DynamoDB's answer: Error.Code (ErrorInfo's aws_error_code when DynamoDB produced
the error, else the code DynamoDB uses for the taxonomy leaf), Error.Message
(DynamoDB's: the status message of DynamoDB's own errors, ErrorInfo's dynamodb_message
where the gateway refused what DynamoDB refuses too), the members of the modeled error (message,
Item, CancellationReasons) and ResponseMetadata. The class is the modeled one
(`client.exceptions.ConditionalCheckFailedException`), as in boto3. Failures that
boto3 raises as connection errors (gateway unreachable, deadline) become botocore's
connection exceptions. The typed GatewayError stays on `.gateway_error`.
"""

from __future__ import annotations

from typing import Any

import grpc
from botocore import exceptions as botocore_errors
from google.rpc import status_pb2

from dynamo_gateway.v1 import errors_pb2

from .. import wire
from ..errors import GatewayError, from_rpc_error
from . import _model

# Taxonomy leaf -> the error code DynamoDB uses for it, for errors the gateway raised
# itself (no aws_error_code): its own validation, circuit breaker, unknown outcomes.
LEAF_CODES = {
    "Configuration.InvalidTable": "ValidationException",
    "Configuration.InvalidRegion": "UnrecognizedClientException",
    "Configuration.InvalidCredentials": "UnrecognizedClientException",
    "Authentication.CredentialsNotFound": "UnrecognizedClientException",
    "Authentication.TokenExpired": "ExpiredTokenException",
    "Authentication.AssumeRoleFailed": "UnrecognizedClientException",
    "Authentication.AccessDenied": "AccessDeniedException",
    "Validation.InvalidKey": "ValidationException",
    "Validation.InvalidExpression": "ValidationException",
    "Validation.MissingRequiredKey": "ValidationException",
    "Validation.TypeMismatch": "ValidationException",
    "Validation.InvalidParameter": "ValidationException",
    "ConditionalCheck.ConditionFailed": "ConditionalCheckFailedException",
    "ConditionalCheck.TransactionConflict": "TransactionConflictException",
    # Only a write with an expected_version meets it, which boto3's API cannot send; the nearest.
    "ConditionalCheck.VersionConflict": "ConditionalCheckFailedException",
    "Throughput.ProvisionedThroughputExceeded": "ProvisionedThroughputExceededException",
    "Throughput.RequestLimitExceeded": "RequestLimitExceeded",
    "Throughput.ThrottlingException": "ThrottlingException",
    "Item.ItemNotFound": "ResourceNotFoundException",
    "Item.ItemTooLarge": "ValidationException",
    "Item.ItemCollectionSizeLimitExceeded": "ItemCollectionSizeLimitExceededException",
    "Transaction.TransactionCanceled": "TransactionCanceledException",
    "Transaction.TransactionConflict": "TransactionCanceledException",
    "Transaction.IdempotentParameterMismatch": "IdempotentParameterMismatchException",
    "Transaction.TransactionInProgress": "TransactionInProgressException",
    "Service.InternalServerError": "InternalServerError",
    "Service.ServiceUnavailable": "ServiceUnavailable",
    "Service.ResourceNotFound": "ResourceNotFoundException",
    "Service.Internal": "InternalServerError",
    # The gateway's own security (no DynamoDB equivalent): the nearest code a boto3 caller handles.
    "Caller.Unauthenticated": "UnrecognizedClientException",
    "Caller.PermissionDenied": "AccessDeniedException",
    "Caller.RequestTooLarge": "ValidationException",
    "Caller.ConcurrencyLimitExceeded": "ThrottlingException",
}

_HTTP_STATUS = {"InternalServerError": 500, "ServiceUnavailable": 503}


def response_metadata(http_status: int, request_id: str = "") -> dict[str, Any]:
    """botocore's ResponseMetadata: no HTTP headers and no retries to report over gRPC."""
    return {"RequestId": request_id, "HTTPStatusCode": http_status, "HTTPHeaders": {}, "RetryAttempts": 0}


def _message(error: GatewayError, code: str) -> str:
    if error.metadata.get("aws_error_code"):
        # errors.py sends the code when DynamoDB's message was empty; botocore shows "".
        return "" if error.message == code else error.message
    # The gateway refused the request itself: where DynamoDB refuses it too, ErrorInfo carries
    # DynamoDB's own words (dynamo_gateway.dynamodb_messages) beside the field it names.
    return error.metadata.get("dynamodb_message") or error.message


def error_response(
    error: GatewayError, item: dict[str, Any] | None = None, reasons: list[dict[str, Any]] | None = None
) -> tuple[str, dict[str, Any]]:
    """(code, botocore's parsed error response) for a gateway error and its details in DynamoDB's shapes."""
    code = error.metadata.get("aws_error_code") or LEAF_CODES.get(error.reason, "InternalServerError")
    message = _message(error, code)
    response: dict[str, Any] = {
        "Error": {"Message": message, "Code": code},
        "ResponseMetadata": response_metadata(
            _HTTP_STATUS.get(code, 400), error.metadata.get("aws_request_id", "")
        ),
    }
    members = _model.error_members(code)
    for name in ("message", "Message"):
        if name in members:
            response[name] = message
    if "Item" in members and item:
        response["Item"] = item
    if "CancellationReasons" in members and reasons is not None:
        response["CancellationReasons"] = reasons
    return code, response


def wire_details(
    status: status_pb2.Status | None,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None]:
    """The old item and the cancellation reasons of an error's status details, in DynamoDB's shapes.

    Read from the status details directly: the typed client's Python values would lose
    the distinction between, say, a number set and a list.
    """
    item: dict[str, Any] | None = None
    reasons: list[dict[str, Any]] | None = None
    for detail in status.details if status else ():
        if detail.Is(errors_pb2.ConditionalCheckFailure.DESCRIPTOR):
            failure = errors_pb2.ConditionalCheckFailure()
            detail.Unpack(failure)
            item = wire.item_to_wire(failure.item) if failure.item else None
        elif detail.Is(errors_pb2.TransactionCancellation.DESCRIPTOR):
            cancellation = errors_pb2.TransactionCancellation()
            detail.Unpack(cancellation)
            reasons = []
            for reason in cancellation.reasons:
                entry: dict[str, Any] = {"Code": reason.code}
                if reason.message:
                    entry["Message"] = reason.message
                if reason.item:
                    entry["Item"] = wire.item_to_wire(reason.item)
                reasons.append(entry)
    return item, reasons


def to_botocore_error(rpc_error: grpc.RpcError, operation_name: str, target: str) -> Exception:
    """The exception boto3 would raise for the failure behind this gRPC error."""
    error = from_rpc_error(rpc_error)
    has_details = bool(error.reason)
    if error.code == grpc.StatusCode.DEADLINE_EXCEEDED and error.reason in ("", "Service.DeadlineExceeded"):
        result: Exception = botocore_errors.ReadTimeoutError(endpoint_url=target, error=error.message)
    elif error.code == grpc.StatusCode.UNAVAILABLE and not has_details:
        # No status details: the gateway itself was not reached (or a proxy in between failed).
        result = botocore_errors.EndpointConnectionError(endpoint_url=target, error=error.message)
    else:
        code, response = error_response(error, *wire_details(error.status))
        result = _model.exception_class(code)(response, operation_name)
    # Ours, beside botocore's attributes (README: the typed error is on .gateway_error).
    result.gateway_error = error  # type: ignore[attr-defined]  # an attribute botocore's classes lack
    return result


def local_validation_error(message: str, operation_name: str, code: str = "ValidationException") -> Exception:
    """ValidationException (or SerializationException) raised before sending, for what DynamoDB
    would refuse the same way."""
    response = {"Error": {"Message": message, "Code": code}, "ResponseMetadata": response_metadata(400)}
    return _model.exception_class(code)(response, operation_name)
