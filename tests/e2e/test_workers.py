"""`--workers N`: several gateway processes share one port and stop together on SIGTERM.

Every server here binds a port no other process can take first: moto and the uvloop
gateway bind port 0 and report theirs; workers share a port held for them
(ports.reuseport_reservation).
"""

from __future__ import annotations

import os
import signal
import sys

import grpc

from dynamo_gateway.v1 import service_pb2, service_pb2_grpc
from tests.compat.servers import emulator
from tests.e2e.test_readme import ROOT, _children, _env, _spawn, _stop, _wait_serving
from tests.support.ports import LOGGED_PORT_ENV, logged_port, reuseport_reservation


def test_two_workers_share_the_port_and_stop_on_sigterm(tmp_path) -> None:
    # Not port 0: the parent binds nothing, so each worker would bind a port of its own (and
    # the settings refuse workers > 1 on port 0). The reservation keeps the port for them.
    with emulator("moto", tmp_path) as moto, reuseport_reservation() as port:
        _two_workers_on(port, moto.endpoint_url, tmp_path)


def _two_workers_on(port: int, endpoint_url: str, tmp_path) -> None:
    log = tmp_path / "workers.log"
    command = [
        sys.executable, "-m", "dynamo_gateway_server", "--backend", "aws", "--workers", "2",
        "--endpoint-url", endpoint_url, "--port", str(port),
        "--tables-file", str(ROOT / "examples" / "tables.yaml"), "--grace-period-s", "2",
    ]  # fmt: skip
    env = _env(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")
    parent = _spawn(command, log, env)
    try:
        _wait_serving(f"127.0.0.1:{port}", parent, log)
        workers = _children(parent.pid)
        assert len(workers) == 2, log.read_text()
        # Fresh connections land on either worker; both serve the same backend.
        for i in range(6):
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = service_pb2_grpc.DynamoDBServiceStub(channel)
                key = {"pk": {"s": f"w{i}"}, "sk": {"s": "x"}}
                stub.PutItem(service_pb2.PutItemRequest(table_name="app", item=key), timeout=20)
                assert stub.GetItem(service_pb2.GetItemRequest(table_name="app", key=key), timeout=20).found
        os.kill(parent.pid, signal.SIGTERM)
        assert parent.wait(timeout=30) == 0, log.read_text()
        for pid in workers:
            assert (
                not os.path.exists(f"/proc/{pid}")
                or open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
            )
    finally:
        _stop(parent)


def test_the_gateway_serves_on_uvloop(tmp_path) -> None:
    log = tmp_path / "uvloop.log"
    command = [sys.executable, "-m", "dynamo_gateway_server", "--port", "0", "--event-loop", "uvloop"]
    server = _spawn(command, log, _env(**LOGGED_PORT_ENV))
    try:
        port = logged_port(server, log)
        _wait_serving(f"127.0.0.1:{port}", server, log)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = service_pb2_grpc.DynamoDBServiceStub(channel)
            response = stub.GetItem(
                service_pb2.GetItemRequest(table_name="missing", key={"pk": {"s": "a"}}), timeout=20
            )
            raise AssertionError(f"a missing table answered {response}")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND
    finally:
        assert _stop(server) == 0, log.read_text()
