"""Whole-table transfers for the CLI: export through ParallelScan, import through BatchWriteItem.

Export streams pages to a JSON Lines file as they arrive (memory stays bounded: the
gRPC stream's flow control holds the gateway back while we write) and checkpoints,
at most every `checkpoint_s`, a state file beside it: the file's length and each
segment's resume key, written after the items they cover. A resumed export cuts the
file back to that length and asks the gateway for the unfinished segments from their
keys, so an export killed at any point (even with SIGKILL) finishes with every item
exactly once; one cut by a gateway shutting down goes on by itself the same way.
Import sends batches of lines with bounded concurrency and reports, by line number,
what could not be written. Uses the generated stub; no argparse.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import pathlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import grpc

from dynamo_gateway.v1 import service_pb2

from .client import SCAN_RESUMES
from .errors import GatewayError, call_stream, call_unary, scan_continuation
from .json_codec import ItemJson, JsonInputError, fill_key_from_json, key_to_json
from .progress import Progress

STATE_SUFFIX = ".state.json"
_STATE_VERSION = 1


class TransferError(Exception):
    """A transfer that cannot start or go on as asked (bad resume state, unreadable input)."""


def _remove(path: pathlib.Path) -> None:
    path.unlink()


def _exists(path: pathlib.Path) -> bool:
    return path.exists()


def state_path_of(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.name + STATE_SUFFIX)


# ---------------------------------------------------------------- export


@dataclass
class ExportResult:
    items: int
    bytes: int
    # Items and bytes already in the file from an interrupted run.
    resumed_items: int = 0


def _write_state(path: pathlib.Path, state: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w") as file:
        json.dump(state, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)  # atomic: a kill leaves the old state or the new one


def _load_state(
    path: pathlib.Path, table: str, total_segments: int, dynamodb_json: bool, include_expired: bool
) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise TransferError(f"nothing to resume: {path} does not exist") from None
    except ValueError as error:
        raise TransferError(f"{path} is not a resume state: {error}") from None
    expected = {"version": _STATE_VERSION, "table": table, "dynamodb_json": dynamodb_json}
    for name, value in expected.items():
        if state.get(name) != value:
            raise TransferError(
                f"{path} belongs to another export ({name} {state.get(name)!r}, not {value!r})"
            )
    if total_segments and state["total_segments"] != total_segments:
        # Segment boundaries depend on the count; resume keys mean nothing under another one.
        raise TransferError(f"{path} was made with {state['total_segments']} segments, not {total_segments}")
    # Pages with and without expired items would not make one export. States written before
    # include_expired existed are of exports without it.
    made_with = state.get("include_expired", False)
    if made_with != include_expired:
        raise TransferError(
            f"{path} was made {'with' if made_with else 'without'} --include-expired: resume it the same way"
        )
    return state


# Blocking file calls on purpose: the exporter has nothing else to do meanwhile, and each
# write paces the stream (gRPC flow control then holds the gateway back).
def _create(path: pathlib.Path) -> IO[bytes]:
    return path.open("wb")


def _reopen(path: pathlib.Path, length: int) -> IO[bytes]:
    out = path.open("r+b") if path.exists() else path.open("w+b")
    out.truncate(length)  # drops what was written after the last checkpoint
    out.seek(length)
    return out


async def export_table(
    stub: Any,
    table: str,
    path: pathlib.Path,
    *,
    item_json: ItemJson,
    total_segments: int = 8,
    page_size: int = 0,
    resume: bool = False,
    progress: bool | None = None,
    timeout_s: float | None = None,
    checkpoint_s: float = 0.5,
    include_expired: bool = False,
) -> ExportResult:
    """Writes every item of `table` to `path`, one JSON object per line; on a table with a TTL
    attribute, items whose time has passed only with include_expired."""
    state_path = state_path_of(path)
    described = await call_unary(stub.DescribeTable, service_pb2.DescribeTableRequest(table_name=table), 30)
    bar = Progress(f"export {table}", described.table.item_count or None, enabled=progress)
    if resume:
        state = _load_state(state_path, table, total_segments, item_json.dynamodb_json, include_expired)
        out = _reopen(path, state["bytes"])
        bar.resume_from(state["items"], state["bytes"])
    else:
        if _exists(state_path):
            raise TransferError(
                f"{state_path} shows an interrupted export: pass --resume, or delete it to start over"
            )
        state = {
            "version": _STATE_VERSION,
            "table": table,
            "dynamodb_json": item_json.dynamodb_json,
            "total_segments": total_segments,
            "include_expired": include_expired,
            "items": 0,
            "bytes": 0,
            "segments": {str(s): {"done": False, "key": None} for s in range(total_segments)},
        }
        out = _create(path)
        _write_state(state_path, state)
    resumed_items = state["items"]

    def checkpoint() -> None:
        out.flush()
        os.fsync(out.fileno())
        _write_state(state_path, state)

    last_checkpoint = time.monotonic()

    def write(page: service_pb2.ParallelScanResponse) -> None:
        nonlocal last_checkpoint
        chunk = "".join(item_json.dumps(i.attributes) + "\n" for i in page.items).encode("utf-8")
        out.write(chunk)
        state["items"] += len(page.items)
        state["bytes"] += len(chunk)
        segment = state["segments"][str(page.segment)]
        segment["done"] = page.segment_done
        segment["key"] = None if page.segment_done else key_to_json(page.last_evaluated_key)
        bar.advance(len(page.items), len(chunk))
        if time.monotonic() - last_checkpoint >= checkpoint_s:
            checkpoint()
            last_checkpoint = time.monotonic()

    try:
        for resumes in itertools.count():
            request = _scan_request(table, state, page_size, include_expired)
            if not request.segments:
                break
            try:
                async with contextlib.aclosing(call_stream(stub.ParallelScan, request, timeout_s)) as pages:
                    async for page in pages:
                        write(page)
                break
            except GatewayError as error:
                # The state already says where each segment stopped (the same keys as the error's
                # ScanInterrupted detail): go on, wherever the channel leads.
                wait_s = scan_continuation(error)
                if wait_s is None or resumes >= SCAN_RESUMES:
                    raise
                checkpoint()
                await asyncio.sleep(wait_s)
    finally:
        # Also on errors and Ctrl-C: the state then covers exactly the pages written.
        checkpoint()
        out.close()
        bar.close()
    _remove(state_path)
    return ExportResult(state["items"], state["bytes"], resumed_items)


def _scan_request(
    table: str, state: dict[str, Any], page_size: int, include_expired: bool
) -> service_pb2.ParallelScanRequest:
    """The ParallelScan of the segments `state` has not finished, each from its resume key."""
    request = service_pb2.ParallelScanRequest(
        table_name=table,
        total_segments=state["total_segments"],
        page_limit=page_size,
        include_expired=include_expired,
    )
    unfinished = {int(s): v for s, v in state["segments"].items() if not v["done"]}
    for segment, progress_of in sorted(unfinished.items()):
        start = request.segments.add(segment=segment)
        if progress_of["key"]:
            fill_key_from_json(start.exclusive_start_key, progress_of["key"])
    return request


# ---------------------------------------------------------------- import


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    message: str


@dataclass
class ImportResult:
    written: int = 0
    rejected: list[Rejected] = field(default_factory=list)


_ENTRY = re.compile(r"request_items\[.*\]\.requests\[(\d+)\]")


def _entry_index(error: GatewayError) -> int | None:
    """The batch entry the gateway's own validation named, if it named one."""
    for name, _ in error.field_violations:
        match = _ENTRY.match(name)
        if match:
            return int(match.group(1))
    return None


