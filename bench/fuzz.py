"""Fuzzing every RPC through a real gateway: structured requests and raw bytes, by the thousand.

The long run of tests/fuzz (which sends a few thousand in `make test`): the same
strategies, derived from the proto descriptors, and the same verdict on every answer
(no INTERNAL or UNKNOWN, no hang, every refusal a taxonomy leaf, INVALID_ARGUMENT
naming the field). Prints the answers by status and leaf (with an example request of
each), the time taken and dynalite's restarts; exits 1 if any answer broke the rules,
listing them.

    .venv/bin/python bench/fuzz.py --requests 10000 [--backend memory|dynalite|both] [--seed N]

--requests is per backend; without --seed the run is derandomized (the same every time).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynamo_gateway_server.backends.memory import MotoServerProcess
from tests.fuzz.driver import campaign
from tests.fuzz.oracle import Tally
from tests.fuzz.rig import DynaliteKeeper, fuzz_gateway
from tests.support.emulators import DynaliteProcess


async def fuzz_backend(backend: str, requests: int, raw_share: float, seed: int | None) -> Tally:
    moto: MotoServerProcess | None = None
    dynalite: DynaliteProcess | None = None
    if backend == "memory":
        moto = await MotoServerProcess.start()  # the memory backend's engine: moto's server mode
        endpoint = moto.endpoint_url
    else:
        dynalite = DynaliteProcess()
        await dynalite.start()
        endpoint = dynalite.endpoint_url
    try:
        async with fuzz_gateway(endpoint) as gateway:
            loop = asyncio.get_running_loop()
            keeper = DynaliteKeeper(dynalite, gateway.dynamodb) if dynalite is not None else None

            def revive() -> None:
                if keeper is not None:
                    asyncio.run_coroutine_threadsafe(keeper.revive_if_needed(), loop).result(timeout=60)

            started = time.monotonic()
            structured, raw = await asyncio.to_thread(
                campaign, f"127.0.0.1:{gateway.port}", requests, raw_share, seed, revive
            )
            elapsed = time.monotonic() - started
    finally:
        if moto is not None:
            await moto.stop()
        if dynalite is not None:
            await dynalite.stop()
    print(f"\n=== {backend}: {structured.requests + raw.requests} requests in {elapsed:.1f} s", end="")
    print(f" ({keeper.restarts} dynalite restarts)" if keeper is not None else "")
    print("--- structured\n" + structured.report(samples=True))
    print("--- raw bytes\n" + raw.report(samples=True))
    structured.merge(raw)
    return structured


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=10_000, help="per backend")
    parser.add_argument("--backend", choices=["memory", "dynalite", "both"], default="both")
    parser.add_argument("--seed", type=int, default=None, help="a random run (default: derandomized)")
    parser.add_argument("--raw-share", type=float, default=0.2, help="the share of raw-bytes requests")
    args = parser.parse_args()
    # The gateway logs every emulator failure and every refused request: the tallies say it all.
    logging.basicConfig(level=logging.CRITICAL)
    backends = ["memory", "dynalite"] if args.backend == "both" else [args.backend]
    total = Tally()
    for backend in backends:
        total.merge(await fuzz_backend(backend, args.requests, args.raw_share, args.seed))
    print(f"\n{total.requests} requests, {len(total.violations)} violations")
    return 1 if total.violations else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
