"""A small typed async client over the generated stub: Python values in and out.

Queries and scans are async iterators that follow pages; ParallelScan is an async
iterator of per-segment pages with resume keys. Errors arrive as the typed
exceptions of errors.py. Everything the stub offers stays reachable via `.stub`.

Writes take expected_version on tables whose tables-file entry declares a version
attribute: an int (the item holds this version) or "absent" (no versioned item yet);
a mismatch raises VersionConflictError with the item as it is. save() does the bookkeeping
(as PynamoDB's Model.save() or the Java enhanced client's versioned putItem): it sends the
version the item holds and returns the item with the version the gateway gave it.

Writes that make items (put_item, update_item, TransactPut, TransactUpdate, batch_write's
puts) take expires_in or expires_at on tables whose tables-file entry declares a TTL
attribute: the gateway sets that attribute to epoch seconds. Reads leave out items whose
TTL has passed there (DynamoDB deletes them only within a few days); include_expired=True
shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

import grpc

from dynamo_gateway.v1 import options_pb2, service_pb2, service_pb2_grpc, table_pb2

from .errors import GatewayError, call_stream, call_unary, scan_continuation
from .values import Item, fill_item, from_item

# The gRPC channel options every client of this package starts from: replies of up to 32 MiB.
CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (("grpc.max_receive_message_length", 32 * 1024 * 1024),)


@dataclass(frozen=True)
class Page:
    """One page of a Query or Scan."""

    items: list[Item]
    # Pass as exclusive_start_key to read the next page; None on the last page.
    last_evaluated_key: Item | None
    count: int
    scanned_count: int
    # Each item's entity, in the order of items, on a table that declares entities ("" for none).
    entities: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SegmentPage:
    """One page of one segment of a ParallelScan."""

    segment: int
    items: list[Item]
    # Where this segment resumes after this page; None once the segment is done.
    resume_key: Item | None
    segment_done: bool
    scanned_count: int


@dataclass(frozen=True)
class TransactPut:
    table: str
    item: Mapping[str, Any]
    condition: str | None = None
    names: Mapping[str, str] | None = None
    values: Mapping[str, Any] | None = None
    return_old_on_failure: bool = False
    expected_version: int | Literal["absent"] | None = None
    # When the item expires (see fill_expiry); set at most one.
    expires_in: datetime.timedelta | float | None = None
    expires_at: datetime.datetime | float | None = None
    # An entity the table declares: item (or key) then holds its attributes (see put_item).
    entity: str | None = None


@dataclass(frozen=True)
class TransactUpdate:
    table: str
    key: Mapping[str, Any]
    update: str
    condition: str | None = None
    names: Mapping[str, str] | None = None
    values: Mapping[str, Any] | None = None
    return_old_on_failure: bool = False
    expected_version: int | Literal["absent"] | None = None
    # When the item expires (see fill_expiry); set at most one.
    expires_in: datetime.timedelta | float | None = None
    expires_at: datetime.datetime | float | None = None
    # An entity the table declares: item (or key) then holds its attributes (see put_item).
    entity: str | None = None


@dataclass(frozen=True)
class TransactDelete:
    table: str
    key: Mapping[str, Any]
    condition: str | None = None
    names: Mapping[str, str] | None = None
    values: Mapping[str, Any] | None = None
    return_old_on_failure: bool = False
    expected_version: int | Literal["absent"] | None = None
    # An entity the table declares: item (or key) then holds its attributes (see put_item).
    entity: str | None = None


@dataclass(frozen=True)
class TransactConditionCheck:
    """Checks condition, expected_version or both (the gateway ANDs them) without writing."""

    table: str
    key: Mapping[str, Any]
    condition: str | None = None
    names: Mapping[str, str] | None = None
    values: Mapping[str, Any] | None = None
    return_old_on_failure: bool = False
    expected_version: int | Literal["absent"] | None = None
    # An entity the table declares: item (or key) then holds its attributes (see put_item).
    entity: str | None = None


TransactAction = TransactPut | TransactUpdate | TransactDelete | TransactConditionCheck


@dataclass
class BatchWriteResult:
    # Table -> items or keys DynamoDB did not write; send them again.
    unprocessed_puts: dict[str, list[Item]] = field(default_factory=dict)
    unprocessed_deletes: dict[str, list[Item]] = field(default_factory=dict)


_RVOCCF_ALL_OLD = options_pb2.RETURN_VALUES_ON_CONDITION_CHECK_FAILURE_ALL_OLD


def _on_failure(return_old: bool) -> options_pb2.ReturnValuesOnConditionCheckFailure.ValueType:
    return _RVOCCF_ALL_OLD if return_old else options_pb2.RETURN_VALUES_ON_CONDITION_CHECK_FAILURE_UNSPECIFIED


def return_value(name: str | None) -> options_pb2.ReturnValue.ValueType:
    if name is None:
        return options_pb2.RETURN_VALUE_UNSPECIFIED
    return options_pb2.ReturnValue.Value(f"RETURN_VALUE_{name.upper()}")


def _select(name: str | None) -> options_pb2.Select.ValueType:
    return (
        options_pb2.SELECT_UNSPECIFIED if name is None else options_pb2.Select.Value(f"SELECT_{name.upper()}")
    )


_INT64 = range(-(2**63), 2**63)


def fill_expected_version(message: Any, expected: int | Literal["absent"] | None) -> None:
    """Sets message.expected_version (an ExpectedVersion) from expected; None leaves it unset.

    Checked here, before anything is sent: True would otherwise pass as version 1.
    """
    if expected is None:
        return
    if isinstance(expected, bool) or not isinstance(expected, int | str):
        raise TypeError(f'expected_version must be an int or "absent", not {type(expected).__name__}')
    if isinstance(expected, str):
        if expected != "absent":
            raise ValueError(f'expected_version must be an int or "absent", not {expected!r}')
        message.expected_version.absent = True
    elif expected not in _INT64:
        raise ValueError(f"expected_version {expected} is out of range (a signed 64-bit integer)")
    else:
        message.expected_version.version = expected


_NANOS_PER_SECOND = 1_000_000_000


def _nanoseconds(name: str, seconds: float) -> int:
    """A number of seconds as whole nanoseconds (a float is taken at its exact value)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(seconds).__name__}")
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be a finite number of seconds, not {seconds!r}")
    return round(Fraction(seconds) * _NANOS_PER_SECOND)


