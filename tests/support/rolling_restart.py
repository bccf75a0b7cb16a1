"""A rolling restart under load, as the test and the benchmark run it.

Two gateway processes serve the same emulator, as two replicas behind a headless Service
would: the callers' target lists both addresses and gRPC's pick_first uses the first (the
one stopped) while it listens. CALLERS unary callers (PutItem then GetItem, over CHANNELS
channels) and SCANS slow ParallelScans run; the first gateway gets SIGTERM; the load goes
on against the second. `restart_under_load` returns what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dynamo_gateway import GatewayClient
from tests.compat.servers import emulator
from tests.e2e.test_readme import _env, _spawn, _stop, _wait_serving
from tests.support.ports import LOGGED_PORT_ENV, logged_port, reuseport_reservation

CALLERS = 200
CHANNELS = 20
SCANS = 2
ITEMS = 400
SEGMENTS = 4
PAGE_SIZE = 5
PAGE_READ_S = 0.03  # the scans' reader is slow enough that both are mid-way at the SIGTERM
LOAD_BEFORE_STOP_S = 0.7
LOAD_AFTER_EXIT_S = 0.5

TABLES = """\
tables:
  - name: restart
    attributes: {pk: S}
    key: {partition: pk}
"""
_REFUSED = re.compile(r"refused (\d+) new calls")


@dataclass
class Scan:
    keys: list[str] = field(default_factory=list)
    pages_after_stop: int = 0


@dataclass
class RestartOutcome:
    exit_code: int
    calls: int  # PutItem + GetItem pairs answered
    calls_after_exit: int  # of those, answered after the stopped gateway had exited
    failures: list[str]
    slowest_call_s: float  # the slowest pair around the SIGTERM (refused calls wait, then go on)
    scans: list[Scan]
    not_serving_while_listening: bool
    refused: int  # calls the stopped gateway refused as not taken (its log), sent again by the client


@dataclass
class _Gateway:
    process: subprocess.Popen[bytes]
    port: int
    log: pathlib.Path


@contextlib.contextmanager
def _gateway(endpoint_url: str, workers: int, tmp_path: pathlib.Path, name: str) -> Iterator[_Gateway]:
    """A gateway process; workers share a held port (SO_REUSEPORT), a single one binds port 0."""
    with contextlib.ExitStack() as stack:
        port = stack.enter_context(reuseport_reservation()) if workers > 1 else 0
        tables = tmp_path / "tables.yaml"
        tables.write_text(TABLES)
        log = tmp_path / f"{name}.log"
        command = [
            sys.executable, "-m", "dynamo_gateway_server", "--backend", "aws", "--endpoint-url", endpoint_url,
            "--port", str(port), "--workers", str(workers), "--tables-file", str(tables),
            "--grace-period-s", "10", "--shutdown-delay-s", "1",
        ]  # fmt: skip
        env = _env(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")
        process = _spawn(command, log, {**env, **LOGGED_PORT_ENV})
        stack.callback(_stop, process)
        port = port or logged_port(process, log)
        _wait_serving(f"127.0.0.1:{port}", process, log)
        yield _Gateway(process, port, log)


async def restart_under_load(kind: str, workers: int, tmp_path: pathlib.Path) -> RestartOutcome:
    """SIGTERM to a gateway (with `workers` processes) in front of emulator `kind`, under load."""
    with (
        emulator(kind, tmp_path) as backend,
        _gateway(backend.endpoint_url, workers, tmp_path, "stopped") as stopped,
        _gateway(backend.endpoint_url, 1, tmp_path, "other") as other,
    ):
        # pick_first: the stopped gateway while it accepts connections, then the other one.
        both = f"ipv4:127.0.0.1:{stopped.port},127.0.0.1:{other.port}"
        await _fill(both)
        load = _Load(both)
        health = asyncio.ensure_future(_watch_health(f"127.0.0.1:{stopped.port}"))
        running = asyncio.ensure_future(load.run())
        await asyncio.sleep(LOAD_BEFORE_STOP_S)
        load.stopped_at = time.monotonic()
        os.kill(stopped.process.pid, signal.SIGTERM)
        exit_code = await asyncio.to_thread(stopped.process.wait, 60)
        load.exited_at = time.monotonic()
        await asyncio.sleep(LOAD_AFTER_EXIT_S)  # callers go on against the other replica
        load.stop.set()
        await running
        refused = sum(int(n) for n in _REFUSED.findall(stopped.log.read_text()))
    return RestartOutcome(
        exit_code,
        load.calls,
        load.calls_after_exit,
        load.failures,
        load.slowest_s,
        load.scans,
        await health,
        refused,
    )


async def _fill(target: str) -> None:
    async with GatewayClient.connect(target) as client:
        for first in range(0, ITEMS, 25):
            batch = [{"pk": f"item-{n:03d}"} for n in range(first, min(first + 25, ITEMS))]
            if (await client.batch_write({"restart": batch})).unprocessed_puts:
                raise RuntimeError("the emulator left puts unprocessed while filling the table")


class _Load:
    """CALLERS unary callers over CHANNELS channels, and SCANS slow ParallelScans, until stop."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.stop = asyncio.Event()
        self.stopped_at = float("inf")
        self.exited_at = float("inf")
        self.failures: list[str] = []
        self.calls = 0
        self.calls_after_exit = 0
        self.slowest_s = 0.0
        self.scans = [Scan() for _ in range(SCANS)]
        self._numbers = itertools.count()

    async def run(self) -> None:
        clients = [GatewayClient.connect(self.target) for _ in range(CHANNELS)]
        try:
            await asyncio.gather(
                *(self._caller(clients[n % CHANNELS]) for n in range(CALLERS)),
                *(self._scan(clients[n], scan) for n, scan in enumerate(self.scans)),
            )
        finally:
            for client in clients:
                await client.close()

    async def _caller(self, client: GatewayClient) -> None:
        while not self.stop.is_set():
            key = {"pk": f"call-{next(self._numbers)}"}
            started = time.monotonic()
            try:
                await client.put_item("restart", key)
                if await client.get_item("restart", key) != key:
                    raise AssertionError(f"{key} was acknowledged but not read back")
            except Exception as error:  # every failure is reported
                self.failures.append(
                    f"{error} at {time.monotonic() - self.stopped_at:+.3f} s after the SIGTERM"
                )
                return
            now = time.monotonic()
            self.calls += 1
            self.calls_after_exit += now > self.exited_at
            if started < self.exited_at and now > self.stopped_at:
                self.slowest_s = max(self.slowest_s, now - started)

    async def _scan(self, client: GatewayClient, scan: Scan) -> None:
        async for page in client.parallel_scan(
            "restart",
            SEGMENTS,
            filter="begins_with(pk, :item)",
            values={":item": "item-"},
            page_size=PAGE_SIZE,
        ):
            scan.keys += [item["pk"] for item in page.items]
            if time.monotonic() > self.stopped_at:
                scan.pages_after_stop += 1
            await asyncio.sleep(PAGE_READ_S)


async def _watch_health(target: str) -> bool:
    """Whether NOT_SERVING arrived while a new connection to target was still answered."""
    async with grpc.aio.insecure_channel(target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60)
        try:
            async for update in watch:
                if update.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    return await _answers_on_a_new_connection(target)
        except grpc.aio.AioRpcError:
            pass  # the watch ends with the server
    return False


async def _answers_on_a_new_connection(target: str) -> bool:
    options = [("grpc.use_local_subchannel_pool", 1)]  # a connection of its own, not the watch's
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        try:
            answer = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.aio.AioRpcError:
            return False
    return answer.status == health_pb2.HealthCheckResponse.NOT_SERVING