class _Importer:
    def __init__(self, stub: Any, table: str, timeout_s: float | None) -> None:
        self.stub = stub
        self.table = table
        self.timeout_s = timeout_s
        self.result = ImportResult()

    def reject(self, line: int, reason: str, message: str) -> None:
        self.result.rejected.append(Rejected(line, reason, message))

    async def send(self, batch: list[tuple[int, service_pb2.WriteRequest]]) -> None:
        request = service_pb2.BatchWriteItemRequest()
        request.request_items[self.table].requests.extend(write for _, write in batch)
        try:
            response = await call_unary(self.stub.BatchWriteItem, request, self.timeout_s)
        except GatewayError as error:
            if error.code != grpc.StatusCode.INVALID_ARGUMENT:
                raise  # the table, the gateway or DynamoDB is the problem, not one line
            index = _entry_index(error)
            if index is not None and index < len(batch):
                self.reject(batch[index][0], error.reason or "Validation", error.message)
                rest = batch[:index] + batch[index + 1 :]
                if rest:
                    await self.send(rest)
                return
            if len(batch) > 1:  # DynamoDB refused the batch without saying which line: find it
                for one in batch:
                    await self.send([one])
                return
            self.reject(batch[0][0], error.reason or "Validation", error.message)
            return
        for entry in response.unprocessed_entries:
            self.reject(batch[entry.index][0], entry.reason, entry.message)
        self.result.written += len(batch) - len(response.unprocessed_entries)