def fill_expiry(
    message: Any,
    expires_in: datetime.timedelta | float | None = None,
    expires_at: datetime.datetime | float | None = None,
) -> None:
    """Sets message.expires_in (a Duration) or message.expires_at (a Timestamp); None leaves it unset.

    expires_in: a timedelta or a number of seconds, counted from the gateway's clock when it
    writes; it must be positive. expires_at: a timezone-aware datetime or epoch seconds.
    Checked here, before anything is sent: setting both, a naive datetime (its timezone is
    ambiguous) and a non-positive expires_in raise ValueError, other types TypeError.
    """
    if expires_in is not None and expires_at is not None:
        raise ValueError("set expires_in or expires_at, not both")
    if expires_in is not None:
        if isinstance(expires_in, datetime.timedelta):
            if expires_in <= datetime.timedelta(0):
                raise ValueError(f"expires_in must be positive, not {expires_in!r}")
            message.expires_in.FromTimedelta(expires_in)
            return
        if isinstance(expires_in, datetime.datetime):
            raise TypeError("expires_in is a timedelta or seconds; pass a datetime as expires_at")
        nanos = _nanoseconds("expires_in", expires_in)
        if nanos <= 0:
            raise ValueError(f"expires_in must be positive, not {expires_in!r} seconds")
        message.expires_in.FromNanoseconds(nanos)
    elif expires_at is not None:
        if isinstance(expires_at, datetime.datetime):
            if expires_at.utcoffset() is None:
                raise ValueError(
                    f"expires_at {expires_at.isoformat()} is naive, an ambiguous timezone:"
                    " give it a tzinfo (e.g. datetime.UTC)"
                )
            message.expires_at.FromDatetime(expires_at)
            return
        if isinstance(expires_at, datetime.timedelta):
            raise TypeError("expires_at is a datetime or epoch seconds; pass a timedelta as expires_in")
        message.expires_at.FromNanoseconds(_nanoseconds("expires_at", expires_at))


def _expressions(
    message: Any,
    names: Mapping[str, str] | None,
    values: Mapping[str, Any] | None = None,
) -> None:
    if names:
        message.expression_attribute_names.update(names)
    if values:
        fill_item(message.expression_attribute_values, values)


# How often parallel_scan continues a stream that gateways shutting down cut short.
SCAN_RESUMES = 10


