"""RegionRouter: the stage that sends each DynamoDB call to a region of a global table.

Below it, one chain per region (retries and its own circuit breaker, then that region's
client); above it, the telemetry and everything else, as with one region. For each call
it asks global_tables.Routes for the regions that may serve it, preferred first, and
tries them in order: a region whose breaker is open is skipped at once, and a failure
that says the region is in trouble (unreachable, 5xx, throttling left after retries)
moves the call to the next region, unless the request may have been applied and is not
safe to send twice. While another region may still take the call, a region gets one
attempt per failure kind (its retries would spend the caller's deadline on a region in
trouble); the last region gets the full retry policy.

Which region served a call is kept in context variables: `served_region()` for the
telemetry of the call just made, and `regions_served()` collects them for one RPC
(trailing metadata). `pinned_region()` keeps every call of one ParallelScan in the
region its first call went to. A new version of the regions file (evacuations, a moved
primary) takes effect with `use`; calls already sent finish where they went.
Must not import gRPC.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import request_shape
from .backends import (
    BackendError,
    BackendUnavailableError,
    CircuitOpenError,
    DynamoBackend,
    OutcomeUnknownError,
)
from .failures import counts_against_health
from .global_tables import RegionsConfig, Routes
from .resilience import CircuitBreaker, current_deadline, why_unsafe_to_repeat

log = logging.getLogger(__name__)

_served: contextvars.ContextVar[str] = contextvars.ContextVar("dynamo_gateway_served_region", default="")
_rpc_regions: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "dynamo_gateway_rpc_regions", default=None
)
_pin: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "dynamo_gateway_region_pin", default=None
)

_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems", "DescribeTable"})
_EVENTUAL_READS = frozenset(
    {"GetItem", "Query", "Scan", "BatchGetItem", "DescribeTable", "DescribeTimeToLive"}
)


def served_region() -> str:
    """The region of the call this task made last ("" before any, or with one region)."""
    return _served.get()


def current_regions() -> list[str]:
    """The regions collected so far by the innermost regions_served ([] outside one)."""
    return _rpc_regions.get() or []


class regions_served:  # lower case: used as `with regions_served() as regions:`
    """Collects the regions that served the calls made inside (and in tasks started inside)."""

    __slots__ = ("_token", "regions")

    def __init__(self) -> None:
        self.regions: list[str] = []

    def __enter__(self) -> list[str]:
        self._token = _rpc_regions.set(self.regions)
        return self.regions

    def __exit__(self, *exc_info: object) -> None:
        _rpc_regions.reset(self._token)


class pinned_region:  # lower case: used as `with pinned_region() as region:`
    """Every call inside (and in tasks started inside) goes to the region the first one went to,
    as a ParallelScan's segments do; the list it gives holds that region once chosen."""

    __slots__ = ("_token",)

    def __enter__(self) -> list[str]:
        region: list[str] = []
        self._token = _pin.set(region)
        return region

    def __exit__(self, *exc_info: object) -> None:
        _pin.reset(self._token)


@dataclass(frozen=True)
class RegionChain:
    """One region's way to DynamoDB: its breaker, and its retrying chain twice over."""

    region: str
    breaker: CircuitBreaker
    last_resort: DynamoBackend
    """With the full retry policy: the last region a call may go to."""
    handing_over: DynamoBackend
    """One attempt per failure kind: another region may take the call."""
    client: DynamoBackend
    """The region's DynamoDB client, closed with the router."""


class NoRegionAvailableError(BackendUnavailableError):
    """Every region that may serve the call is evacuated (or the mode leaves none)."""


