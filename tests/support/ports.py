"""Ports for gateway child processes, with no moment in which another process could take them.

For tests that run the gateway as a process (tests/compat, tests/e2e). A gateway binds
`--port 0` and logged_port reads the port it got back from its "serving on" log line;
`--workers N` cannot bind port 0, so reuseport_reservation holds a port for them. Reads
the child's log file; starts and stops no process.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import re
import socket
import subprocess
import time
from collections.abc import Iterator

# The environment a gateway child needs for logged_port: its "serving on" line is INFO, and
# JSON reads back reliably (the default, "auto", is JSON too, but only off a terminal).
LOGGED_PORT_ENV = {"DYNAMO_GATEWAY_LOG_FORMAT": "json", "DYNAMO_GATEWAY_LOG_LEVEL": "INFO"}
_SERVING_ON = re.compile(r"serving on \S+:(\d+) ")


def logged_port(process: subprocess.Popen[bytes], log: pathlib.Path, timeout_s: float = 60.0) -> int:
    """The port in the gateway's "serving on" log line (JSON lines), written once it serves.

    `log` is the file the child's output goes to; other lines in it (make's, a worker's
    plain text) are skipped. Raises RuntimeError, with the log's tail, if the child exits
    or `timeout_s` passes first.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        exited = process.poll() is not None  # read before the log: what it wrote before exiting counts
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError):  # not a JSON log line
                if found := _SERVING_ON.match(json.loads(line)["message"]):
                    return int(found[1])
        if exited:
            raise failed_to_start(process, log, f"exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise failed_to_start(process, log, "logged no port it serves on")
        time.sleep(0.05)


def failed_to_start(process: subprocess.Popen[bytes], log: pathlib.Path, what: str) -> RuntimeError:
    """What went wrong with a child, with the tail of its log."""
    return RuntimeError(f"{process.args} {what}:\n{log.read_text(errors='replace')[-4000:]}")


@contextlib.contextmanager
def reuseport_reservation() -> Iterator[int]:
    """A loopback port held for servers that share it with SO_REUSEPORT (`--workers N`).

    Such servers cannot bind port 0: each would get a port of its own. So a socket binds
    port 0 with SO_REUSEPORT and stays bound, never listening, until the context ends: a
    process that does not set SO_REUSEPORT (or runs as another user) cannot bind the port,
    the servers can, and connections reach only the servers, which listen.
    """
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        yield int(holder.getsockname()[1])
