"""Ending an RPC with a google.rpc.Status (code, message and details trailer); servicer and interceptors."""

from __future__ import annotations

from typing import Any, NoReturn

from google.rpc import status_pb2
from grpc_status import rpc_status


async def abort(
    context: Any, status: status_pb2.Status, metadata: tuple[tuple[str, str], ...] = ()
) -> NoReturn:
    """Ends the RPC with `status`; `metadata` joins its trailer (abort replaces what was set before)."""
    converted = rpc_status.to_status(status)
    await context.abort(converted.code, converted.details, (*converted.trailing_metadata, *metadata))
    raise AssertionError("abort returned")  # context.abort always raises