class GatewayClient:
    """Async client for dynamo-gateway. Use `async with GatewayClient.connect(target) as client`."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_s: float | None = 30.0) -> None:
        self.channel = channel
        self.stub = service_pb2_grpc.DynamoDBServiceStub(channel)
        # Deadline of each unary call; None waits for ever.
        self.timeout_s = timeout_s
        # Table -> the DescribeTable lookup of its version attribute, for save(): one per table
        # however many saves ask at once. Failed lookups and tables that declare none are forgotten.
        self._version_attributes: dict[str, asyncio.Future[str]] = {}

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        timeout_s: float | None = 30.0,
        options: Sequence[tuple[str, Any]] = (),
    ) -> GatewayClient:
        limits = [*CHANNEL_OPTIONS, *options]
        if credentials is None:
            channel = grpc.aio.insecure_channel(target, options=limits)
        else:
            channel = grpc.aio.secure_channel(target, credentials, options=limits)
        return cls(channel, timeout_s=timeout_s)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _call(self, method: Any, request: Any) -> Any:
        return await call_unary(method, request, self.timeout_s)

    # ------------------------------------------------------------ single items

    async def get_item(
        self,
        table: str,
        key: Mapping[str, Any],
        *,
        consistent_read: bool = False,
        projection: str | None = None,
        names: Mapping[str, str] | None = None,
        include_expired: bool = False,
        entity: str | None = None,
    ) -> Item | None:
        """The item with this key, or None (also when its TTL has passed, unless include_expired).

        With `entity` (one the table declares), `key` holds the attributes its key templates use,
        e.g. get_item("app", {"user_id": "42", "order_id": "o-7"}, entity="order")."""
        request = service_pb2.GetItemRequest(
            table_name=table,
            consistent_read=consistent_read,
            projection_expression=projection or "",
            include_expired=include_expired,
            entity=entity or "",
        )
        fill_item(request.key, key)
        _expressions(request, names)
        response = await self._call(self.stub.GetItem, request)
        return from_item(response.item) if response.found else None

    async def put_item(
        self,
        table: str,
        item: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        return_old: bool = False,
        return_old_on_failure: bool = False,
        expected_version: int | Literal["absent"] | None = None,
        expires_in: datetime.timedelta | float | None = None,
        expires_at: datetime.datetime | float | None = None,
        entity: str | None = None,
    ) -> Item | None:
        """Writes item; returns the replaced item when return_old is set and there was one.

        expires_in / expires_at (at most one; see fill_expiry) set the table's TTL attribute.
        With `entity`, item holds the entity's attributes: the gateway builds its keys.
        For a versioned read-modify-write that keeps the item's version for you, see save()."""
        response = await self._put(
            table,
            item,
            condition=condition,
            names=names,
            values=values,
            return_old=return_old,
            return_old_on_failure=return_old_on_failure,
            expected_version=expected_version,
            expires_in=expires_in,
            expires_at=expires_at,
            entity=entity,
        )
        return from_item(response.attributes) if response.attributes else None

    async def save(
        self,
        table: str,
        item: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        expires_in: datetime.timedelta | float | None = None,
        expires_at: datetime.datetime | float | None = None,
    ) -> Item:
        """Writes item as the next version of itself and returns it with its new version.

        Optimistic locking as PynamoDB's Model.save() or the Java enhanced client's versioned
        putItem: the table's version attribute (its tables-file entry declares it; DescribeTable
        is asked once per table and client) in item is the version expected (missing or None:
        a new item, "absent"), and the gateway stores the next one. Returns a copy of item with
        the version attribute set to the version written: save that copy next time.

        Raises VersionConflictError (.current_item, .current_version) when another writer got
        there first: start again from its current item. A table that declares no version
        attribute raises ValueError, and a version that is not a whole number TypeError, before
        anything is written. condition, names, values and expires_in / expires_at as for put_item.
        """
        attribute = await self._version_attribute(table)
        response = await self._put(
            table,
            item,
            condition=condition,
            names=names,
            values=values,
            expected_version=_version_in(table, attribute, item),
            expires_in=expires_in,
            expires_at=expires_at,
        )
        if not response.HasField("version"):
            raise RuntimeError(f"the gateway wrote to {table} but did not say which version it stored")
        return {**item, attribute: response.version}

    async def _put(
        self,
        table: str,
        item: Mapping[str, Any],
        *,
        condition: str | None,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
        return_old: bool = False,
        return_old_on_failure: bool = False,
        expected_version: int | Literal["absent"] | None,
        expires_in: datetime.timedelta | float | None,
        expires_at: datetime.datetime | float | None,
        entity: str | None = None,
    ) -> service_pb2.PutItemResponse:
        """One PutItem call (put_item's and save's): the whole response."""
        request = service_pb2.PutItemRequest(
            table_name=table,
            entity=entity or "",
            condition_expression=condition or "",
            return_values=return_value("ALL_OLD" if return_old else None),
            return_values_on_condition_check_failure=_on_failure(return_old_on_failure),
        )
        fill_expected_version(request, expected_version)
        fill_expiry(request, expires_in, expires_at)
        fill_item(request.item, item)
        _expressions(request, names, values)
        response: service_pb2.PutItemResponse = await self._call(self.stub.PutItem, request)
        return response

    async def _version_attribute(self, table: str) -> str:
        """The table's version attribute, from DescribeTable's declarations (one lookup per table,
        shared by the saves that ask while it runs); ValueError when the table declares none."""
        lookup = self._version_attributes.get(table)
        if lookup is None:
            lookup = asyncio.ensure_future(self._describe_version_attribute(table))
            self._version_attributes[table] = lookup

            def forget_unless_found(done: asyncio.Future[str]) -> None:
                if done.cancelled() or done.exception() is not None or not done.result():
                    if self._version_attributes.get(table) is done:
                        del self._version_attributes[table]

            lookup.add_done_callback(forget_unless_found)
        # shield: a caller cancelled while waiting leaves the lookup running for the others.
        attribute = await asyncio.shield(lookup)
        if not attribute:
            raise ValueError(
                f"table {table} declares no version attribute in the gateway's tables file, so save()"
                " cannot version its items; declare one (version: <attribute>) or use put_item"
            )
        return attribute

    async def _describe_version_attribute(self, table: str) -> str:
        return (await self.describe_table(table)).declarations.version_attribute

    async def update_item(
        self,
        table: str,
        key: Mapping[str, Any],
        update: str,
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        return_values: str | None = None,
        return_old_on_failure: bool = False,
        expected_version: int | Literal["absent"] | None = None,
        expires_in: datetime.timedelta | float | None = None,
        expires_at: datetime.datetime | float | None = None,
        entity: str | None = None,
    ) -> Item | None:
        """Applies the update expression; return_values is DynamoDB's (e.g. "ALL_NEW").

        expires_in / expires_at (at most one; see fill_expiry) also set the table's TTL attribute.
        With `entity`, key holds the attributes its key templates use (as get_item's)."""
        request = service_pb2.UpdateItemRequest(
            table_name=table,
            entity=entity or "",
            update_expression=update,
            condition_expression=condition or "",
            return_values=return_value(return_values),
            return_values_on_condition_check_failure=_on_failure(return_old_on_failure),
        )
        fill_expected_version(request, expected_version)
        fill_expiry(request, expires_in, expires_at)
        fill_item(request.key, key)
        _expressions(request, names, values)
        response = await self._call(self.stub.UpdateItem, request)
        return from_item(response.attributes) if response.attributes else None

    async def delete_item(
        self,
        table: str,
        key: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        return_old: bool = False,
        return_old_on_failure: bool = False,
        expected_version: int | Literal["absent"] | None = None,
        entity: str | None = None,
    ) -> Item | None:
        """Deletes the item; returns it when return_old is set and there was one.
        With `entity`, key holds the attributes its key templates use (as get_item's)."""
        request = service_pb2.DeleteItemRequest(
            table_name=table,
            entity=entity or "",
            condition_expression=condition or "",
            return_values=return_value("ALL_OLD" if return_old else None),
            return_values_on_condition_check_failure=_on_failure(return_old_on_failure),
        )
        fill_expected_version(request, expected_version)
        fill_item(request.key, key)
        _expressions(request, names, values)
        response = await self._call(self.stub.DeleteItem, request)
        return from_item(response.attributes) if response.attributes else None

    # ------------------------------------------------------------ query and scan

    async def query_page(
        self,
        table: str,
        key_condition: str = "",
        *,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
        index: str | None = None,
        filter: str | None = None,
        projection: str | None = None,
        select: str | None = None,
        forward: bool = True,
        consistent_read: bool = False,
        page_size: int | None = None,
        exclusive_start_key: Mapping[str, Any] | None = None,
        include_expired: bool = False,
        entity: str | None = None,
        entity_key: Mapping[str, Any] | None = None,
        collection: str | None = None,
        entity_key_to: Mapping[str, Any] | None = None,
    ) -> Page:
        """One page of a Query; items whose TTL has passed are left out unless include_expired.

        By entity, leave key_condition empty: entity_key holds the attributes of the entity's
        partition key template and, optionally, the first parts of its sort key template, e.g.
        query("app", entity="order", entity_key={"user_id": "42"}): the gateway builds the rest.
        A `collection` (entities sharing a partition) instead of an entity reads all of them;
        `entity_key_to` (the same first sort parts as entity_key's) makes the sort key a range."""
        request = service_pb2.QueryRequest(
            table_name=table,
            entity=entity or "",
            collection=collection or "",
            index_name=index or "",
            key_condition_expression=key_condition,
            filter_expression=filter or "",
            projection_expression=projection or "",
            select=_select(select),
            limit=page_size or 0,
            consistent_read=consistent_read,
            scan_index_forward=forward,
            include_expired=include_expired,
        )
        _expressions(request, names, values)
        if entity_key:
            fill_item(request.entity_key, entity_key)
        if entity_key_to:
            fill_item(request.entity_key_to, entity_key_to)
        if exclusive_start_key:
            fill_item(request.exclusive_start_key, exclusive_start_key)
        return _page(await self._call(self.stub.Query, request))

    async def query(self, table: str, key_condition: str = "", **options: Any) -> AsyncIterator[Item]:
        """Every matching item, following pages. Options (include_expired too) as for query_page."""
        async for page in _pages(self.query_page, table, key_condition, **options):
            for item in page.items:
                yield item

    async def scan_page(
        self,
        table: str,
        *,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
        index: str | None = None,
        filter: str | None = None,
        projection: str | None = None,
        select: str | None = None,
        consistent_read: bool = False,
        page_size: int | None = None,
        segment: int = 0,
        total_segments: int = 0,
        exclusive_start_key: Mapping[str, Any] | None = None,
        include_expired: bool = False,
    ) -> Page:
        """One page of a Scan; items whose TTL has passed are left out unless include_expired."""
        request = service_pb2.ScanRequest(
            table_name=table,
            index_name=index or "",
            filter_expression=filter or "",
            projection_expression=projection or "",
            select=_select(select),
            limit=page_size or 0,
            consistent_read=consistent_read,
            segment=segment,
            total_segments=total_segments,
            include_expired=include_expired,
        )
        _expressions(request, names, values)
        if exclusive_start_key:
            fill_item(request.exclusive_start_key, exclusive_start_key)
        return _page(await self._call(self.stub.Scan, request))

    async def scan(self, table: str, **options: Any) -> AsyncIterator[Item]:
        """Every item of the table (or index), following pages. Options (include_expired too) as
        for scan_page."""
        async for page in _pages(self.scan_page, table, **options):
            for item in page.items:
                yield item

    async def parallel_scan(
        self,
        table: str,
        total_segments: int,
        *,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
        index: str | None = None,
        filter: str | None = None,
        projection: str | None = None,
        consistent_read: bool = False,
        page_size: int | None = None,
        resume_from: Mapping[int, Mapping[str, Any] | None] | None = None,
        timeout_s: float | None = None,
        include_expired: bool = False,
    ) -> AsyncIterator[SegmentPage]:
        """Pages of all segments as the server scans them concurrently.

        resume_from maps each unfinished segment to its last resume_key (None: from
        the start); segments left out are not scanned again. Items whose TTL has passed
        are left out unless include_expired. A stream cut short by a gateway shutting
        down (continued on whichever replica the channel reaches) or by its stall timeout
        (the caller took no page for that long) is continued from where each segment
        stopped, up to SCAN_RESUMES times: no page is lost or repeated.
        """
        # Where each unfinished segment goes on, as of the pages received (what the gateway's
        # ScanInterrupted says too, but this also holds when a connection just breaks).
        remaining: dict[int, Mapping[str, Any] | None] = (
            dict(resume_from) if resume_from is not None else dict.fromkeys(range(total_segments))
        )
        for resumes in itertools.count():
            try:
                async for page in self._parallel_scan_once(
                    table, total_segments, remaining, values, names, index, filter, projection,
                    consistent_read, page_size, timeout_s, include_expired,
                ):  # fmt: skip
                    if page.segment_done:
                        remaining.pop(page.segment, None)
                    else:
                        remaining[page.segment] = page.resume_key
                    yield page
                return
            except GatewayError as error:
                wait_s = scan_continuation(error)
                if wait_s is None or resumes >= SCAN_RESUMES:
                    raise
                if not remaining:  # the last page came before the error: nothing is left
                    return
                await asyncio.sleep(wait_s)

    async def _parallel_scan_once(
        self,
        table: str,
        total_segments: int,
        resume_from: Mapping[int, Mapping[str, Any] | None] | None,
        values: Mapping[str, Any] | None,
        names: Mapping[str, str] | None,
        index: str | None,
        filter: str | None,
        projection: str | None,
        consistent_read: bool,
        page_size: int | None,
        timeout_s: float | None,
        include_expired: bool,
    ) -> AsyncIterator[SegmentPage]:
        """One ParallelScan call's pages."""
        request = service_pb2.ParallelScanRequest(
            table_name=table,
            index_name=index or "",
            filter_expression=filter or "",
            projection_expression=projection or "",
            consistent_read=consistent_read,
            page_limit=page_size or 0,
            total_segments=total_segments,
            include_expired=include_expired,
        )
        _expressions(request, names, values)
        for segment, key in (resume_from or {}).items():
            start = request.segments.add(segment=segment)
            if key:
                fill_item(start.exclusive_start_key, key)
        # aclosing: when our caller stops early, the call is cancelled at once, stopping the server's scan.
        async with contextlib.aclosing(call_stream(self.stub.ParallelScan, request, timeout_s)) as messages:
            async for message in messages:
                yield SegmentPage(
                    segment=message.segment,
                    items=[from_item(i.attributes) for i in message.items],
                    resume_key=from_item(message.last_evaluated_key) if message.last_evaluated_key else None,
                    segment_done=message.segment_done,
                    scanned_count=message.scanned_count,
                )

    # ------------------------------------------------------------ batches

    async def batch_get(
        self,
        keys_by_table: Mapping[str, Sequence[Mapping[str, Any]]],
        *,
        consistent_read: bool = False,
        include_expired: bool = False,
        entity: str | None = None,
    ) -> tuple[dict[str, list[Item]], dict[str, list[Item]]]:
        """One BatchGetItem call: (items by table, unprocessed keys by table). Items whose TTL
        has passed are left out unless include_expired. With `entity`, every key holds that
        entity's key template attributes; unprocessed keys come back as the table's own keys
        (send them again without entity)."""
        request = service_pb2.BatchGetItemRequest(include_expired=include_expired)
        for table, keys in keys_by_table.items():
            entry = request.request_items[table]
            entry.consistent_read = consistent_read
            entry.entity = entity or ""
            for key in keys:
                fill_item(entry.keys.add().attributes, key)
        response = await self._call(self.stub.BatchGetItem, request)
        items = {t: [from_item(i.attributes) for i in r.items] for t, r in response.responses.items()}
        unprocessed = {
            t: [from_item(k.attributes) for k in r.keys] for t, r in response.unprocessed_keys.items()
        }
        return items, unprocessed

    async def batch_write(
        self,
        puts: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        deletes: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        *,
        expires_in: datetime.timedelta | float | None = None,
        expires_at: datetime.datetime | float | None = None,
        entity: str | None = None,
    ) -> BatchWriteResult:
        """One BatchWriteItem call (at most 25 writes); returns what DynamoDB left unprocessed.

        With `entity`, every put and delete of the call is by that entity (see put_item).

        expires_in / expires_at (at most one; see fill_expiry) apply to every put of the call
        (not to deletes); puts that need other expiries go in calls of their own. The gateway
        hands unprocessed puts back as it sent them, with the TTL attribute already set: send
        them again without expires_in / expires_at.
        """
        expiry = service_pb2.PutRequest(entity=entity or "")  # checked once, copied into every put
        fill_expiry(expiry, expires_in, expires_at)
        request = service_pb2.BatchWriteItemRequest()
        for table, items in (puts or {}).items():
            for item in items:
                put = request.request_items[table].requests.add().put_request
                put.MergeFrom(expiry)
                fill_item(put.item, item)
        for table, keys in (deletes or {}).items():
            for key in keys:
                delete = request.request_items[table].requests.add().delete_request
                delete.entity = entity or ""
                fill_item(delete.key, key)
        response = await self._call(self.stub.BatchWriteItem, request)
        result = BatchWriteResult()
        for table, writes in response.unprocessed_items.items():
            for write in writes.requests:
                if write.HasField("put_request"):
                    result.unprocessed_puts.setdefault(table, []).append(from_item(write.put_request.item))
                else:
                    result.unprocessed_deletes.setdefault(table, []).append(
                        from_item(write.delete_request.key)
                    )
        return result

    # ------------------------------------------------------------ transactions

    async def transact_get(
        self,
        gets: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        include_expired: bool = False,
        entity: str | None = None,
    ) -> list[Item | None]:
        """Reads (table, key) pairs atomically; None where no item exists (or its TTL has passed,
        unless include_expired). With `entity`, every key holds its key template attributes."""
        request = service_pb2.TransactGetItemsRequest(include_expired=include_expired)
        for table, key in gets:
            get = request.transact_items.add().get
            get.table_name = table
            get.entity = entity or ""
            fill_item(get.key, key)
        response = await self._call(self.stub.TransactGetItems, request)
        return [from_item(r.item) if r.found else None for r in response.responses]

    async def transact_write(
        self, actions: Sequence[TransactAction], *, client_request_token: str | None = None
    ) -> None:
        """Applies every action or none (TransactionCanceledError says why; VersionConflictError's
        .action_index names the action whose expected_version did not match)."""
        request = service_pb2.TransactWriteItemsRequest(client_request_token=client_request_token or "")
        for index, action in enumerate(actions):
            entry = request.transact_items.add()
            if isinstance(action, TransactPut):
                target: Any = entry.put
                fill_expiry(target, action.expires_in, action.expires_at)
                fill_item(target.item, action.item)
            elif isinstance(action, TransactUpdate):
                target = entry.update
                fill_expiry(target, action.expires_in, action.expires_at)
                target.update_expression = action.update
                fill_item(target.key, action.key)
            elif isinstance(action, TransactDelete):
                target = entry.delete
                fill_item(target.key, action.key)
            else:
                if action.condition is None and action.expected_version is None:
                    raise ValueError(
                        f"action {index}: a condition check needs a condition or an expected_version"
                    )
                target = entry.condition_check
                fill_item(target.key, action.key)
            fill_expected_version(target, action.expected_version)
            target.table_name = action.table
            target.entity = action.entity or ""
            target.condition_expression = action.condition or ""
            if action.return_old_on_failure:
                target.return_values_on_condition_check_failure = _RVOCCF_ALL_OLD
            _expressions(target, action.names, action.values)
        await self._call(self.stub.TransactWriteItems, request)

    async def describe_table(self, table: str) -> table_pb2.TableDescription:
        response: service_pb2.DescribeTableResponse = await self._call(
            self.stub.DescribeTable, service_pb2.DescribeTableRequest(table_name=table)
        )
        return response.table


def _version_in(table: str, attribute: str, item: Mapping[str, Any]) -> int | Literal["absent"]:
    """The version save() expects: the item's version attribute (an int, or a whole Decimal), or
    "absent" (missing or None)."""
    version = item.get(attribute)
    if version is None:
        return "absent"
    if isinstance(version, Decimal) and version.is_finite() and version == version.to_integral_value():
        return int(version)  # a whole number, as DynamoDB numbers may come
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(
            f"{attribute} holds the version of items of {table}: an int (or leave it out for a new"
            f" item), not {type(version).__name__}"
        )
    return version


def _page(response: Any) -> Page:
    return Page(
        items=[from_item(i.attributes) for i in response.items],
        last_evaluated_key=from_item(response.last_evaluated_key) if response.last_evaluated_key else None,
        count=response.count,
        scanned_count=response.scanned_count,
        entities=[i.entity for i in response.items],
    )


async def _pages(fetch: Any, *args: Any, **options: Any) -> AsyncIterator[Page]:
    start = options.pop("exclusive_start_key", None)
    while True:
        page: Page = await fetch(*args, exclusive_start_key=start, **options)
        yield page
        if page.last_evaluated_key is None:
            return
        start = page.last_evaluated_key
