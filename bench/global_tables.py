"""Global tables under an outage of the local region, per write mode, and an evacuation while serving.

Three moto processes as three regions (us-east-1, where the gateway runs; eu-west-1;
ap-southeast-2), each behind a fault proxy, with a test-only replicator copying writes
between them (tests/support/regions.py). One gateway in this process with a regions file
(tests/support/global_gateway.py; default breaker: 5 failures open it for 30 s). `--callers`
concurrent callers each put and get their own keys in a loop for `--seconds`; a third of the
way in, the local region's proxy goes down (connection refused), or, for the evacuation, the
regions file evacuates it and moves the primary (reloaded as SIGHUP would). Per scenario:
- calls and failed calls (by status, and whether every failure was retryable);
- reads back: from the outage until the first read started after it succeeds, and the longest
  time without a successful read completing after the outage;
- p99 of reads before the outage and after it;
- writes that reached a region the mode forbids (from the proxies' counts): must be 0;
- for the evacuation: calls of any kind to the evacuated region after the reload: must be 0.

    .venv/bin/python bench/global_tables.py             # about 1 minute here
    .venv/bin/python bench/global_tables.py --seconds 3 --callers 8   # a quick look

Exits 1 if a forbidden write or a call to the evacuated region happened, or a failure was not
retryable. Writes JSON to bench/results/global_tables.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT)]

from dynamo_gateway import GatewayClient, GatewayError  # noqa: E402
from dynamo_gateway_server.tables import TableSpec  # noqa: E402
from tests.support.global_gateway import start_regional_gateway, write_regions_file  # noqa: E402
from tests.support.regions import Regions, emulated_regions  # noqa: E402

NAMES = ("us-east-1", "eu-west-1", "ap-southeast-2")
LOCAL, EU, AP = NAMES
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


@dataclass(frozen=True)
class Scenario:
    name: str
    tables: str
    # Regions each key prefix may be written in ("" = any key).
    allowed_writes: dict[str, tuple[str, ...]]
    evacuate: bool = False


SCENARIOS = (
    Scenario("write to any", "{t}: {{}}", {"": (LOCAL, EU)}),
    Scenario(
        "write to one (primary us-east-1)", "{t}: {{write_mode: one, primary: us-east-1}}", {"": (LOCAL,)}
    ),
    Scenario(
        "write to one, promote_on_failure",
        "{t}: {{write_mode: one, primary: us-east-1, promote_on_failure: true}}",
        {"": (LOCAL, EU)},
    ),
    Scenario(
        "write to home (US# home us-east-1, fallback ap-southeast-2)",
        "{t}:\n  write_mode: home\n  home:\n    key: pk\n    prefixes: {{'US#': us-east-1, 'EU#': eu-west-1}}\n"
        "    fallback: {{us-east-1: ap-southeast-2}}",
        {"US#": (LOCAL, AP), "EU#": (EU,)},
    ),
    Scenario(
        "evacuate us-east-1 while serving (write to one, primary moved)",
        "{t}: {{write_mode: one, primary: us-east-1}}",
        {"": (LOCAL, EU)},
        evacuate=True,
    ),
)


@dataclass
class Figures:
    scenario: str
    calls: int = 0
    calls_per_s: float = 0.0
    failed: dict[str, int] = field(default_factory=dict)
    all_failures_retryable: bool = True
    first_read_back_s: float | None = None
    longest_read_gap_s: float = 0.0
    read_p99_before_ms: float = 0.0
    read_p99_after_ms: float = 0.0
    forbidden_writes: int = 0
    calls_to_evacuated_after_reload: int | None = None


@dataclass
class Call:
    kind: str
    started: float
    ended: float
    ok: bool


def p99_ms(latencies: list[float]) -> float:
    if not latencies:
        return 0.0
    ordered = sorted(latencies)
    return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def run(
    regions: Regions, scenario: Scenario, number: int, seconds: float, callers: int, work: Path
) -> Figures:
    table = f"bench-{number}"
    await regions.create_table(TableSpec(table, {"pk": "S"}, "pk"))
    for region in NAMES:
        if regions[region].proxy.down:
            await regions[region].proxy.go_up()
    regions.reset_counts()
    tables = scenario.tables.format(t=table)
    path = work / f"regions-{number}.yaml"
    write_regions_file(path, regions, tables)
    gateway = await start_regional_gateway(regions, path)
    figures = Figures(scenario.name)
    calls: list[Call] = []
    running: dict[int, float] = {}  # caller -> when its call in flight started
    prefixes = [p for p in scenario.allowed_writes if p] or [""]
    try:
        async with GatewayClient.connect(f"127.0.0.1:{gateway.port}", timeout_s=5) as client:
            start = time.monotonic()
            switch_at = start + seconds / 3

            async def caller(n: int) -> None:
                key = f"{prefixes[n % len(prefixes)]}{n}"
                i = 0
                while time.monotonic() < start + seconds:
                    for kind in ("put", "get"):
                        began = running[n] = time.monotonic()
                        try:
                            if kind == "put":
                                await client.put_item(table, {"pk": key, "i": i})
                            else:
                                await client.get_item(table, {"pk": key})
                            calls.append(Call(kind, began, time.monotonic(), True))
                        except GatewayError as error:
                            calls.append(Call(kind, began, time.monotonic(), False))
                            name = error.code.name
                            figures.failed[name] = figures.failed.get(name, 0) + 1
                            figures.all_failures_retryable &= error.retryable
                            await asyncio.sleep(0.01)
                    i += 1
                running.pop(n, None)

            async def switch() -> None:
                await asyncio.sleep(max(0.0, switch_at - time.monotonic()))
                if scenario.evacuate:
                    moved = tables.replace("primary: us-east-1", "primary: eu-west-1")
                    write_regions_file(path, regions, moved, (LOCAL,))
                    assert gateway.reload_regions(), "the reload was refused"
                    # Calls sent before the reload finish where they went; count from the last of them.
                    reloaded = time.monotonic()
                    while any(began < reloaded for began in running.values()):  # noqa: ASYNC110 (a poll)
                        await asyncio.sleep(0.005)
                    regions.reset_counts()
                else:
                    await regions[LOCAL].proxy.go_down()

            await asyncio.gather(switch(), *(caller(n) for n in range(callers)))
            elapsed = time.monotonic() - start
    finally:
        await gateway.stop(0)
        if regions[LOCAL].proxy.down:
            await regions[LOCAL].proxy.go_up()
    figures.calls = len(calls)
    figures.calls_per_s = round(len(calls) / elapsed, 1)
    reads = [c for c in calls if c.kind == "get"]
    figures.read_p99_before_ms = round(p99_ms([c.ended - c.started for c in reads if c.ended < switch_at]), 2)
    figures.read_p99_after_ms = round(
        p99_ms([c.ended - c.started for c in reads if c.started >= switch_at]), 2
    )
    back = [c.ended for c in reads if c.ok and c.started >= switch_at]
    figures.first_read_back_s = round(min(back) - switch_at, 3) if back else None
    completed = sorted([switch_at, *(c.ended for c in reads if c.ok and c.ended >= switch_at)])
    figures.longest_read_gap_s = (
        round(max(b - a for a, b in itertools.pairwise(completed)), 3) if len(completed) > 1 else seconds
    )
    figures.forbidden_writes = forbidden_writes(regions, scenario)
    if scenario.evacuate:
        seen = regions.writes_seen(LOCAL) + regions.reads_seen(LOCAL)
        figures.calls_to_evacuated_after_reload = sum(seen.values())
    return figures


def forbidden_writes(regions: Regions, scenario: Scenario) -> int:
    """Writes a region received that the mode forbids it (per key prefix where the mode is home)."""
    if len(scenario.allowed_writes) == 1:
        allowed = next(iter(scenario.allowed_writes.values()))
        return sum(sum(regions.writes_seen(r)[op] for op in WRITES) for r in NAMES if r not in allowed)
    # Home: the proxies count by table, not key; each region may take some prefix, so count what
    # went where no prefix is allowed.
    anywhere = {r for regions_ in scenario.allowed_writes.values() for r in regions_}
    return sum(sum(regions.writes_seen(r)[op] for op in WRITES) for r in NAMES if r not in anywhere)


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=9.0)
    parser.add_argument("--callers", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    results = []
    with tempfile.TemporaryDirectory() as work:
        async with emulated_regions("moto", NAMES, replication_delay_s=0.1) as regions:
            for number, scenario in enumerate(SCENARIOS):
                results.append(await run(regions, scenario, number, args.seconds, args.callers, Path(work)))
    print(
        f"{'scenario':<64} {'calls/s':>8} {'failed':>14} {'read back s':>11} {'gap s':>6} "
        f"{'p99 ms before/after':>20} {'forbidden':>9}"
    )
    for f in results:
        failed = ", ".join(f"{n} {c}" for n, c in f.failed.items()) or "0"
        back = "-" if f.first_read_back_s is None else f"{f.first_read_back_s:.3f}"
        extra = (
            ""
            if f.calls_to_evacuated_after_reload is None
            else f"  evacuated region got {f.calls_to_evacuated_after_reload} calls"
        )
        print(
            f"{f.scenario:<64} {f.calls_per_s:>8.0f} {failed:>14} {back:>11} {f.longest_read_gap_s:>6.3f} "
            f"{f.read_p99_before_ms:>9.1f}/{f.read_p99_after_ms:<10.1f} {f.forbidden_writes:>9}{extra}"
        )
    out = BENCH / "results" / "global_tables.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps([asdict(f) for f in results], indent=2) + "\n")
    bad = [
        f.scenario
        for f in results
        if f.forbidden_writes or f.calls_to_evacuated_after_reload or not f.all_failures_retryable
    ]
    if bad:
        print(f"FAILED: {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
