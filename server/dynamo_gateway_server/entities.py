"""Entities of a single-table design: key templates declared once, keys built by the gateway.

A table of the tables file may declare entities (examples/tables.yaml):

    entities:
      - name: order
        attributes: {user_id: S, order_id: S, created_at: S}
        keys:
          pk: "USER#{user_id}"
          sk: "ORDER#{created_at}#{order_id}"
          gsi1pk: "ORDER#{order_id}"
          gsi1sk: "ORDER#{order_id}"

A write by entity (`entity: "order"` and the entity's attributes) gets every key attribute
built from its template and the table's `entity_attribute` (default `_entity`) set to the
entity's name; a read by entity takes the template attributes in place of the key, and a
Query by entity gets its key condition built from the first parts given (`query`). Every
template can be read back: placeholders are separated by literal text, and a value that
contains the text following its placeholder is refused, so a key names its parts exactly.
Checked at startup (`model_of`), each mistake naming the file's line. Must not import gRPC.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .codec import InvalidRequestError
from .made_here import noted
from .update_expression import top_level_attributes, unused_placeholder, with_actions

DEFAULT_ENTITY_ATTRIBUTE = "_entity"
# The placeholder a sharded entity's partition key ends with, and how many shards it may have.
SHARD = "_shard"
MAX_SHARDS = 64
# Above every character a key's text may hold: the top of a range over sort key prefixes.
_TOP = "\U0010ffff"
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


# ---------------------------------------------------------------- requests by entity


def _text_of(value: Any, attribute: str, kind: str, field_name: str) -> str:
    """The text a template attribute's value puts in a key."""
    if not isinstance(value, Mapping) or len(value) != 1 or kind not in value:
        raise InvalidRequestError(
            field_name, f"{attribute} must be of type {kind}, as the entity declares it"
        )
    return str(value[kind])


def _values(
    entity: EntitySpec, source: Mapping[str, Any], needed: Iterator[str], field_name: str
) -> dict[str, str]:
    values: dict[str, str] = {}
    for attribute in needed:
        if attribute in values or attribute == SHARD:  # the gateway's, not the caller's
            continue
        if attribute not in source:
            raise InvalidRequestError(
                f"{field_name}.{attribute}",
                f"entity {entity.name} needs {attribute} to build its keys",
            )
        values[attribute] = _text_of(
            source[attribute], attribute, entity.attributes[attribute], f"{field_name}.{attribute}"
        )
    for key, template in entity.keys.items():
        for placeholder in template.placeholders:
            separator = template.separator_after(placeholder)
            value = values.get(placeholder, "")
            # Read back, the value ends where its separator first appears: it must not appear
            # sooner, even overlapping the value's end ("a:" before "::" reads as "a").
            if separator and (value + separator).find(separator) != len(value):
                raise InvalidRequestError(
                    f"{field_name}.{placeholder}",
                    f"{placeholder} contains {separator!r}, which separates it in {key}'s template "
                    f"{template.text!r}: the key could not be read back",
                )
    return values


def _entity_of(model: TableModel | None, table: str, name: str) -> EntitySpec:
    if model is None:
        raise InvalidRequestError(
            "entity", f"table {table} declares no entities in the gateway's tables file"
        )
    entity = model.entities.get(name)
    if entity is None:
        raise InvalidRequestError(
            "entity", f"table {table} has no entity {name!r} (it has {', '.join(sorted(model.entities))})"
        )
    return entity


@dataclass(frozen=True)
class ShardFanOut:
    """How to send a Query by entity to every shard of a sharded entity's partition."""

    # The expression value holding the partition key, and its value for each shard.
    partition_value: str
    partitions: list[dict[str, str]]
    # The table's key attributes (what resumes a shard), and the sort key the answers merge on.
    table_keys: tuple[str, ...]
    sort_key: str | None
    sort_type: str


