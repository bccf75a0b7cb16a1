"""Test kit: a pytest plugin that runs a real dynamo-gateway for the tests of a service that calls it.

Install both the client with its `testing` extra (pytest, pytest-asyncio, PyYAML) and the
gateway itself, the `dynamo-gateway` package::

    pip install 'dynamo-gateway-client[testing]' dynamo-gateway

The client registers this module as a pytest plugin (entry point `dynamo_gateway`; turn it
off with `-p no:dynamo_gateway`). It starts nothing until a test asks for one of its
fixtures; the first one that does starts `python -m dynamo_gateway_server` (the same
interpreter as pytest) as a child process on a free loopback port, once per session, and
stops it with SIGTERM when the session ends. The plugin never imports the server.

Fixtures:

- `dgw_gateway` (session): the running gateway, a `RunningGateway`: `.target`
  ("127.0.0.1:PORT"), `.port`, `.log_path` (the gateway's own log), `.empty_tables()`.
- `dgw_target` (session): `dgw_gateway.target`, for any gRPC client: a Go or Node service
  started by the test, grpcurl, the `dgw` command line.
- `dgw_empty_tables` (function): empties every table of the tables file before the test.
  Only on the memory backend when nothing is recorded: a replay has nothing to empty, and
  emptying while recording would put the deletes into the cassette.
- `dgw_client` (function, async, needs pytest-asyncio): a connected `GatewayClient`, after
  `dgw_empty_tables`, so every test that takes it starts with empty tables.

Settings (command line, or the ini key in pytest.ini / [tool.pytest.ini_options]; a
relative path is taken from the directory pytest runs in, or from the ini file's):

- `--dgw-tables FILE` / `dgw_tables`: tables file to create at startup (and to empty).
- `--dgw-cassette PATH` / `dgw_cassette`: answer from this cassette (replay backend).
- `--dgw-record-mode MODE` / `dgw_record_mode`: the replay's none (default), new_episodes or once.
- `--dgw-endpoint URL` / `dgw_endpoint`: a DynamoDB-compatible endpoint instead of the memory
  backend (the aws backend; with a cassette: where calls missing from it go).
- `--dgw-record PATH` / `dgw_record`: append every DynamoDB call to this cassette.
- `--dgw-arg ARG` (repeatable) / `dgw_args`: more gateway flags, e.g. `--dgw-arg=--log-level=DEBUG`.
- `--dgw-start-timeout SECONDS` / `dgw_start_timeout`: how long to wait for SERVING (60).

Example (pytest.ini: `dgw_tables = tables.yaml`, `asyncio_mode = auto`)::

    async def test_order_round_trip(dgw_client):
        await dgw_client.put_item("orders", {"customer": "c1", "order": "o1", "total": 12})
        assert await dgw_client.get_item("orders", {"customer": "c1", "order": "o1"}) == {
            "customer": "c1", "order": "o1", "total": 12}

DYNAMO_GATEWAY_* variables of the environment are not passed on: the gateway under test is
configured by these settings only, not by a developer's shell.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import importlib.util
import os
import pathlib
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    import grpc

    from .client import GatewayClient
    from .v1 import service_pb2_grpc, value_pb2

RECORD_MODES = ("none", "new_episodes", "once")
# Set by the dedicated options, whose meaning the plugin relies on (the port it checks, the
# backend that decides whether tables may be emptied).
_RESERVED_FLAGS = (
    "--host",
    "--port",
    "--backend",
    "--endpoint-url",
    "--cassette",
    "--record",
    "--record-mode",
    "--tables-file",
)
_ENV_PREFIX = "DYNAMO_GATEWAY_"
_PORT_ATTEMPTS = 3
_STOP_TIMEOUT_S = 10.0
_RPC_TIMEOUT_S = 30.0
# HealthCheckResponse{status: SERVING} on the wire (field 1, varint 1): the client package does
# not depend on grpcio-health-checking, and this is the one answer that matters.
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_SERVING = b"\x08\x01"
# Keys per emptying Scan page, and per BatchWriteItem (DynamoDB's own limit, whatever the
# gateway's batch_max_items).
_SCAN_PAGE = 1000
_DELETES_PER_BATCH = 25
_VERSIONED_DELETES_IN_FLIGHT = 64
_ROUNDS_WITHOUT_PROGRESS = 20


class GatewayStartError(RuntimeError):
    """The gateway exited or never became SERVING; the message ends with its log's tail."""


