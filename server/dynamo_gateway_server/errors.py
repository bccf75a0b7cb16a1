"""One table from failures to gRPC statuses with google.rpc.Status details.

Owns: which gRPC code each DynamoDB error code gets, the ErrorInfo every error
carries (reason = the DynamoDB error code, domain = ERROR_DOMAIN), and the typed
details (old item on a failed condition, transaction cancellation reasons,
BadRequest field violations for our own validation). Must not import the servicer.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from dynamo_gateway.v1 import errors_pb2
from google.protobuf import any_pb2, message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from . import codec
from .backends import BackendError, BackendUnavailableError

ERROR_DOMAIN = "dynamo-gateway"
INVALID_REQUEST_REASON = "INVALID_REQUEST"

_C = grpc.StatusCode
# DynamoDB error code -> gRPC code. Codes not listed fall back on the HTTP status class.
DYNAMODB_ERROR_CODES: dict[str, grpc.StatusCode] = {
    # The caller's request is wrong.
    "ValidationException": _C.INVALID_ARGUMENT,
    "SerializationException": _C.INVALID_ARGUMENT,
    "IdempotentParameterMismatchException": _C.INVALID_ARGUMENT,
    # The data is not in the state the caller required.
    "ConditionalCheckFailedException": _C.FAILED_PRECONDITION,
    "ResourceNotFoundException": _C.NOT_FOUND,
    "ResourceInUseException": _C.FAILED_PRECONDITION,
    # Transactions that lost, or are still settling.
    "TransactionCanceledException": _C.ABORTED,
    "TransactionConflictException": _C.ABORTED,
    "TransactionInProgressException": _C.ABORTED,
    # Too much, too fast.
    "ProvisionedThroughputExceededException": _C.RESOURCE_EXHAUSTED,
    "ThrottlingException": _C.RESOURCE_EXHAUSTED,
    "RequestLimitExceeded": _C.RESOURCE_EXHAUSTED,
    "LimitExceededException": _C.RESOURCE_EXHAUSTED,
    "ItemCollectionSizeLimitExceededException": _C.RESOURCE_EXHAUSTED,
    # The gateway's own AWS identity may not do this.
    "AccessDeniedException": _C.PERMISSION_DENIED,
    # The gateway's AWS credentials are broken: not the caller's to fix.
    "UnrecognizedClientException": _C.UNAVAILABLE,
    "InvalidSignatureException": _C.UNAVAILABLE,
    "ExpiredTokenException": _C.UNAVAILABLE,
    "MissingAuthenticationTokenException": _C.UNAVAILABLE,
    "IncompleteSignatureException": _C.UNAVAILABLE,
    # DynamoDB itself failed.
    "InternalServerError": _C.UNAVAILABLE,
    "ServiceUnavailable": _C.UNAVAILABLE,
}


def grpc_code_for(error: BackendError) -> grpc.StatusCode:
    code = DYNAMODB_ERROR_CODES.get(error.code)
    if code is not None:
        return code
    return _C.UNAVAILABLE if error.http_status >= 500 else _C.UNKNOWN


def _pack(detail: message.Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(detail)
    return packed


def _status(code: grpc.StatusCode, text: str, details: Iterable[message.Message]) -> status_pb2.Status:
    return status_pb2.Status(
        code=getattr(code_pb2, code.name), message=text, details=[_pack(d) for d in details]
    )


def _error_info(reason: str, **metadata: str) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(
        reason=reason, domain=ERROR_DOMAIN, metadata={k: v for k, v in metadata.items() if v}
    )


def from_backend_error(error: BackendError, table: str = "") -> status_pb2.Status:
    details: list[message.Message] = [_error_info(error.code, aws_request_id=error.request_id, table=table)]
    if error.code == "ConditionalCheckFailedException":
        failure = errors_pb2.ConditionalCheckFailure()
        codec.fill_item(failure.item, error.item or {})
        details.append(failure)
    elif error.code == "TransactionCanceledException":
        cancellation = errors_pb2.TransactionCancellation()
        for reason in error.cancellation_reasons:
            entry = cancellation.reasons.add(code=reason.get("Code", ""), message=reason.get("Message", ""))
            codec.fill_item(entry.item, reason.get("Item", {}))
        details.append(cancellation)
    return _status(grpc_code_for(error), error.message or error.code, details)


def from_invalid_request(error: codec.InvalidRequestError) -> status_pb2.Status:
    violation = error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.description)
    return _status(
        _C.INVALID_ARGUMENT,
        f"invalid {error.field}: {error.description}",
        [
            _error_info(INVALID_REQUEST_REASON, field=error.field),
            error_details_pb2.BadRequest(field_violations=[violation]),
        ],
    )


def from_unavailable(error: BackendUnavailableError) -> status_pb2.Status:
    return _status(_C.UNAVAILABLE, error.message, [_error_info(error.reason)])


def internal(request_id: str) -> status_pb2.Status:
    """For bugs: says nothing of the cause (it is in the log under the request id)."""
    return _status(
        _C.INTERNAL,
        f"internal error (request id {request_id})",
        [_error_info("INTERNAL", request_id=request_id)],
    )
