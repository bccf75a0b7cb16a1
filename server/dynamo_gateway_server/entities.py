"""Requests by entity: the keys, key conditions and filters the declared templates build.

A write by entity (`entity: "order"` and the entity's attributes) gets every key attribute
built from its template and the table's `entity_attribute` (default `_entity`) set to the
entity's name; a read, update or delete by entity takes the template attributes in place of
the key; a Query by entity (or collection) gets its key condition built from the first parts
given. A value that holds the text separating it from the next part is refused, so every key
built here reads back into its parts. The model itself is entity_model.py's. Must not import gRPC.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .codec import InvalidRequestError
from .entity_model import SHARD, EntitySpec, TableModel, Template, parse_template
from .made_here import noted
from .update_expression import top_level_attributes, unused_placeholder, with_actions

# Above every character a key's text may hold: the top of a range over sort key prefixes.
_TOP = "\U0010ffff"


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
