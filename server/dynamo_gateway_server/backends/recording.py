"""The recording stage: every call to DynamoDB's client, with its answer or error, into a cassette.

It sits right on DynamoDB's client, below the retries, so a cassette holds each attempt as
DynamoDB saw it (a throttled attempt, then the one that passed), and a replay drives the
gateway's own retries, conditions and error details through the same path. Must not
import gRPC.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..made_here import answered_at, made_so_far, track
from .base import BackendError, BackendUnavailableError, DynamoBackend
from .cassette import CassetteWriter


def error_record(error: BaseException) -> dict[str, Any]:
    """How a cassette writes a failed call."""
    if isinstance(error, BackendError):
        record: dict[str, Any] = {
            "kind": "dynamodb",
            "code": error.code,
            "message": error.message,
            "http_status": error.http_status,
            "request_id": error.request_id,
        }
        if error.item is not None:
            record["item"] = error.item
        if error.cancellation_reasons:
            record["cancellation_reasons"] = error.cancellation_reasons
        return record
    if isinstance(error, BackendUnavailableError):
        return {
            "kind": "unavailable",
            "reason": error.reason,
            "message": error.message,
            "ambiguous": error.ambiguous,
        }
    return {"kind": "cut"}


class RecordingBackend:
    """Passes each call on to `inner` and appends it to the cassette, answered or failed."""

    def __init__(self, inner: DynamoBackend, writer: CassetteWriter, region: str) -> None:
        self.inner = inner
        self.writer = writer
        self._region = region
        track()

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        at = time.time()
        started = time.perf_counter()
        call: dict[str, Any] = {
            "at": at,
            "region": self._region,
            "operation": operation,
            "request": params,
            "made_here": made_so_far(),
        }
        try:
            answer = await self.inner.call(operation, params)
        except (BackendError, BackendUnavailableError, asyncio.CancelledError) as error:
            call["error"] = error_record(error)
            self._write(call, started)
            raise
        finally:
            answered_at(at)
        # Written before any stage above changes the answer.
        call["answer"] = answer
        self._write(call, started)
        return answer

    def _write(self, call: dict[str, Any], started: float) -> None:
        call["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        self.writer.write(call)

    async def close(self) -> None:
        try:
            await self.inner.close()
        finally:
            self.writer.close()
