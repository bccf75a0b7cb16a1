"""The entity model of a single-table design, as the tables file declares it and startup checks it.

A table of the tables file may declare entities (examples/tables.yaml):

    entities:
      - name: order
        attributes: {user_id: S, order_id: S, created_at: S}
        keys:
          pk: "USER#{user_id}"
          sk: "ORDER#{created_at}#{order_id}"
          gsi1pk: "ORDER#{order_id}"
          gsi1sk: "ORDER#{order_id}"
        shards: {count: 8, by: order_id}    # optional write sharding
    collections:
      - {name: user_with_orders, entities: [user, order]}

Every template can be read back: placeholders are separated by literal text (entities.py
refuses a value that contains the text following its placeholder), so a key names its parts
exactly. `model_of` checks a table's declaration, each mistake naming the file's line; what
requests by entity do with the model is entities.py's. Must not import gRPC.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_ENTITY_ATTRIBUTE = "_entity"
# The placeholder a sharded entity's partition key ends with, and how many shards it may have.
SHARD = "_shard"
MAX_SHARDS = 64
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# What a template attribute may hold: text, or a number written as the caller wrote it.
_TEMPLATE_TYPES = ("S", "N")


class ModelError(ValueError):
    """An entity declaration that cannot work; the message names the file's line."""


@dataclass(frozen=True)
class Template:
    """A key template, e.g. "ORDER#{created_at}#{order_id}": literal text and placeholders."""

    text: str
    # Alternating: literal, placeholder, literal, ... (starts and ends with a literal, maybe "").
    parts: tuple[str, ...]

    @property
    def placeholders(self) -> tuple[str, ...]:
        return self.parts[1::2]

    def build(self, values: Mapping[str, str]) -> str:
        return "".join(values[part] if i % 2 else part for i, part in enumerate(self.parts))

    def separator_after(self, placeholder: str) -> str:
        """The literal text that ends `placeholder`'s value in a key ("" at the end)."""
        index = self.placeholders.index(placeholder) * 2 + 1  # placeholders sit at odd places
        return self.parts[index + 1]


def parse_template(text: str) -> Template:
    """A template's parts; ValueError when it cannot be read back (two placeholders in a row,
    a brace that opens no placeholder)."""
    parts: list[str] = []
    position = 0
    for found in _PLACEHOLDER.finditer(text):
        literal = text[position : found.start()]
        if parts and not literal:
            raise ValueError(
                f"{{{parts[-1]}}}{{{found[1]}}} has no text between its placeholders, so a key "
                "built from it cannot be read back: put a separator between them"
            )
        parts += [literal, found[1]]
        position = found.end()
    parts.append(text[position:])
    if any("{" in literal or "}" in literal for literal in parts[::2]):
        raise ValueError("a brace that is not part of a {placeholder}")
    return Template(text, tuple(parts))


@dataclass(frozen=True)
class EntitySpec:
    name: str
    # Template attribute -> its type (S or N).
    attributes: Mapping[str, str]
    # Key attribute (the table's or an index's) -> its template.
    keys: Mapping[str, Template]
    # The indexes whose keys it populates, so its items are in them.
    indexes: tuple[str, ...] = ()
    line: int = 0
    # Write sharding: its partition key ends with one of this many shard numbers ("#{_shard}"),
    # calculated from `shard_by` (so a read by key finds it) or, without one, drawn at random.
    shards: int = 1
    shard_by: str | None = None

    def shard_of(self, values: Mapping[str, str]) -> str:
        """The shard of an item whose template attributes are `values` (a calculated shard)."""
        assert self.shard_by is not None
        return str(zlib.crc32(values[self.shard_by].encode()) % self.shards)


@dataclass(frozen=True)
class CollectionSpec:
    """Entities that share a partition (of the table, or of `index`): one query reads them all."""

    name: str
    entities: tuple[str, ...]
    index: str = ""
    line: int = 0


