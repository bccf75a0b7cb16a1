"""moto's DynamoDB app served over keep-alive HTTP/1.1: the memory backend's child process.

`python -m moto.server` serves moto with Werkzeug's development server, which closes the
connection after every response, so each call paid a TCP connect on both sides and a
new thread in moto. cheroot keeps connections open and serves requests from a fixed
pool of threads. Must not import gRPC.

    python -m dynamo_gateway_server.backends.moto_server --port 0

Once it listens, the child writes the port it is bound to as the first line on stdout (port 0
picks a free one: the parent learns it from that line instead of guessing one beforehand),
then writes nothing more there.

A request that makes moto itself fail (it has bugs on some malformed input) is answered
500 the way Werkzeug's server answers it, and the connection stays usable: left to
cheroot, the 500 would be followed by a silent close, and the client's next request on
that kept-alive connection would fail as if sent into the void.

Requests run one at a time: moto's DynamoDB checks a condition and then writes without a
lock, so two threads could both pass `version = :expected` and both write (a lost update,
seen in tests/integration/test_versions.py's fault test). DynamoDB applies each write
atomically; so does this server. moto is pure Python under one GIL: threads never ran it
in parallel anyway, they only overlap the sockets' waiting.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from cheroot import wsgi
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.exceptions import InternalServerError

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# An idle connection is closed after this long. Well above any client's pause between two
# calls on a busy pool; a long one keeps a quiet gateway's next call off a closing socket.
IDLE_TIMEOUT_S = 300
THREADS = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    args = parser.parse_args()
    server = wsgi.Server(
        (args.host, args.port),
        answering_failures(one_at_a_time(DomainDispatcherApplication(create_backend_app))),
        numthreads=THREADS,
        request_queue_size=128,
        timeout=IDLE_TIMEOUT_S,
    )
    # The tables live in this process's memory and die with it: nothing to flush, and
    # waiting for worker threads to notice a stop only delays the gateway's shutdown.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    server.prepare()  # binds and listens: bind_addr is now the real address
    port = server.bind_addr[1]
    os.environ.setdefault("MOTO_PORT", str(port))  # as moto.server does: some answers name the port
    _report_port(port)
    server.serve()


def one_at_a_time(app: WsgiApp) -> WsgiApp:
    """`app`, serving one request at a time (each answer is complete when the app returns it)."""
    lock = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            return app(environ, start_response)

    return serialized


def answering_failures(app: WsgiApp) -> WsgiApp:
    """`app`, with an exception of its own turned into Werkzeug's 500 answer (logged to stderr)."""

    def answered(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            return app(environ, start_response)
        except Exception:  # moto's bug, not ours: answer as moto's own server would
            traceback.print_exc(file=sys.stderr)
            return InternalServerError()(environ, start_response)

    return answered


def _report_port(port: int) -> None:
    """The port on stdout's first line; then stdout goes to /dev/null, so that a parent that
    stops reading after that line can never block this process on a full pipe."""
    print(port, flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    main()
