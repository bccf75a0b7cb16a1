"""The fuzz suites' target: one real gateway per emulator (moto's server mode, as the memory backend
runs it, and dynalite), with the fuzz tables, and a way to bring dynalite back from the fuzzers'
thread when an input killed or hung it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from dynamo_gateway_server.backends.memory import MotoServerProcess
from tests.fuzz.rig import DynaliteKeeper, fuzz_gateway
from tests.support.emulators import DynaliteProcess

# How long the fuzzers' thread waits for dynalite to come back.
REVIVE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class FuzzTarget:
    backend: str
    address: str
    after_trouble: Callable[[], None]
    """Called from the fuzzers' thread after an UNAVAILABLE or DEADLINE_EXCEEDED answer."""


@pytest.fixture(scope="session", params=["memory", "dynalite"])
def fuzz_emulator(request: pytest.FixtureRequest) -> MotoServerProcess | DynaliteProcess:
    """moto's server mode (what the memory backend runs) or dynalite, the session's own."""
    # Sync, so that it may ask for the async session fixtures by name.
    return request.getfixturevalue("moto" if request.param == "memory" else "dynalite_server")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
async def fuzz_target(fuzz_emulator: MotoServerProcess | DynaliteProcess) -> AsyncIterator[FuzzTarget]:
    loop = asyncio.get_running_loop()
    if isinstance(fuzz_emulator, MotoServerProcess):
        async with fuzz_gateway(fuzz_emulator.endpoint_url) as gateway:
            yield FuzzTarget("memory", f"127.0.0.1:{gateway.port}", lambda: None)
        return
    await fuzz_emulator.ensure_running()
    async with fuzz_gateway(fuzz_emulator.endpoint_url) as gateway:
        keeper = DynaliteKeeper(fuzz_emulator, gateway.dynamodb)

        def revive() -> None:
            asyncio.run_coroutine_threadsafe(keeper.revive_if_needed(), loop).result(REVIVE_TIMEOUT_S)

        yield FuzzTarget("dynalite", f"127.0.0.1:{gateway.port}", revive)
