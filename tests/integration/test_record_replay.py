"""Record a session against an emulator, replay it with no DynamoDB at all: the same answers, byte for byte.

The recording gateway sits behind a fault proxy that throttles a tenth of the calls (the
gateway retries them, and the cassette holds each attempt). The replaying gateway is built
from settings alone (`--backend replay --cassette PATH`), with the proxy down, so nothing it
answers can come from the emulator.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from dynamo_gateway import GatewayClient, ReplayMismatchError
from dynamo_gateway_server.tables import TableSpec
from tests.integration.conftest import Emulator
from tests.support import scripted_session
from tests.support.emulators import FaultPlan, FaultProxy

ROUNDS = 2


@pytest.fixture
async def throttling_proxy(emulator: Emulator) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(emulator.endpoint_url, FaultPlan(seed=16, throttle_rate=0.1))
    await proxy.start()
    yield proxy
    await proxy.stop()


async def _record(
    proxy: FaultProxy, spec: TableSpec, cassette: Path, rounds: int, transactions: bool
) -> list[scripted_session.Answer]:
    gateway = await scripted_session.recording_gateway(proxy.endpoint_url, spec, cassette)
    return await scripted_session.session_through(gateway, spec, rounds, transactions)


@pytest.fixture
def spec(request: pytest.FixtureRequest) -> TableSpec:
    name = "replay-" + request.node.name.split("[")[-1].rstrip("]")
    return TableSpec(**{**scripted_session.SESSION_TABLE.__dict__, "name": f"{name}-{id(request) % 10**6}"})


async def test_a_replayed_session_answers_byte_for_byte_as_recorded(
    emulator: Emulator, throttling_proxy: FaultProxy, spec: TableSpec, tmp_path: Path
) -> None:
    cassette = tmp_path / "session.jsonl"
    recorded = await _record(throttling_proxy, spec, cassette, ROUNDS, emulator.supports_transactions)
    await throttling_proxy.go_down()

    gateway = await scripted_session.replaying_gateway(spec, cassette)
    replayed = await scripted_session.session_through(gateway, spec, ROUNDS, emulator.supports_transactions)

    assert list(scripted_session.first_difference(recorded, replayed)) == []
    # The session met what it is meant to: answers, errors, throttled attempts, made-up values.
    codes = {answer.code for answer in recorded}
    assert {"OK", "FAILED_PRECONDITION", "INVALID_ARGUMENT", "NOT_FOUND"} <= codes
    if emulator.supports_transactions:
        assert "ABORTED" in codes
    lines = [json.loads(line) for line in cassette.read_text().splitlines()[1:]]
    throttled = [
        c for c in lines if c.get("error", {}).get("code") == "ProvisionedThroughputExceededException"
    ]
    assert throttled, "the proxy throttled nothing: the retries were not recorded"
    assert any(c["made_here"] for c in lines), "no call carried a value the gateway made up"


async def test_a_call_not_in_the_cassette_names_the_nearest_recording(
    emulator: Emulator, throttling_proxy: FaultProxy, spec: TableSpec, tmp_path: Path
) -> None:
    cassette = tmp_path / "short.jsonl"
    throttling_proxy.set_plan(FaultPlan())
    await _record(throttling_proxy, spec, cassette, 1, transactions=False)
    gateway = await scripted_session.replaying_gateway(spec, cassette)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            client = GatewayClient(channel, timeout_s=10)
            with pytest.raises(ReplayMismatchError) as raised:
                await client.get_item(spec.name, {"pk": "user#0", "sk": "nothing-2"})
    finally:
        await gateway.stop(0)
    error = raised.value
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.nearest_line is not None
    assert 'Key.sk.S: recorded "nothing", called with "nothing-2"' in error.message
    lines = cassette.read_text().splitlines()
    assert '"sk":{"S":"nothing"}' in lines[error.nearest_line - 1]


async def test_new_episodes_replays_what_is_there_and_records_the_rest(
    emulator: Emulator,
    throttling_proxy: FaultProxy,
    spec: TableSpec,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "emulator")  # the new calls go to the emulator, which takes any key
    cassette = tmp_path / "episodes.jsonl"
    throttling_proxy.set_plan(FaultPlan())
    await _record(throttling_proxy, spec, cassette, 1, transactions=False)
    before = len(cassette.read_text().splitlines())
    options = {"record_mode": "new_episodes", "endpoint_url": throttling_proxy.endpoint_url}
    gateway = await scripted_session.replaying_gateway(spec, cassette, **options)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            client = GatewayClient(channel, timeout_s=10)
            replayed = await client.get_item(
                spec.name, {"pk": "user#0", "sk": "profile"}, consistent_read=True
            )
            proxied_before = sum(throttling_proxy.requests.values())
            await client.put_item(spec.name, {"pk": "user#0", "sk": "new"})
            fresh = await client.get_item(spec.name, {"pk": "user#0", "sk": "new"})
    finally:
        await gateway.stop(0)
    assert replayed is not None and replayed["name"] == "Ada L"
    assert fresh == {"pk": "user#0", "sk": "new"}
    assert sum(throttling_proxy.requests.values()) > proxied_before
    added = [json.loads(line)["operation"] for line in cassette.read_text().splitlines()[before:]]
    assert added == ["PutItem", "GetItem"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "does not exist"),
        (
            '{"dynamo_gateway_cassette": 1, "values": "keep"}\n{"seq": 1, "operation": "GetItem"',
            "line 2 is not JSON",
        ),
        ('{"dynamo_gateway_cassette": 1, "values": "drop"}\n', "recorded with values 'drop'"),
        ('{"seq": 1}\n', "line 1 is not its header"),
    ],
    ids=["missing", "corrupt-line", "dropped-values", "no-header"],
)
async def test_a_cassette_that_cannot_be_replayed_stops_startup_with_one_clear_line(
    emulator: Emulator, tmp_path: Path, content: str | None, problem: str
) -> None:
    if emulator.kind != "moto":
        pytest.skip("no emulator in it: once is enough")
    cassette = tmp_path / "bad.jsonl"
    if content is not None:
        cassette.write_text(content)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dynamo_gateway_server",
        "--backend",
        "replay",
        "--cassette",
        str(cassette),
        "--port",
        "0",
        "--log-format",
        "console",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    assert process.returncode == 1
    text = (out + err).decode()
    assert "cannot start" in text and problem in text and str(cassette) in text
    assert "Traceback" not in text
