"""Hundreds of idle HTTP/2 connections: other callers are served as usual, and the idle ones are closed.

Each idle connection is a raw socket that did what a gRPC client does on connecting (the HTTP/2
preface and SETTINGS) and then nothing. After --max-connection-idle-s the gateway says GOAWAY
and closes it. Runs against moto only: the backend plays no part in it.
"""

from __future__ import annotations

import asyncio
import resource

import pytest

from dynamo_gateway import GatewayClient
from dynamo_gateway_server.tables import TableSpec

from .conftest import Emulator, gateway_declaring

IDLE_CONNECTIONS = 300
IDLE_S = 1.0
# An HTTP/2 client's first bytes: the preface, then an empty SETTINGS frame.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")
SETTINGS_ACK = bytes.fromhex("000000040100000000")
GOAWAY = 0x7


class IdleConnection:
    """A connection that said hello in HTTP/2 and then nothing; reads what the server sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> IdleConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(PREFACE)
        connection = cls(reader, writer)
        await connection.frame()  # the server's SETTINGS, which a client acknowledges
        writer.write(SETTINGS_ACK)
        return connection

    async def frame(self) -> int:
        """The type of the server's next frame (its payload skipped)."""
        head = await self.reader.readexactly(9)
        await self.reader.readexactly(int.from_bytes(head[:3], "big"))
        return head[3]

    async def frames_until_closed(self) -> list[int]:
        types = []
        try:
            while True:
                types.append(await self.frame())
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return types

    def close(self) -> None:
        self.writer.close()


def _connections_the_fd_limit_allows() -> int:
    # Both ends are in this process: two descriptors each, plus room for everything else.
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return min(IDLE_CONNECTIONS, (soft - 256) // 2)


async def test_idle_connections_do_not_disturb_others_and_are_closed(emulator: Emulator) -> None:
    if emulator.kind != "moto":
        pytest.skip("the backend plays no part; it runs against moto")
    count = _connections_the_fd_limit_allows()
    if count < 50:
        pytest.skip(f"the open-files limit (ulimit -n) leaves room for {count} connections")
    table = TableSpec("idle-callers", {"pk": "S"}, "pk")
    async with gateway_declaring(emulator.endpoint_url, [table], max_connection_idle_s=IDLE_S) as gateway:
        idle = await asyncio.gather(*(IdleConnection.open(gateway.port) for _ in range(count)))
        try:
            async with GatewayClient.connect(f"127.0.0.1:{gateway.port}", timeout_s=10) as client:
                for n in range(20):
                    await client.put_item(table.name, {"pk": f"busy-{n}"})
                    assert await client.get_item(table.name, {"pk": f"busy-{n}"}) == {"pk": f"busy-{n}"}
            # Closed by the gateway, politely: a budget far beyond IDLE_S, never the 30 minutes' default.
            async with asyncio.timeout(20):
                endings = await asyncio.gather(*(connection.frames_until_closed() for connection in idle))
        finally:
            for connection in idle:
                connection.close()
        assert all(GOAWAY in frames for frames in endings)
        async with GatewayClient.connect(f"127.0.0.1:{gateway.port}", timeout_s=10) as client:
            assert await client.get_item(table.name, {"pk": "busy-0"}) == {"pk": "busy-0"}
