"""What the calling service spends per DynamoDB call, for several client libraries.

One client per process, calls one after another (concurrency 1: the caller's CPU per call,
without queueing), against bench/stub_dynamodb.py directly or through a gateway in front of it:

    gateway             the project's async GatewayClient (Python values), over gRPC to --target
    boto3-facade        the project's boto3-compatible facade (sync), over gRPC to --target
    boto3-facade-async  the same facade's async flavour, over gRPC to --target
    aiobotocore         aiobotocore's low-level client, direct to --endpoint
    boto3               boto3's low-level client (sync), direct to --endpoint
    aiodynamo           aiodynamo (aiohttp adapter, static dummy credentials), direct to --endpoint
    lean                the gateway's own DynamoDB client (backends/json_protocol.py), direct to
                        --endpoint: what one DynamoDB call costs inside the gateway

Each workload of bench/workloads.py is translated once into the library's own call (the
low-level clients take its DynamoDB parameters as they are; the GatewayClient and aiodynamo
take the same items as Python values), warmed up with --warmup calls, then measured over
--calls calls: this process's CPU time (every thread) and wall time. A workload a library
cannot express is skipped with a note on stderr and left out of the result.

With --handshake (for a parent that toggles callgrind's instrumentation around each measured
phase), per workload: prints `ready <workload>` and waits for a line on stdin, runs exactly the
N calls (nothing else: no logging, no prints, the answer of the last one is checked after),
prints `done <workload> <cpu_seconds>` and waits for another line. At the end, one JSON line:
{"client": ..., "workloads": {name: {"calls": N, "cpu_us_per_call": ..., "wall_us_per_call": ...}}}

    .venv/bin/python bench/caller_cost.py --client aiobotocore --endpoint http://127.0.0.1:8000
    .venv/bin/python bench/caller_cost.py --client gateway --target 127.0.0.1:50051 --workloads GetItem
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import gc
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from workloads import WORKLOADS

DEFAULT_WORKLOADS = ("GetItem", "PutItem", "Query100", "BatchWrite25")
GATEWAY_CLIENTS = ("gateway", "boto3-facade", "boto3-facade-async")
DIRECT_CLIENTS = ("aiobotocore", "boto3", "aiodynamo", "lean")
SYNC_CLIENTS = ("boto3", "boto3-facade")
REGION = "us-east-1"
# The most requests one measured call has in flight (ParallelScan's 4 segments); every call
# finds an open keep-alive connection.
POOL = 4
# Idle HTTP connections stay open while a --handshake parent holds the process between phases.
KEEPALIVE_S = 3600.0
# The stub's Query answer: 100 items, or the first "Limit" of them.
STUB_QUERY_ITEMS = 100


@dataclass(frozen=True)
class Built:
    """One workload in a library's terms: call() makes one call (awaitable for async clients);
    check(answer) says whether the answer is the one the stub gives."""

    call: Callable[[], Any]
    check: Callable[[Any], bool]


class CannotExpress(Exception):
    """The library has no way to say this workload."""


# ------------------------------------------------------------ DynamoDB wire values -> Python values


def _number(text: str) -> int | Decimal:
    return int(text) if text.lstrip("+-").isdigit() else Decimal(text)


def python_value(value: dict[str, Any]) -> Any:
    ((kind, inner),) = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        return _number(inner)
    if kind == "B":
        return inner if isinstance(inner, bytes) else base64.b64decode(inner)
    if kind == "BOOL":
        return inner
    if kind == "NULL":
        return None
    if kind == "L":
        return [python_value(v) for v in inner]
    if kind == "M":
        return python_item(inner)
    if kind == "SS":
        return set(inner)
    if kind == "NS":
        return {_number(n) for n in inner}
    if kind == "BS":
        return {b if isinstance(b, bytes) else base64.b64decode(b) for b in inner}
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def python_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: python_value(value) for name, value in item.items()}


def _expected_query_items(params: dict[str, Any]) -> int:
    return int(params.get("Limit") or STUB_QUERY_ITEMS)


# ------------------------------------------------------------ low-level (boto3-shaped) clients


def _dict_check(operation: str, params: dict[str, Any]) -> Callable[[Any], bool]:
    """The check of a boto3-shaped answer."""
    if operation == "GetItem":
        return lambda answer: "Item" in answer
    if operation == "Query":
        expected = _expected_query_items(params)
        return lambda answer: len(answer["Items"]) == expected
    if operation == "BatchGetItem":
        wanted = {table: len(entry["Keys"]) for table, entry in params["RequestItems"].items()}
        return lambda answer: (
            {table: len(items) for table, items in answer["Responses"].items()} == wanted
            and not answer.get("UnprocessedKeys")
        )
    if operation == "BatchWriteItem":
        return lambda answer: not answer.get("UnprocessedItems")
    if operation == "Scan":  # the number of items over every page of every segment
        return lambda answer: answer > 0
    # The SDKs say the HTTP status; the gateway's client answers DynamoDB's JSON (or raises).
    return lambda answer: answer.get("ResponseMetadata", {"HTTPStatusCode": 200})["HTTPStatusCode"] == 200


def _scan_sync(client: Any, params: dict[str, Any]) -> int:
    """A parallel scan by hand with a sync client: each segment in turn, page after page."""
    items = 0
    for segment in range(params["TotalSegments"]):
        page_params = {**params, "Segment": segment}
        while True:
            page = client.scan(**page_params)
            items += len(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            page_params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return items


async def _scan_async(client: Any, params: dict[str, Any]) -> int:
    """A parallel scan by hand with an async client: every segment concurrently, page after page."""

    async def segment(number: int) -> int:
        items = 0
        page_params = {**params, "Segment": number}
        while True:
            page = await client.scan(**page_params)
            items += len(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            page_params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    return sum(await asyncio.gather(*(segment(n) for n in range(params["TotalSegments"]))))


def low_level_builder(client: Any, is_async: bool) -> Callable[[str], Built]:
    """boto3, aiobotocore and the facade: the workload's DynamoDB parameters as they are."""
    from botocore import xform_name

    def build(name: str) -> Built:
        operation, params, _, _ = WORKLOADS[name]
        if operation == "Scan":
            call = functools.partial(_scan_async if is_async else _scan_sync, client, params)
        else:
            call = functools.partial(getattr(client, xform_name(operation)), **params)
        return Built(call, _dict_check(operation, params))

    return build


