"""Record and replay figures: a 1,000-call session replayed byte for byte, replay throughput, recording's cost.

1. Session: moto's server behind a fault proxy that throttles 5% of the calls; a gateway
   records the scripted session (tests/support/scripted_session.py: every RPC, failed
   conditions, a version conflict, cancelled transactions, DynamoDB's refusals) into a
   cassette. moto is then stopped, and a gateway with `--backend replay` runs the same
   session: every answer (status, message, details, bytes of the response) must equal the
   recorded one. Prints the calls, how many were identical, and each run's calls per second
   (one call after another, so these are latency-bound).
2. The stages' own cost: the recording stage and the replay backend alone, in this process,
   over a DynamoDB client that answers at once (CPU time of 20,000 GetItem calls each, less
   the bare client's): a few microseconds, too little to show in step 3's figures.
3. Recording's cost through the whole gateway: the stub DynamoDB (bench/stub_dynamodb.py) behind two gateway
   processes, one with `--record`, driven by ghz (GetItem and PutItem, 64 concurrent) in
   alternating rounds; prints the gateway's CPU per call with recording off and on.
4. Replay throughput: a gateway with `--backend replay --replay-match repeat` on the cassette
   step 3 recorded, driven by ghz: calls per second and CPU per call.

    .venv/bin/python bench/replay.py                 # about 2 minutes here
    .venv/bin/python bench/replay.py --rounds 3 --seconds 2 --repeat 1   # a quick look

Exits 1 if any replayed answer differs. Writes JSON to bench/results/replay.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]
from harness import GATEWAY_ENV, free_port, gateway_command, process, run_ghz, stub_command  # noqa: E402

from dynamo_gateway_server.backends import cassette  # noqa: E402
from dynamo_gateway_server.backends.memory import MotoServerProcess  # noqa: E402
from dynamo_gateway_server.backends.recording import RecordingBackend  # noqa: E402
from dynamo_gateway_server.backends.replay import ReplayBackend  # noqa: E402
from dynamo_gateway_server.tables import TableSpec  # noqa: E402
from tests.support import scripted_session  # noqa: E402
from tests.support.emulators import FaultPlan, FaultProxy  # noqa: E402


@dataclass
class SessionFigures:
    calls: int
    identical: int
    throttled_attempts: int
    cassette_bytes: int
    record_calls_per_s: float
    replay_calls_per_s: float


@dataclass
class StageCost:
    record_us_per_call: float
    replay_us_per_call: float


@dataclass
class CostFigures:
    workload: str
    record_off_cpu_ms_per_call: float
    record_on_cpu_ms_per_call: float
    cassette_bytes_per_call: float


@dataclass
class ReplayThroughput:
    workload: str
    calls_per_s: float
    cpu_ms_per_call: float


async def session(rounds: int, workdir: Path) -> SessionFigures:
    logging.getLogger("dynamo_gateway_server").setLevel(logging.ERROR)  # the retries are expected
    moto = await MotoServerProcess.start()
    proxy = FaultProxy(moto.endpoint_url, FaultPlan(seed=16, throttle_rate=0.05))
    await proxy.start()
    spec = TableSpec(**{**scripted_session.SESSION_TABLE.__dict__, "name": "session"})
    cassette = workdir / "session.jsonl"
    try:
        started = time.perf_counter()
        gateway = await scripted_session.recording_gateway(proxy.endpoint_url, spec, cassette)
        recorded = await scripted_session.session_through(gateway, spec, rounds, transactions=True)
        record_s = time.perf_counter() - started
    finally:
        await proxy.stop()
        await moto.stop()  # nothing left to answer but the cassette
    started = time.perf_counter()
    gateway = await scripted_session.replaying_gateway(spec, cassette)
    replayed = await scripted_session.session_through(gateway, spec, rounds, transactions=True)
    replay_s = time.perf_counter() - started
    for difference in scripted_session.first_difference(recorded, replayed):
        print(f"  differs: {difference[:300]}", file=sys.stderr)
    lines = [json.loads(line) for line in cassette.read_text().splitlines()[1:]]
    return SessionFigures(
        calls=len(recorded),
        identical=sum(a == b for a, b in zip(recorded, replayed, strict=False)),
        throttled_attempts=sum(1 for c in lines if "Throughput" in c.get("error", {}).get("code", "")),
        cassette_bytes=cassette.stat().st_size,
        record_calls_per_s=len(recorded) / record_s,
        replay_calls_per_s=len(replayed) / replay_s,
    )


_KEY = {"pk": {"S": "user#1"}, "sk": {"S": "order#00000001"}}
_ITEM = {**_KEY, "status": {"S": "shipped"}, "amount": {"N": "42"}, "note": {"S": "x" * 64}}


class _AnswersAtOnce:
    """DynamoDB's client reduced to its answer: what is left is the stage's own cost."""

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"Item": dict(_ITEM), "ConsumedCapacity": {"TableName": "bench", "CapacityUnits": 0.5}}

    async def close(self) -> None:
        pass


async def stage_cost(workdir: Path, calls: int = 20_000) -> StageCost:
    request = {"TableName": "bench", "Key": _KEY, "ReturnConsumedCapacity": "TOTAL"}

    async def cpu_s(backend: Any) -> float:
        started = time.process_time()
        for _ in range(calls):
            await backend.call("GetItem", request)
        return time.process_time() - started

    bare = _AnswersAtOnce()
    path = workdir / "stage.jsonl"
    writer = cassette.CassetteWriter(str(path), max_bytes=1 << 40, keep_files=1)
    recording = RecordingBackend(bare, writer, "us-east-1")
    bare_s, record_s = await cpu_s(bare), await cpu_s(recording)
    writer.close()
    replay = ReplayBackend(cassette.load(str(path)), str(path), "match")
    replay_s = await cpu_s(replay)
    return StageCost(1e6 * (record_s - bare_s) / calls, 1e6 * replay_s / calls)


def recording_cost(seconds: float, repeat: int, workdir: Path) -> tuple[list[CostFigures], Path]:
    ghz = shutil.which("ghz")
    if ghz is None:
        raise SystemExit("ghz is not installed: run `make bootstrap`")
    stub_port, plain_port, recording_port = free_port(), free_port(), free_port()
    cassette = workdir / "ghz.jsonl"
    figures = []
    with (
        process(stub_command(stub_port), stub_port) as stub,
        process(gateway_command(stub_port, plain_port), plain_port, GATEWAY_ENV) as plain,
        process(
            gateway_command(stub_port, recording_port, "--record", str(cassette)), recording_port, GATEWAY_ENV
        ) as recording,
    ):
        for workload in ("GetItem", "PutItem"):
            cpu = {"off": [0.0, 0], "on": [0.0, 0]}
            size = [0, 0]
            for _ in range(repeat):
                for label, port, child in (("off", plain_port, plain), ("on", recording_port, recording)):
                    before = cassette.stat().st_size if cassette.exists() else 0
                    result = run_ghz(ghz, port, workload, 64, seconds, stub.pid, child.pid)
                    cpu[label][0] += result.cpu_gateway_s
                    cpu[label][1] += result.ops
                    if label == "on":
                        size[0] += cassette.stat().st_size - before
                        size[1] += result.ops
            figures.append(
                CostFigures(
                    workload,
                    1000 * cpu["off"][0] / max(cpu["off"][1], 1),
                    1000 * cpu["on"][0] / max(cpu["on"][1], 1),
                    size[0] / max(size[1], 1),
                )
            )
    return figures, cassette


def replay_throughput(cassette: Path, seconds: float) -> list[ReplayThroughput]:
    ghz = shutil.which("ghz")
    assert ghz is not None
    port = free_port()
    command = [
        sys.executable, "-m", "dynamo_gateway_server", "--backend", "replay", "--cassette", str(cassette),
        "--replay-match", "repeat", "--log-level", "WARNING", "--port", str(port),
    ]  # fmt: skip
    figures = []
    with process(command, port, GATEWAY_ENV) as gateway:
        for workload in ("GetItem", "PutItem"):
            result = run_ghz(ghz, port, workload, 64, seconds, gateway.pid, gateway.pid, path="replay (ghz)")
            figures.append(
                ReplayThroughput(workload, result.ops_per_s, 1000 * result.cpu_gateway_s / max(result.ops, 1))
            )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=28, help="rounds of the scripted session (28: over 1,000 calls)"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="each ghz run")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds of recording off and on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        workdir = Path(temporary)
        figures = asyncio.run(session(args.rounds, workdir))
        print(
            f"session: {figures.calls} calls ({figures.throttled_attempts} throttled attempts recorded, "
            f"cassette {figures.cassette_bytes / 1e6:.2f} MB), {figures.identical} replayed identically; "
            f"recorded at {figures.record_calls_per_s:.0f} calls/s, replayed at {figures.replay_calls_per_s:.0f} "
            "calls/s (one call after another)"
        )
        stages = asyncio.run(stage_cost(workdir))
        print(
            f"stages alone (GetItem, CPU per call): recording {stages.record_us_per_call:.1f} us, "
            f"replaying {stages.replay_us_per_call:.1f} us"
        )
        costs, recorded = recording_cost(args.seconds, args.repeat, workdir)
        for cost in costs:
            print(
                f"{cost.workload} x64 through the gateway: CPU per call {cost.record_off_cpu_ms_per_call:.3f} ms "
                f"recording off, {cost.record_on_cpu_ms_per_call:.3f} ms on "
                f"({cost.cassette_bytes_per_call:.0f} bytes of cassette per call)"
            )
        throughput = replay_throughput(recorded, args.seconds)
        for replay in throughput:
            print(
                f"{replay.workload} x64 replayed (--replay-match repeat): {replay.calls_per_s:.0f} calls/s, "
                f"CPU per call {replay.cpu_ms_per_call:.3f} ms"
            )
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    report = {
        "session": asdict(figures),
        "stage_cost": asdict(stages),
        "recording_cost": [asdict(c) for c in costs],
        "replay_throughput": [asdict(t) for t in throughput],
    }
    (results / "replay.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0 if figures.identical == figures.calls else 1


if __name__ == "__main__":
    sys.exit(main())