class RegionRouter:
    def __init__(self, chains: Mapping[str, RegionChain], config: RegionsConfig) -> None:
        self.chains = dict(chains)
        self.routes = Routes(config)
        self.failovers = 0
        """Calls moved to another region after a failure."""
        self.on_failover: Callable[[str, str, str], None] | None = None
        """Told (from region, to region, operation) of each failover."""
        # Table -> the catching up its writes wait for (hold()).
        self._held: dict[str, asyncio.Future[bool]] = {}

    @property
    def config(self) -> RegionsConfig:
        return self.routes.config

    def use(self, config: RegionsConfig) -> None:
        """A new version of the regions file, for the calls sent from now on."""
        self.routes = Routes(config)

    def hold(self, table: str, caught_up: Awaitable[bool]) -> None:
        """Until `caught_up` ends, the table's writes and strongly consistent reads wait (within
        their deadline): its primary moved, and the new one must first hold what the old one had."""
        task = asyncio.ensure_future(caught_up)
        self._held[table] = task

        def release(done: asyncio.Future[bool]) -> None:
            if self._held.get(table) is task:
                del self._held[table]
            if not done.cancelled() and done.exception() is None:
                log.info("writes of %s move on (replication caught up: %s)", table, done.result())

        task.add_done_callback(release)

    async def _wait_if_held(self, operation: str, params: dict[str, Any]) -> None:
        if operation in _EVENTUAL_READS and not params.get("ConsistentRead"):
            return
        for table in request_shape.tables(operation, params):
            task = self._held.get(table)
            if task is None:
                continue
            deadline = current_deadline()
            remaining = None if deadline is None else deadline - time.monotonic()
            try:
                await asyncio.wait_for(asyncio.shield(task), remaining)
            except TimeoutError:
                raise NoRegionAvailableError(
                    "WaitingForReplication",
                    f"the writes of {table} wait for its new primary to catch up with the old one",
                    retry_after_s=1.0,
                ) from None

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if self._held:
            await self._wait_if_held(operation, params)
        pin = _pin.get()
        regions = tuple(pin) if pin else self.routes.route(operation, params)
        if not regions:
            raise NoRegionAvailableError(
                "NoRegionAvailable",
                f"no region may serve {operation} now: the regions that may are evacuated",
                retry_after_s=5.0,
            )
        last = len(regions) - 1
        for attempt, region in enumerate(regions):
            chain = self.chains[region]
            _served.set(region)
            try:
                answer = await (chain.last_resort if attempt == last else chain.handing_over).call(
                    operation, params
                )
            except (BackendError, BackendUnavailableError, CircuitOpenError) as error:
                if attempt == last or not _may_fail_over(operation, params, error):
                    self._note(region, pin)
                    raise
                self.failovers += 1
                log.warning(
                    "%s in %s failed (%s): trying %s",
                    operation,
                    region,
                    type(error).__name__ if isinstance(error, CircuitOpenError) else error,
                    regions[attempt + 1],
                )
                if self.on_failover is not None:
                    self.on_failover(region, regions[attempt + 1], operation)
                continue
            self._note(region, pin)
            return answer
        raise AssertionError("unreachable: the last region raises or answers")

    @staticmethod
    def _note(region: str, pin: list[str] | None) -> None:
        served = _rpc_regions.get()
        if served is not None and region not in served:
            served.append(region)
        if pin is not None and not pin:
            pin.append(region)

    async def close(self) -> None:
        for chain in self.chains.values():
            await chain.client.close()


def _may_fail_over(operation: str, params: dict[str, Any], error: Exception) -> bool:
    """Whether another region may take a call that failed here: the region is in trouble, and
    DynamoDB did not apply the call, or applying it twice is harmless."""
    if isinstance(error, CircuitOpenError):
        return True  # nothing was sent
    if isinstance(error, OutcomeUnknownError) or not counts_against_health(error):
        return False  # an answer about the request itself, or possibly applied
    ambiguous = (isinstance(error, BackendUnavailableError) and error.ambiguous) or (
        isinstance(error, BackendError) and error.http_status >= 500
    )
    if not ambiguous or operation in _READS:
        return True
    # Applied here, perhaps: sent to another region too, only if twice is as once. A transaction's
    # idempotency token holds in one region only.
    return operation != "TransactWriteItems" and why_unsafe_to_repeat(operation, params) is None
