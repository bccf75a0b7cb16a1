"""The README's wall-clock table from several harness runs: each figure as the spread over the runs.

One run of bench/harness.py is one JSON file in bench/results/, holding every round of each cell
(`--repeat`); like the harness, a run's figure for a cell is its median round by ops per
CPU-second, and a paired path (direct, floor, stub alone) is taken from that same round. This VM's speed moves by tens of percent between runs, so a figure
measured once says little; across runs at different times, the ratios between paths measured
in the same round hold better than any absolute figure.

    .venv/bin/python bench/summarize.py bench/results/harness-A.json bench/results/harness-B.json ...
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

GATEWAY, DIRECT, FLOOR, STUB = "gateway (ghz)", "direct aiobotocore", "grpc floor (ghz)", "stub alone (raw)"


def spread(values: list[float], digits: int = 2, unit: str = "") -> str:
    low, high = min(values), max(values)
    if round(low, digits) == round(high, digits):
        return f"{low:.{digits}f}{unit}"
    return f"{low:.{digits}f}-{high:.{digits}f}{unit}"


def cpu_ms(result: dict[str, Any]) -> float:
    """CPU per call of the path's server (the gateway or the floor) or, for direct, of the client."""
    cpu = result["cpu_gateway_s"] if result["path"] in (GATEWAY, FLOOR) else result["cpu_client_s"]
    return 1000 * cpu / max(1, result["ops"])


def _median_round(measured: list[dict[str, Any]]) -> int:
    """The index of the gateway's median round by ops per CPU-second (rounds alternate paths)."""
    ranked = sorted(range(len(measured)), key=lambda i: measured[i]["ops_per_cpu_s"])
    return ranked[len(ranked) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    # (workload, stub latency, rps) -> path -> one result per run
    cells: dict[tuple[str, float, int], dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for run in args.runs:
        rounds: dict[tuple[str, float, int], dict[str, list[dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for result in json.loads(run.read_text())["results"]:
            if result["concurrency"] == 64:
                rounds[(result["workload"], result["stub_latency_ms"], result["rps"])][result["path"]].append(
                    result
                )
        for cell, paths in rounds.items():
            middle = _median_round(paths[GATEWAY]) if GATEWAY in paths else 0
            for path, measured in paths.items():
                cells[cell][path].append(measured[min(middle, len(measured) - 1)])
    print(f"{len(args.runs)} files; each cell: lowest-highest over the runs\n")
    print(
        "| workload | stub | gateway ops/s | box ops per CPU-s, gateway / direct | gateway CPU per call | "
        "direct client CPU per call | floor CPU per call | gateway / floor CPU |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (workload, latency, rps), paths in cells.items():
        if rps or GATEWAY not in paths or DIRECT not in paths:
            continue
        runs = list(zip(paths[GATEWAY], paths[DIRECT], strict=False))
        floor = paths.get(FLOOR, [])
        print(
            f"| {workload} | {latency:g} ms | {spread([g['ops_per_s'] for g, _ in runs], 0)} "
            f"| {spread([g['ops_per_cpu_s'] / d['ops_per_cpu_s'] for g, d in runs], unit='x')} "
            f"| {spread([cpu_ms(g) for g, _ in runs], unit=' ms')} "
            f"| {spread([cpu_ms(d) for _, d in runs], unit=' ms')} "
            f"| {spread([cpu_ms(f) for f in floor], unit=' ms') if floor else ''} "
            f"| {spread([cpu_ms(g) / cpu_ms(f) for g, f in zip(paths[GATEWAY], floor, strict=False)], unit='x') if floor else ''} |"
        )
    print(
        "\n| workload | gateway p50 / p99 | stub alone p50 / p99 | added p50 / p99 | gRPC floor p50 / p99 |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for (workload, _, rps), paths in cells.items():
        if not rps or GATEWAY not in paths or STUB not in paths:
            continue
        runs = list(zip(paths[GATEWAY], paths[STUB], strict=False))
        floor = paths.get(FLOOR, [])
        print(
            f"| {workload} | {spread([g['p50_ms'] for g, _ in runs])} / {spread([g['p99_ms'] for g, _ in runs])} ms "
            f"| {spread([s['p50_ms'] for _, s in runs])} / {spread([s['p99_ms'] for _, s in runs])} ms "
            f"| +{spread([g['p50_ms'] - s['p50_ms'] for g, s in runs])} / +{spread([g['p99_ms'] - s['p99_ms'] for g, s in runs])} ms "
            f"| {spread([f['p50_ms'] for f in floor])} / {spread([f['p99_ms'] for f in floor])} ms |"
        )


if __name__ == "__main__":
    main()
