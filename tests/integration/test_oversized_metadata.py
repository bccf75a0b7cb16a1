"""Oversized metadata: a clear RESOURCE_EXHAUSTED from gRPC past --max-metadata-bytes, nothing in a log.

gRPC refuses metadata past its bound before the gateway sees the call; below it, the call goes
on to authentication as usual. Left to its defaults gRPC refuses metadata between 8 and 16 KB at
random; the gateway sets one bound (16 KB), so the same call always gets the same answer. A
token, however large, never reaches a log (the gateway's, at DEBUG, nor gRPC's own on stderr),
and other callers are served throughout. Runs against moto only: the backend plays no part.
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Callable

import grpc
import pytest

from dynamo_gateway import RequestTooLargeError
from dynamo_gateway.errors import from_rpc_error
from dynamo_gateway.v1 import service_pb2, service_pb2_grpc
from dynamo_gateway_server.security.auth import token_digest
from dynamo_gateway_server.tables import TableSpec
from tests.support.builders import item_map, py
from tests.support.logs import CapturedLogs, capture_logs  # noqa: F401  (a fixture)

from .conftest import Emulator, gateway_declaring

TOKEN = "valid-token-" + "k" * 40
HUGE_TOKEN = "NEVER-LOGGED-" + "s" * 100_000
# Between gRPC's default soft (8 KB) and hard (16 KB) limits, under the gateway's one bound.
UNDER_THE_BOUND = 12_000
TRIES = 10


async def test_oversized_metadata_gets_a_clear_status_and_reaches_no_log(
    emulator: Emulator,
    tmp_path: pathlib.Path,
    capture_logs: Callable[..., CapturedLogs],  # noqa: F811  (the fixture imported above)
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    if emulator.kind != "moto":
        pytest.skip("the backend plays no part; it runs against moto")
    logs = capture_logs("DEBUG")  # the gateway's "rpc started" lines show a call's metadata
    for sdk in ("botocore", "aiobotocore"):  # its DEBUG lines are many and slow, and not the gateway's
        caplog.set_level(logging.WARNING, logger=sdk)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"tokens:\n  - name: caller\n    sha256: {token_digest(TOKEN)}\n")
    table = TableSpec("metadata", {"pk": "S"}, "pk")
    async with gateway_declaring(emulator.endpoint_url, [table], auth_tokens_file=str(tokens)) as gateway:
        await gateway.backend.call("PutItem", {"TableName": table.name, "Item": {"pk": {"S": "a"}}})
        request = service_pb2.GetItemRequest(table_name=table.name)
        item_map(request.key, {"pk": "a"})
        authorized = ("authorization", f"Bearer {TOKEN}")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            stub = service_pb2_grpc.DynamoDBServiceStub(channel)

            async def code_of(metadata: list[tuple[str, str]]) -> grpc.StatusCode:
                try:
                    response = await stub.GetItem(request, metadata=metadata, timeout=10)
                except grpc.aio.AioRpcError as error:
                    return error.code()
                assert py(response.item) == {"pk": "a"}
                return grpc.StatusCode.OK

            refused = {
                "one 100 KB header": [("x-large", "v" * 100_000), authorized],
                "500 headers": [*((f"x-many-{n}", "v" * 100) for n in range(500)), authorized],
                "a 100 KB token": [("authorization", f"Bearer {HUGE_TOKEN}")],
            }
            for case, metadata in refused.items():
                with pytest.raises(grpc.aio.AioRpcError) as refusal:
                    await stub.GetItem(request, metadata=metadata, timeout=10)
                assert refusal.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, case
                assert isinstance(from_rpc_error(refusal.value), RequestTooLargeError), case
                assert await code_of([authorized]) == grpc.StatusCode.OK, f"others are served after {case}"
            # Under the bound: always let in (gRPC's defaults refused about half of these at random).
            large_but_allowed = [("x-large", "v" * UNDER_THE_BOUND), authorized]
            assert {await code_of(large_but_allowed) for _ in range(TRIES)} == {grpc.StatusCode.OK}
            # A token under the bound reaches authentication, which refuses it without repeating it.
            unknown_token = [("authorization", f"Bearer {HUGE_TOKEN[:UNDER_THE_BOUND]}")]
            assert await code_of(unknown_token) == grpc.StatusCode.UNAUTHENTICATED
    assert "NEVER-LOGGED" not in logs.text() and TOKEN not in logs.text()
    captured = capfd.readouterr()
    assert "NEVER-LOGGED" not in captured.out + captured.err
