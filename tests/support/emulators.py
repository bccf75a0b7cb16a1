"""DynamoDB-compatible servers the tests run on loopback: dynalite (npm) and a fault proxy.

moto's server mode comes from the product itself (backends.memory.MotoServerProcess).
"""

from __future__ import annotations

import asyncio
import collections
import json
import pathlib
import time

import aiohttp
from aiohttp import web
from dynamo_gateway_server.backends.memory import free_loopback_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
DYNALITE_CLI = ROOT / "tools" / "node_modules" / "dynalite" / "cli.js"


class DynaliteProcess:
    """dynalite on a fixed loopback port; restarted (empty) when it has died.

    dynalite can crash or hang on some filter and deeply nested condition
    expressions, so the suite keeps one per session and revives it on demand.
    """

    def __init__(self) -> None:
        self.port = free_loopback_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0

    async def start(self) -> None:
        if not DYNALITE_CLI.exists():
            raise RuntimeError(f"{DYNALITE_CLI} is missing: run scripts/bootstrap.sh")
        self.process = await asyncio.create_subprocess_exec(
            "node",
            str(DYNALITE_CLI),
            *("--host", "127.0.0.1", "--port", str(self.port)),
            *("--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await wait_for_port(
            self.port, lambda: self.process is not None and self.process.returncode is not None
        )

    async def ensure_running(self) -> None:
        if self.process is None or self.process.returncode is not None:
            self.restarts += 1
            await self.start()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def wait_for_port(port: int, died=lambda: False, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if died():
            raise RuntimeError(f"server for port {port} exited while starting")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port}") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


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


class FaultProxy:
    """An HTTP proxy in front of a real emulator that injects DynamoDB errors.

    Requests whose TableName starts with a prefix of FAULTS_BY_TABLE_PREFIX get
    that error; everything else goes to the upstream server unchanged.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_loopback_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.faults_served = 0
        # (operation, table) -> requests seen, e.g. ("Scan", "app-3").
        self.requests: collections.Counter[tuple[str, str]] = collections.Counter()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        table = ""
        try:
            table = json.loads(body or b"{}").get("TableName", "")
        except ValueError:
            pass
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        self.requests[(operation, table)] += 1
        for prefix, (status, code, message) in FAULTS_BY_TABLE_PREFIX.items():
            if table.startswith(prefix):
                self.faults_served += 1
                payload = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
                return web.json_response(payload, status=status, content_type="application/x-amz-json-1.0")
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
