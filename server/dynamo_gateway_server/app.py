"""Wiring only: the request path's stages in order (Gateway.__init__), the gRPC server, their lifecycle.

Every stage is built here and handed what it shares with others (the key-schema
cache, the breaker and its listeners); the server and every test build a gateway
this way. Startup: DynamoDB's client (one per process) -> tables file -> stages,
servicer, health, reflection -> listen -> SERVING. Shutdown on SIGTERM/SIGINT:
NOT_SERVING, stop accepting, let in-flight RPCs finish within the grace period,
close the client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import logging
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from dynamo_gateway.v1 import service_pb2, service_pb2_grpc

from .backends import DynamoBackend, cassette
from .backends.aws import AwsBackend, AwsBackendOptions
from .backends.json_protocol import JsonProtocolBackend
from .backends.memory import MemoryBackend
from .backends.recording import RecordingBackend
from .backends.replay import ReplayBackend
from .batches import BatchRunner
from .config import Settings
from .entities import Entities
from .expired_items import ExpiredItemsHidden
from .global_tables import (
    RegionsConfig,
    RegionsFileError,
    describe,
    load_regions_file,
    moved_primaries,
    parse_regions,
)
from .input_rules import InputRules
from .interceptors.request_decoding import GRPC_LIMIT_MARGIN_BYTES
from .interceptors.rpc import RpcChecks, RpcInterceptor
from .key_schema import KeySchema, KeySchemaCache
from .observability.capacity import ConsumedCapacityBackend
from .observability.telemetry import Telemetry
from .reflection import enable_reflection
from .regions import RegionChain, RegionRouter
from .replication_lag import ReplicationHeartbeat
from .resilience import Backoff, CircuitBreaker, ResilientBackend, RetryPolicy
from .security.credentials import credential_options
from .security.files import SecurityConfigError, WatchedFile
from .security.layer import SecurityLayer
from .service import DynamoDBServicer
from .stopping import ShutdownGate
from .tables import TableSpec, create_tables, load_tables_file
from .ttl import TtlRules
from .versions import VersionedWrites

log = logging.getLogger(__name__)

SERVICE_NAME = service_pb2.DESCRIPTOR.services_by_name["DynamoDBService"].full_name
# How long startup waits for DynamoDB to describe one declared table's TTL.
TTL_LOOKUP_TIMEOUT_S = 5.0


def backend_options(
    settings: Settings, region: str | None = None, endpoint_url: str | None = None
) -> AwsBackendOptions:
    """DynamoDB's client options: the settings' region and endpoint, or another region's."""
    return AwsBackendOptions(
        region=region or settings.region,
        endpoint_url=endpoint_url if region else settings.endpoint_url,
        max_concurrency=settings.max_concurrency,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
        max_attempts=settings.backend_max_attempts,
        credentials=credential_options(settings),
    )


async def build_backend(settings: Settings) -> DynamoBackend:
    """The backend that talks to DynamoDB (or the embedded engine), without retries."""
    options = backend_options(settings)
    client = JsonProtocolBackend if settings.backend_client == "lean" else AwsBackend
    if settings.backend == "memory":
        return await MemoryBackend.start(options, client)
    if settings.backend == "replay":
        return await _replay_backend(settings, lambda: client.start(options))
    return await client.start(options)


async def _replay_backend(
    settings: Settings, start_client: Callable[[], Awaitable[DynamoBackend]]
) -> ReplayBackend:
    """The cassette's recordings; with record mode new_episodes (or once, before the cassette
    exists), DynamoDB's client for the calls it lacks, recording them into it."""
    path = str(settings.cassette)
    recordings = _recordings_to_replay(settings, path)
    first_time = recordings is None
    live = None
    if settings.record_mode == "new_episodes" or first_time:
        live = recorder(settings, await start_client(), path)
    return ReplayBackend(recordings or [], path, settings.replay_match, live)


