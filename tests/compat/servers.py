"""Real servers on loopback for the client-facing tests (boto3 facade, CLI, Go and Node clients).

Emulators (moto's server mode, dynalite) and the gateway itself run as child
processes, exactly as deployed: the clients under test include synchronous ones,
which would block an in-process grpc.aio server sharing their thread. Every
process is killed when its context ends.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dynamo_gateway_server.backends.memory import free_loopback_port
from tests.support.emulators import ROOT, dynalite_args

# Emulators accept any keys; fixed ones keep a developer's real credentials out of the tests.
EMULATOR_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: pathlib.Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {port}:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)


@contextlib.contextmanager
def _child(
    args: list[str], port: int, log: pathlib.Path, env: dict[str, str] | None = None
) -> Iterator[None]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **EMULATOR_ENV, **(env or {})},
        )
    try:
        _wait_for_port(port, process, log, timeout_s=60)
        yield
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class Emulator:
    kind: str
    endpoint_url: str
    supports_transactions: bool


@contextlib.contextmanager
def emulator(kind: str, logs: pathlib.Path) -> Iterator[Emulator]:
    """moto's server mode or dynalite on a free loopback port."""
    port = free_loopback_port()
    if kind == "moto":
        args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    elif kind == "dynalite":
        args = dynalite_args(port)
    else:
        raise ValueError(kind)
    with _child(args, port, logs / f"{kind}-{port}.log"):
        yield Emulator(kind, f"http://127.0.0.1:{port}", supports_transactions=kind == "moto")


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


@contextlib.contextmanager
def gateway(endpoint_url: str, logs: pathlib.Path, *flags: str) -> Iterator[GatewayProcess]:
    """`python -m dynamo_gateway_server` with the aws backend pointed at endpoint_url."""
    port = free_loopback_port()
    log = logs / f"gateway-{port}.log"
    args = [sys.executable, "-m", "dynamo_gateway_server", "--backend", "aws", "--endpoint-url", endpoint_url]
    args += ["--port", str(port), "--grace-period-s", "1", "--log-level", "WARNING", *flags]
    with _child(args, port, log, env={"DYNAMO_GATEWAY_LOG_FORMAT": "json"}):
        target = f"127.0.0.1:{port}"
        _wait_serving(target)
        yield GatewayProcess(target, port, log)


@contextlib.contextmanager
def memory_gateway(logs: pathlib.Path, tables_file: pathlib.Path | None = None) -> Iterator[GatewayProcess]:
    """The gateway as `make run` starts it: memory backend, the example tables."""
    port = free_loopback_port()
    log = logs / f"gateway-memory-{port}.log"
    tables = tables_file or ROOT / "examples" / "tables.yaml"
    args = [sys.executable, "-m", "dynamo_gateway_server", "--tables-file", str(tables)]
    args += ["--port", str(port), "--grace-period-s", "1", "--log-level", "WARNING"]
    with _child(args, port, log, env={"DYNAMO_GATEWAY_LOG_FORMAT": "json"}):
        target = f"127.0.0.1:{port}"
        _wait_serving(target)
        yield GatewayProcess(target, port, log)