class Entities:
    """Builds the keys of requests made by entity, from the declared models (table -> model)."""

    def __init__(self, models: Mapping[str, TableModel]) -> None:
        self.models = dict(models)

    def fill_item(self, table: str, name: str, item: dict[str, Any], field_name: str = "item") -> None:
        """A put's item by entity: every key its templates build, and the entity attribute."""
        model = self.models.get(table)
        entity = _entity_of(model, table, name)
        assert model is not None
        needed = (p for template in entity.keys.values() for p in template.placeholders)
        values = _values(entity, item, needed, field_name)
        partition = model.table_keys[0]
        if entity.shards > 1 and entity.shard_by is None:
            if partition in item:
                raise InvalidRequestError(
                    f"{field_name}.{partition}",
                    f"entity {entity.name} writes to a random one of {entity.shards} shards: leave {partition} out",
                )
            values[SHARD] = str(random.randrange(entity.shards))
        elif entity.shards > 1:
            values[SHARD] = entity.shard_of(values)
        built = {key: {model.key_types[key]: template.build(values)} for key, template in entity.keys.items()}
        built[model.entity_attribute] = {"S": entity.name}
        if SHARD in values and entity.shard_by is None:
            noted(built[partition]["S"])  # drawn at random: a replay sets it aside
        for attribute, value in built.items():
            given = item.get(attribute)
            if given is not None and given != value:
                raise InvalidRequestError(
                    f"{field_name}.{attribute}",
                    f"{attribute} is {_shown(given)}, but entity {entity.name} makes it {_shown(value)}: "
                    "leave it out, the gateway builds it",
                )
            item[attribute] = value

    def key_of(
        self, table: str, name: str, key: Mapping[str, Any], field_name: str = "key"
    ) -> dict[str, Any]:
        """A read's (or delete's) key by entity: the table's key built from the attributes given."""
        model = self.models.get(table)
        entity = _entity_of(model, table, name)
        assert model is not None
        table_keys = list(model.table_keys)
        needed = [p for k in table_keys for p in entity.keys[k].placeholders if p != SHARD]
        extra = sorted(set(key) - set(needed))
        if extra:
            raise InvalidRequestError(
                f"{field_name}.{extra[0]}",
                f"entity {entity.name}'s key is built from {', '.join(dict.fromkeys(needed))}; "
                f"{', '.join(extra)} is not part of it",
            )
        values = _values(entity, key, iter(needed), field_name)
        if entity.shards > 1:
            if entity.shard_by is None:
                raise InvalidRequestError(
                    "entity",
                    f"entity {entity.name} writes to a random one of {entity.shards} shards, so a read or "
                    "delete by key cannot know which: query by entity (with the whole sort key) instead",
                )
            values[SHARD] = entity.shard_of(values)
        return {k: {model.key_types[k]: entity.keys[k].build(values)} for k in table_keys}

    def update(self, table: str, name: str, holder: dict[str, Any], field_name: str = "key") -> None:
        """An update by entity: its key, and SETs that keep the item what a put would make it (the
        entity attribute, the template attributes the key holds, the index keys built from them)."""
        model = self.models.get(table)
        entity = _entity_of(model, table, name)
        assert model is not None
        given = dict(holder["Key"])
        holder["Key"] = self.key_of(table, name, given, field_name)
        values = {a: _text_of(v, a, entity.attributes[a], f"{field_name}.{a}") for a, v in given.items()}
        sets: dict[str, Any] = {model.entity_attribute: {"S": entity.name}, **given}
        for key, template in entity.keys.items():
            if key in model.table_keys:
                continue
            lacking = [p for p in template.placeholders if p not in values]
            if lacking:
                raise InvalidRequestError(
                    "entity",
                    f"entity {entity.name}'s {key} is built from {', '.join(lacking)}, which an update by key "
                    "cannot know: write it with a put by entity",
                )
            sets[key] = {model.key_types[key]: template.build(values)}
        names = dict(holder.get("ExpressionAttributeNames", {}))
        wire_values = dict(holder.get("ExpressionAttributeValues", {}))
        expression = holder.get("UpdateExpression", "")
        named = top_level_attributes(expression, names) & set(sets)
        if named:
            raise InvalidRequestError(
                "update_expression",
                f"the update expression sets {', '.join(sorted(named))}, which entity {entity.name} builds: leave it out",
            )
        actions = []
        for attribute, value in sets.items():
            name_placeholder = unused_placeholder("#dgw_set", names)
            value_placeholder = unused_placeholder(":dgw_set", wire_values)
            names[name_placeholder], wire_values[value_placeholder] = attribute, value
            actions.append(f"{name_placeholder} = {value_placeholder}")
        holder["UpdateExpression"] = with_actions(expression, actions)
        holder["ExpressionAttributeNames"] = names
        holder["ExpressionAttributeValues"] = wire_values

    def query(
        self,
        table: str,
        name: str,
        index: str,
        given: Mapping[str, Any],
        params: dict[str, Any],
        until: Mapping[str, Any] | None = None,
    ) -> ShardFanOut | None:
        """A Query by entity: its key condition, built from the entity's templates for the table
        (or `index`) and the attribute values `given`, and a filter keeping only its items.

        For a sharded entity whose shard the values do not decide, the query must be sent to
        every shard: the answer says how (the params then name shard 0's partition)."""
        model = self.models.get(table)
        entity = _entity_of(model, table, name)
        assert model is not None
        if params.get("KeyConditionExpression"):
            raise InvalidRequestError(
                "key_condition_expression", "a query by entity has its key condition built: leave this empty"
            )
        if index and index not in model.index_keys:
            raise InvalidRequestError("index_name", f"table {table} has no index {index}")
        key_names = model.index_keys[index] if index else model.table_keys
        if index and index not in entity.indexes:
            raise InvalidRequestError(
                "index_name",
                f"entity {entity.name} is not in {index}: it fills none of its keys (a sparse index it is not in)",
            )
        partition, sort = key_names[0], key_names[1] if len(key_names) > 1 else None
        partition_template = entity.keys.get(partition)
        if partition_template is None:  # an LSI's or an index's key that is one of its attributes
            partition_template = parse_template(f"{{{partition}}}")
        sort_template = entity.keys.get(sort) if sort else None
        sort_parts = sort_template.placeholders if sort_template else ()
        leading = _leading(sort_parts, given, sort_template)
        unused = sorted(set(given) - set(partition_template.placeholders) - set(leading))
        if unused:
            raise InvalidRequestError(
                f"entity_key.{unused[0]}",
                f"{unused[0]} is in neither key template of entity {entity.name} for "
                f"{index or 'the table'} ({partition_template.text!r}"
                + (f", {sort_template.text!r})" if sort_template else ")"),
            )
        values = _values(entity, given, iter((*partition_template.placeholders, *leading)), "entity_key")
        sharded = SHARD in partition_template.placeholders
        if sharded and index:
            raise InvalidRequestError(
                "index_name",
                f"entity {entity.name} is sharded: a local index over its shards is not queried yet",
            )
        spread = sharded and not (entity.shard_by is not None and entity.shard_by in values)
        if sharded:
            values[SHARD] = "0" if spread else entity.shard_of(values)
        names = dict(params.get("ExpressionAttributeNames", {}))
        wire_values = dict(params.get("ExpressionAttributeValues", {}))

        def placeholder(base: str, attribute: str, value: Any) -> tuple[str, str]:
            name, value_name = (
                unused_placeholder(f"#{base}", names),
                unused_placeholder(f":{base}", wire_values),
            )
            names[name], wire_values[value_name] = attribute, value
            return name, value_name

        pk_name, pk_value = placeholder(
            "dgw_pk", partition, {model.key_types[partition]: partition_template.build(values)}
        )
        condition = f"{pk_name} = {pk_value}"
        if until and sort_template is None:
            raise InvalidRequestError(
                "entity_key_to", f"entity {entity.name} has no sort key template to range over"
            )
        if until and sort and sort_template is not None:
            # BETWEEN the first parts given and the last parts of `until`, each a prefix: every key
            # that starts with the upper one is in (a key's text never goes past U+10FFFF).
            upper = _leading(sort_parts, until, sort_template, "entity_key_to")
            extra = sorted(set(until) - set(upper))
            if not upper or extra:
                raise InvalidRequestError(
                    f"entity_key_to.{extra[0] if extra else sort_parts[0]}",
                    f"entity_key_to holds the first parts of the sort key {sort_template.text!r}, as entity_key does",
                )
            upper_values = _values(entity, until, iter(upper), "entity_key_to")
            low = _prefix(sort_template, values, len(leading))
            high = _prefix(sort_template, upper_values, len(upper)) + _TOP
            if model.key_types[sort] != "S":
                raise InvalidRequestError(
                    "entity_key_to", f"{sort} is a number: a range over its parts is not built"
                )
            low_name, low_value = placeholder("dgw_sk", sort, {"S": low})
            high_value = unused_placeholder(":dgw_sk", wire_values)
            wire_values[high_value] = {"S": high}
            condition += f" AND {low_name} BETWEEN {low_value} AND {high_value}"
        elif sort and sort_template is not None:
            built = _prefix(sort_template, values, len(leading))
            if len(leading) == len(sort_parts):
                sk_name, sk_value = placeholder("dgw_sk", sort, {model.key_types[sort]: built})
                condition += f" AND {sk_name} = {sk_value}"
            elif built:
                sk_name, sk_value = placeholder("dgw_sk", sort, {"S": built})
                condition += f" AND begins_with({sk_name}, {sk_value})"
        params["KeyConditionExpression"] = condition
        # Other entities may share the key's prefix; an index that does not project the entity
        # attribute cannot tell them apart (its items then come as the key condition finds them).
        if not index or index in model.indexes_with_entity:
            entity_name, entity_value = placeholder("dgw_entity", model.entity_attribute, {"S": entity.name})
            own = params.get("FilterExpression")
            ours = f"{entity_name} = {entity_value}"
            params["FilterExpression"] = f"({own}) AND {ours}" if own else ours
        params["ExpressionAttributeNames"] = names
        params["ExpressionAttributeValues"] = wire_values
        if not spread:
            return None
        shards = [{"S": partition_template.build({**values, SHARD: str(n)})} for n in range(entity.shards)]
        return ShardFanOut(pk_value, shards, model.table_keys, sort, model.key_types.get(sort or "", "S"))

    def collection_query(
        self, table: str, name: str, given: Mapping[str, Any], params: dict[str, Any]
    ) -> None:
        """A Query of a collection: its shared partition, the items of its entities only."""
        model = self.models.get(table)
        collection = model.collections.get(name) if model is not None else None
        if model is None or collection is None:
            known = ", ".join(sorted(model.collections)) if model is not None else ""
            raise InvalidRequestError(
                "collection", f"table {table} has no collection {name!r} ({known or 'none'})"
            )
        if params.get("KeyConditionExpression"):
            raise InvalidRequestError(
                "key_condition_expression",
                "a query of a collection has its key condition built: leave this empty",
            )
        if params.get("IndexName", "") != collection.index:
            where = collection.index or "the table"
            raise InvalidRequestError("index_name", f"collection {name} is read from {where}")
        first = model.entities[collection.entities[0]]
        partition = (model.index_keys[collection.index] if collection.index else model.table_keys)[0]
        template = first.keys.get(partition) or parse_template(f"{{{partition}}}")
        extra = sorted(set(given) - set(template.placeholders))
        if extra:
            raise InvalidRequestError(
                f"entity_key.{extra[0]}",
                f"collection {name} is read by {', '.join(template.placeholders)} only",
            )
        values = _values(first, given, iter(template.placeholders), "entity_key")
        names = dict(params.get("ExpressionAttributeNames", {}))
        wire_values = dict(params.get("ExpressionAttributeValues", {}))
        pk_name, pk_value = unused_placeholder("#dgw_pk", names), unused_placeholder(":dgw_pk", wire_values)
        names[pk_name], wire_values[pk_value] = (
            partition,
            {model.key_types[partition]: template.build(values)},
        )
        params["KeyConditionExpression"] = f"{pk_name} = {pk_value}"
        if not collection.index or collection.index in model.indexes_with_entity:
            entity_name = unused_placeholder("#dgw_entity", names)
            names[entity_name] = model.entity_attribute
            members = []
            for member in collection.entities:
                placeholder = unused_placeholder(":dgw_entity", wire_values)
                wire_values[placeholder] = {"S": member}
                members.append(placeholder)
            ours = f"{entity_name} IN ({', '.join(members)})"
            own = params.get("FilterExpression")
            params["FilterExpression"] = f"({own}) AND {ours}" if own else ours
        params["ExpressionAttributeNames"] = names
        params["ExpressionAttributeValues"] = wire_values

    def entity_of_item(self, table: str, item: Mapping[str, Any]) -> str:
        """The entity an item says it is ("" when its table has no model or the item no entity)."""
        model = self.models.get(table)
        if model is None:
            return ""
        value = item.get(model.entity_attribute)
        return str(value["S"]) if isinstance(value, Mapping) and "S" in value else ""


def _leading(
    parts: tuple[str, ...],
    given: Mapping[str, Any],
    template: Template | None,
    field_name: str = "entity_key",
) -> tuple[str, ...]:
    """The sort template's first parts the caller gave; a later part without an earlier one is refused."""
    leading = []
    for part in parts:
        if part not in given:
            break
        leading.append(part)
    skipped = [part for part in parts[len(leading) :] if part in given]
    if skipped and template is not None:
        missing = parts[len(leading)]
        raise InvalidRequestError(
            f"{field_name}.{skipped[0]}",
            f"the sort key {template.text!r} is matched by its first parts: give {missing} too, or leave {skipped[0]} out",
        )
    return tuple(leading)


def _prefix(template: Template, values: Mapping[str, str], count: int) -> str:
    """The sort key's text up to the end of its `count`-th placeholder and the literal after it."""
    return "".join(values[part] if i % 2 else part for i, part in enumerate(template.parts[: 2 * count + 1]))


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
