"""Several gateway processes on one port (SO_REUSEPORT), so a gateway can use every core.

The parent only supervises: it starts `workers` copies of the same command, each
with its own event loop, backend client and (when metrics are on) metrics port
metrics_port + index; the kernel spreads incoming connections over them. SIGTERM
and SIGINT are passed on, so each worker shuts down gracefully; if a worker dies,
the others are stopped and the parent exits with its code. Only the aws backend
can have workers: each memory backend would be a separate, private table store.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from .config import Settings

WORKER_ENV = "DYNAMO_GATEWAY_WORKER_INDEX"


def worker_index() -> int | None:
    """This process's index when it is a worker started by run_workers, else None."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value is not None else None


def settings_for_worker(settings: Settings, index: int) -> Settings:
    if settings.metrics_port > 0:
        return dataclasses.replace(settings, metrics_port=settings.metrics_port + index)
    return settings


def run_workers(settings: Settings, argv: Sequence[str]) -> int:
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "dynamo_gateway_server", *argv], env={**os.environ, WORKER_ENV: str(index)}
        )
        for index in range(settings.workers)
    ]
    stopping = False

    def pass_on(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    while True:
        codes = [child.poll() for child in children]
        if all(code is not None for code in codes):
            return max(code or 0 for code in codes)
        failed = next((code for code in codes if code not in (None, 0)), None)
        if failed is not None and not stopping:
            print(f"dynamo-gateway: a worker exited with {failed}; stopping the others", file=sys.stderr)
            pass_on(signal.SIGTERM, None)
        time.sleep(0.2)