@dataclasses.dataclass(frozen=True)
class GatewayOptions:
    """How to run the gateway under test: the plugin's settings, checked."""

    tables_file: pathlib.Path | None = None
    cassette: pathlib.Path | None = None
    record_mode: str = "none"
    endpoint_url: str | None = None
    record: pathlib.Path | None = None
    extra_args: tuple[str, ...] = ()
    start_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.record_mode not in RECORD_MODES:
            raise pytest.UsageError(
                f"dgw record mode must be one of {', '.join(RECORD_MODES)}, not {self.record_mode!r}"
            )
        if self.record_mode != "none" and self.cassette is None:
            raise pytest.UsageError("--dgw-record-mode is the replay's: it needs --dgw-cassette")
        if self.record is not None and self.cassette is not None:
            raise pytest.UsageError(
                "a replay records into its own cassette: use --dgw-record-mode new_episodes or once,"
                " not --dgw-record"
            )
        for arg in self.extra_args:
            flag = arg.split("=", 1)[0]
            if flag in _RESERVED_FLAGS:
                raise pytest.UsageError(
                    f"--dgw-arg {arg}: {flag} is the plugin's to set (see --dgw-tables, --dgw-cassette,"
                    " --dgw-endpoint, --dgw-record)"
                )

    @property
    def backend(self) -> str:
        if self.cassette is not None:
            return "replay"
        return "aws" if self.endpoint_url else "memory"

    @property
    def empties_tables(self) -> bool:
        """Only the embedded engine is emptied: never a real table, never into a recording."""
        return self.backend == "memory" and self.record is None

    def command(self, port: int) -> list[str]:
        """The gateway's command line; stopping is immediate (a test run has no callers to drain)."""
        args = [sys.executable, "-m", "dynamo_gateway_server", "--host", "127.0.0.1", "--port", str(port)]
        args += ["--backend", self.backend, "--grace-period-s", "0", "--shutdown-delay-s", "0"]
        if self.tables_file is not None:
            args += ["--tables-file", str(self.tables_file)]
        if self.cassette is not None:
            args += ["--cassette", str(self.cassette), "--record-mode", self.record_mode]
        if self.endpoint_url:
            args += ["--endpoint-url", self.endpoint_url]
        if self.record is not None:
            args += ["--record", str(self.record)]
        return [*args, *self.extra_args]

    @classmethod
    def from_config(cls, config: pytest.Config) -> GatewayOptions:
        """The command line's settings, else the ini file's."""

        def text(name: str) -> str | None:
            value = config.getoption(f"dgw_{name}") or config.getini(f"dgw_{name}")
            return str(value) if value else None

        def path(name: str) -> pathlib.Path | None:
            if value := config.getoption(f"dgw_{name}"):
                return config.invocation_params.dir / str(value)
            if value := config.getini(f"dgw_{name}"):
                return (config.inipath.parent if config.inipath else config.rootpath) / str(value)
            return None

        timeout = text("start_timeout") or "60"
        try:
            start_timeout_s = float(timeout)
        except ValueError:
            raise pytest.UsageError(
                f"dgw start timeout must be a number of seconds, not {timeout!r}"
            ) from None
        return cls(
            tables_file=path("tables"),
            cassette=path("cassette"),
            record_mode=text("record_mode") or "none",
            endpoint_url=text("endpoint"),
            record=path("record"),
            extra_args=tuple(config.getoption("dgw_arg") or config.getini("dgw_args") or ()),
            start_timeout_s=start_timeout_s,
        )


@dataclasses.dataclass(frozen=True)
class _TableLayout:
    """What emptying a table needs: its key attributes, and the version attribute when every
    delete must name the version it expects (BatchWriteItem is refused on such a table)."""

    name: str
    key_attributes: tuple[str, ...]
    required_version_attribute: str | None


