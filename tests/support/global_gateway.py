"""A gateway in the first of several emulated regions (tests/support/regions.py), with a regions file.

Shared by tests/integration/test_global_tables.py and bench/global_tables.py: the regions
file names each region's fault proxy as its endpoint, and the gateway runs in this process
with one client per region, signing for that region (moto keeps regions apart by it).
"""

from __future__ import annotations

import pathlib
from typing import Any

from dynamo_gateway_server.app import Clocks, Gateway, load_regions
from dynamo_gateway_server.config import Settings
from tests.support.backends import aws_backend_for
from tests.support.regions import Regions


def write_regions_file(
    path: pathlib.Path, regions: Regions, tables: str, evacuated: tuple[str, ...] = (), extra: str = ""
) -> None:
    """The regions file: every region with its proxy as endpoint, `tables` (YAML lines) under
    global_tables, `extra` (YAML) at the end."""
    endpoints = regions.endpoints()
    lines = ["regions:", *(f"  {r}: {{endpoint: {endpoints[r]!r}}}" for r in regions.names)]
    lines.append(f"evacuated: [{', '.join(evacuated)}]")
    lines += ["global_tables:", *("  " + line for line in tables.strip().splitlines())]
    path.write_text("\n".join(lines) + "\n" + extra)


async def start_regional_gateway(
    regions: Regions, path: pathlib.Path, clocks: Clocks | None = None, **overrides: Any
) -> Gateway:
    """A started gateway in regions.names[0] with the regions file at `path`; `overrides` are settings."""
    local = regions.names[0]
    settings = Settings(
        **{
            "port": 0,
            "backend": "aws",
            "region": local,
            "regions_file": str(path),
            "grace_period_s": 0,
            **overrides,
        }
    )
    config = load_regions(settings)
    assert config is not None
    endpoints = regions.endpoints()
    clients = {r: await aws_backend_for(endpoints[r], region=r, connect_timeout_s=0.5) for r in regions.names}
    gateway = Gateway(
        settings,
        clients.pop(local),
        regions=config,
        regional_clients=clients,
        clocks=clocks or Clocks(),
    )
    await gateway.start()
    return gateway
