"""Replication lag between the regions of a global table, from heartbeat items.

Every `interval_s` the gateway writes, in each region it may use, a heartbeat item of its
own region into the regions file's heartbeat table (partition key, and sort key if any,
`_dgw_heartbeat#<region>`; `written_at` in epoch seconds), then reads every other
region's heartbeat in each region. Lag source -> target is how old the newest copy of
source's heartbeat in target is: the true lag, plus at most one interval (a fresh write
has not been read yet). DynamoDB's own ReplicationLatency metric says the same in
CloudWatch; this one sits beside the gateway's other metrics and works on emulators.
Calls go straight to each region's retrying chain: they are not the callers' calls, and
a heartbeat that fails counts against that region's breaker as any call would (so a
region nobody calls is still found out). Must not import gRPC.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from .backends import BackendError, BackendUnavailableError, CircuitOpenError
from .global_tables import Heartbeat
from .key_schema import KeySchema, KeySchemaCache
from .regions import RegionRouter

log = logging.getLogger(__name__)

HEARTBEAT_PREFIX = "_dgw_heartbeat#"


class ReplicationHeartbeat:
    def __init__(
        self,
        router: RegionRouter,
        heartbeat: Heartbeat,
        schemas: KeySchemaCache,
        set_lag: Callable[[str, str, float], None],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._router = router
        self._heartbeat = heartbeat
        self._schemas = schemas
        self._set_lag = set_lag
        self._wall_clock = wall_clock
        self._warned: set[str] = set()
        self.lags: dict[tuple[str, str], float] = {}
        """(source, target) -> the last lag measured, in seconds."""

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception:  # the loop must outlive a bug in one beat
                log.exception("replication heartbeat failed")
            await asyncio.sleep(self._heartbeat.interval_s)

    async def beat(self) -> None:
        """One round: each usable region writes its heartbeat, then every region reads the others'."""
        schema = self._schemas.get(self._heartbeat.table)
        if schema is None:
            self._schemas.learn_soon(self._heartbeat.table)
            return  # the key schema is being learnt: next round
        config = self._router.config
        regions = [r for r in config.tables[self._heartbeat.table].replicas if r not in config.evacuated]
        await asyncio.gather(*(self._write(region, schema) for region in regions))
        reads = [(source, target) for source in regions for target in regions if source != target]
        await asyncio.gather(*(self._read(source, target, schema) for source, target in reads))

    async def catch_up(self, source: str, target: str, wait_s: float) -> bool:
        """Writes a heartbeat in `source` now and waits (`wait_s` at most) until `target` holds it
        or a later one: then target holds every write source had made. False when it did not
        arrive in time, or source could not be written (an offline region: nothing to wait for)."""
        schema = self._schemas.get(self._heartbeat.table)
        if schema is None:
            return False
        fence = self._wall_clock()
        if not await self._write(source, schema, fence):
            return False
        try:
            async with asyncio.timeout(wait_s):
                while True:
                    seen = await self._read(source, target, schema)
                    if seen is not None and seen >= fence:
                        return True
                    await asyncio.sleep(min(0.05, self._heartbeat.interval_s))
        except TimeoutError:
            log.warning("%s did not catch up with %s within %.1f s: writes move on", target, source, wait_s)
            return False

    def _key(self, schema: KeySchema, source: str) -> dict[str, dict[str, str]]:
        value = {"S": HEARTBEAT_PREFIX + source}
        key = {schema.partition: value}
        if schema.sort:
            key[schema.sort] = value
        return key

    async def _write(self, region: str, schema: KeySchema, at: float | None = None) -> bool:
        written_at = self._wall_clock() if at is None else at
        item = {**self._key(schema, region), "written_at": {"N": f"{written_at:.6f}"}}
        return (
            await self._call(region, "PutItem", {"TableName": self._heartbeat.table, "Item": item})
            is not None
        )

    async def _read(self, source: str, target: str, schema: KeySchema) -> float | None:
        """When source's heartbeat as target holds it was written (None: none there yet)."""
        answer = await self._call(
            target,
            "GetItem",
            {"TableName": self._heartbeat.table, "Key": self._key(schema, source), "ConsistentRead": True},
        )
        written = (answer or {}).get("Item", {}).get("written_at", {}).get("N")
        if written is None:
            return None  # not replicated there yet
        lag = max(0.0, self._wall_clock() - float(written))
        self.lags[(source, target)] = lag
        self._set_lag(source, target, lag)
        return float(written)

    async def _call(self, region: str, operation: str, params: dict[str, Any]) -> dict[str, Any] | None:
        chain = self._router.chains[region]
        try:
            return await chain.last_resort.call(operation, params)
        except (BackendError, BackendUnavailableError, CircuitOpenError) as error:
            problem = f"{operation} {region}"
            if problem not in self._warned:  # once per kind of failure, not every interval
                self._warned.add(problem)
                log.warning("replication heartbeat %s failed: %s", problem, error)
            return None
