"""Global tables: the regions file, and the regions each DynamoDB call may go to, in order.

The regions file (YAML, `--regions-file`) names the regions the gateway may call (each
with an optional endpoint), the local region, the regions evacuated, and for each global
table its replicas (in the order reads fail over), its consistency mode (MREC, MRSC) and
its write mode, as AWS's guidance for global tables asks an application to choose:
- any: every replica takes writes (last writer wins under MREC);
- one: the primary takes them; they move only when the file names another primary, or
  elsewhere on failure with `promote_on_failure`;
- home: each item's home region takes them (from a prefix of a key attribute), or its
  declared fallback.
`Routes.route` answers, for one call, the regions that may serve it, preferred first: the
others are where it may fail over. It refuses (GlobalTableModeError) what the mode cannot
do safely: a strongly consistent read, conditional write or transaction of an MREC table
written anywhere (DynamoDB evaluates each in one region, blind to writes not yet
replicated there), and a call whose home cannot be told. A table the file does not name
lives in the local region only. Pure: no I/O beyond reading the file, no gRPC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import request_shape

WRITE_MODES = ("any", "one", "home")
CONSISTENCY_MODES = ("MREC", "MRSC")
_REGION_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,40}$")
_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
_CONDITIONS = ("ConditionExpression", "Expected")


class RegionsFileError(ValueError):
    """The regions file is not valid; the message names the file and the entry."""


class GlobalTableModeError(Exception):
    """A call the table's global mode cannot serve safely; says why and what would do."""

    def __init__(self, operation: str, table: str, why: str, write_mode: str, consistency: str) -> None:
        self.operation = operation
        self.table = table
        self.write_mode = write_mode
        self.consistency = consistency
        super().__init__(
            f"{operation} on global table {table} ({consistency}, write mode {write_mode}): {why}"
        )


@dataclass(frozen=True)
class HomeRule:
    """An item's home region: the region of the longest prefix its key attribute starts with."""

    attribute: str
    prefixes: tuple[tuple[str, str], ...]
    """(prefix, region), longest prefix first."""
    default: str | None = None
    fallback: Mapping[str, str] = field(default_factory=dict)
    """Home region -> where its writes go while it cannot take them."""

    def home_of(self, value: str) -> str | None:
        for prefix, region in self.prefixes:
            if value.startswith(prefix):
                return region
        return self.default


@dataclass(frozen=True)
class GlobalTable:
    name: str
    replicas: tuple[str, ...]
    """The regions holding a replica, in the order reads fail over (after the local region)."""
    consistency: str = "MREC"
    write_mode: str = "any"
    primary: str | None = None
    promote_on_failure: bool = False
    home: HomeRule | None = None


@dataclass(frozen=True)
class Heartbeat:
    """A heartbeat item each region writes and the others read: replication lag."""

    table: str
    interval_s: float = 5.0
    wait_for_replication_s: float = 0.0
    """When a new version of the file moves a table's primary (write mode one), its writes wait,
    this long at most, until the new primary holds what the old one had (a heartbeat written after
    the move has arrived there); 0: they move at once."""


@dataclass(frozen=True)
class RegionsConfig:
    local: str
    endpoints: Mapping[str, str | None]
    """Every region the gateway may call -> its endpoint (None: DynamoDB's own for the region)."""
    tables: Mapping[str, GlobalTable]
    evacuated: frozenset[str] = frozenset()
    heartbeat: Heartbeat | None = None

    @property
    def regions(self) -> tuple[str, ...]:
        """The local region first, then the others in the file's order."""
        return (self.local, *(r for r in self.endpoints if r != self.local))


# ---------------------------------------------------------------- the file


def load_regions_file(path: str, local: str) -> RegionsConfig:
    try:
        with open(path, "rb") as file:
            text = file.read()
    except OSError as error:
        raise RegionsFileError(f"regions file {path}: cannot be read ({error.strerror or error})") from None
    return parse_regions(text, path, local)


