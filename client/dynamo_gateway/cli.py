"""`dgw`: the operators' command line for dynamo-gateway.

    dgw [--target HOST:PORT] [--dynamodb-json] COMMAND ...
    get | put | update | delete | query | scan | describe | export | import

Values go in and come out as plain JSON ({"age": 36}), or as DynamoDB JSON
({"age": {"N": "36"}}) with --dynamodb-json. Items are printed one JSON object per
line; errors go to stderr as one line, `dgw: <reason>: <message>`, and the exit
status says what happened (EXIT_CODES), so shell scripts can rely on both.
Owns argument parsing and output; requests go through the generated stub, whole
tables through transfer.py. Must not import an AWS SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import pathlib
import re
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal, NoReturn

import grpc
from google.protobuf import json_format

from dynamo_gateway.v1 import service_pb2, service_pb2_grpc

from .client import CHANNEL_OPTIONS, fill_expected_version, fill_expiry, return_value
from .errors import GatewayError, VersionConflictError, call_stream, call_unary
from .json_codec import ItemJson, JsonInputError
from .regions import regions_served
from .transfer import STATE_SUFFIX, TransferError, export_table, import_table, open_source, state_path_of

DEFAULT_TARGET = "127.0.0.1:50051"

EXIT_OK = 0
EXIT_ERROR = 1  # the gateway refused for a reason not listed below
EXIT_USAGE = 2  # bad arguments or input (nothing was sent)
EXIT_NOT_FOUND = 3  # get: no such item; any command: no such table
EXIT_CONDITION = 4  # a condition, version or transaction check failed
EXIT_INVALID = 5  # the gateway or DynamoDB refused the request as invalid
EXIT_RETRY = 6  # throttled, unavailable or out of time: the same command may work later
EXIT_PARTIAL = 7  # import: some lines could not be written
EXIT_INTERRUPTED = 130  # Ctrl-C; an export can be resumed

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_ERROR: "the gateway refused the request (other reasons)",
    EXIT_USAGE: "bad arguments or input; nothing was sent",
    EXIT_NOT_FOUND: "no such item (get) or table",
    EXIT_CONDITION: "a condition expression, expected version or transaction check failed",
    EXIT_INVALID: "the request is invalid (validation by the gateway or DynamoDB)",
    EXIT_RETRY: "throttled, unavailable or deadline exceeded: retry later",
    EXIT_PARTIAL: "import finished, but some lines could not be written (see --rejects)",
    EXIT_INTERRUPTED: "interrupted (an export resumes with --resume)",
}

_BY_CATEGORY = {
    "ConditionalCheck": EXIT_CONDITION,
    "Transaction": EXIT_CONDITION,
    "Validation": EXIT_INVALID,
    "Configuration": EXIT_INVALID,
    "Throughput": EXIT_RETRY,
}
_BY_CODE = {
    grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_INVALID,
    grpc.StatusCode.FAILED_PRECONDITION: EXIT_CONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED: EXIT_RETRY,
    grpc.StatusCode.UNAVAILABLE: EXIT_RETRY,
    grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_RETRY,
}


class UsageError(Exception):
    """Arguments or input that make no request."""


def exit_code_of(error: GatewayError) -> int:
    category = error.reason.split(".", 1)[0]
    if error.reason in ("Service.ResourceNotFound", "Item.ItemNotFound"):
        return EXIT_NOT_FOUND
    if category in _BY_CATEGORY:
        return _BY_CATEGORY[category]
    return _BY_CODE.get(error.code, EXIT_ERROR)


# ---------------------------------------------------------------- arguments


def _read_argument(text: str) -> str:
    """JSON given inline, as @FILE, or as - for stdin."""
    if text == "-":
        return sys.stdin.read()
    if text.startswith("@"):
        try:
            return pathlib.Path(text[1:]).read_text()
        except OSError as error:
            raise UsageError(f"cannot read {text[1:]}: {error.strerror}") from None
    return text


def _expected_version(text: str) -> int | Literal["absent"]:
    """--expect-version: an integer version, or the word absent (no versioned item yet)."""
    if text == "absent":
        return "absent"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an integer version nor 'absent'") from None


_DURATION = re.compile(r"(\d+(?:\.\d+)?|\.\d+)([smhd]?)")
_SECONDS_PER_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> datetime.timedelta:
    """--expires-in: seconds as a number, or a number with s, m, h or d (90s, 15m, 2h, 7d)."""
    refusal = f"{text!r} is not a duration: seconds, or a number with s, m, h or d (90s, 15m, 2h, 7d)"
    match = _DURATION.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(refusal)
    try:
        duration = datetime.timedelta(seconds=float(match[1]) * _SECONDS_PER_UNIT[match[2]])
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} is too long a duration") from None
    if duration <= datetime.timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration")
    return duration


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dgw",
        description="Read and write DynamoDB items through dynamo-gateway.",
        epilog="exit status: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()),
    )
    parser.add_argument(
        "--target",
        default=os.environ.get("DYNAMO_GATEWAY_TARGET", DEFAULT_TARGET),
        help="gateway address (env DYNAMO_GATEWAY_TARGET; default %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call (default %(default)s)")
    parser.add_argument(
        "--show-region",
        action="store_true",
        help="print on stderr the DynamoDB region(s) that served the calls (a gateway with global tables)",
    )
    security = parser.add_argument_group("a gateway with TLS or caller authentication")
    security.add_argument("--tls", action="store_true", help="TLS, verified with the system's roots")
    security.add_argument(
        "--ca-file",
        default=os.environ.get("DYNAMO_GATEWAY_CA_FILE"),
        help="TLS, verified with this CA (PEM; env DYNAMO_GATEWAY_CA_FILE)",
    )
    security.add_argument("--cert-file", help="client certificate (PEM) for a gateway that requires mTLS")
    security.add_argument("--key-file", help="private key (PEM) of --cert-file")
    security.add_argument(
        "--token-env",
        default="DYNAMO_GATEWAY_TOKEN",
        help="environment variable holding the bearer token sent as authorization metadata"
        " (default %(default)s; a token never goes on the command line, where ps would show it)",
    )
    parser.add_argument(
        "--dynamodb-json",
        action="store_true",
        help='values in and out as DynamoDB JSON ({"N": "1"}; binary as base64): lossless',
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def expressions(sub: argparse.ArgumentParser, values: bool = True) -> None:
        sub.add_argument("--names", help='expression attribute names, e.g. {"#n": "name"}')
        if values:
            sub.add_argument("--values", help='expression attribute values, e.g. {":v": 1}')

    def expiring(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--expires-in",
            type=_duration,
            metavar="DURATION",
            help="on a table that declares a TTL attribute: the item expires this long from now"
            " (by the gateway's clock; seconds, or 90s, 15m, 2h, 7d); the gateway sets the attribute",
        )

    def with_expired(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--include-expired",
            action="store_true",
            help="on a table that declares a TTL attribute: also items whose time has passed"
            " (DynamoDB deletes them only within a few days)",
        )

    def by_entity(sub: argparse.ArgumentParser, what: str) -> None:
        sub.add_argument(
            "--entity",
            help=f"an entity the table declares (dgw describe lists them): the {what} holds its"
            " attributes, and the gateway builds the keys from its templates",
        )

    def versioned(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--expect-version",
            type=_expected_version,
            metavar="N|absent",
            help="on a table that declares a version attribute: write only if the item holds version N"
            " (absent: no versioned item yet); the gateway sets the next version (exit 4 if not)",
        )

    get = commands.add_parser("get", help="print one item (exit 3 if there is none)")
    get.add_argument("table")
    get.add_argument("key", help="the full primary key as JSON (or @FILE, or - for stdin)")
    get.add_argument("--consistent", action="store_true", help="strongly consistent read")
    get.add_argument("--projection", help="projection expression")
    expressions(get, values=False)
    with_expired(get)
    by_entity(get, "key")

    put = commands.add_parser("put", help="create or replace one item")
    put.add_argument("table")
    put.add_argument("item", help="the item as JSON (or @FILE, or -)")
    put.add_argument("--condition", help="condition expression")
    put.add_argument("--return-old", action="store_true", help="print the item it replaced")
    expressions(put)
    versioned(put)
    expiring(put)
    by_entity(put, "item")

    update = commands.add_parser("update", help="edit one item with an update expression")
    update.add_argument("table")
    update.add_argument("key")
    update.add_argument("--update", required=True, help="update expression, e.g. 'SET #n = :v'")
    update.add_argument("--condition", help="condition expression")
    update.add_argument(
        "--return", dest="return_values", choices=["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"]
    )
    expressions(update)
    versioned(update)
    expiring(update)
    by_entity(update, "key")

    delete = commands.add_parser("delete", help="delete one item")
    delete.add_argument("table")
    delete.add_argument("key")
    delete.add_argument("--condition", help="condition expression")
    delete.add_argument("--return-old", action="store_true", help="print the deleted item")
    expressions(delete)
    versioned(delete)
    by_entity(delete, "key")

    query = commands.add_parser("query", help="print the items of a key condition, one per line")
    query.add_argument("table")
    query.add_argument("--key-condition", required=True, help="e.g. 'pk = :pk'")
    query.add_argument("--index", help="a global or local secondary index")
    query.add_argument("--filter", help="filter expression")
    query.add_argument("--projection", help="projection expression")
    query.add_argument("--backward", action="store_true", help="descending sort key order")
    query.add_argument("--consistent", action="store_true")
    query.add_argument("--limit", type=int, help="stop after this many items")
    query.add_argument(
        "--page-size", type=int, default=0, help="items per request (default: DynamoDB's 1 MB)"
    )
    expressions(query)
    with_expired(query)

    scan = commands.add_parser("scan", help="print every item of a table or index, one per line")
    scan.add_argument("table")
    scan.add_argument("--index")
    scan.add_argument("--filter")
    scan.add_argument("--projection")
    scan.add_argument("--segments", type=int, default=1, help="scan in parallel (ParallelScan)")
    scan.add_argument("--limit", type=int, help="stop after this many items")
    scan.add_argument("--page-size", type=int, default=0)
    expressions(scan)
    with_expired(scan)

    describe = commands.add_parser("describe", help="print a table's description as JSON")
    describe.add_argument("table")

    export = commands.add_parser("export", help="stream a whole table to JSON Lines (resumable)")
    export.add_argument("table")
    export.add_argument("-o", "--output", required=True, help="the JSON Lines file to write")
    export.add_argument("--segments", type=int, default=8, help="ParallelScan segments (default %(default)s)")
    export.add_argument(
        "--page-size", type=int, default=0, help="items per DynamoDB page (default: 1 MB pages)"
    )
    export.add_argument(
        "--resume", action="store_true", help=f"continue an interrupted export (from OUTPUT{STATE_SUFFIX})"
    )
    with_expired(export)
    progress_flags(export)

    load = commands.add_parser("import", help="put every line of a JSON Lines file into a table")
    load.add_argument("table")
    load.add_argument("-i", "--input", required=True, help="the JSON Lines file to read (- for stdin)")
    load.add_argument("--rejects", help="write the lines that could not be written here (JSON Lines)")
    load.add_argument("--batch-size", type=int, default=100, help="items per BatchWriteItem call")
    load.add_argument("--concurrency", type=int, default=4, help="calls in flight (default %(default)s)")
    progress_flags(load)
    return parser


def progress_flags(sub: argparse.ArgumentParser) -> None:
    group = sub.add_mutually_exclusive_group()
    group.add_argument("--progress", dest="progress", action="store_true", default=None, help="always draw")
    group.add_argument("--no-progress", dest="progress", action="store_false", help="never draw")


# ---------------------------------------------------------------- commands


class Cli:
    def __init__(self, args: argparse.Namespace, stub: Any) -> None:
        self.args = args
        self.stub = stub
        self.json = ItemJson(args.dynamodb_json)

    def _fill(self, target: Any, text: str, what: str) -> None:
        try:
            self.json.fill(target, _read_argument(text))
        except JsonInputError as error:
            raise UsageError(f"{what}: {error}") from None

    def _expressions(self, request: Any) -> None:
        try:
            request.expression_attribute_names.update(ItemJson.names(getattr(self.args, "names", None)))
        except JsonInputError as error:
            raise UsageError(f"--names: {error}") from None
        if getattr(self.args, "values", None):
            self._fill(request.expression_attribute_values, self.args.values, "--values")

    async def call(self, method: Any, request: Any) -> Any:
        return await call_unary(method, request, self.args.timeout)

    def emit(self, item: Any) -> None:
        sys.stdout.write(self.json.dumps(item) + "\n")

    async def get(self) -> int:
        a = self.args
        request = service_pb2.GetItemRequest(
            table_name=a.table,
            consistent_read=a.consistent,
            projection_expression=a.projection or "",
            include_expired=a.include_expired,
            entity=a.entity or "",
        )
        self._fill(request.key, a.key, "key")
        self._expressions(request)
        response = await self.call(self.stub.GetItem, request)
        if not response.found:
            print("dgw: no item has this key", file=sys.stderr)
            return EXIT_NOT_FOUND
        self.emit(response.item)
        return EXIT_OK

    async def _write(self, method: Any, request: Any, what: str, show_attributes: bool) -> int:
        """Fills request.<what> ("item" or "key") from the argument of that name and the
        expressions, sends it, and prints the attributes it returned when show_attributes."""
        fill_expected_version(request, self.args.expect_version)
        fill_expiry(request, getattr(self.args, "expires_in", None))  # put and update have it
        self._fill(getattr(request, what), getattr(self.args, what), what)
        self._expressions(request)
        response = await self.call(method, request)
        if show_attributes and response.attributes:
            self.emit(response.attributes)
        return EXIT_OK

    async def put(self) -> int:
        a = self.args
        request = service_pb2.PutItemRequest(
            table_name=a.table,
            condition_expression=a.condition or "",
            return_values=return_value("ALL_OLD" if a.return_old else None),
            entity=a.entity or "",
        )
        return await self._write(self.stub.PutItem, request, "item", a.return_old)

    async def update(self) -> int:
        a = self.args
        request = service_pb2.UpdateItemRequest(
            table_name=a.table,
            update_expression=a.update,
            condition_expression=a.condition or "",
            return_values=return_value(a.return_values),
            entity=a.entity or "",
        )
        return await self._write(self.stub.UpdateItem, request, "key", True)

    async def delete(self) -> int:
        a = self.args
        request = service_pb2.DeleteItemRequest(
            table_name=a.table,
            condition_expression=a.condition or "",
            return_values=return_value("ALL_OLD" if a.return_old else None),
            entity=a.entity or "",
        )
        return await self._write(self.stub.DeleteItem, request, "key", a.return_old)

    async def _paged(self, method: Any, request: Any) -> AsyncIterator[Any]:
        while True:
            response = await self.call(method, request)
            for item in response.items:
                yield item.attributes
            if not response.last_evaluated_key:
                return
            request.exclusive_start_key.clear()
            request.exclusive_start_key.MergeFrom(response.last_evaluated_key)

    async def _print_limited(self, items: AsyncIterator[Any]) -> int:
        limit = self.args.limit
        printed = 0
        async for item in items:
            if limit is not None and printed >= limit:
                break
            self.emit(item)
            printed += 1
        return EXIT_OK

    async def query(self) -> int:
        a = self.args
        request = service_pb2.QueryRequest(
            table_name=a.table,
            index_name=a.index or "",
            key_condition_expression=a.key_condition,
            filter_expression=a.filter or "",
            projection_expression=a.projection or "",
            consistent_read=a.consistent,
            scan_index_forward=not a.backward,
            limit=a.page_size,
            include_expired=a.include_expired,
        )
        self._expressions(request)
        return await self._print_limited(self._paged(self.stub.Query, request))

    async def scan(self) -> int:
        a = self.args
        common = {
            "table_name": a.table,
            "index_name": a.index or "",
            "filter_expression": a.filter or "",
            "projection_expression": a.projection or "",
            "include_expired": a.include_expired,
        }
        if a.segments > 1:
            request: Any = service_pb2.ParallelScanRequest(
                **common, total_segments=a.segments, page_limit=a.page_size
            )
            self._expressions(request)
            return await self._print_limited(self._stream(request))
        request = service_pb2.ScanRequest(**common, limit=a.page_size)
        self._expressions(request)
        return await self._print_limited(self._paged(self.stub.Scan, request))

    async def _stream(self, request: Any) -> AsyncIterator[Any]:
        # No deadline: --timeout bounds calls of one page, and this stream reads the whole table
        # (as export does). aclosing cancels the call, stopping the gateway's scan, as soon as
        # --limit stops us early.
        async with contextlib.aclosing(call_stream(self.stub.ParallelScan, request, None)) as pages:
            async for page in pages:
                for item in page.items:
                    yield item.attributes

    async def describe(self) -> int:
        response = await self.call(
            self.stub.DescribeTable, service_pb2.DescribeTableRequest(table_name=self.args.table)
        )
        text = json_format.MessageToJson(response.table, preserving_proto_field_name=True, indent=2)
        sys.stdout.write(text + "\n")
        return EXIT_OK

    async def export(self) -> int:
        a = self.args
        output = pathlib.Path(a.output)
        if a.segments < 1:
            raise UsageError("--segments must be at least 1")
        result = await export_table(
            self.stub,
            a.table,
            output,
            item_json=self.json,
            total_segments=a.segments,
            page_size=a.page_size,
            resume=a.resume,
            progress=a.progress,
            include_expired=a.include_expired,
        )
        note = f" ({result.resumed_items} before resuming)" if a.resume else ""
        print(f"dgw: exported {result.items} items{note} to {output} ({result.bytes} bytes)", file=sys.stderr)
        return EXIT_OK

    async def import_(self) -> int:
        a = self.args
        if a.batch_size < 1 or a.concurrency < 1:
            raise UsageError("--batch-size and --concurrency must be at least 1")
        with open_source(a.input) as (source, size):
            result = await import_table(
                self.stub,
                a.table,
                source,
                item_json=self.json,
                size_bytes=size,
                batch_size=a.batch_size,
                concurrency=a.concurrency,
                progress=a.progress,
            )
        if a.rejects:
            _write_rejects(pathlib.Path(a.rejects), result.rejected)
        for rejected in result.rejected[:10]:
            print(f"dgw: line {rejected.line}: {rejected.reason}: {rejected.message}", file=sys.stderr)
        summary = f"dgw: imported {result.written} items into {a.table}"
        if result.rejected:
            where = f" (all in {a.rejects})" if a.rejects else ""
            print(f"{summary}; {len(result.rejected)} lines could not be written{where}", file=sys.stderr)
            return EXIT_PARTIAL
        print(summary, file=sys.stderr)
        return EXIT_OK


def _write_rejects(path: pathlib.Path, rejected: Sequence[Any]) -> None:
    with path.open("w") as file:
        for entry in rejected:
            file.write(json.dumps(entry.__dict__) + "\n")


class _BearerToken(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call."""

    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    def _with_token(self, details: Any) -> Any:
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            grpc.aio.Metadata(*(details.metadata or ()), *self._metadata),
            details.credentials,
            details.wait_for_ready,
        )

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_token(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_token(details), request)


