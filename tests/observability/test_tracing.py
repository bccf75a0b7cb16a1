"""Spans: one per DynamoDB call, named and attributed as the spec says, children of the RPC's span.

The RPC's own span (RpcInterceptor, interceptors/tracing.py) is checked here too: on the real
gateway, and on a probe server for what the gateway's servicer does not do (async-generator
streams, uncaught exceptions, authentication refusals).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from dynamo_gateway import GatewayClient, GatewayError, TransactPut, TransactUpdate
from dynamo_gateway.v1 import service_pb2
from dynamo_gateway_server.interceptors.rpc import RpcChecks, RpcInterceptor
from dynamo_gateway_server.interceptors.tracing import peer_attributes
from dynamo_gateway_server.key_schema import KeySchema
from dynamo_gateway_server.observability.keys import KeyRenderer
from dynamo_gateway_server.observability.metrics import Metrics
from dynamo_gateway_server.observability.tracing import SERVICE_NAME, build_tracer_provider
from dynamo_gateway_server.security.auth import Authenticator
from dynamo_gateway_server.security.limits import InFlightLimiter
from dynamo_gateway_server.stopping import ShutdownGate

from .conftest import settle

HASH = KeyRenderer("hashed").hash
DYNAMODB_SERVICE = "dynamo_gateway.v1.DynamoDBService"


async def _ended(spans: Callable[[], list], count: int) -> list:
    """`spans()` once it holds `count`: an abort answers the caller before the handler has unwound
    (ParallelScan still stops its workers), and the RPC's span ends only then."""
    for _ in range(200):
        if len(found := spans()) >= count:
            return found
        await asyncio.sleep(0.01)
    return spans()


def _spec_attributes(span) -> dict:
    return {name: value for name, value in span.attributes.items() if name.startswith("dynamodb.")}


async def test_every_operation_has_its_span_with_the_spec_attributes(observe, table_factory) -> None:
    observed = await observe()
    table, other = await table_factory(), await table_factory()
    client = GatewayClient(observed.channel)
    # The first success on a table teaches the gateway its key schema (for pk/sk attributes).
    await client.put_item(table, {"pk": "seed", "sk": "0"})
    await client.put_item(other, {"pk": "seed", "sk": "0"})
    await observed.learnt()
    observed.exporter.clear()

    await client.put_item(table, {"pk": "a", "sk": "1", "n": 1}, condition="attribute_not_exists(pk)")
    await client.get_item(table, {"pk": "a", "sk": "1"}, consistent_read=True)
    await client.update_item(table, {"pk": "a", "sk": "1"}, "SET n = n + :one", values={":one": 1})
    await client.query_page(table, "pk = :p", values={":p": "a"}, page_size=5)
    await client.scan_page(table, segment=1, total_segments=2)
    await client.batch_get({table: [{"pk": "a", "sk": "1"}, {"pk": "seed", "sk": "0"}]})
    await client.batch_write(
        {table: [{"pk": "b", "sk": "1"}, {"pk": "c", "sk": "1"}]}, deletes={table: [{"pk": "a", "sk": "1"}]}
    )
    await client.transact_write(
        [
            TransactPut(other, {"pk": "t", "sk": "1"}),
            TransactUpdate(table, {"pk": "b", "sk": "1"}, "SET x = :x", values={":x": 1}),
        ]
    )
    await client.transact_get([(table, {"pk": "b", "sk": "1"}), (other, {"pk": "t", "sk": "1"})])
    await client.delete_item(table, {"pk": "b", "sk": "1"})
    await settle()

    a, b = HASH({"S": "a"}), HASH({"S": "b"})
    expected = [
        (
            "dynamodb.put_item",
            {"table": table, "pk": a, "sk": HASH({"S": "1"}), "condition": "attribute_not_exists(pk)"},
        ),
        ("dynamodb.get_item", {"table": table, "pk": a, "sk": HASH({"S": "1"}), "consistent_read": True}),
        (
            "dynamodb.update_item",
            {"table": table, "pk": a, "sk": HASH({"S": "1"}), "update_expr": "SET n = n + :one"},
        ),
        ("dynamodb.query", {"table": table, "index": "", "pk": a, "limit": 5}),
        ("dynamodb.scan", {"table": table, "segment": 1, "total_segments": 2}),
        ("dynamodb.batch_get", {"table": table, "item_count": 2}),
        ("dynamodb.batch_write", {"table": table, "put_count": 2, "delete_count": 1}),
        ("dynamodb.transact_write", {"item_count": 2, "tables": tuple(sorted([table, other]))}),
        ("dynamodb.transact_get", {"item_count": 2, "tables": tuple(sorted([table, other]))}),
        ("dynamodb.delete_item", {"table": table, "pk": b, "sk": HASH({"S": "1"})}),
    ]
    # Batches look up key schemas with DescribeTable themselves (batches.py); those spans are not the caller's.
    spans = [span for span in observed.spans() if span.name != "dynamodb.describe_table"]
    assert [span.name for span in spans] == [name for name, _ in expected]
    for span, (name, attributes) in zip(spans, expected, strict=True):
        actual = _spec_attributes(span)
        for attribute, wanted in attributes.items():
            assert actual[f"dynamodb.{attribute}"] == wanted, (name, attribute)
        # Asked for although the caller did not; moto reports none for transactions (DynamoDB does).
        assert actual["dynamodb.consumed_capacity"] >= (0 if "transact" in name else 0.5), name
        assert span.status.status_code is StatusCode.UNSET

    servers = {
        span.context.span_id: span for span in observed.spans(prefix="/dynamo_gateway.v1.DynamoDBService/")
    }
    for span in spans:
        parent = servers[span.parent.span_id]  # every DynamoDB span is a child of its RPC's span
        assert parent.context.trace_id == span.context.trace_id
    assert servers[spans[1].parent.span_id].name.endswith("/GetItem")