def _lines(source: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(source, 1):
        if raw.strip():
            yield number, raw


async def import_table(
    stub: Any,
    table: str,
    source: IO[bytes],
    *,
    item_json: ItemJson,
    size_bytes: int | None = None,
    batch_size: int = 100,
    concurrency: int = 4,
    progress: bool | None = None,
    timeout_s: float | None = 60.0,
) -> ImportResult:
    """Puts every line of `source` (JSON Lines) into `table`; returns what was written and refused."""
    described = await call_unary(stub.DescribeTable, service_pb2.DescribeTableRequest(table_name=table), 30)
    key_names = [k.attribute_name for k in described.table.key_schema]
    bar = Progress(f"import {table}", size_bytes, by_bytes=True, enabled=progress)
    importer = _Importer(stub, table, timeout_s)
    gate = asyncio.Semaphore(concurrency)
    batch: list[tuple[int, service_pb2.WriteRequest]] = []
    batch_keys: set[tuple[bytes, ...]] = set()
    # Keys of the batches in flight: a later line with one of them must wait for them (later wins).
    in_flight: dict[asyncio.Task[None], set[tuple[bytes, ...]]] = {}

    async def run(chunk: list[tuple[int, service_pb2.WriteRequest]]) -> None:
        try:
            await importer.send(chunk)
        finally:
            gate.release()

    try:
        async with asyncio.TaskGroup() as group:

            async def flush() -> None:
                if batch:
                    await gate.acquire()  # bounds the batches in flight, and so memory
                    task = group.create_task(run(list(batch)))
                    in_flight[task] = set(batch_keys)
                    task.add_done_callback(in_flight.pop)
                    batch.clear()
                    batch_keys.clear()

            for number, raw in _lines(source):
                bar.advance(items=1, written_bytes=len(raw))
                write = service_pb2.WriteRequest()
                try:
                    item_json.fill(write.put_request.item, raw.decode("utf-8"))
                except (JsonInputError, UnicodeDecodeError) as error:
                    importer.reject(number, "InvalidJson", str(error))
                    continue
                item = write.put_request.item
                key = tuple(
                    item[k].SerializeToString(deterministic=True) if k in item else b"" for k in key_names
                )
                if key in batch_keys:  # DynamoDB refuses one key twice in a batch: the later write goes next
                    await flush()
                waiting = [task for task, keys in in_flight.items() if key in keys]
                if waiting:
                    await asyncio.wait(waiting)
                batch.append((number, write))
                batch_keys.add(key)
                if len(batch) >= batch_size:
                    await flush()
            await flush()
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    finally:
        bar.close()
    importer.result.rejected.sort(key=lambda r: r.line)
    return importer.result


@contextlib.contextmanager
def open_source(name: str) -> Iterator[tuple[IO[bytes], int | None]]:
    """A JSON Lines source ('-' is stdin) and its size when known (for the progress bar)."""
    import sys

    if name == "-":
        yield sys.stdin.buffer, None
        return
    path = pathlib.Path(name)
    try:
        file = path.open("rb")
    except OSError as error:
        raise TransferError(f"cannot read {name}: {error.strerror}") from None
    with file:
        yield file, path.stat().st_size