class RunningGateway:
    """The gateway process of a session: where it listens, its log, emptying its tables."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        command: Sequence[str],
        port: int,
        log_path: pathlib.Path,
        options: GatewayOptions,
    ) -> None:
        self.process = process
        self.command = tuple(command)
        self.port = port
        self.target = f"127.0.0.1:{port}"
        self.log_path = log_path
        self.options = options
        self._channel: grpc.Channel | None = None
        self._layouts: list[_TableLayout] | None = None

    def log_tail(self, max_chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-max_chars:]
        except OSError:
            return ""

    def empty_tables(self) -> None:
        """Deletes every item of the tables file's tables, all tables at once; does nothing
        unless options.empties_tables."""
        if not self.options.empties_tables or self.options.tables_file is None:
            return
        stub = self._stub()
        if self._layouts is None:
            self._layouts = _table_layouts(stub, _declared_table_names(self.options.tables_file))
        with concurrent.futures.ThreadPoolExecutor(max(1, len(self._layouts))) as pool:
            for emptied in [pool.submit(_empty_table, stub, layout) for layout in self._layouts]:
                emptied.result()

    def _stub(self) -> service_pb2_grpc.DynamoDBServiceStub:
        import grpc

        from .v1 import service_pb2_grpc

        if self._channel is None:
            self._channel = grpc.insecure_channel(self.target)
        return service_pb2_grpc.DynamoDBServiceStub(self._channel)

    def stop(self) -> None:
        """SIGTERM (the gateway stops its embedded engine too), then SIGKILL if it lingers."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        _stop(self.process)


def start_gateway(options: GatewayOptions, log_dir: pathlib.Path) -> RunningGateway:
    """Starts the gateway on a free loopback port and returns once it reports SERVING."""
    if importlib.util.find_spec("dynamo_gateway_server") is None:
        raise GatewayStartError(
            "the gateway is not installed in this environment: pip install dynamo-gateway"
            f" (for {sys.executable})"
        )
    log_path = log_dir / "gateway.log"
    env = {name: value for name, value in os.environ.items() if not name.startswith(_ENV_PREFIX)}
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        # Free a moment ago; should another process take it first, the gateway says "cannot
        # listen" and exits, and the next attempt picks another.
        port = _free_loopback_port()
        command = options.command(port)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        gateway = RunningGateway(process, command, port, log_path, options)
        try:
            _wait_serving(gateway, options.start_timeout_s)
        except GatewayStartError:
            _stop(process)
            if attempt < _PORT_ATTEMPTS and "cannot listen on" in gateway.log_tail():
                continue
            raise
        except BaseException:
            _stop(process)
            raise
        return gateway
    raise AssertionError("unreachable: the last attempt returns or raises")


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_serving(gateway: RunningGateway, timeout_s: float) -> None:
    import grpc

    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(gateway.target) as channel:
        check: Callable[..., bytes] = channel.unary_unary(_HEALTH_CHECK)  # bytes in, bytes out
        while True:
            if (code := gateway.process.poll()) is not None:
                raise _start_error(gateway, f"exited with code {code} before it served")
            with contextlib.suppress(grpc.RpcError):
                if check(b"", timeout=1.0) == _SERVING:
                    return
            if time.monotonic() > deadline:
                raise _start_error(gateway, f"did not report SERVING within {timeout_s:g} s")
            time.sleep(0.1)


