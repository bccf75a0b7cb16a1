"""DynamoDB-compatible servers the tests run on loopback: dynalite (npm) and a fault proxy.

Both bind port 0 and keep the port they got, so no other process can take it between
choosing and binding it: dynalite through dynalite_launcher.js (its command line turns
`--port 0` into 4567), which reports the port on its first line of stdout. moto's
server mode comes from the product itself (backends.memory.MotoServerProcess).
"""

from __future__ import annotations

import asyncio
import collections
import json
import pathlib
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import aiohttp
from aiohttp import web

ROOT = pathlib.Path(__file__).resolve().parents[2]
DYNALITE_CLI = ROOT / "tools" / "node_modules" / "dynalite" / "cli.js"
DYNALITE_LAUNCHER = pathlib.Path(__file__).with_name("dynalite_launcher.js")
DYNALITE_START_TIMEOUT_S = 30.0


def dynalite_args(port: int = 0) -> list[str]:
    """The command line of dynalite on a loopback port, with tables that change state at once.

    Port 0 binds a free port; the process writes the port it listens on as its first
    line of stdout, and exits with 1 (and a line on stderr) when the port is taken.
    """
    if not DYNALITE_CLI.exists():
        raise RuntimeError(f"{DYNALITE_CLI} is missing: run scripts/bootstrap.sh")
    return [
        *("node", str(DYNALITE_LAUNCHER)),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"),
    ]


class DynaliteProcess:
    """dynalite on a loopback port; restarted (empty) on the same port when it has died.

    dynalite can crash or hang on some filter and deeply nested condition
    expressions, so the suite keeps one per session and revives it on demand.
    The first start binds port 0; a revival binds the port it had, because
    session fixtures (fault proxies, gateways) hold its endpoint URL.
    """

    def __init__(self) -> None:
        self.port = 0  # until the first start(); kept across restarts
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._stderr: IO[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        assert self.port, "dynalite has no port before start()"
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Starts dynalite on its port (the first time: one it picks) and returns once it listens."""
        self._close_stderr()
        # A file, not a pipe: nobody reads stderr while dynalite runs, and a full pipe would block it.
        self._stderr = tempfile.TemporaryFile()
        self.process = await asyncio.create_subprocess_exec(
            *dynalite_args(self.port),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
        )
        try:
            bound = await self._reported_port(self.process)
        except BaseException:
            await self.stop()
            raise
        if self.port and bound != self.port:  # the launcher never falls back; a guard all the same
            await self.stop()
            raise RuntimeError(f"dynalite came back on port {bound}, not on its port {self.port}")
        self.port = bound

    async def _reported_port(self, process: asyncio.subprocess.Process) -> int:
        """The port on the launcher's first line of stdout, written once it listens."""
        assert process.stdout is not None
        wanted = f"port {self.port}" if self.port else "a free port"
        try:
            line = await asyncio.wait_for(process.stdout.readline(), DYNALITE_START_TIMEOUT_S)
        except TimeoutError:
            raise RuntimeError(
                f"dynalite did not report listening on {wanted} within {DYNALITE_START_TIMEOUT_S:.0f} s"
            ) from None
        if not line:  # end of file: it exited before it listened
            code = await process.wait()
            stderr = self._stderr_tail()
            taken = " (another process took it while dynalite was down)" if "EADDRINUSE" in stderr else ""
            raise RuntimeError(
                f"dynalite exited with code {code} before it listened on {wanted}{taken}; "
                f"its stderr: {stderr or '(empty)'}"
            )
        try:
            return int(line)
        except ValueError:
            raise RuntimeError(f"dynalite reported {line[:80]!r} instead of its port") from None

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-2000:]

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    async def ensure_running(self) -> None:
        if self.process is None or self.process.returncode is not None:
            self.restarts += 1
            await self.start()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._close_stderr()


# Table-name prefix -> the DynamoDB error the fault proxy answers with, instead of forwarding.
FAULTS_BY_TABLE_PREFIX = {
    "throttled-": (
        400,
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
    ),
    "unavailable-": (503, "ServiceUnavailable", "Service is unavailable."),
    "denied-": (400, "AccessDeniedException", "User is not authorized to perform dynamodb:GetItem."),
}
# Tables named "fault-<AwsErrorCode>-..." get that error code; these get a status other than 400.
_STATUS_BY_CODE = {"InternalServerError": 500, "ServiceUnavailable": 503}


def aws_error(code: str, message: str, status: int | None = None, **extra: Any) -> web.Response:
    """A DynamoDB JSON-protocol error response, as botocore parses it."""
    payload = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **extra}
    return web.json_response(
        payload, status=status or _STATUS_BY_CODE.get(code, 400), content_type="application/x-amz-json-1.0"
    )


