"""dynalite as the suite runs it (tests/support/emulators.py): on the port it bound and reported,
revived empty on that same port after a crash, with a clear error when the port is gone."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket

import pytest

from dynamo_gateway_server.tables import create_table_params
from tests.support.backends import aws_backend_for
from tests.support.emulators import DynaliteProcess
from tests.support.tables import APP_TABLE


async def _table_names(endpoint_url: str) -> list[str]:
    backend = await aws_backend_for(endpoint_url)
    try:
        return list((await backend.call("ListTables", {}))["TableNames"])
    finally:
        await backend.close()


async def _kill(dynalite: DynaliteProcess) -> None:
    assert dynalite.process is not None
    os.kill(dynalite.process.pid, signal.SIGKILL)  # a crash: no chance to clean up
    await dynalite.process.wait()


async def test_a_dead_dynalite_comes_back_empty_on_the_same_endpoint(
    dynalite_server: DynaliteProcess,
) -> None:
    await dynalite_server.ensure_running()
    endpoint_url, restarts = dynalite_server.endpoint_url, dynalite_server.restarts
    assert dynalite_server.port != 4567  # bound port 0, where dynalite's command line takes 4567
    backend = await aws_backend_for(endpoint_url)
    try:
        await backend.call(
            "CreateTable", create_table_params(dataclasses.replace(APP_TABLE, name="before-crash"))
        )
    finally:
        await backend.close()
    assert "before-crash" in await _table_names(endpoint_url)

    await _kill(dynalite_server)
    await dynalite_server.ensure_running()

    # Session fixtures (fault proxies, gateways) hold the endpoint: it must not change.
    assert dynalite_server.endpoint_url == endpoint_url
    assert dynalite_server.restarts == restarts + 1
    assert await _table_names(endpoint_url) == []  # a new process, in memory: empty


async def test_a_revival_on_a_taken_port_fails_with_a_clear_error() -> None:
    dynalite = DynaliteProcess()
    await dynalite.start()
    try:
        await _kill(dynalite)
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", dynalite.port))
            squatter.listen()
            with pytest.raises(
                RuntimeError, match=rf"port {dynalite.port} .*another process took it"
            ) as failed:
                await dynalite.ensure_running()
        assert "EADDRINUSE" in str(failed.value)  # the launcher's own words, from its stderr
    finally:
        await dynalite.stop()