def _start_error(gateway: RunningGateway, what: str) -> GatewayStartError:
    return GatewayStartError(
        f"dynamo-gateway {what}\ncommand: {shlex.join(gateway.command)}\n"
        f"--- end of {gateway.log_path} ---\n{gateway.log_tail()}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ------------------------------------------------------------ emptying tables


def _declared_table_names(tables_file: pathlib.Path) -> list[str]:
    """The tables the gateway created from the file (entries with `create: false` are made elsewhere)."""
    import yaml  # the testing extra's; the gateway itself depends on it too

    document = yaml.safe_load(tables_file.read_text()) or {}
    entries = document.get("tables", []) if isinstance(document, dict) else []
    return [
        str(entry["name"])
        for entry in entries
        if isinstance(entry, dict) and "name" in entry and entry.get("create", True) is not False
    ]


def _table_layouts(stub: service_pb2_grpc.DynamoDBServiceStub, names: Sequence[str]) -> list[_TableLayout]:
    """Each table's keys and declared version rule, as DescribeTable tells them."""
    from .errors import ResourceNotFoundError
    from .v1 import service_pb2

    layouts = []
    for name in names:
        try:
            with _as_gateway_errors():
                described = stub.DescribeTable(
                    service_pb2.DescribeTableRequest(table_name=name), timeout=_RPC_TIMEOUT_S
                )
        except ResourceNotFoundError:
            continue
        table = described.table
        declarations = table.declarations
        layouts.append(
            _TableLayout(
                name,
                tuple(element.attribute_name for element in table.key_schema),
                declarations.version_attribute if declarations.version_required else None,
            )
        )
    return layouts


@contextlib.contextmanager
def _as_gateway_errors() -> Iterator[None]:
    """A failed call raised as the client's typed GatewayError (ResourceNotFoundError, ...)."""
    import grpc

    from .errors import from_rpc_error

    try:
        yield
    except grpc.RpcError as error:
        raise from_rpc_error(error) from None


def _empty_table(stub: service_pb2_grpc.DynamoDBServiceStub, layout: _TableLayout) -> None:
    """Scans the keys from the start and deletes them, page after page, until a Scan finds none."""
    from .v1 import service_pb2

    attributes = [*layout.key_attributes]
    if layout.required_version_attribute:
        attributes.append(layout.required_version_attribute)
    names = {f"#a{index}": attribute for index, attribute in enumerate(attributes)}
    rounds_without_progress = 0
    while True:
        scan = service_pb2.ScanRequest(
            table_name=layout.name,
            projection_expression=", ".join(names),
            expression_attribute_names=names,
            limit=_SCAN_PAGE,
            consistent_read=True,
            include_expired=True,  # expired items are still there until DynamoDB deletes them
        )
        with _as_gateway_errors():
            page = stub.Scan(scan, timeout=_RPC_TIMEOUT_S)
        if not page.items:
            return
        if layout.required_version_attribute:
            deleted = _delete_versioned(stub, layout, page.items)
        else:
            deleted = _delete_in_batches(stub, layout, page.items)
        rounds_without_progress = 0 if deleted else rounds_without_progress + 1
        if rounds_without_progress >= _ROUNDS_WITHOUT_PROGRESS:
            raise RuntimeError(f"dgw_empty_tables: the items of table {layout.name} cannot be deleted")
        if not deleted:
            time.sleep(0.05)


def _delete_in_batches(
    stub: service_pb2_grpc.DynamoDBServiceStub, layout: _TableLayout, items: Sequence[value_pb2.Item]
) -> int:
    """BatchWriteItem deletes, every batch at once; returns how many were applied (the others
    come back in the next Scan)."""
    from .v1 import service_pb2

    batches = []
    for start in range(0, len(items), _DELETES_PER_BATCH):
        request = service_pb2.BatchWriteItemRequest()
        writes = request.request_items[layout.name].requests
        for item in items[start : start + _DELETES_PER_BATCH]:
            key = writes.add().delete_request.key
            for attribute in layout.key_attributes:
                key[attribute].CopyFrom(item.attributes[attribute])
        batches.append((len(writes), stub.BatchWriteItem.future(request, timeout=_RPC_TIMEOUT_S)))
    deleted = 0
    for sent, answer in batches:
        with _as_gateway_errors():
            response = answer.result()
        deleted += sent - sum(len(left.requests) for left in response.unprocessed_items.values())
    return deleted


def _delete_versioned(
    stub: service_pb2_grpc.DynamoDBServiceStub, layout: _TableLayout, items: Sequence[value_pb2.Item]
) -> int:
    """DeleteItem per item, each expecting the version the Scan saw; one changed meanwhile is
    left for the next Scan."""
    from .errors import ConditionalCheckError
    from .v1 import service_pb2

    attribute = str(layout.required_version_attribute)
    deleted = 0
    for start in range(0, len(items), _VERSIONED_DELETES_IN_FLIGHT):
        answers = []
        for item in items[start : start + _VERSIONED_DELETES_IN_FLIGHT]:
            request = service_pb2.DeleteItemRequest(table_name=layout.name)
            for key_attribute in layout.key_attributes:
                request.key[key_attribute].CopyFrom(item.attributes[key_attribute])
            if attribute in item.attributes:
                request.expected_version.version = int(item.attributes[attribute].n)
            else:
                request.expected_version.absent = True
            answers.append(stub.DeleteItem.future(request, timeout=_RPC_TIMEOUT_S))
        for answer in answers:
            try:
                with _as_gateway_errors():
                    answer.result()
            except ConditionalCheckError:
                continue
            deleted += 1
    return deleted


# ------------------------------------------------------------ pytest hooks and fixtures


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dynamo-gateway", "dynamo-gateway test kit (the dgw_* fixtures)")

    def setting(name: str, metavar: str, help: str, **kwargs: Any) -> None:
        group.addoption(
            f"--dgw-{name.replace('_', '-')}", dest=f"dgw_{name}", metavar=metavar, help=help, **kwargs
        )
        parser.addini(f"dgw_{name}", help)

    setting("tables", "FILE", "tables file the gateway creates at startup (and dgw_empty_tables empties)")
    setting("cassette", "PATH", "replay backend: answer from this cassette")
    setting("record_mode", "MODE", "replay: none (default), new_episodes or once", choices=RECORD_MODES)
    setting("endpoint", "URL", "a DynamoDB-compatible endpoint instead of the memory backend")
    setting("record", "PATH", "append every DynamoDB call to this cassette")
    setting("start_timeout", "SECONDS", "how long the gateway may take to report SERVING (default 60)")
    group.addoption(
        "--dgw-arg",
        dest="dgw_arg",
        action="append",
        metavar="ARG",
        help="one more gateway flag (repeatable), e.g. --dgw-arg=--log-level=DEBUG",
    )
    parser.addini("dgw_args", "more gateway flags, shell-quoted", type="args")


_OPTIONS = pytest.StashKey[GatewayOptions]()


def pytest_configure(config: pytest.Config) -> None:
    # Checked now, so that settings that cannot work stop the run with one line; nothing starts.
    config.stash[_OPTIONS] = GatewayOptions.from_config(config)


@pytest.fixture(scope="session")
def dgw_gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    """The session's gateway, started by the first test that needs it."""
    try:
        gateway = start_gateway(request.config.stash[_OPTIONS], tmp_path_factory.mktemp("dgw"))
    except GatewayStartError as error:
        # The gateway's log says more than a traceback.
        raise pytest.fail.Exception(str(error), pytrace=False) from None
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="session")
def dgw_target(dgw_gateway: RunningGateway) -> str:
    """The gateway's address, "127.0.0.1:PORT", for any gRPC client (Go, Node, grpcurl, dgw)."""
    return dgw_gateway.target


