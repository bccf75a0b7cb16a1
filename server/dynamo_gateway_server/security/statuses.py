"""The google.rpc.Status of each refusal of the security layer, in errors.py's format.

Exactly one ErrorInfo per status (reason = a Caller.* taxonomy leaf, domain =
errors.ERROR_DOMAIN, small fixed metadata), RetryInfo on the retryable ones.
Messages name what failed and never carry a credential. Must not do I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import any_pb2, duration_pb2, message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from dynamo_gateway.taxonomy import BY_REASON

from .. import errors
from .auth import Unauthenticated
from .policy import PermissionDenied

# What a caller turned away for concurrency is told to wait: long enough for a busy RPC to finish.
CONCURRENCY_RETRY_AFTER_S = 0.1


def _status(
    reason: str, text: str, metadata: dict[str, str], extra: Iterable[message.Message] = ()
) -> status_pb2.Status:
    leaf = BY_REASON[reason]
    info = error_details_pb2.ErrorInfo(
        reason=leaf.reason, domain=errors.ERROR_DOMAIN, metadata={k: v for k, v in metadata.items() if v}
    )
    details = []
    for detail in (info, *extra):
        packed = any_pb2.Any()
        packed.Pack(detail)
        details.append(packed)
    return status_pb2.Status(code=getattr(code_pb2, leaf.grpc_code), message=text, details=details)


def unauthenticated(failure: Unauthenticated) -> status_pb2.Status:
    return _status("Caller.Unauthenticated", failure.message, {"failure": failure.failure})


def permission_denied(denied: PermissionDenied) -> status_pb2.Status:
    access = denied.access
    return _status(
        "Caller.PermissionDenied",
        str(denied),
        {"table": access.table, "operation": access.operation, "index": access.index or ""},
    )


def request_too_large(size: int, limit: int) -> status_pb2.Status:
    return _status(
        "Caller.RequestTooLarge",
        f"the request is {size} bytes; this gateway takes at most {limit}",
        {"limit_bytes": str(limit), "size_bytes": str(size)},
    )


def concurrency_limited(scope: str, limit: int) -> status_pb2.Status:
    whose = "this caller's" if scope == "caller" else "this gateway's"
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(CONCURRENCY_RETRY_AFTER_S * 1e9))
    return _status(
        "Caller.ConcurrencyLimitExceeded",
        f"{whose} limit of {limit} RPCs in flight is reached; try again shortly",
        {"scope": scope, "limit": str(limit)},
        [error_details_pb2.RetryInfo(retry_delay=delay)],
    )
