"""Scaling curve: GetItem through the gateway with 1..N worker processes on one port (--workers).

Prints ops/s and the CPU seconds of all workers, the stub and ghz, per worker count.
From it: how many workers (cores) a given rate takes.

    .venv/bin/python bench/scaling.py [--max-workers 4] [--concurrency 128] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from harness import (  # noqa: E402
    GATEWAY_ENV,
    ROOT,
    children_cpu_s,
    cpu_s,
    free_port,
    gateway_command,
    ghz_command,
    process,
    stub_command,
)


def descendants(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--backend-client", choices=["aiobotocore", "lean"], default="lean")
    args = parser.parse_args()
    ghz = shutil.which("ghz", path=f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    if ghz is None:
        sys.exit("ghz not found: run scripts/bootstrap.sh")
    print(f"{'workers':>7} {'ops/s':>8} {'cpu workers':>11} {'cpu stub':>8} {'cpu ghz':>7} {'ops/cpu-s':>9}")
    for workers in range(1, args.max_workers + 1):
        stub_port, port = free_port(), free_port()
        stub_cmd = stub_command(stub_port)
        gateway_cmd = gateway_command(
            stub_port, port, "--workers", str(workers), "--backend-client", args.backend_client
        )
        with process(stub_cmd, stub_port) as stub, process(gateway_cmd, port, GATEWAY_ENV) as gateway:
            pids = descendants(gateway.pid) if workers > 1 else [gateway.pid]
            before = (sum(cpu_s(p) for p in pids), cpu_s(stub.pid), children_cpu_s())
            completed = subprocess.run(
                ghz_command(ghz, port, "GetItem", args.concurrency, max(2, 2 * workers), args.seconds),
                capture_output=True,
                text=True,
                check=True,
            )
            after = (sum(cpu_s(p) for p in pids), cpu_s(stub.pid), children_cpu_s())
        report = json.loads(completed.stdout)
        cpu = [a - b for a, b in zip(after, before, strict=True)]
        print(
            f"{workers:>7} {report['rps']:>8.0f} {cpu[0]:>11.2f} {cpu[1]:>8.2f} {cpu[2]:>7.2f}"
            f" {report['count'] / max(sum(cpu), 1e-9):>9.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
