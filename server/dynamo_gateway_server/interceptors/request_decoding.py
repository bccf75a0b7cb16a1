"""Request decoding for the guarded services: the request size limit, and failures as INVALID_ARGUMENT.

gRPC is given no deserializer for these methods, so everything before the
servicer sees the raw bytes; decode() compares their size with
--max-request-bytes (RESOURCE_EXHAUSTED with details, where gRPC's own limit,
set a little higher, answers without any) and then parses them once, turning a
message protobuf cannot parse (garbage, or nested deeper than its 100 levels)
into INVALID_ARGUMENT instead of gRPC's INTERNAL. Only unary requests: every
guarded method has one. Must not import the servicer or the backends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf import message

from .. import errors
from ..codec import InvalidRequestError
from ..security.limits import RequestTooLarge
from .abort import abort

# gRPC's own limit sits this far above ours, so a request a little too large gets our detailed answer.
GRPC_LIMIT_MARGIN_BYTES = 1024 * 1024


async def decode(raw: bytes, context: Any, deserialize: Callable[[bytes], Any], limit: int) -> Any:
    if len(raw) > limit:
        await abort(context, errors.status_of(RequestTooLarge(len(raw), limit)))
    try:
        return deserialize(raw)
    except message.DecodeError as error:
        await abort(context, errors.status_of(_undecodable(error)))


def _undecodable(error: message.DecodeError) -> InvalidRequestError:
    if "MaxDepth" in str(error):
        description = "nests deeper than protobuf decodes (100 message levels; each map of a map takes 3)"
    else:
        description = "is not a valid protobuf message of this method's request type"
    return InvalidRequestError("request", description)
