"""A service's own tests against a real dynamo-gateway, with the test kit's fixtures.

pytest.ini names the tables file; the kit starts one gateway (memory backend) for the
session when the first test asks for it, and empties the tables before each test that takes
dgw_client. Nothing else to set up: no conftest.py, no gateway started by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

from dynamo_gateway import GatewayClient

ORDER = {"customer": "c-1", "order": "2024-0001", "total": Decimal("12.50"), "lines": ["tea", "cups"]}


async def test_an_order_put_is_read_back(dgw_client: GatewayClient) -> None:
    await dgw_client.put_item("orders", ORDER)

    stored = await dgw_client.get_item("orders", {"customer": "c-1", "order": "2024-0001"})

    assert stored == ORDER


async def test_every_test_starts_with_empty_tables(dgw_client: GatewayClient) -> None:
    # The test above left an order behind; dgw_client emptied the table before this one.
    assert [item async for item in dgw_client.scan("orders")] == []


async def test_a_customers_orders_come_in_order(dgw_client: GatewayClient) -> None:
    for order in ("2024-0003", "2024-0001", "2024-0002"):
        await dgw_client.put_item("orders", {"customer": "c-2", "order": order})
    await dgw_client.put_item("orders", {"customer": "c-3", "order": "2024-0004"})

    orders = dgw_client.query("orders", "customer = :customer", values={":customer": "c-2"})

    assert [item["order"] async for item in orders] == ["2024-0001", "2024-0002", "2024-0003"]


def test_another_process_reaches_the_gateway_at_dgw_target(dgw_target: str, dgw_empty_tables: None) -> None:
    # dgw_target ("127.0.0.1:PORT") is what a Go or Node service under test is given; here the
    # client's `dgw` command line plays that service.
    def dgw(*args: str) -> str:
        command = [sys.executable, "-m", "dynamo_gateway.cli", "--target", dgw_target, *args]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    dgw("put", "orders", '{"customer": "c-4", "order": "2024-0005", "total": 3}')

    assert json.loads(dgw("get", "orders", '{"customer": "c-4", "order": "2024-0005"}')) == {
        "customer": "c-4",
        "order": "2024-0005",
        "total": 3,
    }