@contextlib.contextmanager
def boto3_client(args: argparse.Namespace) -> Iterator[Callable[[str], Built]]:
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=REGION,
        max_pool_connections=POOL,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    client = boto3.client(
        "dynamodb",
        endpoint_url=args.endpoint,
        config=config,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    try:
        yield low_level_builder(client, is_async=False)
    finally:
        client.close()


@contextlib.asynccontextmanager
async def aiobotocore_client(args: argparse.Namespace) -> AsyncIterator[Callable[[str], Built]]:
    from baseline_aiobotocore import direct_client  # here: the other clients do without aiobotocore

    async with direct_client(args.endpoint, POOL, keepalive_timeout=KEEPALIVE_S) as client:
        yield low_level_builder(client, is_async=True)


@contextlib.contextmanager
def facade_client(args: argparse.Namespace) -> Iterator[Callable[[str], Built]]:
    from dynamo_gateway import boto3_compat

    with boto3_compat.client("dynamodb", target=args.target) as client:
        yield low_level_builder(client, is_async=False)


@contextlib.asynccontextmanager
async def facade_async_client(args: argparse.Namespace) -> AsyncIterator[Callable[[str], Built]]:
    from dynamo_gateway import boto3_compat

    async with boto3_compat.async_client("dynamodb", target=args.target) as client:
        yield low_level_builder(client, is_async=True)


# ------------------------------------------------------------ the project's GatewayClient


def gateway_builder(client: Any) -> Callable[[str], Built]:
    from dynamo_gateway.client import TransactPut

    def build(name: str) -> Built:
        operation, params, _, _ = WORKLOADS[name]
        table = params.get("TableName", "")
        names = params.get("ExpressionAttributeNames")
        values = (
            python_item(params["ExpressionAttributeValues"])
            if "ExpressionAttributeValues" in params
            else None
        )
        if operation == "GetItem":
            call = functools.partial(client.get_item, table, python_item(params["Key"]))
            return Built(call, lambda item: item is not None)
        if operation == "PutItem":
            call = functools.partial(client.put_item, table, python_item(params["Item"]))
            return Built(call, lambda old: old is None)
        if operation == "UpdateItem":
            call = functools.partial(
                client.update_item,
                table,
                python_item(params["Key"]),
                params["UpdateExpression"],
                names=names,
                values=values,
            )
            return Built(call, lambda attributes: attributes is None)
        if operation == "Query":
            call = functools.partial(
                client.query_page,
                table,
                params["KeyConditionExpression"],
                values=values,
                names=names,
                page_size=params.get("Limit"),
            )
            expected = _expected_query_items(params)
            return Built(call, lambda page: len(page.items) == expected)
        if operation == "BatchGetItem":
            keys = {t: [python_item(k) for k in entry["Keys"]] for t, entry in params["RequestItems"].items()}
            wanted = {t: len(k) for t, k in keys.items()}
            return Built(
                functools.partial(client.batch_get, keys),
                lambda answer: {t: len(items) for t, items in answer[0].items()} == wanted and not answer[1],
            )
        if operation == "BatchWriteItem":
            puts: dict[str, list[dict[str, Any]]] = {}
            for t, writes in params["RequestItems"].items():
                if any("PutRequest" not in w for w in writes):
                    raise CannotExpress("only puts are translated for BatchWriteItem")
                puts[t] = [python_item(w["PutRequest"]["Item"]) for w in writes]
            return Built(
                functools.partial(client.batch_write, puts),
                lambda result: not result.unprocessed_puts and not result.unprocessed_deletes,
            )
        if operation == "TransactWriteItems":
            if any(set(t) != {"Put"} for t in params["TransactItems"]):
                raise CannotExpress("only Put actions are translated for TransactWriteItems")
            actions = [
                TransactPut(table=t["Put"]["TableName"], item=python_item(t["Put"]["Item"]))
                for t in params["TransactItems"]
            ]
            return Built(functools.partial(client.transact_write, actions), lambda answer: answer is None)
        if operation == "Scan":

            async def parallel_scan() -> int:
                items = 0
                async for page in client.parallel_scan(table, params["TotalSegments"]):
                    items += len(page.items)
                return items

            return Built(parallel_scan, lambda items: items > 0)
        raise CannotExpress(f"no translation of {operation}")

    return build


@contextlib.asynccontextmanager
async def gateway_client(args: argparse.Namespace) -> AsyncIterator[Callable[[str], Built]]:
    from dynamo_gateway.client import GatewayClient

    async with GatewayClient.connect(args.target) as client:
        yield gateway_builder(client)


# ------------------------------------------------------------ aiodynamo

_KEY_CONDITION = re.compile(r"^\s*(#?\w+)\s*=\s*(:\w+)\s*$")
_SET_ACTION = re.compile(r"^\s*(#?\w+)\s*=\s*(:\w+)\s*$")


def _name(token: str, params: dict[str, Any]) -> str:
    return params.get("ExpressionAttributeNames", {})[token] if token.startswith("#") else token


def aiodynamo_builder(client: Any) -> Callable[[str], Built]:
    from aiodynamo.expressions import F, HashKey
    from aiodynamo.models import BatchGetRequest, BatchWriteRequest
    from aiodynamo.operations import Put

    def build(name: str) -> Built:
        operation, params, _, _ = WORKLOADS[name]
        table = params.get("TableName", "")
        values = python_item(params.get("ExpressionAttributeValues", {}))
        if operation == "GetItem":
            # A missing item raises ItemNotFound.
            return Built(functools.partial(client.get_item, table, python_item(params["Key"])), bool)
        if operation == "PutItem":
            call = functools.partial(client.put_item, table, python_item(params["Item"]))
            return Built(call, lambda old: old is None)
        if operation == "UpdateItem":
            # aiodynamo builds expressions from F(...) objects: SET a = :x, b = :y becomes
            # F("a").set(x) & F("b").set(y).
            expression = params["UpdateExpression"]
            if not expression.startswith("SET "):
                raise CannotExpress(f"only SET updates are translated: {expression!r}")
            update = None
            for action in expression[4:].split(","):
                match = _SET_ACTION.match(action)
                if match is None:
                    raise CannotExpress(f"only `name = :value` actions are translated: {action!r}")
                step = F(_name(match[1], params)).set(values[match[2]])
                update = step if update is None else update & step
            call = functools.partial(client.update_item, table, python_item(params["Key"]), update)
            return Built(call, lambda attributes: attributes is None)
        if operation == "Query":
            match = _KEY_CONDITION.match(params["KeyConditionExpression"])
            if match is None:
                raise CannotExpress("only `partition = :value` key conditions are translated")
            condition = HashKey(_name(match[1], params), values[match[2]])
            call = functools.partial(client.query_single_page, table, condition, limit=params.get("Limit"))
            expected = _expected_query_items(params)
            return Built(call, lambda page: len(page.items) == expected)
        if operation == "BatchGetItem":
            request = {
                t: BatchGetRequest(keys=[python_item(k) for k in entry["Keys"]])
                for t, entry in params["RequestItems"].items()
            }
            wanted = {t: len(r.keys) for t, r in request.items()}
            return Built(
                functools.partial(client.batch_get, request),
                lambda answer: (
                    {t: len(items) for t, items in answer.items.items()} == wanted
                    and not any(answer.unprocessed_keys.values())
                ),
            )
        if operation == "BatchWriteItem":
            writes: dict[str, Any] = {}
            for t, entries in params["RequestItems"].items():
                if any("PutRequest" not in w for w in entries):
                    raise CannotExpress("only puts are translated for BatchWriteItem")
                writes[t] = BatchWriteRequest(
                    items_to_put=[python_item(w["PutRequest"]["Item"]) for w in entries]
                )
            # The answer: table -> what was not written, only for tables with something left.
            return Built(functools.partial(client.batch_write, writes), lambda unwritten: not unwritten)
        if operation == "TransactWriteItems":
            if any(set(t) != {"Put"} for t in params["TransactItems"]):
                raise CannotExpress("only Put actions are translated for TransactWriteItems")
            actions = [
                Put(t["Put"]["TableName"], python_item(t["Put"]["Item"])) for t in params["TransactItems"]
            ]
            return Built(
                functools.partial(client.transact_write_items, actions), lambda answer: answer is None
            )
        if operation == "Scan":
            raise CannotExpress("its scan has no Segment/TotalSegments: no parallel scan")
        raise CannotExpress(f"no translation of {operation}")

    return build


@contextlib.asynccontextmanager
async def aiodynamo_client(args: argparse.Namespace) -> AsyncIterator[Callable[[str], Built]]:
    import aiohttp
    from aiodynamo.client import Client
    from aiodynamo.credentials import Key, StaticCredentials
    from aiodynamo.http.aiohttp import AIOHTTP
    from yarl import URL

    connector = aiohttp.TCPConnector(limit=POOL, keepalive_timeout=KEEPALIVE_S)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = Client(
            AIOHTTP(session),
            StaticCredentials(Key("bench", "bench")),
            REGION,
            endpoint=URL(args.endpoint),
        )
        yield aiodynamo_builder(client)


# ------------------------------------------------------------ measuring


def _wait_for_parent() -> None:
    if not sys.stdin.readline():
        sys.exit("caller_cost: stdin closed during the handshake")


def _record(results: dict[str, Any], name: str, calls: int, cpu_s: float, wall_s: float) -> None:
    results[name] = {
        "calls": calls,
        "cpu_us_per_call": round(cpu_s / calls * 1e6, 2),
        "wall_us_per_call": round(wall_s / calls * 1e6, 2),
    }


def _checked(name: str, built: Built, answer: Any) -> None:
    if not built.check(answer):
        raise SystemExit(f"caller_cost: {name}: unexpected answer {answer!r:.300}")


def _built(build: Callable[[str], Built], client: str, name: str) -> Built | None:
    try:
        return build(name)
    except CannotExpress as reason:
        print(f"caller_cost: {client} cannot do {name} ({reason}): skipped", file=sys.stderr, flush=True)
        return None


def _ready(args: argparse.Namespace, name: str) -> None:
    gc.collect()  # no garbage of the warm-up left for the measured calls to collect
    if args.handshake:
        print(f"ready {name}", flush=True)
        _wait_for_parent()


def _done(args: argparse.Namespace, name: str, cpu_s: float) -> None:
    if args.handshake:
        print(f"done {name} {cpu_s:.9f}", flush=True)
        _wait_for_parent()


def run_sync(args: argparse.Namespace, client_cm: Any) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with client_cm(args) as build:
        for name in args.workloads:
            built = _built(build, args.client, name)
            if built is None:
                continue
            call, calls = built.call, args.calls
            for _ in range(args.warmup):
                _checked(name, built, call())
            _ready(args, name)
            cpu_before, wall_before = time.process_time(), time.perf_counter()
            for _ in range(calls):
                answer = call()
            wall_s, cpu_s = time.perf_counter() - wall_before, time.process_time() - cpu_before
            _done(args, name, cpu_s)
            _checked(name, built, answer)
            _record(results, name, calls, cpu_s, wall_s)
    return results


async def run_async(args: argparse.Namespace, client_cm: Any) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with client_cm(args) as build:
        for name in args.workloads:
            built = _built(build, args.client, name)
            if built is None:
                continue
            call, calls = built.call, args.calls
            for _ in range(args.warmup):
                _checked(name, built, await call())
            # The loop blocks on stdin in _ready and _done: nothing else is scheduled meanwhile.
            _ready(args, name)
            cpu_before, wall_before = time.process_time(), time.perf_counter()
            for _ in range(calls):
                answer = await call()
            wall_s, cpu_s = time.perf_counter() - wall_before, time.process_time() - cpu_before
            _done(args, name, cpu_s)
            _checked(name, built, answer)
            _record(results, name, calls, cpu_s, wall_s)
    return results


@contextlib.asynccontextmanager
async def lean_client(args: argparse.Namespace) -> AsyncIterator[Callable[[str], Built]]:
    from dynamo_gateway_server.backends.aws import AwsBackendOptions
    from dynamo_gateway_server.backends.json_protocol import JsonProtocolBackend

    options = AwsBackendOptions(
        region=REGION,
        endpoint_url=args.endpoint,
        max_concurrency=POOL,
        connect_timeout_s=2,
        read_timeout_s=10,
        max_attempts=1,
        static_credentials=("bench", "bench"),
    )
    backend = await JsonProtocolBackend.start(options)

    def build(name: str) -> Built:
        operation, params, _, _ = WORKLOADS[name]
        if operation == "Scan":
            return Built(functools.partial(_scan_lean, backend, params), _dict_check(operation, params))
        return Built(functools.partial(backend.call, operation, params), _dict_check(operation, params))

    try:
        yield build
    finally:
        await backend.close()


async def _scan_lean(backend: Any, params: dict[str, Any]) -> int:
    async def segment(number: int) -> int:
        page_params, pages = {**params, "Segment": number}, 0
        while True:
            page = await backend.call("Scan", page_params)
            pages += 1
            if "LastEvaluatedKey" not in page:
                return pages
            page_params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    return sum(await asyncio.gather(*(segment(n) for n in range(params["TotalSegments"]))))


CLIENTS: dict[str, Any] = {
    "gateway": gateway_client,
    "boto3-facade": facade_client,
    "boto3-facade-async": facade_async_client,
    "aiobotocore": aiobotocore_client,
    "boto3": boto3_client,
    "aiodynamo": aiodynamo_client,
    "lean": lean_client,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=list(CLIENTS), required=True)
    parser.add_argument("--target", help="HOST:PORT of the gateway (gateway and boto3-facade clients)")
    parser.add_argument("--endpoint", help="URL of the DynamoDB endpoint (direct clients), e.g. the stub's")
    parser.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS), default=list(DEFAULT_WORKLOADS))
    parser.add_argument("--calls", type=int, default=200, help="measured calls per workload")
    parser.add_argument("--warmup", type=int, default=50, help="calls before the measured ones")
    parser.add_argument(
        "--event-loop", choices=["asyncio", "uvloop"], default="asyncio", help="for the async clients"
    )
    parser.add_argument(
        "--handshake",
        action="store_true",
        help="print `ready W` and `done W CPU_S` around each measured phase, each time waiting for a line on stdin",
    )
    args = parser.parse_args()
    if args.calls < 1 or args.warmup < 0:
        parser.error("--calls must be at least 1 and --warmup at least 0")
    if args.client in GATEWAY_CLIENTS and not args.target:
        parser.error(f"--client {args.client} needs --target HOST:PORT")
    if args.client in DIRECT_CLIENTS and not args.endpoint:
        parser.error(f"--client {args.client} needs --endpoint URL")
    return args


def main() -> None:
    args = parse_args()
    client_cm = CLIENTS[args.client]
    if args.client in SYNC_CLIENTS:
        results = run_sync(args, client_cm)
    else:
        loop_factory = None
        if args.event_loop == "uvloop":
            import uvloop

            loop_factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            results = runner.run(run_async(args, client_cm))
    print(json.dumps({"client": args.client, "workloads": results}), flush=True)


if __name__ == "__main__":
    main()