@dataclass(frozen=True)
class TableModel:
    """The entities of one table."""

    table: str
    entity_attribute: str
    # The table's own key attributes, and every key attribute's type (S, N; the indexes' too).
    table_keys: tuple[str, ...] = ()
    key_types: Mapping[str, str] = field(default_factory=dict)
    entities: Mapping[str, EntitySpec] = field(default_factory=dict)
    # Each index's key attributes (partition, then sort if any).
    index_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The indexes whose items carry the entity attribute (they project it): a query there can
    # keep only one entity's items.
    indexes_with_entity: frozenset[str] = frozenset()
    collections: Mapping[str, CollectionSpec] = field(default_factory=dict)


# ---------------------------------------------------------------- the declaration, checked


@dataclass(frozen=True)
class _KeyLayout:
    """What a table's declaration says of its keys: attribute -> type, and each index's keys."""

    attribute_types: Mapping[str, str]
    table_keys: tuple[str, ...]
    index_keys: Mapping[str, tuple[str, ...]]
    # Each index's projected non-key attributes; None when it projects them all.
    index_projections: Mapping[str, frozenset[str] | None] = field(default_factory=dict)


def _line(node: Any, default: int) -> int:
    return int(getattr(node, "line", default))


def model_of(
    table: str,
    declared: Any,
    entity_attribute: Any,
    layout: _KeyLayout,
    where: str,
    line: int,
    collections: Any = None,
) -> TableModel | None:
    """The table's entities from its `entities` list (and `collections` of them), or None without
    one. `where` is the file and table for messages; each entry's own line comes from the loader
    (tables.py)."""
    if declared is None:
        if entity_attribute is not None or collections is not None:
            raise ModelError(
                f"{where} line {line}: entity_attribute and collections are about entities: declare entities"
            )
        return None
    if not isinstance(declared, list):
        raise ModelError(f"{where} line {line}: entities must be a list")
    attribute = DEFAULT_ENTITY_ATTRIBUTE if entity_attribute is None else entity_attribute
    if not isinstance(attribute, str) or not attribute:
        raise ModelError(f"{where} line {line}: entity_attribute must be an attribute name")
    if attribute in layout.attribute_types:
        raise ModelError(f"{where} line {line}: entity_attribute {attribute} is a key attribute")
    entities: dict[str, EntitySpec] = {}
    for node in declared:
        spec = _entity(node, layout, attribute, f"{where} line {_line(node, line)}")
        if spec.name in entities:
            raise ModelError(
                f"{where} line {_line(node, line)}: entity {spec.name} is declared twice "
                f"(first at line {entities[spec.name].line})"
            )
        entities[spec.name] = spec
    with_entity = frozenset(
        index
        for index, projected in layout.index_projections.items()
        if projected is None or attribute in projected
    )
    return TableModel(
        table,
        attribute,
        layout.table_keys,
        layout.attribute_types,
        entities,
        layout.index_keys,
        with_entity,
        _collections(collections, entities, layout, where, line),
    )


