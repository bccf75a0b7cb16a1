"""Real servers on loopback for the client-facing tests (boto3 facade, CLI, Go and Node clients).

Emulators (moto's server mode, dynalite) and the gateway itself run as child
processes, exactly as deployed: the clients under test include synchronous ones,
which would block an in-process grpc.aio server sharing their thread. Every
process is killed when its context ends.

Every server binds port 0 and says which port it got: moto and dynalite (through
tests/support/dynalite_launcher.js) on their first line of stdout, the gateway in its
"serving on" log line.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pathlib
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.emulators import ROOT, dynalite_args
from tests.support.ports import LOGGED_PORT_ENV, failed_to_start, logged_port

# Emulators accept any keys; fixed ones keep a developer's real credentials out of the tests.
EMULATOR_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}
START_TIMEOUT_S = 60.0
_children = itertools.count(1)


def _reported_port(process: subprocess.Popen[bytes], log: pathlib.Path) -> int:
    """The port a child writes as its first line of stdout once it listens (moto_server.py,
    dynalite_launcher.js)."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_S)
    if not ready:
        raise failed_to_start(process, log, f"reported no port within {START_TIMEOUT_S:.0f} s")
    line = process.stdout.readline()
    if not line:  # end of file: it exited before it listened
        raise failed_to_start(process, log, f"exited with {process.wait()} before it listened")
    return int(line)


@contextlib.contextmanager
def _child(
    args: list[str], log: pathlib.Path, env: dict[str, str] | None = None, *, stdout_pipe: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """The child process, its output in `log` (all but stdout, with `stdout_pipe`)."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else output,
            stderr=output if stdout_pipe else subprocess.STDOUT,
            env={**os.environ, **EMULATOR_ENV, **(env or {})},
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


@dataclass(frozen=True)
class Emulator:
    kind: str
    endpoint_url: str
    supports_transactions: bool


@contextlib.contextmanager
def emulator(kind: str, logs: pathlib.Path) -> Iterator[Emulator]:
    """moto's server mode (as the memory backend runs it) or dynalite, on a loopback port."""
    log = logs / f"{kind}-{next(_children)}.log"
    if kind == "moto":
        args = [sys.executable, "-m", "dynamo_gateway_server.backends.moto_server", "--port", "0"]
        with _child(args, log, stdout_pipe=True) as process:
            port = _reported_port(process, log)
            yield Emulator(kind, f"http://127.0.0.1:{port}", supports_transactions=True)
    elif kind == "dynalite":
        with _child(dynalite_args(0), log, stdout_pipe=True) as process:
            port = _reported_port(process, log)
            yield Emulator(kind, f"http://127.0.0.1:{port}", supports_transactions=False)
    else:
        raise ValueError(kind)


@dataclass(frozen=True)
class GatewayProcess:
    target: str
    port: int
    log: pathlib.Path


def _wait_serving(target: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway at {target} never became SERVING")
            time.sleep(0.1)


def _serving_gateway(args: list[str], log: pathlib.Path, *flags: str) -> Iterator[GatewayProcess]:
    """Runs the gateway's command line `args` on port 0, then `flags`, until the context ends."""
    args = [*args, "--port", "0", "--grace-period-s", "1", *flags]
    with _child(args, log, env=LOGGED_PORT_ENV) as process:
        port = logged_port(process, log, START_TIMEOUT_S)
        target = f"127.0.0.1:{port}"
        _wait_serving(target)
        yield GatewayProcess(target, port, log)


@contextlib.contextmanager
def gateway(endpoint_url: str, logs: pathlib.Path, *flags: str) -> Iterator[GatewayProcess]:
    """`python -m dynamo_gateway_server` with the aws backend pointed at endpoint_url."""
    args = [sys.executable, "-m", "dynamo_gateway_server", "--backend", "aws", "--endpoint-url", endpoint_url]
    yield from _serving_gateway(args, logs / f"gateway-{next(_children)}.log", *flags)


@contextlib.contextmanager
def memory_gateway(logs: pathlib.Path, tables_file: pathlib.Path | None = None) -> Iterator[GatewayProcess]:
    """The gateway as `make run` starts it: memory backend, the example tables."""
    tables = tables_file or ROOT / "examples" / "tables.yaml"
    args = [sys.executable, "-m", "dynamo_gateway_server", "--tables-file", str(tables)]
    yield from _serving_gateway(args, logs / f"gateway-memory-{next(_children)}.log")