@dataclass
class FaultPlan:
    """Random faults for requests to every table, drawn from a seeded generator (reproducible)."""

    seed: int = 0
    # Answered with ProvisionedThroughputExceededException instead of forwarding.
    throttle_rate: float = 0.0
    # Answered with InternalServerError instead of forwarding (nothing applied).
    internal_error_rate: float = 0.0
    # Forwarded (and so applied), then answered with InternalServerError: the ambiguous case.
    internal_error_after_rate: float = 0.0
    # Added before forwarding.
    latency_s: float = 0.0
    # Connection dropped without an answer, after forwarding (applied, ambiguous).
    reset_after_rate: float = 0.0
    # Writes one partition key value accepts per second, like DynamoDB's per-partition limit
    # (1,000 WCU/s there; scale it down so the emulator is not the bottleneck); 0: no limit. A
    # token bucket per (table, value), holding one second's worth: a write over it is answered
    # ProvisionedThroughputExceededException, a BatchWriteItem's get UnprocessedItems.
    partition_writes_per_s: float = 0.0
    # The attribute holding the partition key of the tables written to.
    partition_key: str = "pk"


# The writes a per-partition limit counts, and where each request holds its item or key.
_PARTITION_WRITES = {"PutItem": "Item", "UpdateItem": "Key", "DeleteItem": "Key"}


