"""Declarative tables file: parses it and creates the tables it describes.

The file is YAML (see examples/tables.yaml). Each entry describes a table to create
and the rules the gateway enforces on it (TTL attribute, versioned writes, entities:
entity_model.py checks those, naming the line); an entry with `create: false` only
declares rules for a table made elsewhere.
Creating is idempotent: a table that already exists is left as it is. Talks to
DynamoDB only through the backend seam.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from dataclasses import dataclass
from typing import Any

import yaml

from .backends import BackendError, DynamoBackend
from .entity_model import ModelError, TableModel, key_layout, model_of

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
class VersionSpec:
    """Optimistic locking: the attribute that holds each item's version, and how it counts."""

    attribute: str
    # The version a write that creates an item stores, and what each later write adds.
    start: int = 1
    increment: int = 1
    # Every Put, Update and Delete must say which version it expects.
    required: bool = False
    # Where the gateway records which of its writes made the latest versions (versions.py).
    log_attribute: str = "_version_log"


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
    version: VersionSpec | None = None
    # False: the table is made elsewhere; the entry only declares its rules.
    create: bool = True
    # Its entities (entity_model.py), when the entry declares some.
    model: TableModel | None = None


class _LineLoader(yaml.SafeLoader):
    """PyYAML's safe loader, whose mappings remember their line (messages name it)."""


class _Mapping(dict[Any, Any]):
    line = 0


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    mapping = _Mapping(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def load_tables_file(path: str | pathlib.Path) -> list[TableSpec]:
    try:
        document = yaml.load(pathlib.Path(path).read_text(), Loader=_LineLoader)
    except (OSError, yaml.YAMLError) as error:
        raise TablesFileError(f"{path}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("tables"), list):
        raise TablesFileError(f"{path}: expected a mapping with a 'tables' list")
    specs = [_table_spec(entry, f"{path}: tables[{i}]") for i, entry in enumerate(document["tables"])]
    return [
        _with_entities(spec, entry, str(path)) for spec, entry in zip(specs, document["tables"], strict=True)
    ]


def _with_entities(spec: TableSpec, entry: dict[str, Any], path: str) -> TableSpec:
    """`spec` with the entities its entry declares (checked against its keys and indexes)."""
    if not {"entities", "entity_attribute", "collections"} & set(entry):
        return spec
    line = getattr(entry, "line", 0)
    if not spec.partition_key:
        raise TablesFileError(
            f"{path} line {line} (table {spec.name}): entities need the table's keys and indexes: an entry "
            "with create: false declares them with attributes, key and indexes, as a table to create does"
        )
    try:
        model = model_of(
            spec.name,
            entry.get("entities"),
            entry.get("entity_attribute"),
            key_layout(spec),
            path,
            line,
            entry.get("collections"),
        )
    except ModelError as error:
        raise TablesFileError(str(error)) from None
    return dataclasses.replace(spec, model=model)


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


def _version_spec(entry: Any, where: str) -> VersionSpec | None:
    declared = entry.get("version")
    if declared is None:
        return None
    if isinstance(declared, str):
        declared = {"attribute": declared}  # `version: v` is the short form
    if (
        not isinstance(declared, dict)
        or not isinstance(declared.get("attribute"), str)
        or not declared["attribute"]
    ):
        raise TablesFileError(f"{where}: version needs an 'attribute' (the attribute holding the version)")
    unknown = sorted(set(declared) - {"attribute", "start", "increment", "required", "log_attribute"})
    if unknown:
        raise TablesFileError(f"{where}: version has unknown settings {unknown}")
    spec = VersionSpec(**declared)
    if not isinstance(spec.start, int) or isinstance(spec.start, bool):
        raise TablesFileError(f"{where}: version.start must be an integer")
    if not isinstance(spec.increment, int) or isinstance(spec.increment, bool) or spec.increment < 1:
        raise TablesFileError(f"{where}: version.increment must be a positive integer")
    if not isinstance(spec.required, bool):
        raise TablesFileError(f"{where}: version.required must be true or false")
    if not isinstance(spec.log_attribute, str) or spec.log_attribute in ("", spec.attribute):
        raise TablesFileError(f"{where}: version.log_attribute must name another attribute")
    return spec


def _ttl_attribute(entry: dict[str, Any], where: str) -> str | None:
    ttl = entry.get("ttl_attribute")
    if ttl is not None and (not isinstance(ttl, str) or not ttl):
        raise TablesFileError(f"{where}: ttl_attribute must be an attribute name")
    return ttl


def _declaration_only(entry: dict[str, Any], name: str, where: str) -> TableSpec:
    """An entry for a table made elsewhere: its rules, no keys (they are asked of DynamoDB)."""
    return TableSpec(
        name=name,
        attributes={},
        partition_key="",
        ttl_attribute=_ttl_attribute(entry, where),
        version=_version_spec(entry, where),
        create=False,
    )


def _table_spec(entry: Any, where: str) -> TableSpec:
    name = str(_require(entry, "name", where))
    where = f"{where} ({name})"
    create = entry.get("create", True)
    if not isinstance(create, bool):
        raise TablesFileError(f"{where}: create must be true or false")
    if not create and "key" not in entry:
        return _declaration_only(entry, name, where)
    # With its keys declared, a table made elsewhere can declare entities too.
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
    version = _version_spec(entry, where)
    if version is not None and version.attribute in used | {version.log_attribute}:
        raise TablesFileError(f"{where}: version attribute {version.attribute} is a key attribute")
    return TableSpec(
        create=create,
        name=name,
        attributes=dict(attributes),
        partition_key=partition,
        sort_key=key.get("sort"),
        global_indexes=gsis,
        local_indexes=lsis,
        ttl_attribute=_ttl_attribute(entry, where),
        stream_view_type=stream,
        version=version,
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
        if not spec.create:
            continue
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
