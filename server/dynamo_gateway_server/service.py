"""The servicer: proto request -> codec -> backend -> codec -> proto response.

Thin on purpose: conversion lives in codec.py, status mapping in errors.py, and
DynamoDB access behind the backend seam. Owns only the RPC flow, including the
fan-out and flow control of ParallelScan.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import grpc

from dynamo_gateway.v1 import service_pb2, service_pb2_grpc

from . import codec, errors, made_here
from .backends import BackendError, DynamoBackend
from .batches import BatchResult, BatchRunner
from .entities import Entities, ShardFanOut
from .expired_items import including_expired
from .interceptors.abort import abort
from .key_schema import KeySchemaCache
from .regions import current_regions, pinned_region, regions_served
from .resilience import call_deadline
from .shards import query_every_shard
from .tables import TableSpec
from .versions import VersionedWrites, WriteAnswer

log = logging.getLogger(__name__)

_SCAN_DONE = object()
# The RPCs whose writes may carry expiry options (expires_at, expires_in).
_EXPIRING = frozenset({"PutItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems"})
# Requests whose entries may each name an entity.
_MANY_ENTRIES = frozenset({"BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems"})

# Called with each request in DynamoDB's shape before it is sent: raises to refuse it (policy, limits).
RequestGuard = Callable[[str, dict[str, Any]], Awaitable[None]]
# Sets the TTL attribute where a write's expiry options say (ttl.TtlRules.set_expiries).
SetExpiries = Callable[[str, dict[str, Any], Mapping[str, codec.Expiry]], None]

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
_BatchResponse = TypeVar(
    "_BatchResponse", service_pb2.BatchGetItemResponse, service_pb2.BatchWriteItemResponse
)


async def _allow_everything(operation: str, params: dict[str, Any]) -> None:
    return None


def _with_unprocessed(
    to_response: Callable[[dict[str, Any]], _BatchResponse],
) -> Callable[[BatchResult], _BatchResponse]:
    """A batch response that also lists, entry by entry, what is still unprocessed."""

    def convert(result: BatchResult) -> _BatchResponse:
        response = to_response(result.response)
        for entry in result.unprocessed:
            response.unprocessed_entries.add(
                table_name=entry.table,
                index=entry.index,
                code=errors.code_number(entry.leaf),
                reason=entry.leaf.reason,
                message=entry.message,
            )
        return response

    return convert


_BATCH_GET_RESPONSE = _with_unprocessed(codec.batch_get_item_response)
_BATCH_WRITE_RESPONSE = _with_unprocessed(codec.batch_write_item_response)

_WriteResponse = TypeVar(
    "_WriteResponse",
    service_pb2.PutItemResponse,
    service_pb2.UpdateItemResponse,
    service_pb2.DeleteItemResponse,
    service_pb2.TransactWriteItemsResponse,
)


def _versioned(
    to_response: Callable[[dict[str, Any]], _WriteResponse],
) -> Callable[[WriteAnswer], _WriteResponse]:
    """A write response that also says what the versioned-write stage added (the new version)."""

    def convert(answer: WriteAnswer) -> _WriteResponse:
        response = to_response(answer.response)
        codec.fill_versions(response, answer.versions, answer.return_values_unknown)
        return response

    return convert


_PUT_ITEM_RESPONSE = _versioned(codec.put_item_response)
_UPDATE_ITEM_RESPONSE = _versioned(codec.update_item_response)
_DELETE_ITEM_RESPONSE = _versioned(codec.delete_item_response)
_TRANSACT_WRITE_RESPONSE = _versioned(codec.transact_write_items_response)


# Trailing metadata naming the regions that served an RPC (global tables), e.g. "eu-west-1".
REGION_METADATA = "dynamodb-region"


def _region_metadata(regions: Iterable[str]) -> tuple[tuple[str, str], ...]:
    served = ",".join(regions)
    return ((REGION_METADATA, served),) if served else ()


def _nothing(regions: Iterable[str]) -> tuple[tuple[str, str], ...]:
    return ()


class DynamoDBServicer(service_pb2_grpc.DynamoDBServiceServicer):
    def __init__(
        self,
        backend: DynamoBackend,
        scan_concurrency: int,
        batches: BatchRunner,
        guard: RequestGuard = _allow_everything,
        writes: VersionedWrites | None = None,
        declared: Mapping[str, TableSpec] | None = None,
        set_expiries: SetExpiries | None = None,
        stream_stall_timeout_s: float = 0.0,
        entities: Entities | None = None,
        says_regions: bool = False,
    ) -> None:
        """`backend` serves reads (and the batches' calls); `writes` sends the single and
        transactional writes (versioned where they say so); `declared` is the tables file's
        entries by name, which DescribeTable shows; `set_expiries` applies expiry options;
        a ParallelScan whose reader takes no page for `stream_stall_timeout_s` ends (0: never);
        `entities` builds the keys of requests made by entity; `says_regions` (global tables): each
        answer's trailing metadata names the regions that served it (REGION_METADATA)."""
        self._says_regions = says_regions
        self._stream_stall_timeout_s = stream_stall_timeout_s or None
        self._backend = backend
        self._set_expiries = set_expiries
        self._entities = entities or Entities({})
        self._scan_concurrency = scan_concurrency
        self._batches = batches
        self._guard = guard
        self._writes = writes or VersionedWrites(backend, KeySchemaCache(backend), {})
        self._declared = dict(declared or {})
        # Set when the gateway starts shutting down: ParallelScan streams end with where to resume.
        self._draining = asyncio.Event()
        self._listening_until = 0.0  # monotonic time; set by drain

    def drain(self, retry_after_s: float = 0.0) -> None:
        """Ends every ParallelScan stream after the page it is sending, telling the caller where each
        unfinished segment resumes, and after how long (until this server stops listening, a call
        on the same connection lands here again); unary RPCs finish within the grace period."""
        self._listening_until = time.monotonic() + retry_after_s
        self._draining.set()

    def _apply_expiries(self, operation: str, request: Any, params: dict[str, Any]) -> None:
        found = codec.expiries(request)
        if not found:
            return
        if self._set_expiries is None:
            field = next(iter(found.values())).field
            raise codec.InvalidRequestError(field, "this gateway declares no TTL attributes")
        self._set_expiries(operation, params, found)

    def _by_entity(self, operation: str, request: Any, params: dict[str, Any]) -> ShardFanOut | None:
        """The keys of a request made by entity, built from its templates (before the guard);
        for a Query of a sharded entity that must read every shard, how to."""
        table, entity = params["TableName"], request.entity
        if operation == "PutItem":
            self._entities.fill_item(table, entity, params["Item"])
        elif operation == "Query":
            given = codec.item_to_wire(request.entity_key, "entity_key")
            if request.collection:
                if entity:
                    raise codec.InvalidRequestError(
                        "collection", "a query names an entity or a collection, not both"
                    )
                self._entities.collection_query(table, request.collection, given, params)
                return None
            until = (
                codec.item_to_wire(request.entity_key_to, "entity_key_to") if request.entity_key_to else None
            )
            return self._entities.query(table, entity, params.get("IndexName", ""), given, params, until)
        elif operation == "UpdateItem":
            self._entities.update(table, entity, params)
        else:
            params["Key"] = self._entities.key_of(table, entity, params["Key"])
        return None

    def _entries_by_entity(self, operation: str, request: Any, params: dict[str, Any]) -> None:
        """The entries of a batch or a transaction that name an entity, as a single write or read
        by entity would be (each error names the entry's field)."""
        entities = self._entities
        if operation == "BatchGetItem":
            for table, keys in request.request_items.items():
                if keys.entity:
                    wire = params["RequestItems"][table]
                    wire["Keys"] = [
                        entities.key_of(table, keys.entity, key, f"request_items[{table}].keys[{index}]")
                        for index, key in enumerate(wire["Keys"])
                    ]
            return
        if operation == "TransactGetItems":
            for index, (entry, wire) in enumerate(
                zip(request.transact_items, params["TransactItems"], strict=True)
            ):
                if entry.get.entity:
                    get = wire["Get"]
                    get["Key"] = entities.key_of(
                        get["TableName"], entry.get.entity, get["Key"], f"transact_items[{index}].get.key"
                    )
            return
        if operation == "BatchWriteItem":
            for table, writes in request.request_items.items():
                wires = params["RequestItems"][table]
                for index, (write, wire) in enumerate(zip(writes.requests, wires, strict=True)):
                    field = f"request_items[{table}].requests[{index}]"
                    if write.put_request.entity:
                        item = wire["PutRequest"]["Item"]
                        entities.fill_item(table, write.put_request.entity, item, f"{field}.put_request.item")
                    elif write.delete_request.entity:
                        holder = wire["DeleteRequest"]
                        holder["Key"] = entities.key_of(
                            table, write.delete_request.entity, holder["Key"], f"{field}.delete_request.key"
                        )
            return
        for index, (entry, wire) in enumerate(
            zip(request.transact_items, params["TransactItems"], strict=True)
        ):
            kind = entry.WhichOneof("action")
            action = getattr(entry, kind)
            if not action.entity:
                continue
            holder = next(iter(wire.values()))
            field = f"transact_items[{index}].{kind}"
            if kind == "put":
                entities.fill_item(action.table_name, action.entity, holder["Item"], f"{field}.item")
            elif kind == "update":
                entities.update(action.table_name, action.entity, holder, f"{field}.key")
            else:
                holder["Key"] = entities.key_of(
                    action.table_name, action.entity, holder["Key"], f"{field}.key"
                )

    def _query_response(self, table: str) -> Callable[[dict[str, Any]], service_pb2.QueryResponse]:
        """Query's response, saying each item's entity when its table declares entities."""

        def response_of(wire: dict[str, Any]) -> service_pb2.QueryResponse:
            response = codec.query_response(wire)
            if table in self._entities.models:
                for item, answered in zip(response.items, wire.get("Items", ()), strict=True):
                    item.entity = self._entities.entity_of_item(table, answered)
            return response

        return response_of

    def _get_item_response(self, table: str) -> Callable[[dict[str, Any]], service_pb2.GetItemResponse]:
        """GetItem's response, saying the item's entity when its table declares entities."""

        def response_of(wire: dict[str, Any]) -> service_pb2.GetItemResponse:
            response = codec.get_item_response(wire)
            if "Item" in wire:
                response.entity = self._entities.entity_of_item(table, wire["Item"])
            return response

        return response_of

    def _write(self, operation: str, request: Any) -> Callable[[dict[str, Any]], Awaitable[WriteAnswer]]:
        """Sends a write through the versioned-write stage, with the versions the request expects."""
        return lambda params: self._writes.send(operation, params, codec.expected_versions(request))

    async def _unary(
        self,
        context: grpc.aio.ServicerContext[_Request, _Response],
        operation: str,
        request: _Request,
        to_params: Callable[[_Request], dict[str, Any]],
        # Any: the backend's response dict, or what `send` answers.
        to_response: Callable[[Any], _Response],
        send: Callable[[dict[str, Any]], Awaitable[Any]] | None = None,
    ) -> _Response:
        """The RPC edge of every unary call: params, guard, one backend call (or `send`), response."""
        if self._says_regions:
            with regions_served() as regions:  # a failure names them too (_unary_call's abort)
                response = await self._unary_call(context, operation, request, to_params, to_response, send)
                context.set_trailing_metadata(_region_metadata(regions))
                return response
        return await self._unary_call(context, operation, request, to_params, to_response, send)

    async def _unary_call(
        self,
        context: grpc.aio.ServicerContext[_Request, _Response],
        operation: str,
        request: _Request,
        to_params: Callable[[_Request], dict[str, Any]],
        to_response: Callable[[Any], _Response],
        send: Callable[[dict[str, Any]], Awaitable[Any]] | None,
    ) -> _Response:
        try:
            with (
                call_deadline(context.time_remaining()),
                including_expired(getattr(request, "include_expired", False)),
            ):
                params = to_params(request)
                if (getattr(request, "entity", "") or getattr(request, "collection", "")) and (
                    fan_out := self._by_entity(operation, request, params)
                ):
                    send = functools.partial(query_every_shard, self._backend, fan_out=fan_out)
                if operation in _MANY_ENTRIES and self._entities.models:
                    self._entries_by_entity(operation, request, params)
                if operation in _EXPIRING:
                    self._apply_expiries(operation, request, params)
                await self._guard(operation, params)
                answer = await (self._backend.call(operation, params) if send is None else send(params))
                return to_response(answer)
        except Exception as error:  # the RPC edge: every failure must become a status
            regions = _region_metadata(current_regions()) if self._says_regions else ()
            await abort(context, errors.status_of(error, getattr(request, "table_name", "")), regions)

    async def GetItem(
        self,
        request: service_pb2.GetItemRequest,
        context: grpc.aio.ServicerContext[service_pb2.GetItemRequest, service_pb2.GetItemResponse],
    ) -> service_pb2.GetItemResponse:
        response = self._get_item_response(request.table_name)
        return await self._unary(context, "GetItem", request, codec.get_item_request, response)

    async def PutItem(
        self,
        request: service_pb2.PutItemRequest,
        context: grpc.aio.ServicerContext[service_pb2.PutItemRequest, service_pb2.PutItemResponse],
    ) -> service_pb2.PutItemResponse:
        return await self._unary(
            context,
            "PutItem",
            request,
            codec.put_item_request,
            _PUT_ITEM_RESPONSE,
            self._write("PutItem", request),
        )

    async def UpdateItem(
        self,
        request: service_pb2.UpdateItemRequest,
        context: grpc.aio.ServicerContext[service_pb2.UpdateItemRequest, service_pb2.UpdateItemResponse],
    ) -> service_pb2.UpdateItemResponse:
        return await self._unary(
            context,
            "UpdateItem",
            request,
            codec.update_item_request,
            _UPDATE_ITEM_RESPONSE,
            self._write("UpdateItem", request),
        )

    async def DeleteItem(
        self,
        request: service_pb2.DeleteItemRequest,
        context: grpc.aio.ServicerContext[service_pb2.DeleteItemRequest, service_pb2.DeleteItemResponse],
    ) -> service_pb2.DeleteItemResponse:
        return await self._unary(
            context,
            "DeleteItem",
            request,
            codec.delete_item_request,
            _DELETE_ITEM_RESPONSE,
            self._write("DeleteItem", request),
        )

    async def Query(
        self,
        request: service_pb2.QueryRequest,
        context: grpc.aio.ServicerContext[service_pb2.QueryRequest, service_pb2.QueryResponse],
    ) -> service_pb2.QueryResponse:
        response = self._query_response(request.table_name)
        return await self._unary(context, "Query", request, codec.query_request, response)

    async def Scan(
        self,
        request: service_pb2.ScanRequest,
        context: grpc.aio.ServicerContext[service_pb2.ScanRequest, service_pb2.ScanResponse],
    ) -> service_pb2.ScanResponse:
        return await self._unary(context, "Scan", request, codec.scan_request, codec.scan_response)

    async def BatchGetItem(
        self,
        request: service_pb2.BatchGetItemRequest,
        context: grpc.aio.ServicerContext[service_pb2.BatchGetItemRequest, service_pb2.BatchGetItemResponse],
    ) -> service_pb2.BatchGetItemResponse:
        return await self._unary(
            context,
            "BatchGetItem",
            request,
            codec.batch_get_item_request,
            lambda answer: self._saying_entities(_BATCH_GET_RESPONSE(answer)),
            self._batches.get,
        )

    def _saying_entities(
        self, response: service_pb2.BatchGetItemResponse
    ) -> service_pb2.BatchGetItemResponse:
        """Each item of a BatchGetItem's answer says its entity, on tables that declare entities."""
        for table, items in response.responses.items():
            model = self._entities.models.get(table)
            if model is None:
                continue
            for item in items.items:
                value = item.attributes.get(model.entity_attribute)
                if value is not None and value.WhichOneof("value") == "s":
                    item.entity = value.s
        return response

    async def BatchWriteItem(
        self,
        request: service_pb2.BatchWriteItemRequest,
        context: grpc.aio.ServicerContext[
            service_pb2.BatchWriteItemRequest, service_pb2.BatchWriteItemResponse
        ],
    ) -> service_pb2.BatchWriteItemResponse:
        return await self._unary(
            context,
            "BatchWriteItem",
            request,
            codec.batch_write_item_request,
            _BATCH_WRITE_RESPONSE,
            self._batches.write,
        )

    async def TransactGetItems(
        self,
        request: service_pb2.TransactGetItemsRequest,
        context: grpc.aio.ServicerContext[
            service_pb2.TransactGetItemsRequest, service_pb2.TransactGetItemsResponse
        ],
    ) -> service_pb2.TransactGetItemsResponse:
        return await self._unary(
            context,
            "TransactGetItems",
            request,
            codec.transact_get_items_request,
            codec.transact_get_items_response,
        )

    async def TransactWriteItems(
        self,
        request: service_pb2.TransactWriteItemsRequest,
        context: grpc.aio.ServicerContext[
            service_pb2.TransactWriteItemsRequest, service_pb2.TransactWriteItemsResponse
        ],
    ) -> service_pb2.TransactWriteItemsResponse:
        return await self._unary(
            context,
            "TransactWriteItems",
            request,
            codec.transact_write_items_request,
            _TRANSACT_WRITE_RESPONSE,
            self._write("TransactWriteItems", request),
        )

    async def DescribeTable(
        self,
        request: service_pb2.DescribeTableRequest,
        context: grpc.aio.ServicerContext[
            service_pb2.DescribeTableRequest, service_pb2.DescribeTableResponse
        ],
    ) -> service_pb2.DescribeTableResponse:
        return await self._unary(
            context,
            "DescribeTable",
            request,
            codec.describe_table_request,
            self._describe_table_response,
            self._describe_table,
        )

    def _describe_table_response(
        self, answers: tuple[dict[str, Any], dict[str, Any] | None]
    ) -> service_pb2.DescribeTableResponse:
        table, time_to_live = answers
        response = codec.describe_table_response(table["Table"], time_to_live)
        declared = self._declared.get(response.table.table_name)
        if declared is not None:
            codec.fill_declarations(response.table, declared)
        return response

    async def _describe_table(self, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        # Annotated because mypy types gather() as Any when an argument's type holds Any (dict[str, Any]).
        answers: tuple[dict[str, Any], dict[str, Any] | None] = await asyncio.gather(
            self._backend.call("DescribeTable", params), self._time_to_live(params)
        )
        return answers

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

    async def ParallelScan(  # type: ignore[override]  # streams via context.write; the stub wants an iterator
        self,
        request: service_pb2.ParallelScanRequest,
        context: grpc.aio.ServicerContext[service_pb2.ParallelScanRequest, service_pb2.ParallelScanResponse],
    ) -> None:
        try:
            params, starts = codec.parallel_scan_plan(request)
            with call_deadline(context.time_remaining()):
                await self._guard("ParallelScan", params)
        except Exception as error:  # the RPC edge: every failure must become a status
            await abort(context, errors.status_of(error, request.table_name))
        # Workers put pages into a small queue and block when it is full; the writer
        # below drains it only as fast as gRPC flow control lets the client take
        # messages. So a slow client slows the scan instead of making us buffer it.
        pages: asyncio.Queue[Any] = asyncio.Queue(maxsize=self._scan_concurrency)
        segments = iter(starts.items())
        task_name = f"parallel-scan:{request.table_name}"
        # Tasks copy the context when created: the workers inherit the stream's deadline, whether
        # it shows expired items, and the region its first call goes to (global tables).
        with (
            call_deadline(context.time_remaining()),
            including_expired(request.include_expired),
            pinned_region() as region,
        ):
            workers = [
                asyncio.create_task(self._scan_segments(params, segments, pages), name=task_name)
                for _ in range(min(self._scan_concurrency, len(starts)))
            ]
        finisher = asyncio.create_task(_put_when_done(workers, pages), name=task_name)
        draining = asyncio.ensure_future(self._draining.wait())
        # Where each unfinished segment resumes, as of the pages the caller has been sent: only
        # the segments listed or under way are kept (a caller may ask for a million).
        progress = _ScanProgress(starts, request.segments)
        said = _region_metadata if self._says_regions else _nothing
        try:
            while (page := await _next_page(pages, draining)) is not _SCAN_DONE:
                if page is None:  # the gateway is shutting down: say where to pick up
                    interrupted = errors.ScanInterruptedError(
                        progress.remaining(), max(0.0, self._listening_until - time.monotonic())
                    )
                    await abort(context, errors.status_of(interrupted, request.table_name), said(region))
                if isinstance(page, Exception):
                    await abort(context, errors.status_of(page, request.table_name), said(region))
                # Handed to gRPC even when the reader has stalled: gRPC sends it before any status,
                # so from here on it counts as sent.
                taken = await _taken_by_reader(context.write(page), draining, self._stream_stall_timeout_s)
                progress.sent(page)
                if not taken and not draining.done():
                    await self._end_stalled_stream(context, request.table_name, progress.remaining())
            context.set_trailing_metadata(said(region))
        finally:
            # Also runs when the client cancels: stop every DynamoDB call of this stream.
            for task in (*workers, finisher, draining):
                task.cancel()
            await asyncio.gather(*workers, finisher, draining, return_exceptions=True)

    async def _end_stalled_stream(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        table: str,
        remaining: list[service_pb2.SegmentStart],
    ) -> None:
        """A reader that takes no page must not hold a scan (and its DynamoDB reads) forever."""
        assert self._stream_stall_timeout_s is not None
        log.warning(
            "ParallelScan of %s ended: the reader took no page for %g s; %d segments unfinished",
            table,
            self._stream_stall_timeout_s,
            len(remaining),
        )
        stalled = errors.ReaderStalledError(remaining, self._stream_stall_timeout_s)
        await abort(context, errors.status_of(stalled, table))

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
        # Whichever worker scans it, a segment's calls are a sequence of their own (for replay).
        made_here.start_afresh()
        while True:
            if start_key:
                page_params["ExclusiveStartKey"] = start_key
            wire = await self._backend.call("Scan", page_params)
            await pages.put(codec.parallel_scan_response(segment, wire))
            start_key = wire.get("LastEvaluatedKey")
            if not start_key:
                return


class _ScanProgress:
    """Where each unfinished segment of a ParallelScan resumes, as of the pages sent."""

    def __init__(self, starts: Mapping[int, Any], listed: Iterable[service_pb2.SegmentStart]) -> None:
        self._segments = starts  # every segment of the request, in order
        self._moved = {start.segment: start for start in listed if start.exclusive_start_key}
        self._done: set[int] = set()

    def sent(self, page: service_pb2.ParallelScanResponse) -> None:
        if page.segment_done:
            self._done.add(page.segment)
            self._moved.pop(page.segment, None)
        else:
            self._moved[page.segment] = service_pb2.SegmentStart(
                segment=page.segment, exclusive_start_key=page.last_evaluated_key
            )

    def remaining(self) -> list[service_pb2.SegmentStart]:
        return [
            self._moved.get(segment) or service_pb2.SegmentStart(segment=segment)
            for segment in self._segments
            if segment not in self._done
        ]


async def _next_page(pages: asyncio.Queue[Any], draining: asyncio.Future[Any]) -> Any:
    """The next page (or error, or _SCAN_DONE), or None once the gateway starts shutting down."""
    if draining.done():
        return None
    getter = asyncio.ensure_future(pages.get())
    await asyncio.wait((getter, draining), return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    return None


async def _taken_by_reader(
    write: Awaitable[None], draining: asyncio.Future[Any], stall_timeout_s: float | None
) -> bool:
    """Whether the reader took the page: False when the stall timeout passes, or the gateway starts
    shutting down, with the page still held back by flow control. gRPC's write returns once the
    reader's HTTP/2 window lets the page go, so a reader that stops reading blocks it."""
    writing = asyncio.ensure_future(write)
    await asyncio.wait((writing, draining), timeout=stall_timeout_s, return_when=asyncio.FIRST_COMPLETED)
    if writing.done():
        writing.result()  # the caller went away: raise as write() would have
        return True
    # Its outcome no longer matters (the stream ends); retrieved so asyncio does not report it.
    writing.add_done_callback(lambda done: done.cancelled() or done.exception())
    return False


async def _put_when_done(workers: list[asyncio.Task[None]], pages: asyncio.Queue[Any]) -> None:
    await asyncio.gather(*workers)  # workers hand their errors to the queue, never raise
    await pages.put(_SCAN_DONE)