async def test_key_values_can_be_plain_or_left_out(observe, table_factory) -> None:
    table = await table_factory()
    for mode, expected in (("plain", {"dynamodb.pk": "user#1", "dynamodb.sk": "x"}), ("off", {})):
        observed = await observe(trace_key_values=mode)
        client = GatewayClient(observed.channel)
        await client.put_item(table, {"pk": "user#1", "sk": "x"})
        await observed.learnt()
        await client.get_item(table, {"pk": "user#1", "sk": "x"})
        await settle()
        get = observed.spans()[-1]
        assert get.name == "dynamodb.get_item"
        keys = {
            name: value for name, value in get.attributes.items() if name in ("dynamodb.pk", "dynamodb.sk")
        }
        assert keys == expected, mode


async def test_hashed_keys_do_not_show_the_key(observe, table_factory) -> None:
    observed = await observe()
    table = await table_factory()
    client = GatewayClient(observed.channel)
    await client.put_item(table, {"pk": "alice@example.com", "sk": "x"})
    await observed.learnt()
    await client.get_item(table, {"pk": "alice@example.com", "sk": "x"})
    await settle()
    attributes = observed.spans()[-1].attributes
    assert attributes["dynamodb.pk"] == HASH({"S": "alice@example.com"})
    assert "alice" not in str(dict(attributes))


async def test_the_callers_trace_context_is_continued(observe, table_factory) -> None:
    observed = await observe()
    table = await table_factory()
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    metadata = (("traceparent", f"00-{trace_id}-{parent_id}-01"),)
    await GatewayClient(observed.channel).stub.GetItem(
        service_pb2.GetItemRequest(table_name=table, key={"pk": {"s": "a"}, "sk": {"s": "b"}}),
        metadata=metadata,
    )
    await settle()
    (server,) = observed.spans(prefix="/")
    assert server.name == f"/{DYNAMODB_SERVICE}/GetItem"
    assert server.kind is SpanKind.SERVER
    assert format(server.context.trace_id, "032x") == trace_id
    assert format(server.parent.span_id, "016x") == parent_id
    assert server.parent.is_remote
    attributes = dict(server.attributes)
    assert attributes.pop("rpc.user_agent").startswith("grpc-python")
    assert attributes == {
        "rpc.system": "grpc",
        "rpc.service": DYNAMODB_SERVICE,
        "rpc.method": "GetItem",
        "rpc.grpc.status_code": grpc.StatusCode.OK.value[0],
        "net.peer.ip": "127.0.0.1",
        "net.peer.port": attributes["net.peer.port"],
        "net.peer.name": "localhost",
    }
    assert isinstance(attributes["net.peer.port"], int)
    assert server.status.status_code is StatusCode.UNSET
    (get,) = observed.spans()
    assert format(get.context.trace_id, "032x") == trace_id
    assert get.parent.span_id == server.context.span_id