@pytest.fixture
def dgw_empty_tables(dgw_gateway: RunningGateway) -> None:
    """Before the test: the tables file's tables, empty (memory backend, nothing recorded)."""
    dgw_gateway.empty_tables()


_Fixture = TypeVar("_Fixture", bound=Callable[..., Any])


def _async_fixture(function: _Fixture) -> _Fixture:
    """pytest-asyncio's fixture (the testing extra brings it). Without it the plugin still loads
    (its entry point is installed with the client), and only this fixture says what is missing."""
    try:
        import pytest_asyncio
    except ImportError:

        @pytest.fixture(name=function.__name__)
        def needs_pytest_asyncio() -> None:
            pytest.fail(
                f"{function.__name__} is async and needs pytest-asyncio:"
                " pip install 'dynamo-gateway-client[testing]'",
                pytrace=False,
            )

        return cast(_Fixture, needs_pytest_asyncio)
    return cast(_Fixture, pytest_asyncio.fixture(function))


@_async_fixture
async def dgw_client(dgw_gateway: RunningGateway, dgw_empty_tables: None) -> AsyncIterator[GatewayClient]:
    """A client of the session's gateway, on the test's event loop; the tables are empty."""
    from .client import GatewayClient

    async with GatewayClient.connect(dgw_gateway.target) as client:
        yield client