def _channel(args: argparse.Namespace) -> grpc.aio.Channel:
    options = list(CHANNEL_OPTIONS)
    token = os.environ.get(args.token_env)
    interceptors = [_BearerToken(token)] if token else None
    if not (args.tls or args.ca_file or args.cert_file):
        return grpc.aio.insecure_channel(args.target, options=options, interceptors=interceptors)
    if bool(args.cert_file) != bool(args.key_file):
        raise UsageError("--cert-file and --key-file go together")
    try:
        root = pathlib.Path(args.ca_file).read_bytes() if args.ca_file else None
        key = pathlib.Path(args.key_file).read_bytes() if args.key_file else None
        chain = pathlib.Path(args.cert_file).read_bytes() if args.cert_file else None
    except OSError as error:
        raise UsageError(f"cannot read {error.filename}: {error.strerror}") from None
    credentials = grpc.ssl_channel_credentials(root, key, chain)
    return grpc.aio.secure_channel(args.target, credentials, options=options, interceptors=interceptors)


async def _run(args: argparse.Namespace) -> int:
    with regions_served() as served:
        try:
            async with _channel(args) as channel:
                cli = Cli(args, service_pb2_grpc.DynamoDBServiceStub(channel))
                command = "import_" if args.command == "import" else args.command
                return int(await getattr(cli, command)())
        finally:
            if args.show_region:
                print(f"dgw: region {', '.join(dict.fromkeys(served)) or 'not said'}", file=sys.stderr)


def _error_line(error: GatewayError) -> str:
    """`<reason>: <message>`; a version conflict adds the version the item has, which a
    read-modify-write script starts again from."""
    line = f"{error.reason or error.code.name}: {error.message}"
    if isinstance(error, VersionConflictError):
        if error.current_version is not None:
            line += f" (current version {error.current_version})"
        elif error.current_item is not None:
            line += " (the item has no version)"
        else:
            line += " (no item exists)"
    return line


def _fail(code: int, message: str) -> NoReturn:
    print(f"dgw: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except (UsageError, TransferError) as error:
        _fail(EXIT_USAGE, str(error))
    except GatewayError as error:
        _fail(exit_code_of(error), _error_line(error))
    except KeyboardInterrupt:
        if args.command == "export":
            state = state_path_of(pathlib.Path(args.output))
            _fail(EXIT_INTERRUPTED, f"interrupted; {state} remembers where: rerun with --resume")
        _fail(EXIT_INTERRUPTED, "interrupted")
    except BrokenPipeError:
        # `dgw scan t | head`: the reader has what it wanted.
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