def parse_regions(text: bytes, path: str, default_local: str) -> RegionsConfig:
    """The regions file's content, checked; RegionsFileError names what is wrong and where."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RegionsFileError(f"regions file {path}: not YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(document, dict):
        raise RegionsFileError(f"regions file {path}: expected a mapping with 'regions' and 'global_tables'")
    _only(document, {"regions", "evacuated", "global_tables", "replication_heartbeat"}, path)
    local = default_local  # where the gateway runs: its --region
    endpoints = _endpoints(document.get("regions"), path)
    if local not in endpoints:
        raise RegionsFileError(
            f"regions file {path}: the gateway's own region {local} (--region) is not under 'regions'"
        )
    evacuated = _region_list(document.get("evacuated") or [], endpoints, f"{path}: evacuated")
    tables_entry = document.get("global_tables") or {}
    if not isinstance(tables_entry, dict):
        raise RegionsFileError(f"regions file {path}: 'global_tables' must map table names to their modes")
    tables = {
        str(name): _global_table(str(name), entry, endpoints, f"{path}: global_tables.{name}")
        for name, entry in tables_entry.items()
    }
    heartbeat = _heartbeat(document.get("replication_heartbeat"), tables, path)
    return RegionsConfig(local, endpoints, tables, frozenset(evacuated), heartbeat)


def _only(entry: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise RegionsFileError(
            f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(allowed))})"
        )


def _endpoints(entry: Any, path: str) -> dict[str, str | None]:
    if not isinstance(entry, dict) or not entry:
        raise RegionsFileError(
            f"regions file {path}: 'regions' must map each region name to {{}} or {{endpoint: URL}}"
        )
    endpoints: dict[str, str | None] = {}
    for name, settings in entry.items():
        where = f"{path}: regions.{name}"
        if not isinstance(name, str) or not _REGION_NAME.match(name):
            raise RegionsFileError(f"{where}: not a region name (e.g. us-east-1)")
        settings = settings or {}
        if not isinstance(settings, dict):
            raise RegionsFileError(f"{where}: expected {{}} or {{endpoint: URL}}")
        _only(settings, {"endpoint"}, where)
        endpoint = settings.get("endpoint")
        if endpoint is not None and not re.match(r"^https?://", str(endpoint)):
            raise RegionsFileError(f"{where}: endpoint must be an http:// or https:// URL")
        endpoints[name] = None if endpoint is None else str(endpoint)
    return endpoints


def _region_list(entry: Any, endpoints: Mapping[str, Any], where: str) -> list[str]:
    if not isinstance(entry, list):
        raise RegionsFileError(f"{where}: expected a list of region names")
    for region in entry:
        _known(region, endpoints, where)
    if len(set(entry)) != len(entry):
        raise RegionsFileError(f"{where}: a region is listed twice")
    return [str(region) for region in entry]


def _known(region: Any, endpoints: Mapping[str, Any], where: str) -> str:
    if region not in endpoints:
        raise RegionsFileError(f"{where}: {region!r} is not one of the regions ({', '.join(endpoints)})")
    return str(region)


def _global_table(name: str, entry: Any, endpoints: Mapping[str, Any], where: str) -> GlobalTable:
    entry = entry or {}
    if not isinstance(entry, dict):
        raise RegionsFileError(f"{where}: expected a mapping (replicas, consistency, write_mode, ...)")
    _only(entry, {"replicas", "consistency", "write_mode", "primary", "promote_on_failure", "home"}, where)
    replicas = tuple(_region_list(entry.get("replicas", list(endpoints)), endpoints, f"{where}.replicas"))
    if len(replicas) < 2:
        raise RegionsFileError(f"{where}.replicas: a global table has at least two replicas")
    consistency = str(entry.get("consistency", "MREC")).upper()
    if consistency not in CONSISTENCY_MODES:
        raise RegionsFileError(f"{where}.consistency: {consistency!r} is not MREC or MRSC")
    mode = str(entry.get("write_mode", "any"))
    if mode not in WRITE_MODES:
        raise RegionsFileError(f"{where}.write_mode: {mode!r} is not one of {', '.join(WRITE_MODES)}")
    if consistency == "MRSC" and mode != "any":
        raise RegionsFileError(
            f"{where}.write_mode: an MRSC table is strongly consistent in every region: write mode any"
        )
    primary = entry.get("primary")
    if mode == "one":
        if primary is None:
            raise RegionsFileError(f"{where}.primary: write mode one needs the primary region")
        if _known(primary, endpoints, f"{where}.primary") not in replicas:
            raise RegionsFileError(f"{where}.primary: {primary} holds no replica of the table")
    elif primary is not None or "promote_on_failure" in entry:
        raise RegionsFileError(f"{where}: primary and promote_on_failure are for write mode one")
    home = None
    if mode == "home":
        home = _home_rule(entry.get("home"), replicas, endpoints, f"{where}.home")
    elif "home" in entry:
        raise RegionsFileError(f"{where}.home: a home rule is for write mode home")
    return GlobalTable(
        name,
        replicas,
        consistency,
        mode,
        None if primary is None else str(primary),
        bool(entry.get("promote_on_failure", False)),
        home,
    )


def _home_rule(entry: Any, replicas: tuple[str, ...], endpoints: Mapping[str, Any], where: str) -> HomeRule:
    if not isinstance(entry, dict):
        raise RegionsFileError(
            f"{where}: write mode home needs {{key: ATTRIBUTE, prefixes: {{PREFIX: REGION}}}}"
        )
    _only(entry, {"key", "prefixes", "default", "fallback"}, where)
    attribute = entry.get("key")
    if not isinstance(attribute, str) or not attribute:
        raise RegionsFileError(f"{where}.key: the key attribute whose value names the item's home")
    prefixes = entry.get("prefixes")
    if not isinstance(prefixes, dict) or not prefixes:
        raise RegionsFileError(f"{where}.prefixes: map each key prefix to its home region")

    def replica(region: Any, at: str) -> str:
        if _known(region, endpoints, at) not in replicas:
            raise RegionsFileError(f"{at}: {region} holds no replica of the table")
        return str(region)

    pairs = sorted(
        ((str(prefix), replica(region, f"{where}.prefixes.{prefix}")) for prefix, region in prefixes.items()),
        key=lambda pair: -len(pair[0]),
    )
    default = entry.get("default")
    fallback = entry.get("fallback") or {}
    if not isinstance(fallback, dict):
        raise RegionsFileError(f"{where}.fallback: map a home region to where its writes go while it is down")
    fallbacks = {
        replica(home, f"{where}.fallback"): replica(to, f"{where}.fallback.{home}")
        for home, to in fallback.items()
    }
    if any(home == to for home, to in fallbacks.items()):
        raise RegionsFileError(f"{where}.fallback: a region cannot be its own fallback")
    return HomeRule(
        attribute,
        tuple(pairs),
        None if default is None else replica(default, f"{where}.default"),
        fallbacks,
    )


def _heartbeat(entry: Any, tables: Mapping[str, GlobalTable], path: str) -> Heartbeat | None:
    if entry is None:
        return None
    where = f"{path}: replication_heartbeat"
    if not isinstance(entry, dict):
        raise RegionsFileError(f"{where}: expected {{table: NAME, interval_s: SECONDS}}")
    _only(entry, {"table", "interval_s", "wait_for_replication_s"}, where)
    table = entry.get("table")
    if table not in tables:
        raise RegionsFileError(f"{where}.table: {table!r} is not one of the global tables")
    interval = entry.get("interval_s", 5.0)
    if not isinstance(interval, int | float) or interval <= 0:
        raise RegionsFileError(f"{where}.interval_s: a number of seconds above 0")
    wait = entry.get("wait_for_replication_s", 0.0)
    if not isinstance(wait, int | float) or wait < 0:
        raise RegionsFileError(f"{where}.wait_for_replication_s: a number of seconds, 0 or more")
    return Heartbeat(str(table), float(interval), float(wait))


# ---------------------------------------------------------------- routing


class Routes:
    """Where each call may go under one version of the regions file."""

    def __init__(self, config: RegionsConfig) -> None:
        self.config = config
        usable = [r for r in config.regions if r not in config.evacuated]
        self._local_only = (config.local,) if config.local not in config.evacuated else ()
        # Table -> its replicas, the local region first, without the evacuated ones.
        self._reads = {
            name: tuple(
                dict.fromkeys(
                    r for r in (config.local, *table.replicas) if r in table.replicas and r in usable
                )
            )
            for name, table in config.tables.items()
        }

    def route(self, operation: str, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The regions that may serve this call, preferred first; () when none is usable now.

        Raises GlobalTableModeError for what the table's modes cannot serve safely."""
        route: tuple[str, ...] | None = None
        first = ""
        for part in request_shape.walk(operation, params):
            if part.kind != request_shape.TABLE:
                continue
            regions = self._regions_for(operation, part, params)
            if route is None:
                route, first = regions, part.table
                continue
            shared = tuple(r for r in route if r in regions)
            if route and regions and not shared:
                raise GlobalTableModeError(
                    operation,
                    part.table,
                    f"no region may serve both {first} (in {', '.join(route)}) and {part.table} "
                    f"(in {', '.join(regions)}) in one request",
                    self._mode(part.table),
                    self._consistency(part.table),
                )
            route = shared
        return self._local_only if route is None else route

    def _mode(self, table: str) -> str:
        return self.config.tables[table].write_mode if table in self.config.tables else "local"

    def _consistency(self, table: str) -> str:
        return self.config.tables[table].consistency if table in self.config.tables else "single-region"

    def _regions_for(
        self, operation: str, part: request_shape.Part, params: Mapping[str, Any]
    ) -> tuple[str, ...]:
        table = self.config.tables.get(part.table)
        if table is None:
            return self._local_only
        reads = self._reads[table.name]
        if table.consistency == "MRSC":
            return reads  # every replica is authoritative
        need = _need(operation, part)
        if need == "read":
            return reads
        if table.write_mode == "any":
            if need == "write":
                return reads
            raise GlobalTableModeError(operation, table.name, _WHY_NOT_ANY[need], "any", table.consistency)
        if table.write_mode == "one":
            assert table.primary is not None
            order = (table.primary, *reads) if table.promote_on_failure else (table.primary,)
            return tuple(r for r in dict.fromkeys(order) if r not in self.config.evacuated)
        return self._home_regions(operation, table, part, params, need)

    def _home_regions(
        self,
        operation: str,
        table: GlobalTable,
        part: request_shape.Part,
        params: Mapping[str, Any],
        need: str,
    ) -> tuple[str, ...]:
        rule = table.home
        assert rule is not None
        values = _home_values(operation, part, params, rule.attribute)
        if not values:
            raise GlobalTableModeError(
                operation,
                table.name,
                f"it is a {_NEEDS[need]} in write mode home, and its key attribute {rule.attribute} "
                "(an equality on it, for a Query) does not say which region is the item's home",
                "home",
                table.consistency,
            )
        homes = {rule.home_of(value) for value in values}
        if None in homes:
            raise GlobalTableModeError(
                operation,
                table.name,
                f"no home prefix matches its {rule.attribute} and the home rule names no default",
                "home",
                table.consistency,
            )
        if len(homes) > 1:
            raise GlobalTableModeError(
                operation,
                table.name,
                f"its items have different home regions ({', '.join(sorted(h for h in homes if h))}): "
                "send one request per home region",
                "home",
                table.consistency,
            )
        home = homes.pop()
        assert home is not None
        order = (home, rule.fallback[home]) if home in rule.fallback else (home,)
        return tuple(r for r in order if r not in self.config.evacuated)