def _table_of(body: bytes) -> str:
    """The (first) table a DynamoDB request names: TableName, RequestItems or TransactItems."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return ""
    if "TableName" in request:
        return str(request["TableName"])
    if request.get("RequestItems"):
        return str(next(iter(request["RequestItems"])))
    for action in request.get("TransactItems", ()):
        for target in action.values():
            return str(target.get("TableName", ""))
    return ""


class FaultProxy:
    """An HTTP proxy in front of a real emulator that injects DynamoDB errors and outages.

    Requests whose TableName starts with a prefix of FAULTS_BY_TABLE_PREFIX, or is
    "fault-<AwsErrorCode>-...", get that error; the others meet `plan`'s random faults,
    then go to the upstream server unchanged. go_down() closes the port (connection
    refused) until go_up(). start() binds port 0; the port it got is kept for go_up().
    """

    def __init__(self, upstream: str, plan: FaultPlan | None = None) -> None:
        self.upstream = upstream
        self.port = 0  # until start()
        self.plan = plan or FaultPlan()
        self._random = random.Random(self.plan.seed)
        self.faults_served = 0
        # (operation, table) -> requests seen, e.g. ("Scan", "app-3").
        self.requests: collections.Counter[tuple[str, str]] = collections.Counter()
        # fault kind -> times injected.
        self.injected: collections.Counter[str] = collections.Counter()
        # (table, partition key value) -> (tokens, when counted), for plan.partition_writes_per_s.
        self._partition_tokens: dict[tuple[str, str], tuple[float, float]] = {}
        self.down = False
        # While set, forwarded requests wait for this event: a test holds the backend busy for sure.
        self.hold: asyncio.Event | None = None
        # Called with (operation, request body) once upstream answered a forwarded request 200.
        self.on_forwarded: Callable[[str, bytes], None] | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def endpoint_url(self) -> str:
        assert self.port, "the proxy has no port before start()"
        return f"http://127.0.0.1:{self.port}"

    def set_plan(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._random = random.Random(plan.seed)
        self._partition_tokens.clear()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await self.go_up()

    async def go_up(self) -> None:
        assert self._runner is not None
        self.down = False
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        if not self.port:
            self.port = int(self._runner.addresses[0][1])

    async def go_down(self) -> None:
        """A full outage until go_up(): nothing listens on the port, and requests on
        connections that were already open are dropped unanswered."""
        self.down = True
        if self._site is not None:
            await self._site.stop()
            self._site = None

    def _draw(self, rate: float) -> bool:
        return rate > 0 and self._random.random() < rate

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.down:
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=503)  # never sent: the connection is gone
        body = await request.read()
        table = _table_of(body)
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        self.requests[(operation, table)] += 1
        for prefix, (status, code, message) in FAULTS_BY_TABLE_PREFIX.items():
            if table.startswith(prefix):
                self.faults_served += 1
                return aws_error(code, message, status)
        if table.startswith("conflict-"):
            self.faults_served += 1
            reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
            return aws_error("TransactionCanceledException", "injected conflict", CancellationReasons=reasons)
        if table.startswith("fault-"):
            self.faults_served += 1
            return aws_error(table.split("-")[1], f"injected for {table}")
        plan = self.plan
        unprocessed: dict[str, list[Any]] = {}
        if plan.partition_writes_per_s > 0 and (
            operation in _PARTITION_WRITES or operation == "BatchWriteItem"
        ):
            body, unprocessed = self._within_partition_limits(operation, body)
            if not body:  # every write it holds is over its partition's limit
                self.injected["partition_throttle"] += 1
                self.injected[f"partition_throttle:{operation}"] += 1
                return aws_error(
                    "ProvisionedThroughputExceededException", "injected: over the partition's write limit"
                )
        if self._draw(plan.throttle_rate):
            self.injected["throttle"] += 1
            self.injected[f"throttle:{operation}"] += 1
            return aws_error("ProvisionedThroughputExceededException", "injected throttling")
        if self._draw(plan.internal_error_rate):
            self.injected["internal_error"] += 1
            self.injected[f"internal_error:{operation}"] += 1
            return aws_error("InternalServerError", "injected internal error")
        internal_error_after = self._draw(plan.internal_error_after_rate)
        reset_after = self._draw(plan.reset_after_rate)
        if plan.latency_s:
            await asyncio.sleep(plan.latency_s)
        if self.hold is not None:
            await self.hold.wait()
        response = await self._forward(request, body)
        if self.on_forwarded is not None and response.status == 200:
            self.on_forwarded(operation, body)
        if unprocessed:
            response = _with_unprocessed(response, unprocessed)
        if internal_error_after:
            self.injected["internal_error_after"] += 1
            self.injected[f"internal_error_after:{operation}"] += 1
            return aws_error("InternalServerError", "injected internal error after applying")
        if reset_after:
            self.injected["reset_after"] += 1
            self.injected[f"reset_after:{operation}"] += 1
            assert request.transport is not None
            request.transport.abort()
        return response

    def _take_partition_write(self, table: str, item: Any) -> bool:
        """Whether the partition `item` (an item or key, DynamoDB JSON) is in has a write left."""
        rate = self.plan.partition_writes_per_s
        capacity = max(rate, 1.0)
        partition = (table, json.dumps(item.get(self.plan.partition_key), sort_keys=True))
        now = time.monotonic()
        tokens, counted = self._partition_tokens.get(partition, (capacity, now))
        tokens = min(capacity, tokens + (now - counted) * rate)
        taken = tokens >= 1
        self._partition_tokens[partition] = (tokens - 1 if taken else tokens, now)
        return taken

    def _within_partition_limits(self, operation: str, body: bytes) -> tuple[bytes, dict[str, list[Any]]]:
        """The request with only the writes their partitions accept (b"" for none), and a batch's
        refused writes by table (its UnprocessedItems)."""
        request = json.loads(body)
        if operation != "BatchWriteItem":
            item = request.get(_PARTITION_WRITES[operation], {})
            return (body if self._take_partition_write(request.get("TableName", ""), item) else b""), {}
        accepted: dict[str, list[Any]] = {}
        refused: dict[str, list[Any]] = {}
        for table, writes in request.get("RequestItems", {}).items():
            for write in writes:
                item = write.get("PutRequest", {}).get("Item") or write.get("DeleteRequest", {}).get(
                    "Key", {}
                )
                into = accepted if self._take_partition_write(table, item) else refused
                into.setdefault(table, []).append(write)
        if refused:
            self.injected["partition_throttle:BatchWriteItem items"] += sum(map(len, refused.values()))
        if not accepted:
            return b"", refused
        return json.dumps({**request, "RequestItems": accepted}).encode(), refused

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.request(
            request.method, f"{self.upstream}{request.path_qs}", data=body, headers=headers
        ) as upstream:
            payload_bytes = await upstream.read()
            return web.Response(
                body=payload_bytes,
                status=upstream.status,
                headers={
                    k: v
                    for k, v in upstream.headers.items()
                    if k.lower() in ("content-type", "x-amzn-requestid", "x-amz-crc32")
                },
            )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()


def _with_unprocessed(response: web.Response, unprocessed: dict[str, list[Any]]) -> web.Response:
    """A BatchWriteItem answer with the writes the proxy refused added to its UnprocessedItems."""
    if response.status != 200 or not isinstance(response.body, bytes):
        return response
    answer = json.loads(response.body)
    pending = answer.setdefault("UnprocessedItems", {})
    for table, writes in unprocessed.items():
        pending.setdefault(table, []).extend(writes)
    # A new body: the upstream's x-amz-crc32 would no longer match it.
    return web.json_response(answer, content_type="application/x-amz-json-1.0")
