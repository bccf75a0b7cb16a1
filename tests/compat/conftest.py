"""Fixtures of the differential test: for each emulator kind, one emulator that boto3 talks to
directly and one behind a gateway (a child process) that the facade talks to.

The two emulators get identically created tables, so every answer can be compared
as it is, table names and all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.compat import harness, servers
from tests.compat.script import Case, cases_for


@dataclass(frozen=True)
class Stack:
    kind: str
    # boto3 talks to this one directly.
    direct: servers.Emulator
    # The gateway fronts this one.
    behind: servers.Emulator
    gateway: servers.GatewayProcess
    cases: list[Case]


@pytest.fixture(scope="session", params=["moto", "dynalite"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp(f"compat-{request.param}")
    with contextlib.ExitStack() as processes:
        direct = processes.enter_context(servers.emulator(request.param, logs))
        behind = processes.enter_context(servers.emulator(request.param, logs))
        gateway = processes.enter_context(servers.gateway(behind.endpoint_url, logs))
        harness.create_tables(direct.endpoint_url)
        yield Stack(request.param, direct, behind, gateway, cases_for(request.param))


@pytest.fixture(scope="session")
def reference(stack: Stack) -> list[harness.Outcome]:
    """boto3's own outcomes, straight to the emulator: what the facade must reproduce."""
    return harness.run_sync(harness.direct_client(stack.direct.endpoint_url), stack.cases)
