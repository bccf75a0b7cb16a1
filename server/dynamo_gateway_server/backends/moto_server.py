"""moto's DynamoDB app served over keep-alive HTTP/1.1: the memory backend's child process.

`python -m moto.server` serves moto with Werkzeug's development server, which closes the
connection after every response, so each call paid a TCP connect on both sides and a
new thread in moto. cheroot keeps connections open and serves requests from a fixed
pool of threads. Must not import gRPC.

    python -m dynamo_gateway_server.backends.moto_server --port 5000
"""

from __future__ import annotations

import argparse
import os
import signal

from cheroot import wsgi
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

# An idle connection is closed after this long. Well above any client's pause between two
# calls on a busy pool; a long one keeps a quiet gateway's next call off a closing socket.
IDLE_TIMEOUT_S = 300
THREADS = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto.server does: some answers name the port
    server = wsgi.Server(
        (args.host, args.port),
        DomainDispatcherApplication(create_backend_app),
        numthreads=THREADS,
        request_queue_size=128,
        timeout=IDLE_TIMEOUT_S,
    )
    # The tables live in this process's memory and die with it: nothing to flush, and
    # waiting for worker threads to notice a stop only delays the gateway's shutdown.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    server.start()


if __name__ == "__main__":
    main()