_NEEDS = {
    "strong read": "strongly consistent read",
    "conditional write": "conditional write",
    "transaction": "transaction",
    "write": "write",
}
_WHY_NOT_ANY = {
    "strong read": "a strongly consistent read sees only the writes made in the region it reads, and "
    "this table is written in every region; read eventually consistent, or use write mode one or home",
    "conditional write": "DynamoDB tests a condition against the item in one region, blind to writes "
    "made elsewhere and not yet replicated, and this table is written in every region; use write mode "
    "one or home (versioned writes are conditional writes too)",
    "transaction": "a transaction is isolated in one region only, and this table is written in every "
    "region; use write mode one or home",
}


def _need(operation: str, part: request_shape.Part) -> str:
    """What a table's part of a call needs: read, strong read, write, conditional write, transaction."""
    if operation == "TransactGetItems" or operation == "TransactWriteItems":
        return "transaction"
    if operation in _READS or operation.startswith("Describe"):
        return "strong read" if part.value.get("ConsistentRead") else "read"
    if any(part.value.get(condition) for condition in _CONDITIONS):
        return "conditional write"
    return "write"


_EQUALITY = re.compile(r"([#A-Za-z_][A-Za-z0-9_]*)\s*=\s*(:[A-Za-z0-9_]+)")


