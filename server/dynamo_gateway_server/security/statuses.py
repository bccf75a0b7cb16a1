"""The google.rpc.Status of each refusal of the security layer, in errors.py's format.

Exactly one ErrorInfo per status (reason = a Caller.* taxonomy leaf, domain =
errors.ERROR_DOMAIN, small fixed metadata), RetryInfo on the retryable ones.
Messages name what failed and never carry a credential. Must not do I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import message
from google.rpc import status_pb2

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
    return errors.make_status(leaf, text, [errors.error_info(leaf, **metadata), *extra])


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
    return _status(
        "Caller.ConcurrencyLimitExceeded",
        f"{whose} limit of {limit} RPCs in flight is reached; try again shortly",
        {"scope": scope, "limit": str(limit)},
        [errors.retry_info(CONCURRENCY_RETRY_AFTER_S)],
    )
