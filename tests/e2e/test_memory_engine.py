"""The memory backend's engine process: moto served over keep-alive HTTP/1.1 on the port it
reports, stopped at once."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from dynamo_gateway_server.backends.memory import MotoServerProcess

# moto checks neither keys nor signatures, but routes on the credential scope's service.
_HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Authorization": "AWS4-HMAC-SHA256 Credential=memory/20261126/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=0",
}


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[MotoServerProcess]:
    process = await MotoServerProcess.start()
    yield process
    await process.stop()


def _list_tables_twice(endpoint_url: str) -> list[tuple[int, str | None, object]]:
    """Two calls on one HTTP/1.1 connection: (status, Connection header, socket) of each."""
    address = urlsplit(endpoint_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    seen = []
    try:
        for _ in range(2):
            connection.request("POST", "/", body=b"{}", headers=_HEADERS)
            socket_used = connection.sock
            response = connection.getresponse()
            assert "TableNames" in json.loads(response.read())
            seen.append((response.status, response.getheader("Connection"), socket_used))
    finally:
        connection.close()
    return seen


async def test_the_engine_keeps_the_connection_open_between_calls(engine: MotoServerProcess) -> None:
    first, second = await asyncio.to_thread(_list_tables_twice, engine.endpoint_url)
    assert first[:2] == (200, None), "the engine asked to close the connection after a call"
    assert second[0] == 200
    assert second[2] is first[2], "the second call needed a new connection"


async def test_the_engine_stops_on_sigterm_without_being_killed() -> None:
    engine = await MotoServerProcess.start()
    await engine.stop()
    assert engine.process.returncode == 0


async def test_the_engine_listens_on_the_port_it_reports(engine: MotoServerProcess) -> None:
    # Port 0 was asked for: the child bound a free one itself and said which.
    assert engine.port != 0
    assert engine.endpoint_url == f"http://127.0.0.1:{engine.port}"
    _, writer = await asyncio.open_connection("127.0.0.1", engine.port)
    writer.close()
    await writer.wait_closed()


async def test_an_engine_that_cannot_listen_fails_to_start_with_its_exit_code() -> None:
    with socket.socket() as taken:  # bound and listening: the engine cannot have this port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(RuntimeError, match=r"exited with code [1-9]\d* before it listened"):
            await MotoServerProcess.start(port=taken.getsockname()[1])


def _crash_then_list(endpoint_url: str) -> tuple[int, int]:
    """A request moto itself fails on (an attribute value with no type), then a ListTables on
    the same connection: the status of each."""
    address = urlsplit(endpoint_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    table = {
        "TableName": "crash",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    try:
        create = {**_HEADERS, "X-Amz-Target": "DynamoDB_20120810.CreateTable"}
        connection.request("POST", "/", body=json.dumps(table).encode(), headers=create)
        connection.getresponse().read()
        put = {**_HEADERS, "X-Amz-Target": "DynamoDB_20120810.PutItem"}
        item = b'{"TableName": "crash", "Item": {"pk": {"S": "a"}, "x": {}}}'
        connection.request("POST", "/", body=item, headers=put)
        crashed = connection.getresponse()
        crashed.read()
        connection.request("POST", "/", body=b"{}", headers=_HEADERS)
        listed = connection.getresponse()
        listed.read()
        return crashed.status, listed.status
    finally:
        connection.close()


async def test_a_request_moto_fails_on_is_a_500_and_the_connection_stays_usable(
    engine: MotoServerProcess,
) -> None:
    # cheroot alone answered 500 and then closed the kept-alive connection without saying so:
    # the next request on it broke.
    assert await asyncio.to_thread(_crash_then_list, engine.endpoint_url) == (500, 200)
