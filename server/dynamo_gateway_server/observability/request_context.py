"""The request id of the RPC being handled, for every log line written on its behalf.

Taken from the caller's `x-request-id` metadata when it is a sane token, else made
up. Lives in a context variable, so tasks an RPC starts (ParallelScan's workers)
inherit it. Must not import gRPC.
"""

from __future__ import annotations

import contextvars
import os
import re

REQUEST_ID_METADATA = "x-request-id"
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
_SANE = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("dynamo_gateway_request_id", default="")


def request_id_from(candidate: str | None) -> str:
    """The caller's id if it is short and plain (it ends up in logs), otherwise a new one."""
    if candidate and _SANE.match(candidate):
        return candidate
    # uuid4().hex without building a UUID object (this runs on every RPC): 122 random bits,
    # with the version (4) and variant (10) bits set as RFC 4122 puts them.
    return "%032x" % (int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET)


def current_request_id() -> str:
    return _request_id.get()


def set_request_id(request_id: str) -> contextvars.Token[str]:
    return _request_id.set(request_id)


def reset_request_id(token: contextvars.Token[str]) -> None:
    _request_id.reset(token)
