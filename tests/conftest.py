"""Fixtures every tier shares: each DynamoDB-compatible emulator runs once per test session.

moto (its server mode, through the same MotoServerProcess as the memory backend) and
dynalite start on the first test that asks for them and stop at the end of the
session. dynalite can die on some inputs: `dynalite` restarts it (empty) before a
test that finds it dead, so one suite's crash does not fail the next.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dynamo_gateway_server.backends.memory import MotoServerProcess
from tests.support.emulators import DynaliteProcess


@pytest.fixture(scope="session")
async def moto() -> AsyncIterator[MotoServerProcess]:
    process = await MotoServerProcess.start()
    yield process
    await process.stop()


@pytest.fixture(scope="session")
async def dynalite_server() -> AsyncIterator[DynaliteProcess]:
    """The session's dynalite, as it is (session-scoped fixtures check it is alive themselves)."""
    process = DynaliteProcess()
    await process.start()
    yield process
    await process.stop()


@pytest.fixture
async def dynalite(dynalite_server: DynaliteProcess) -> DynaliteProcess:
    """The session's dynalite, running."""
    await dynalite_server.ensure_running()
    return dynalite_server
