"""What a gateway process holds at one moment: resident memory, open files, TCP connections, tasks.

Shared by tests/e2e/test_soak.py and bench/soak.py, which compare two snapshots taken
while the gateway is idle to tell a leak from a workload. Reads /proc (Linux only) and
the gateway's /metrics endpoint; starts and stops nothing.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from pathlib import Path

TASKS_METRIC = "dynamo_gateway_event_loop_tasks"
_LISTEN, _CLOSE_WAIT = "0A", "08"  # TCP states as /proc/net/tcp spells them


@dataclass(frozen=True)
class Snapshot:
    rss_mb: float
    peak_rss_mb: float
    """The most it was ever resident (VmHWM)."""
    fds: int
    caller_connections: int
    """TCP connections on the port the gateway serves."""
    backend_connections: int
    """TCP connections to DynamoDB (the pool, bounded by --max-concurrency)."""
    other_connections: int
    """Any other TCP connection (a /metrics scrape, say); listening sockets are not counted."""
    close_wait: int
    """Connections the peer closed and the gateway has not: each one an fd nobody will release."""
    tasks: int
    """The serving event loop's unfinished asyncio tasks (the dynamo_gateway_event_loop_tasks gauge)."""

    @property
    def fds_besides_backend(self) -> int:
        """Open fds but the DynamoDB pool's, whose count moves within its bound with the load."""
        return self.fds - self.backend_connections


def _status_mb(pid: int, field: str) -> float:
    """A memory figure of /proc/PID/status (VmRSS, VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _socket_inodes(pid: int) -> tuple[int, set[str]]:
    """The number of open fds, and the inodes of those that are sockets."""
    fds, inodes = 0, set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink()
        except FileNotFoundError:  # closed while we looked
            continue
        fds += 1
        if target.name.startswith("socket:["):
            inodes.add(target.name[len("socket:[") : -1])
    return fds, inodes


def _tcp_sockets(pid: int) -> list[tuple[int, int, str, str]]:
    """(local port, remote port, state, inode) of every TCP socket in the process's network namespace."""
    sockets = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            sockets.append(
                (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16), state, inode)
            )
    return sockets


def event_loop_tasks(metrics_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(f"{TASKS_METRIC} "):
                return int(float(line.split()[1]))
    raise LookupError(f"{TASKS_METRIC} is not on port {metrics_port}'s /metrics")


def snapshot(pid: int, metrics_port: int, served_port: int, backend_port: int) -> Snapshot:
    # /proc before the scrape: the scrape's own connection is not open yet, so it counts nowhere.
    fds, inodes = _socket_inodes(pid)
    sockets = _tcp_sockets(pid)
    tasks = event_loop_tasks(metrics_port)
    callers = backend = other = close_wait = 0
    for local, remote, state, inode in sockets:
        if inode not in inodes or state == _LISTEN:
            continue
        close_wait += state == _CLOSE_WAIT
        if local == served_port:
            callers += 1
        elif remote == backend_port:
            backend += 1
        else:
            other += 1
    rss = _status_mb(pid, "VmRSS")
    return Snapshot(rss, _status_mb(pid, "VmHWM"), fds, callers, backend, other, close_wait, tasks)