async def build_regional_clients(
    settings: Settings, regions: RegionsConfig, local: DynamoBackend
) -> dict[str, DynamoBackend]:
    """A client per region of the regions file; the local one is `local`. With the embedded
    engine, every region is the same engine, which keeps each region's tables apart."""
    client = JsonProtocolBackend if settings.backend_client == "lean" else AwsBackend
    clients: dict[str, DynamoBackend] = {regions.local: local}
    try:
        for region in regions.regions[1:]:
            if isinstance(local, MemoryBackend):
                clients[region] = await local.client_for_region(backend_options(settings), region, client)
            else:
                options = backend_options(settings, region, regions.endpoints[region])
                clients[region] = await client.start(options)
    except BaseException:
        for region, started in clients.items():
            if region != regions.local:
                await started.close()
        raise
    return clients


def load_regions(settings: Settings) -> RegionsConfig | None:
    """The regions file's global tables, or None without one (one region, as ever)."""
    if not settings.regions_file:
        return None
    return load_regions_file(settings.regions_file, settings.region)


def _recordings_to_replay(settings: Settings, path: str) -> list[cassette.Recording] | None:
    """The cassette's recordings; None when record mode once finds none yet (record them all)."""
    if settings.record_mode == "once" and not os.path.exists(path):
        return None
    return cassette.load(path)


def recorder(settings: Settings, backend: DynamoBackend, path: str) -> RecordingBackend:
    """`backend` with every call it makes appended to the cassette at `path`."""
    writer = cassette.CassetteWriter(
        path,
        values=settings.record_values,
        salt=settings.key_hash_salt,
        max_bytes=settings.record_max_bytes,
        keep_files=settings.record_keep_files,
    )
    return RecordingBackend(backend, writer, settings.region)


def retry_policy(settings: Settings) -> RetryPolicy:
    cap = settings.retry_max_delay_s
    return RetryPolicy(
        throughput=Backoff(settings.retry_throughput_attempts, settings.retry_throughput_base_s, cap),
        internal_server_error=Backoff(
            settings.retry_internal_error_attempts, settings.retry_internal_error_base_s, cap
        ),
        service_unavailable=Backoff(
            settings.retry_unavailable_attempts, settings.retry_unavailable_base_s, cap
        ),
        transaction_conflict=Backoff(settings.retry_conflict_attempts, settings.retry_conflict_base_s, cap),
    )


def connection_options(settings: Settings) -> list[tuple[str, int]]:
    """gRPC's connection lifetime and keepalive settings, from ours (0: gRPC's default, unlimited)."""
    milliseconds = {
        "grpc.max_connection_age_ms": settings.max_connection_age_s,
        "grpc.max_connection_age_grace_ms": settings.max_connection_age_grace_s,
        "grpc.max_connection_idle_ms": settings.max_connection_idle_s,
        "grpc.keepalive_time_ms": settings.keepalive_time_s,
        "grpc.keepalive_timeout_ms": settings.keepalive_timeout_s,
    }
    return [(option, round(seconds * 1000)) for option, seconds in milliseconds.items() if seconds]


@dataclass(frozen=True)
class Clocks:
    """Time as the stages see it; tests pass their own so that retries never wait."""

    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    rand: Callable[[], float] = random.random
    clock: Callable[[], float] = time.monotonic


async def _no_wait(delay_s: float) -> None:
    await asyncio.sleep(0)


def handing_over(policy: RetryPolicy) -> RetryPolicy:
    """`policy` with one attempt for a region in trouble: another region may take the call."""
    return dataclasses.replace(
        policy,
        internal_server_error=dataclasses.replace(policy.internal_server_error, attempts=1),
        service_unavailable=dataclasses.replace(policy.service_unavailable, attempts=1),
    )


REGION_HEALTH_PREFIX = "dynamo_gateway.region."


def backend_endpoint(settings: Settings) -> str:
    """What the circuit breaker guards: one endpoint (per region, once there are several)."""
    if settings.backend in ("memory", "replay"):
        return settings.backend
    return settings.endpoint_url or f"dynamodb.{settings.region}"