async def test_without_a_traceparent_the_rpc_span_starts_a_trace(observe, table_factory) -> None:
    observed = await observe()
    table = await table_factory()
    await GatewayClient(observed.channel).get_item(table, {"pk": "a", "sk": "b"})
    await settle()
    (server,) = observed.spans(prefix="/")
    assert server.parent is None
    assert observed.spans()[-1].context.trace_id == server.context.trace_id


async def test_a_failed_rpc_puts_its_code_on_the_span_and_server_faults_are_errors(observe) -> None:
    observed = await observe()
    client = GatewayClient(observed.channel)
    for table in ("unavailable-orders", "throttled-orders"):
        with pytest.raises(GatewayError):
            await client.get_item(table, {"pk": "a"})
    ended = await _ended(lambda: observed.spans(prefix="/"), 2)
    unavailable, throttled = sorted(ended, key=lambda span: span.start_time)
    assert unavailable.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    assert unavailable.status.status_code is StatusCode.ERROR
    assert unavailable.status.description.startswith("StatusCode.UNAVAILABLE:")
    # An abort is an answer, not an exception.
    assert not [event for event in unavailable.events if event.name == "exception"]
    # The caller's side of the semantic conventions: an error code, but not the server's fault.
    assert throttled.attributes["rpc.grpc.status_code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert throttled.status.status_code is StatusCode.UNSET
    # The DynamoDB spans are still the RPC spans' children.
    assert {span.parent.span_id for span in observed.spans()} == {
        unavailable.context.span_id,
        throttled.context.span_id,
    }


async def test_health_checks_have_no_span(observe) -> None:
    observed = await observe()
    answer = await health_pb2_grpc.HealthStub(observed.channel).Check(health_pb2.HealthCheckRequest())
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    await settle()
    assert observed.spans(prefix="/") == []


async def test_without_an_exporter_no_span_is_recorded(observe, table_factory) -> None:
    observed = await observe(record_spans=False)
    table = await table_factory()
    await GatewayClient(observed.channel).get_item(table, {"pk": "a", "sk": "b"})
    await settle()
    assert observed.exporter.get_finished_spans() == ()


async def test_retries_are_events_on_the_calls_span(observe) -> None:
    observed = await observe()
    with pytest.raises(GatewayError):
        await GatewayClient(observed.channel).get_item("throttled-orders", {"pk": "a"})
    await settle()
    (span,) = observed.spans()
    assert span.name == "dynamodb.get_item"
    retries = [event for event in span.events if event.name == "retry"]
    assert [event.attributes["attempt"] for event in retries] == [1, 2]  # 3 attempts, 2 retries
    assert {event.attributes["error_code"] for event in retries} == {"ProvisionedThroughputExceededException"}
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["dynamodb.error_code"] == "ProvisionedThroughputExceededException"


async def test_parallel_scan_streams_under_tracing_with_a_span_per_page(observe, table_factory) -> None:
    observed = await observe()
    table = await table_factory()
    client = GatewayClient(observed.channel)
    for number in range(6):
        await client.put_item(table, {"pk": f"p{number}", "sk": "x"})
    observed.exporter.clear()
    pages = [page async for page in client.parallel_scan(table, total_segments=3)]
    await settle()
    assert sum(len(page.items) for page in pages) == 6
    scans = observed.spans()
    assert sorted(span.attributes["dynamodb.segment"] for span in scans) == [0, 1, 2]
    assert {span.attributes["dynamodb.total_segments"] for span in scans} == {3}
    (server,) = observed.spans(prefix="/")
    assert server.name == f"/{DYNAMODB_SERVICE}/ParallelScan"
    assert server.kind is SpanKind.SERVER
    assert server.attributes["rpc.method"] == "ParallelScan"
    assert {span.parent.span_id for span in scans} == {server.context.span_id}
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    assert server.status.status_code is StatusCode.UNSET
    # The span covers the whole stream: it ends after the last page's scan.
    assert server.end_time >= max(span.end_time for span in scans)


async def test_a_failed_parallel_scan_ends_its_span_with_the_error(observe) -> None:
    observed = await observe()
    with pytest.raises(GatewayError):
        async for _ in GatewayClient(observed.channel).parallel_scan("unavailable-scan", total_segments=2):
            pass
    (server,) = await _ended(lambda: observed.spans(prefix="/"), 1)
    assert server.name == f"/{DYNAMODB_SERVICE}/ParallelScan"
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    assert server.status.status_code is StatusCode.ERROR


# ---------------------------------------------------------------- a probe server


PROBE = "probe.v1.Probe"
SECURED = "probe.v1.Secured"


async def _echo(request: bytes, context: Any) -> bytes:
    return request


async def _bug(request: bytes, context: Any) -> bytes:
    raise RuntimeError("a bug in a handler")


async def _generated(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"one"
    yield b"two"


async def _generated_then_abort(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"one"
    await context.abort(grpc.StatusCode.INTERNAL, "broke after one")


async def _written(request: bytes, context: Any) -> None:
    for message in (b"one", b"two"):
        await context.write(message)


class Probe:
    """A server with only the RpcInterceptor, recording spans into `exporter`."""

    def __init__(self, exporter: InMemorySpanExporter, metrics: Metrics, channel: grpc.aio.Channel) -> None:
        self.exporter = exporter
        self.metrics = metrics
        self.channel = channel

    def spans(self) -> list:
        return list(self.exporter.get_finished_spans())

    def handled(self, service: str, method: str, kind: str, code: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "grpc_server_handled_total",
            {"grpc_service": service, "grpc_method": method, "grpc_type": kind, "grpc_code": code},
        )
        return value or 0.0


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(exporter=exporter)
    metrics = Metrics()
    checks = RpcChecks(
        # Asks for a client certificate, which an insecure channel never has: SECURED refuses everyone.
        authenticator=Authenticator(mtls=True),
        open_services=frozenset((PROBE,)),
        limiter=InFlightLimiter(0, 0),
        guarded_services=frozenset(),
        max_request_bytes=1024,
        gate=ShutdownGate(),
    )
    server = grpc.aio.server(
        interceptors=[RpcInterceptor(metrics, checks, provider.get_tracer(SERVICE_NAME))]
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                PROBE,
                {
                    "Echo": grpc.unary_unary_rpc_method_handler(_echo),
                    "Bug": grpc.unary_unary_rpc_method_handler(_bug),
                    "Generated": grpc.unary_stream_rpc_method_handler(_generated),
                    "GeneratedThenAbort": grpc.unary_stream_rpc_method_handler(_generated_then_abort),
                    "Written": grpc.unary_stream_rpc_method_handler(_written),
                },
            ),
            grpc.method_handlers_generic_handler(
                SECURED, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield Probe(exporter, metrics, channel)
    await channel.close()
    await server.stop(0)
    provider.shutdown()


@pytest.mark.parametrize("method", ["Generated", "Written"])
async def test_both_kinds_of_response_stream_get_a_span_that_covers_them(probe: Probe, method: str) -> None:
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    call = probe.channel.unary_stream(f"/{PROBE}/{method}")(
        b"", metadata=(("traceparent", f"00-{trace_id}-{parent_id}-01"),)
    )
    assert [message async for message in call] == [b"one", b"two"]
    await settle()
    (span,) = probe.spans()
    assert (span.name, span.kind) == (f"/{PROBE}/{method}", SpanKind.SERVER)
    assert (span.attributes["rpc.service"], span.attributes["rpc.method"]) == (PROBE, method)
    assert format(span.context.trace_id, "032x") == trace_id
    assert format(span.parent.span_id, "016x") == parent_id
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    assert span.status.status_code is StatusCode.UNSET
    assert probe.handled(PROBE, method, "server_stream", "OK") == 1


async def test_an_abort_inside_a_generator_stream_is_the_spans_outcome(probe: Probe) -> None:
    call = probe.channel.unary_stream(f"/{PROBE}/GeneratedThenAbort")(b"")
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for message in call:
            received.append(message)
    assert (received, caught.value.code()) == ([b"one"], grpc.StatusCode.INTERNAL)
    (span,) = await _ended(probe.spans, 1)
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "StatusCode.INTERNAL:broke after one"
    assert probe.handled(PROBE, "GeneratedThenAbort", "server_stream", "INTERNAL") == 1


async def test_an_uncaught_exception_is_unknown_and_recorded_on_the_span(probe: Probe) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await probe.channel.unary_unary(f"/{PROBE}/Bug")(b"")
    assert caught.value.code() is grpc.StatusCode.UNKNOWN
    (span,) = await _ended(probe.spans, 1)
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNKNOWN.value[0]
    assert span.status.status_code is StatusCode.ERROR
    (event,) = [event for event in span.events if event.name == "exception"]
    assert event.attributes["exception.type"] == "RuntimeError"
    assert probe.handled(PROBE, "Bug", "unary", "UNKNOWN") == 1


async def test_an_authentication_refusal_is_traced_and_counted(probe: Probe) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await probe.channel.unary_unary(f"/{SECURED}/Echo")(b"hello")
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert await probe.channel.unary_unary(f"/{PROBE}/Echo")(b"hello") == b"hello"  # an open service
    refused, echoed = sorted(await _ended(probe.spans, 2), key=lambda span: span.start_time)
    assert refused.name == f"/{SECURED}/Echo"
    assert refused.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert refused.status.status_code is StatusCode.UNSET  # the caller's fault, not the server's
    assert echoed.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    assert probe.handled(SECURED, "Echo", "unary", "UNAUTHENTICATED") == 1
    assert probe.handled(PROBE, "Echo", "unary", "OK") == 1


@pytest.mark.parametrize(
    ("peer", "attributes"),
    [
        ("ipv4:10.1.2.3:5000", {"net.peer.ip": "10.1.2.3", "net.peer.port": 5000}),
        (
            "ipv4:127.0.0.1:5000,ipv4:10.1.2.3:6000",
            {"net.peer.ip": "127.0.0.1", "net.peer.port": 5000, "net.peer.name": "localhost"},
        ),
        ("ipv6:[::1]:5000", {"net.peer.ip": "::1", "net.peer.port": 5000, "net.peer.name": "localhost"}),
        ("ipv6:%5B2001:db8::1%5D:443", {"net.peer.ip": "2001:db8::1", "net.peer.port": 443}),
        ("unix:/tmp/gateway.sock", {}),
        ("ipv4:garbage", {}),
    ],
)
def test_the_peer_becomes_net_peer_attributes(peer: str, attributes: dict) -> None:
    assert peer_attributes(peer) == attributes


async def test_the_tables_file_teaches_key_schemas_at_startup(observe, table_factory, tmp_path) -> None:
    # One declared table the gateway creates (its keys are as declared) and one that exists
    # already with other keys than the file says (DynamoDB is asked, in the background).
    existing = await table_factory(sort_key=False)  # keyed by pk alone
    tables = tmp_path / "tables.yaml"
    tables.write_text(
        "tables:\n"
        "  - {name: declared-new, attributes: {id: S, at: N}, key: {partition: id, sort: at}}\n"
        f"  - {{name: {existing}, attributes: {{id: S}}, key: {{partition: id}}}}\n"
    )
    observed = await observe(tables_file=str(tables))
    schemas = observed.gateway.schemas
    assert schemas.get("declared-new") == KeySchema("id", "at")
    await observed.learnt()
    assert schemas.get(existing) == KeySchema("pk")
