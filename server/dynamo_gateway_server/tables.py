"""Declarative tables file: parses it and creates the tables it describes.

The file is YAML (see examples/tables.yaml). Creating is idempotent: a table that
already exists is left as it is. Talks to DynamoDB only through the backend seam.
"""

from __future__ import annotations

import logging
import pathlib
from dataclasses import dataclass
from typing import Any

import yaml

from .backends import BackendError, DynamoBackend

log = logging.getLogger(__name__)

_ATTRIBUTE_TYPES = {"S", "N", "B"}
_PROJECTIONS = {"ALL", "KEYS_ONLY", "INCLUDE"}
_STREAM_VIEWS = {"KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"}


class TablesFileError(ValueError):
    """The tables file is not valid; the message says where."""


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition_key: str
    sort_key: str | None
    projection: str = "ALL"
    non_key_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    name: str
    attributes: dict[str, str]
    partition_key: str
    sort_key: str | None = None
    global_indexes: tuple[IndexSpec, ...] = ()
    local_indexes: tuple[IndexSpec, ...] = ()
    ttl_attribute: str | None = None
    stream_view_type: str | None = None


def load_tables_file(path: str | pathlib.Path) -> list[TableSpec]:
    try:
        document = yaml.safe_load(pathlib.Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise TablesFileError(f"{path}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("tables"), list):
        raise TablesFileError(f"{path}: expected a mapping with a 'tables' list")
    return [_table_spec(entry, f"{path}: tables[{i}]") for i, entry in enumerate(document["tables"])]


def _require(mapping: Any, name: str, where: str) -> Any:
    if not isinstance(mapping, dict) or name not in mapping:
        raise TablesFileError(f"{where}: '{name}' is required")
    return mapping[name]


def _list(mapping: dict[str, Any], name: str, where: str) -> list[Any]:
    value = mapping.get(name, [])
    if not isinstance(value, list):
        raise TablesFileError(f"{where}: '{name}' must be a list")
    return value


def _index_spec(entry: Any, where: str, table_partition_key: str | None) -> IndexSpec:
    key = _require(entry, "key", where)
    partition = key.get("partition", table_partition_key) if isinstance(key, dict) else None
    if not partition:
        raise TablesFileError(f"{where}: key.partition is required")
    projection = entry.get("projection", "ALL")
    non_key: tuple[str, ...] = ()
    if isinstance(projection, list) and all(isinstance(a, str) for a in projection):
        projection, non_key = "INCLUDE", tuple(projection)  # a list of attributes means INCLUDE
    if not isinstance(projection, str) or projection not in _PROJECTIONS:
        raise TablesFileError(f"{where}: projection must be ALL, KEYS_ONLY or a list of attributes")
    return IndexSpec(str(_require(entry, "name", where)), partition, key.get("sort"), projection, non_key)


def _table_spec(entry: Any, where: str) -> TableSpec:
    name = str(_require(entry, "name", where))
    where = f"{where} ({name})"
    attributes = _require(entry, "attributes", where)
    if not isinstance(attributes, dict) or any(
        not isinstance(t, str) or t not in _ATTRIBUTE_TYPES for t in attributes.values()
    ):
        raise TablesFileError(f"{where}: attributes maps each key attribute to S, N or B")
    key = _require(entry, "key", where)
    partition = _require(key, "partition", f"{where}: key")
    gsis = tuple(
        _index_spec(index, f"{where}: global_indexes[{i}]", None)
        for i, index in enumerate(_list(entry, "global_indexes", where))
    )
    lsis = tuple(
        _index_spec(index, f"{where}: local_indexes[{i}]", partition)
        for i, index in enumerate(_list(entry, "local_indexes", where))
    )
    stream = entry.get("stream")
    if stream is not None and (not isinstance(stream, str) or stream not in _STREAM_VIEWS):
        raise TablesFileError(f"{where}: stream must be one of {sorted(_STREAM_VIEWS)}")
    used = (
        {partition, key.get("sort")}
        | {i.partition_key for i in gsis + lsis}
        | {i.sort_key for i in gsis + lsis}
    )
    missing = sorted(a for a in used if a is not None and a not in attributes)
    if missing:
        raise TablesFileError(f"{where}: key attributes {missing} need a type under 'attributes'")
    return TableSpec(
        name=name,
        attributes=dict(attributes),
        partition_key=partition,
        sort_key=key.get("sort"),
        global_indexes=gsis,
        local_indexes=lsis,
        ttl_attribute=entry.get("ttl_attribute"),
        stream_view_type=stream,
    )


def _key_schema(partition: str, sort: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition, "KeyType": "HASH"}]
    if sort:
        schema.append({"AttributeName": sort, "KeyType": "RANGE"})
    return schema


def _index_params(index: IndexSpec) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": index.projection}
    if index.non_key_attributes:
        projection["NonKeyAttributes"] = list(index.non_key_attributes)
    return {
        "IndexName": index.name,
        "KeySchema": _key_schema(index.partition_key, index.sort_key),
        "Projection": projection,
    }


def create_table_params(spec: TableSpec) -> dict[str, Any]:
    params: dict[str, Any] = {
        "TableName": spec.name,
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t} for n, t in spec.attributes.items()
        ],
        "KeySchema": _key_schema(spec.partition_key, spec.sort_key),
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec.global_indexes:
        params["GlobalSecondaryIndexes"] = [_index_params(i) for i in spec.global_indexes]
    if spec.local_indexes:
        params["LocalSecondaryIndexes"] = [_index_params(i) for i in spec.local_indexes]
    if spec.stream_view_type:
        params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": spec.stream_view_type}
    return params


async def create_tables(backend: DynamoBackend, specs: list[TableSpec]) -> list[TableSpec]:
    """Creates the tables that do not exist yet; returns those it created (their keys are as declared)."""
    created = []
    for spec in specs:
        try:
            await backend.call("CreateTable", create_table_params(spec))
        except BackendError as error:
            if error.code != "ResourceInUseException":
                raise
            log.info("table %s already exists; left unchanged", spec.name)
            continue
        if spec.ttl_attribute:
            await backend.call(
                "UpdateTimeToLive",
                {
                    "TableName": spec.name,
                    "TimeToLiveSpecification": {"Enabled": True, "AttributeName": spec.ttl_attribute},
                },
            )
        log.info("created table %s", spec.name)
        created.append(spec)
    return created
