"""The servicer: proto request -> codec -> backend -> codec -> proto response.

Thin on purpose: conversion lives in codec.py, status mapping in errors.py, and
DynamoDB access behind the backend seam. Owns only the RPC flow, including the
fan-out and flow control of ParallelScan.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import grpc
from google.rpc import status_pb2

from dynamo_gateway.v1 import service_pb2_grpc

from . import codec, errors
from .backends import (
    BackendError,
    BackendUnavailableError,
    CircuitOpenError,
    DeadlineExceededError,
    DynamoBackend,
    OutcomeUnknownError,
)
from .batches import BatchResult, BatchRunner
from .interceptors.abort import abort
from .observability.request_context import current_request_id
from .resilience import call_deadline
from .security import statuses
from .security.policy import PermissionDenied

log = logging.getLogger(__name__)

_SCAN_DONE = object()

# Called with each request in DynamoDB's shape before it is sent: raises to refuse it (policy, limits).
RequestGuard = Callable[[str, dict[str, Any]], Awaitable[None]]


async def _allow_everything(operation: str, params: dict[str, Any]) -> None:
    return None


def _status_for(error: Exception, table: str) -> status_pb2.Status:
    """Maps the failures the RPC flow expects; anything else is a bug and becomes INTERNAL."""
    if isinstance(error, codec.InvalidRequestError):
        return errors.from_invalid_request(error)
    if isinstance(error, PermissionDenied):
        return statuses.permission_denied(error)
    if isinstance(error, BackendError | BackendUnavailableError):
        return errors.from_backend_error(error, table)
    if isinstance(error, DeadlineExceededError):
        return errors.from_deadline(error, table)
    if isinstance(error, CircuitOpenError):
        return errors.from_circuit_open(error, table)
    if isinstance(error, OutcomeUnknownError):
        return errors.from_outcome_unknown(error, table)
    # The RPC's own id (the one on its log lines), when the interceptor set one.
    request_id = current_request_id() or uuid.uuid4().hex
    log.error("unexpected error (request id %s)", request_id, exc_info=error)
    return errors.internal(request_id)


def _with_unprocessed(to_response: Callable[[dict[str, Any]], Any]) -> Callable[[BatchResult], Any]:
    """A batch response that also lists, entry by entry, what is still unprocessed."""

    def convert(result: BatchResult) -> Any:
        response = to_response(result.response)
        for entry in result.unprocessed:
            response.unprocessed_entries.add(
                table_name=entry.table,
                index=entry.index,
                code=errors.grpc_code(entry.leaf).value[0],
                reason=entry.leaf.reason,
                message=entry.message,
            )
        return response

    return convert


_BATCH_GET_RESPONSE = _with_unprocessed(codec.batch_get_item_response)
_BATCH_WRITE_RESPONSE = _with_unprocessed(codec.batch_write_item_response)


def _describe_table_response(answers: tuple[dict[str, Any], dict[str, Any] | None]) -> Any:
    table, time_to_live = answers
    return codec.describe_table_response(table["Table"], time_to_live)


class DynamoDBServicer(service_pb2_grpc.DynamoDBServiceServicer):
    def __init__(
        self,
        backend: DynamoBackend,
        scan_concurrency: int,
        batches: BatchRunner,
        guard: RequestGuard = _allow_everything,
    ) -> None:
        self._backend = backend
        self._scan_concurrency = scan_concurrency
        self._batches = batches
        self._guard = guard

    async def _unary(
        self,
        context: grpc.aio.ServicerContext,
        operation: str,
        request: Any,
        to_params: Callable[[Any], dict[str, Any]],
        to_response: Callable[[Any], Any],
        send: Callable[[dict[str, Any]], Awaitable[Any]] | None = None,
    ) -> Any:
        """The RPC edge of every unary call: params, guard, one backend call (or `send`), response."""
        try:
            with call_deadline(context.time_remaining()):
                params = to_params(request)
                await self._guard(operation, params)
                answer = await (self._backend.call(operation, params) if send is None else send(params))
                return to_response(answer)
        except Exception as error:  # the RPC edge: every failure must become a status
            await abort(context, _status_for(error, getattr(request, "table_name", "")))

    async def GetItem(self, request, context):  # type: ignore[override]
        return await self._unary(context, "GetItem", request, codec.get_item_request, codec.get_item_response)

    async def PutItem(self, request, context):  # type: ignore[override]
        return await self._unary(context, "PutItem", request, codec.put_item_request, codec.put_item_response)

    async def UpdateItem(self, request, context):  # type: ignore[override]
        return await self._unary(
            context, "UpdateItem", request, codec.update_item_request, codec.update_item_response
        )

    async def DeleteItem(self, request, context):  # type: ignore[override]
        return await self._unary(
            context, "DeleteItem", request, codec.delete_item_request, codec.delete_item_response
        )

    async def Query(self, request, context):  # type: ignore[override]
        return await self._unary(context, "Query", request, codec.query_request, codec.query_response)

    async def Scan(self, request, context):  # type: ignore[override]
        return await self._unary(context, "Scan", request, codec.scan_request, codec.scan_response)

    async def BatchGetItem(self, request, context):  # type: ignore[override]
        return await self._unary(
            context,
            "BatchGetItem",
            request,
            codec.batch_get_item_request,
            _BATCH_GET_RESPONSE,
            self._batches.get,
        )

    async def BatchWriteItem(self, request, context):  # type: ignore[override]
        return await self._unary(
            context,
            "BatchWriteItem",
            request,
            codec.batch_write_item_request,
            _BATCH_WRITE_RESPONSE,
            self._batches.write,
        )

    async def TransactGetItems(self, request, context):  # type: ignore[override]
        return await self._unary(
            context,
            "TransactGetItems",
            request,
            codec.transact_get_items_request,
            codec.transact_get_items_response,
        )

    async def TransactWriteItems(self, request, context):  # type: ignore[override]
        return await self._unary(
            context,
            "TransactWriteItems",
            request,
            codec.transact_write_items_request,
            codec.transact_write_items_response,
        )

    async def DescribeTable(self, request, context):  # type: ignore[override]
        return await self._unary(
            context,
            "DescribeTable",
            request,
            codec.describe_table_request,
            _describe_table_response,
            self._describe_table,
        )

    async def _describe_table(self, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        return await asyncio.gather(self._backend.call("DescribeTable", params), self._time_to_live(params))

    async def _time_to_live(self, params: dict[str, Any]) -> dict[str, Any] | None:
        try:
            response = await self._backend.call("DescribeTimeToLive", params)
        except BackendError as error:
            if error.code == "ResourceNotFoundException":
                raise
            # Some emulators lack DescribeTimeToLive; the rest of the description still helps.
            log.debug("DescribeTimeToLive failed: %s", error.code)
            return None
        return response.get("TimeToLiveDescription")

    async def ParallelScan(self, request, context):  # type: ignore[override]
        try:
            params, starts = codec.parallel_scan_plan(request)
            with call_deadline(context.time_remaining()):
                await self._guard("ParallelScan", params)
        except Exception as error:  # the RPC edge: every failure must become a status
            await abort(context, _status_for(error, request.table_name))
        # Workers put pages into a small queue and block when it is full; the writer
        # below drains it only as fast as gRPC flow control lets the client take
        # messages. So a slow client slows the scan instead of making us buffer it.
        pages: asyncio.Queue[Any] = asyncio.Queue(maxsize=self._scan_concurrency)
        segments = iter(starts.items())
        task_name = f"parallel-scan:{request.table_name}"
        # Tasks copy the context when created: the workers inherit the stream's deadline.
        with call_deadline(context.time_remaining()):
            workers = [
                asyncio.create_task(self._scan_segments(params, segments, pages), name=task_name)
                for _ in range(min(self._scan_concurrency, len(starts)))
            ]
        finisher = asyncio.create_task(_put_when_done(workers, pages), name=task_name)
        try:
            while (page := await pages.get()) is not _SCAN_DONE:
                if isinstance(page, Exception):
                    await abort(context, _status_for(page, request.table_name))
                await context.write(page)
        finally:
            # Also runs when the client cancels: stop every DynamoDB call of this stream.
            for task in (*workers, finisher):
                task.cancel()
            await asyncio.gather(*workers, finisher, return_exceptions=True)

    async def _scan_segments(
        self,
        params: dict[str, Any],
        segments: Iterator[tuple[int, dict[str, Any] | None]],
        pages: asyncio.Queue[Any],
    ) -> None:
        # Workers share one iterator: a bounded pool covers any number of segments.
        try:
            for segment, start_key in segments:
                await self._scan_one_segment(params, segment, start_key, pages)
        except Exception as error:  # handed to the writer, which turns it into a status
            await pages.put(error)

    async def _scan_one_segment(
        self,
        params: dict[str, Any],
        segment: int,
        start_key: dict[str, Any] | None,
        pages: asyncio.Queue[Any],
    ) -> None:
        page_params = {**params, "Segment": segment}
        while True:
            if start_key:
                page_params["ExclusiveStartKey"] = start_key
            wire = await self._backend.call("Scan", page_params)
            await pages.put(codec.parallel_scan_response(segment, wire))
            start_key = wire.get("LastEvaluatedKey")
            if not start_key:
                return


async def _put_when_done(workers: list[asyncio.Task[None]], pages: asyncio.Queue[Any]) -> None:
    await asyncio.gather(*workers)  # workers hand their errors to the queue, never raise
    await pages.put(_SCAN_DONE)