def _home_values(
    operation: str, part: request_shape.Part, params: Mapping[str, Any], attribute: str
) -> list[str]:
    """The values of the home attribute in the keys and items of this table's part of the call."""
    if operation == "Query":
        return _query_home_value(part.value, attribute)
    values = []
    for other in request_shape.walk(operation, params):
        if other.kind != request_shape.TABLE and other.table == part.table:
            value = _text(other.value.get(attribute))
            if value is None:
                return []
            values.append(value)
    return values


def _query_home_value(query: Mapping[str, Any], attribute: str) -> list[str]:
    names = query.get("ExpressionAttributeNames") or {}
    values = query.get("ExpressionAttributeValues") or {}
    for name, placeholder in _EQUALITY.findall(query.get("KeyConditionExpression", "")):
        if names.get(name, name) == attribute and (value := _text(values.get(placeholder))) is not None:
            return [value]
    return []


def _text(value: Any) -> str | None:
    """A key value as text (string and number keys), None for anything else."""
    if isinstance(value, dict):
        for kind in ("S", "N"):
            if kind in value:
                return str(value[kind])
    return None


def moved_primaries(before: RegionsConfig, after: RegionsConfig) -> dict[str, tuple[str, str]]:
    """Tables in write mode one whose primary `after` moves: table -> (old primary, new primary)."""
    moved = {}
    for name, table in after.tables.items():
        old = before.tables.get(name)
        if old is not None and old.write_mode == table.write_mode == "one" and old.primary != table.primary:
            assert old.primary is not None and table.primary is not None
            moved[name] = (old.primary, table.primary)
    return moved


def describe(config: RegionsConfig) -> Iterable[str]:
    """One line per global table, for the startup log."""
    for table in config.tables.values():
        where = {"one": f" primary {table.primary}", "home": " by home region"}.get(table.write_mode, "")
        yield f"{table.name}: {table.consistency}, writes {table.write_mode}{where}, replicas {', '.join(table.replicas)}"