class Gateway:
    """One running gateway: a gRPC server on a port, in front of one backend.

    The one place the request path is put together; the server and every test build it here.
    """

    def __init__(
        self,
        settings: Settings,
        backend: DynamoBackend,
        *,
        telemetry: Telemetry | None = None,
        owns_backend: bool = True,
        endpoint: str | None = None,
        clocks: Clocks = Clocks(),
        declared_tables: Iterable[TableSpec] = (),
        created_tables: Collection[str] = (),
        around_retries: Callable[[DynamoBackend], DynamoBackend] | None = None,
        regions: RegionsConfig | None = None,
        regional_clients: Mapping[str, DynamoBackend] | None = None,
    ) -> None:
        """`backend` is DynamoDB's client (lean, aiobotocore or the embedded engine), without retries.

        `endpoint` names what the circuit breaker guards (by default, from the settings);
        `declared_tables` are the tables file's (their declared rules, such as TTL, hold from the
        start), `created_tables` the names of those this gateway created (their key schemas are
        as declared; any other declared table's is asked of DynamoDB when the gateway starts);
        `around_retries` lets a test put its own stage right outside the retrying one;
        `regions` are the regions file's global tables, `regional_clients` DynamoDB's client in
        each of its regions (`backend` in the local one), each behind its own retries and breaker.
        """
        self.settings = settings
        if settings.backend == "replay":
            # Replayed answers come at once, and so do the retries after them: their waits would
            # prove nothing, and a fixed jitter keeps them the same from run to run.
            clocks = dataclasses.replace(clocks, sleep=_no_wait, rand=lambda: 0.5)
        if settings.record:
            backend = recorder(settings, backend, settings.record)
        self.dynamodb = backend
        """DynamoDB's client, innermost in the chain."""
        self._owns_backend = owns_backend
        # Traces, metrics and logs of this gateway.
        self.telemetry = telemetry or Telemetry(settings)
        self.health = health.aio.HealthServicer()
        # Authentication, policy, limits and TLS; raises at once if one of its files is unusable.
        self.security = SecurityLayer(settings, SERVICE_NAME)
        self._health_updates: set[asyncio.Task[None]] = set()
        # Counts each region's breaker openings, so that only the latest one's reset timer acts.
        self._breaker_openings: dict[str, int] = {}
        # Regions whose breaker is open and whose reset timeout has not passed: no call may try.
        self._failing_fast: set[str] = set()
        self._stopping = False

        # The backend chain, from the caller's side to DynamoDB's:
        #   reads and batches: [BatchRunner, batch RPCs only] -> ExpiredItemsHidden -> ...
        #   single and transactional writes: VersionedWrites -> ...
        #   ... ConsumedCapacityBackend -> InstrumentedBackend
        #   -> ResilientBackend (retries in the deadline, circuit breaker) -> DynamoDB's client.
        # The servicer runs the request guard (policy, limits) before any of it.
        # With global tables (a regions file), RegionRouter sends each call to a region, each
        # region with its own retries and breaker.
        policy = retry_policy(settings)
        self.router: RegionRouter | None = None
        retrying: DynamoBackend
        if regions is None:
            self.local_region = settings.region
            self.breaker = self._breaker(settings.region, endpoint or backend_endpoint(settings), clocks)
            self.breakers = {settings.region: self.breaker}
            retrying = self._retrying(backend, policy, self.breaker, clocks)
        else:
            self.local_region = regions.local
            clients = {**(regional_clients or {}), regions.local: backend}
            chains = {}
            for region in regions.regions:
                breaker = self._breaker(region, region, clocks)
                chains[region] = RegionChain(
                    region,
                    breaker,
                    last_resort=self._retrying(clients[region], policy, breaker, clocks),
                    handing_over=self._retrying(clients[region], handing_over(policy), breaker, clocks),
                    client=clients[region],
                )
            self.router = retrying = RegionRouter(chains, regions)
            self.router.on_failover = self.telemetry.metrics.count_failover
            self.breakers = {region: chain.breaker for region, chain in chains.items()}
            self.breaker = self.breakers[regions.local]
        if around_retries is not None:
            retrying = around_retries(retrying)
        # One key-schema cache for every stage that needs a table's key; its own lookups retry
        # like any call but are not counted as the caller's.
        self.schemas = KeySchemaCache(retrying)
        self._declared = tuple(declared_tables)
        for table in self._declared:
            if table.name in created_tables and table.create:
                self.schemas.remember(table.name, KeySchema(table.partition_key, table.sort_key))
        self.backend: DynamoBackend = ConsumedCapacityBackend(
            self.telemetry.instrument_backend(retrying, self.schemas, self.local_region)
        )
        # Callers' reads leave out items past their declared TTL; the gateway's own reads do not.
        # One map for both TTL stages; start() adds what DynamoDB says of the other declared tables.
        self.ttl_attributes = {t.name: t.ttl_attribute for t in self._declared if t.ttl_attribute}
        ttl_attributes = self.ttl_attributes
        reads = ExpiredItemsHidden(
            self.backend, ttl_attributes, count_hidden=self.telemetry.metrics.count_expired_hidden
        )
        batches = BatchRunner(
            reads,
            self.schemas,
            max_items=settings.batch_max_items,
            concurrency=settings.batch_concurrency,
            leftovers=Backoff(
                settings.retry_throughput_attempts,
                settings.retry_throughput_base_s,
                settings.retry_max_delay_s,
            ),
            sleep=clocks.sleep,
            rand=clocks.rand,
            clock=clocks.clock,
        )
        # Before anything is sent: the policy, DynamoDB's own input rules, the declared TTL rules.
        input_rules = InputRules(self.schemas.schema_of)
        ttl_rules = TtlRules(ttl_attributes)
        # Versioned writes: the stage that single and transactional writes go through, after the guard.
        writes = VersionedWrites(
            self.backend,
            self.schemas,
            {t.name: t.version for t in self._declared if t.version},
            count_resolution=self.telemetry.metrics.count_resolution,
        )
        self.guard = self.security.guard_for([input_rules.check, ttl_rules.check, writes.check])

        # Every RPC, in one interceptor (one wrapper per call), outermost first: its server span
        # and request id, metrics, authentication, the in-flight limits, then decoding the
        # request (so refused calls are traced, logged and counted too).
        guarded, open_services = self.security.guarded_and_open()
        limiter = self.security.limiter
        self.gate = ShutdownGate()
        checks = RpcChecks(
            authenticator=self.security.authenticator,
            open_services=open_services,
            limiter=limiter,
            guarded_services=guarded,
            max_request_bytes=settings.max_request_bytes,
            gate=self.gate,
        )
        tracer = self.telemetry.tracer if self.telemetry.records_spans else None
        self.server = grpc.aio.server(
            interceptors=[RpcInterceptor(self.telemetry.metrics, checks, tracer)],
            options=[
                ("grpc.max_send_message_length", settings.max_message_bytes),
                # gRPC's own limit sits above ours, so a request a little too large gets our answer.
                (
                    "grpc.max_receive_message_length",
                    settings.max_request_bytes + GRPC_LIMIT_MARGIN_BYTES,
                ),
                # gRPC refuses metadata past a soft limit (8 KB) at random, and always past a hard
                # one (16 KB): one explicit bound instead, so the same call is always let in or
                # always refused (RESOURCE_EXHAUSTED, from gRPC itself).
                ("grpc.max_metadata_size", settings.max_metadata_bytes),
                ("grpc.absolute_max_metadata_size", settings.max_metadata_bytes),
                # One listener per port (a stale process must not silently share it), except
                # for workers, which share it on purpose (workers.py).
                ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
                # gRPC's core holds calls the server has not taken up yet and, past 1,000 of them,
                # cancels new ones at random (3,000 concurrent calls on one channel: a quarter ended
                # CANCELLED, without a word). Held longer, each is taken up and answered: OK, or
                # RESOURCE_EXHAUSTED with RetryInfo from the in-flight limits.
                ("grpc.server.max_pending_requests", settings.max_pending_rpcs),
                ("grpc.server.max_pending_requests_hard_limit", settings.max_pending_rpcs),
                *connection_options(settings),
            ],
        )
        self.servicer = DynamoDBServicer(
            reads,
            settings.scan_concurrency,
            batches,
            guard=self.guard,
            writes=writes,
            declared={t.name: t for t in self._declared},
            set_expiries=ttl_rules.set_expiries,
            stream_stall_timeout_s=settings.stream_stall_timeout_s,
            entities=Entities({t.name: t.model for t in self._declared if t.model is not None}),
            says_regions=regions is not None,
        )
        service_pb2_grpc.add_DynamoDBServiceServicer_to_server(self.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if self.security.reflection_enabled:
            enable_reflection(self.server, (SERVICE_NAME, health.SERVICE_NAME))
        self.port = 0
        # The regions file, re-read on SIGHUP and when it changes (evacuations, primaries).
        self._regions_file: WatchedFile[RegionsConfig] | None = None
        self._regions_watch: asyncio.Task[None] | None = None
        # Replication lag from heartbeat items (the regions file's replication_heartbeat).
        self.heartbeat: ReplicationHeartbeat | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        if regions is not None and settings.regions_file:
            self._regions_file = WatchedFile(settings.regions_file, "regions file", self._parse_regions)

    def _parse_regions(self, text: bytes) -> RegionsConfig:
        try:
            return parse_regions(text, str(self.settings.regions_file), self.settings.region)
        except RegionsFileError as error:
            raise SecurityConfigError(str(error)) from None

    def _breaker(self, region: str, endpoint: str, clocks: Clocks) -> CircuitBreaker:
        s = self.settings
        return CircuitBreaker(
            endpoint=endpoint,
            failure_threshold=s.breaker_failure_threshold,
            success_threshold=s.breaker_success_threshold,
            reset_timeout_s=s.breaker_reset_timeout_s,
            clock=clocks.clock,
            listeners=[
                self.telemetry.resilience_observer.on_breaker_state,
                functools.partial(self._on_breaker_state, region),
            ],
        )

    def _retrying(
        self, client: DynamoBackend, policy: RetryPolicy, breaker: CircuitBreaker, clocks: Clocks
    ) -> ResilientBackend:
        return ResilientBackend(
            client,
            policy,
            breaker,
            observer=self.telemetry.resilience_observer,
            sleep=clocks.sleep,
            rand=clocks.rand,
            clock=clocks.clock,
        )

    def _on_breaker_state(self, region: str, endpoint: str, state: str) -> None:
        # An open breaker means every call fails fast: tell load balancers to send traffic elsewhere.
        log.warning("circuit breaker for %s is %s", endpoint, state)
        if state == "open":
            self._failing_fast.add(region)
            # Once the reset timeout passes, the next call would go through (half-open). Say so:
            # a load balancer that took this gateway out sends no call that could half-open it,
            # and it would stay out (in Kubernetes, unready until liveness restarts it).
            opening = self._breaker_openings[region] = self._breaker_openings.get(region, 0) + 1
            asyncio.get_running_loop().call_later(
                self.breakers[region].reset_timeout_s, self._breaker_may_try, region, opening
            )
        else:
            self._failing_fast.discard(region)
        self._refresh_health()

    def _breaker_may_try(self, region: str, opening: int) -> None:
        breaker = self.breakers[region]
        if opening == self._breaker_openings[region] and breaker.state == "open" and not self._stopping:
            log.info("circuit breaker for %s may try again: SERVING", breaker.endpoint)
            self._failing_fast.discard(region)
            self._refresh_health()

    def _refresh_health(self) -> None:
        """SERVING while a call may go somewhere: the local region, or with global tables any
        region not failing fast nor evacuated; each region's own health service says its state."""
        if self._stopping:
            return
        serving, not_serving = (
            health_pb2.HealthCheckResponse.SERVING,
            health_pb2.HealthCheckResponse.NOT_SERVING,
        )
        if self.router is None:
            self._set_health(not_serving if self._failing_fast else serving)
            return
        evacuated = self.router.config.evacuated
        usable = {
            region: region not in self._failing_fast and region not in evacuated for region in self.breakers
        }
        for region, ok in usable.items():
            self._set_health(serving if ok else not_serving, (REGION_HEALTH_PREFIX + region,))
        self._set_health(serving if any(usable.values()) else not_serving)

    def _set_health(self, status: Any, names: Iterable[str] = ("", SERVICE_NAME)) -> None:
        for name in names:
            task = asyncio.get_running_loop().create_task(self.health.set(name, status))
            self._health_updates.add(task)
            task.add_done_callback(self._health_updates.discard)

    def reload_regions(self) -> bool:
        """Re-reads the regions file if it changed (SIGHUP, or the periodic check): evacuations and
        primaries take effect for the calls sent from now on. True if a new version is in force."""
        if self._regions_file is None or self.router is None or not self._regions_file.check():
            return False
        config = self._regions_file.value
        before = self.router.config
        if dict(config.endpoints) != dict(before.endpoints) or config.local != before.local:
            log.error(
                "regions file %s: its regions or endpoints changed, which needs a restart; "
                "keeping the version in force",
                self._regions_file.path,
            )
            return False
        self.router.use(config)
        wait_s = config.heartbeat.wait_for_replication_s if config.heartbeat else 0.0
        if self.heartbeat is not None and wait_s:
            for table, (source, target) in moved_primaries(before, config).items():
                log.info(
                    "the primary of %s moves from %s to %s: its writes wait for replication",
                    table,
                    source,
                    target,
                )
                self.router.hold(table, self.heartbeat.catch_up(source, target, wait_s))
        self.telemetry.metrics.set_evacuated(config.regions, config.evacuated)
        log.info("regions file reloaded", extra={"evacuated": sorted(config.evacuated)})
        self._refresh_health()
        return True

    async def _watch_regions(self) -> None:
        while True:
            await asyncio.sleep(self.settings.security_reload_interval_s)
            try:
                self.reload_regions()
            except Exception:  # the loop must outlive a bug in one check; the routes stay as they were
                log.exception("checking the regions file failed")

    async def start(self) -> int:
        self.port = self.security.add_port(self.server, f"{self.settings.host}:{self.settings.port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {self.settings.host}:{self.settings.port}")
        self.telemetry.start()  # before serving, so a busy metrics port stops startup cleanly
        await self.server.start()
        self.security.start()
        # A declared table that existed already may have other keys than declared: ask DynamoDB
        # (a created one's are known, so this asks nothing for it).
        for table in self._declared:
            self.schemas.learn_soon(table.name)
        await self._learn_ttl_attributes()
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.router is not None:
            config = self.router.config
            self.telemetry.metrics.set_evacuated(config.regions, config.evacuated)
            for region in config.regions:
                usable = region not in config.evacuated
                await self.health.set(
                    REGION_HEALTH_PREFIX + region,
                    health_pb2.HealthCheckResponse.SERVING
                    if usable
                    else health_pb2.HealthCheckResponse.NOT_SERVING,
                )
            for line in describe(config):
                log.info("global table %s", line, extra={"local_region": config.local})
            if self._regions_file is not None:
                self._regions_watch = asyncio.get_running_loop().create_task(
                    self._watch_regions(), name="regions-reload"
                )
            if config.heartbeat is not None:
                self.heartbeat = ReplicationHeartbeat(
                    self.router,
                    config.heartbeat,
                    self.schemas,
                    self.telemetry.metrics.set_replication_lag,
                )
                self._heartbeat_task = asyncio.get_running_loop().create_task(
                    self.heartbeat.run(), name="replication-heartbeat"
                )
        log.info(
            "serving on %s:%d with the %s backend",
            self.settings.host,
            self.port,
            self.settings.backend,
            extra={"security": self.security.describe()},
        )
        return self.port

    async def _learn_ttl_attributes(self) -> None:
        """The TTL attribute of each declared table that does not name one, from DescribeTimeToLive.

        Before SERVING, so the first read of such a table already leaves out expired items. A
        table DynamoDB cannot describe (or an emulator without the operation) keeps no TTL rules.
        """
        for table in self._declared:
            if table.ttl_attribute:
                continue
            try:
                async with asyncio.timeout(TTL_LOOKUP_TIMEOUT_S):
                    answer = await self.backend.call("DescribeTimeToLive", {"TableName": table.name})
            except Exception as error:  # a missing rule must not stop the gateway from serving
                log.warning("no TTL attribute learnt for table %s: %s", table.name, type(error).__name__)
                continue
            description = answer.get("TimeToLiveDescription", {})
            if description.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and description.get(
                "AttributeName"
            ):
                self.ttl_attributes[table.name] = description["AttributeName"]
                log.info(
                    "table %s: TTL attribute %s, from DynamoDB", table.name, description["AttributeName"]
                )

    async def stop(self, grace_s: float | None = None) -> None:
        """Shuts down gracefully: NOT_SERVING, streams end saying where to resume, calls already
        sent are still served for shutdown_delay_s, then those in flight get the grace period.
        `grace_s` overrides the grace period (0: stop now, without the delay either)."""
        grace = self.settings.grace_period_s if grace_s is None else grace_s
        self._stopping = True  # no breaker timer says SERVING again
        await self.health.enter_graceful_shutdown()  # every service NOT_SERVING
        self.servicer.drain(retry_after_s=self.settings.shutdown_delay_s if grace else 0.0)
        if grace:
            # Calls gRPC holds but has not handed over yet would be cancelled by stop(), without a
            # status a caller can act on: serve them first, then refuse new ones until they stop.
            await asyncio.sleep(self.settings.shutdown_delay_s)
            closed = time.monotonic()
            await self.gate.close()
            log.info(
                "refused %d new calls over %.3f s, then stopped listening",
                self.gate.refused,
                time.monotonic() - closed,
            )
        stopping = asyncio.ensure_future(self.server.stop(grace))
        try:
            # stop() sends its GOAWAY before its first wait; answers held by the gate follow it.
            await asyncio.sleep(0)
        finally:
            self.gate.stopping()
        await stopping
        await self.security.stop()
        for task in (self._regions_watch, self._heartbeat_task):
            if task is not None:
                task.cancel()
        await self.schemas.close()
        if self._owns_backend:
            await (self.dynamodb.close() if self.router is None else self.router.close())
        self.telemetry.close()


async def start_gateway(settings: Settings, telemetry: Telemetry | None = None) -> Gateway:
    """Starts DynamoDB's client (or the embedded engine), creates the tables file's tables, serves.

    `telemetry` lets tests read spans from their own exporter; by default it follows the settings.
    """
    telemetry = telemetry or Telemetry(settings)
    regions = load_regions(settings)  # before any client: a mistake in the file stops startup at once
    backend = await build_backend(settings)
    clients: dict[str, DynamoBackend] = {}
    try:
        if regions is not None:
            clients = await build_regional_clients(settings, regions, backend)
        declared = load_tables_file(settings.tables_file) if settings.tables_file else []
        # A replay has no DynamoDB to create tables in: they are as the recording made them.
        created = declared if settings.backend == "replay" else await create_tables(backend, declared)
        for client in clients.values():
            if client is not backend and settings.backend == "memory":
                await create_tables(client, declared)  # the embedded engine's other regions
        gateway = Gateway(
            settings,
            backend,
            telemetry=telemetry,
            declared_tables=declared,
            created_tables={table.name for table in created},
            regions=regions,
            regional_clients=clients,
        )
        await gateway.start()
    except BaseException:
        for client in clients.values():
            if client is not backend:
                await client.close()
        await backend.close()
        telemetry.close()
        raise
    return gateway


async def serve(settings: Settings) -> None:
    """Runs until SIGTERM or SIGINT, then shuts down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    gateway = await start_gateway(settings)
    # What startup made (modules, the SDK's data, the servicer) lives as long as the process: kept
    # out of the collector's sight, a full collection walks only what requests made, so its pauses
    # stay short instead of growing with every import.
    gc.freeze()
    # SIGHUP: re-read the policy, tokens, JWKS and regions files now instead of at the next check.
    loop.add_signal_handler(signal.SIGHUP, lambda: (gateway.security.reload_now(), gateway.reload_regions()))
    await stop.wait()
    log.info("shutting down: in-flight RPCs have %.1fs", settings.grace_period_s)
    await gateway.stop()
    log.info("stopped")