def _collections(
    declared: Any, entities: Mapping[str, EntitySpec], layout: _KeyLayout, where: str, line: int
) -> dict[str, CollectionSpec]:
    """Collections: entities whose partition key templates (of the table or one index) agree."""
    if declared is None:
        return {}
    if not isinstance(declared, list):
        raise ModelError(f"{where} line {line}: collections must be a list")
    found: dict[str, CollectionSpec] = {}
    for node in declared:
        at = f"{where} line {_line(node, line)}"
        if not isinstance(node, dict) or set(node) - {"name", "entities", "index"}:
            raise ModelError(f"{at}: a collection is a mapping with name, entities and (optionally) index")
        name, members, index = node.get("name"), node.get("entities"), node.get("index", "")
        if not isinstance(name, str) or not _NAME.match(name) or name in entities or name in found:
            raise ModelError(f"{at}: a collection needs a name of its own (not an entity's, not twice)")
        at = f"{at} (collection {name})"
        if not isinstance(members, list) or len(members) < 2 or any(m not in entities for m in members):
            raise ModelError(
                f"{at}: entities lists two or more of the table's entities ({', '.join(entities)})"
            )
        if not isinstance(index, str) or (index and index not in layout.index_keys):
            raise ModelError(f"{at}: index {index!r} is not one of the table's indexes")
        partition = (layout.index_keys[index] if index else layout.table_keys)[0]
        templates = {}
        for member in members:
            spec = entities[member]
            if index and index not in spec.indexes:
                raise ModelError(f"{at}: entity {member} is not in {index}")
            if spec.shards > 1:
                raise ModelError(
                    f"{at}: entity {member} is sharded; a collection of sharded entities is not read yet"
                )
            template = spec.keys.get(partition)
            templates[member] = template.text if template else f"{{{partition}}}"
        if len(set(templates.values())) > 1:
            shown = ", ".join(f"{m}: {t!r}" for m, t in templates.items())
            raise ModelError(f"{at}: its entities must build {partition} alike, but they build {shown}")
        found[name] = CollectionSpec(name, tuple(members), index, _line(node, line))
    return found


def _entity(node: Any, layout: _KeyLayout, entity_attribute: str, where: str) -> EntitySpec:
    if not isinstance(node, dict):
        raise ModelError(f"{where}: an entity is a mapping with name, attributes and keys")
    unknown = sorted(set(node) - {"name", "attributes", "keys", "shards"})
    if unknown:
        raise ModelError(f"{where}: unknown entity settings {unknown}")
    name = node.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ModelError(f"{where}: an entity needs a name (letters, digits, _ . -)")
    where = f"{where} (entity {name})"
    attributes = _attributes(node.get("attributes"), where)
    keys_node = node.get("keys")
    if not isinstance(keys_node, dict) or not keys_node:
        raise ModelError(f"{where}: keys maps each key attribute it fills to a template")
    keys: dict[str, Template] = {}
    for key, text in keys_node.items():
        keys[str(key)] = _template(str(key), text, attributes, layout, entity_attribute, where)
    missing = [key for key in layout.table_keys if key not in keys]
    if missing:
        raise ModelError(f"{where}: keys must give the table's key {', '.join(missing)}")
    for attribute, kind in attributes.items():
        key_type = layout.attribute_types.get(attribute)
        if key_type is not None and key_type != kind:
            raise ModelError(
                f"{where}: {attribute} is a key of the table or an index, of type {key_type}: declare it {key_type}"
            )
    indexes = []
    for index, index_keys in layout.index_keys.items():
        # An index key comes from a template, or is one of the entity's own attributes.
        filled = [
            key for key in index_keys if (key in keys or key in attributes) and key not in layout.table_keys
        ]
        own = [key for key in index_keys if key not in layout.table_keys]
        if filled and len(filled) < len(own):
            lacking = ", ".join(key for key in own if key not in filled)
            raise ModelError(
                f"{where}: fills {', '.join(filled)} but not {lacking}, so its items are never in {index}"
            )
        if filled or not own:
            indexes.append(index)
    unused = sorted(
        set(attributes) - {p for t in keys.values() for p in t.placeholders} - set(layout.attribute_types)
    )
    if unused:
        raise ModelError(f"{where}: attributes {unused} are in no key template and are no index's key")
    shards, shard_by = _sharding(node.get("shards"), keys, layout, where)
    if shards > 1:  # the partition key ends with the shard number: read back like any part
        partition = layout.table_keys[0]
        keys[partition] = parse_template(f"{keys[partition].text}#{{{SHARD}}}")
    return EntitySpec(name, attributes, keys, tuple(indexes), _line(node, 0), shards, shard_by)


