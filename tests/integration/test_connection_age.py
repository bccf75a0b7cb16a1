"""Connections are rotated (max connection age) without failing a call, so callers spread over replicas."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from dynamo_gateway import GatewayClient
from dynamo_gateway_server.tables import TableSpec

from .conftest import Emulator, gateway_declaring


async def _count_rotations(channel: grpc.aio.Channel, rotations: list[float]) -> None:
    """Appends a time each time the channel leaves READY (its connection was closed under it)."""
    state = channel.get_state(try_to_connect=True)
    while True:
        await channel.wait_for_state_change(state)
        if state == grpc.ChannelConnectivity.READY:
            rotations.append(time.monotonic())
        state = channel.get_state(try_to_connect=True)


async def test_a_busy_connection_is_rotated_and_no_call_fails(emulator: Emulator) -> None:
    if emulator.kind != "moto":
        pytest.skip("connection handling is the gateway's, whatever is behind it: moto is enough")
    spec = TableSpec("rotated", {"pk": "S"}, "pk")
    async with gateway_declaring(emulator.endpoint_url, [spec], max_connection_age_s=0.5) as gateway:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
        rotations: list[float] = []
        watcher = asyncio.create_task(_count_rotations(channel, rotations))
        calls = 0
        async with GatewayClient(channel, timeout_s=10) as client:
            until = time.monotonic() + 3
            while time.monotonic() < until:  # every call must succeed: none may meet a closing connection
                await asyncio.gather(
                    *(client.put_item(spec.name, {"pk": f"k{calls + i}"}) for i in range(4)),
                    client.get_item(spec.name, {"pk": "k0"}),
                )
                calls += 5
            watcher.cancel()
    assert len(rotations) >= 2, rotations  # the connection was replaced while calls kept coming
    assert calls > 50
