"""One running gateway (memory backend, the example tables) shared by the client tests here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.compat import servers


@pytest.fixture(scope="session")
def running_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.GatewayProcess]:
    with servers.memory_gateway(tmp_path_factory.mktemp("clients-gateway")) as gateway:
        yield gateway
