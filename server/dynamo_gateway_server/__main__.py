"""Command line entry point: `python -m dynamo_gateway_server` or `dynamo-gateway`."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable

from .app import serve
from .backends import BackendError, BackendUnavailableError
from .backends.cassette import CassetteError
from .backends.memory import MotoServerProcess  # noqa: F401  (fail early if moto is missing)
from .config import Settings, SettingsError, load_settings
from .global_tables import RegionsFileError
from .observability.telemetry import configure_process_logging
from .tables import TablesFileError
from .workers import run_workers, settings_for_worker, worker_index


def _loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when asked for (less CPU per RPC); the standard loop otherwise."""
    if settings.event_loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv, os.environ)
    except SettingsError as error:
        print(f"dynamo-gateway: {error}", file=sys.stderr)
        return 2
    if settings.workers > 1:
        index = worker_index()
        if index is None:
            return run_workers(settings, sys.argv[1:] if argv is None else argv)
        settings = settings_for_worker(settings, index)
    # JSON lines (console on a terminal), trace and request ids on each, AWS secrets scrubbed.
    configure_process_logging(settings)
    try:
        with asyncio.Runner(loop_factory=_loop_factory(settings)) as runner:
            runner.run(serve(settings))
    except (
        TablesFileError,
        RegionsFileError,
        CassetteError,
        OSError,
        RuntimeError,
        BackendError,
        BackendUnavailableError,
    ) as error:
        # Startup problems an operator fixes (files, cassettes, ports, credentials, DynamoDB unreachable): one line.
        logging.getLogger("dynamo_gateway_server").error("cannot start: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