def _sharding(
    node: Any, keys: Mapping[str, Template], layout: _KeyLayout, where: str
) -> tuple[int, str | None]:
    """(shards, the attribute that picks one) from `shards: N` or `shards: {count: N, by: attr}`."""
    if node is None:
        return 1, None
    count, by = (node, None) if not isinstance(node, dict) else (node.get("count"), node.get("by"))
    if isinstance(node, dict) and set(node) - {"count", "by"}:
        raise ModelError(f"{where}: shards takes count and by, not {sorted(set(node) - {'count', 'by'})}")
    if not isinstance(count, int) or isinstance(count, bool) or not 2 <= count <= MAX_SHARDS:
        raise ModelError(f"{where}: shards must be a count from 2 to {MAX_SHARDS}")
    partition = layout.table_keys[0]
    if layout.attribute_types[partition] != "S":
        raise ModelError(f"{where}: a sharded entity's partition key {partition} must be text (S)")
    if by is not None:
        table_parts = {p for key in layout.table_keys for p in keys[key].placeholders}
        if by not in table_parts:
            raise ModelError(
                f"{where}: shards.by {by!r} must be an attribute of the table's key templates, so that a "
                "read by key can find the shard"
            )
    return count, by


def _attributes(node: Any, where: str) -> dict[str, str]:
    if isinstance(node, list) and all(isinstance(a, str) for a in node):
        return dict.fromkeys(node, "S")  # a list of names: text attributes
    if not isinstance(node, dict) or not node:
        raise ModelError(f"{where}: attributes lists the attributes its key templates use (name: S or N)")
    bad = sorted(str(a) for a, kind in node.items() if kind not in _TEMPLATE_TYPES)
    if bad:
        raise ModelError(f"{where}: attributes {bad} must be S or N (what a key template can hold)")
    return {str(a): str(kind) for a, kind in node.items()}


def _template(
    key: str, text: Any, attributes: Mapping[str, str], layout: _KeyLayout, entity_attribute: str, where: str
) -> Template:
    if key not in layout.attribute_types:
        raise ModelError(
            f"{where}: {key} is not a key of the table or of any of its indexes "
            f"(they are {', '.join(sorted(layout.attribute_types))})"
        )
    if key in attributes or key == entity_attribute:
        raise ModelError(f"{where}: {key} is built from a template, so it cannot be an attribute too")
    if not isinstance(text, str | int) or isinstance(text, bool):
        raise ModelError(f'{where}: the template of {key} must be text, e.g. "USER#{{user_id}}"')
    try:
        template = parse_template(str(text))
    except ValueError as error:
        raise ModelError(f"{where}: template of {key} {text!r}: {error}") from None
    unknown = [p for p in template.placeholders if p not in attributes]
    if unknown:
        raise ModelError(
            f"{where}: template of {key} {text!r} uses {', '.join(unknown)}, which attributes does not declare"
        )
    if layout.attribute_types[key] == "N" and (
        template.parts[0] or template.parts[-1] or len(template.parts) != 3
    ):
        raise ModelError(f"{where}: {key} is a number, so its template must be one {{placeholder}} of type N")
    if layout.attribute_types[key] == "N" and attributes[template.placeholders[0]] != "N":
        raise ModelError(f"{where}: {key} is a number, so {template.placeholders[0]} must be of type N")
    if layout.attribute_types[key] == "B":
        raise ModelError(f"{where}: {key} is binary: a template builds text")
    return template


def key_layout(spec: Any) -> _KeyLayout:
    """The key attributes of a table's declaration (a tables.TableSpec)."""
    table_keys = tuple(k for k in (spec.partition_key, spec.sort_key) if k)
    index_keys = {
        index.name: tuple(k for k in (index.partition_key, index.sort_key) if k)
        for index in (*spec.global_indexes, *spec.local_indexes)
    }
    projections = {
        index.name: None if index.projection == "ALL" else frozenset(index.non_key_attributes)
        for index in (*spec.global_indexes, *spec.local_indexes)
    }
    return _KeyLayout(dict(spec.attributes), table_keys, index_keys, projections)
