"""Entities: key templates, their checks at load time (with the file's line), and keys built by entity."""

from __future__ import annotations

import dataclasses
import pathlib
import re
import textwrap
from typing import Any

import pytest

from dynamo_gateway.v1 import table_pb2
from dynamo_gateway_server.codec import InvalidRequestError, fill_declarations
from dynamo_gateway_server.entities import Entities
from dynamo_gateway_server.entity_model import TableModel, parse_template
from dynamo_gateway_server.tables import TablesFileError, load_tables_file

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "tables.yaml"

# The example's app table without its entities: each test appends the entities it is about.
APP_TABLE = """\
tables:
  - name: app
    attributes: {pk: S, sk: S, gsi1pk: S, gsi1sk: S, created_at: N}
    key: {partition: pk, sort: sk}
    global_indexes:
      - name: gsi1
        key: {partition: gsi1pk, sort: gsi1sk}
    local_indexes:
      - name: lsi1
        key: {sort: created_at}
"""

# A table whose sort key is a number, for the N-key rules.
EVENTS_TABLE = """\
tables:
  - name: events
    attributes: {pk: S, seq: N}
    key: {partition: pk, sort: seq}
"""


def with_entities(table: str, entities: str) -> str:
    """`table` (one entry) with an `entities` list holding `entities` (YAML list items)."""
    return table + "    entities:\n" + textwrap.indent(textwrap.dedent(entities), " " * 6)


def line_of(text: str, needle: str, occurrence: int = 0) -> int:
    """The 1-based number of the line that is `needle` (indentation aside): what a message must name."""
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip() == needle]
    return lines[occurrence]


def write(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    path = tmp_path / "tables.yaml"
    path.write_text(text)
    return path


def load_error(tmp_path: pathlib.Path, text: str) -> tuple[pathlib.Path, str]:
    path = write(tmp_path, text)
    with pytest.raises(TablesFileError) as raised:
        load_tables_file(path)
    return path, str(raised.value)


def assert_names_line(message: str, path: pathlib.Path, line: int) -> None:
    # \b: "line 1" must not pass for "line 12".
    assert re.search(rf"{re.escape(str(path))} line {line}\b", message), message


def model_of_file(tmp_path: pathlib.Path, text: str) -> TableModel:
    (spec,) = load_tables_file(write(tmp_path, text))
    assert spec.model is not None
    return spec.model


@pytest.fixture
def example_model() -> TableModel:
    (app,) = load_tables_file(EXAMPLE)
    assert app.model is not None
    return app.model


@pytest.fixture
def entities(example_model: TableModel) -> Entities:
    return Entities({"app": example_model})


def refused(call: Any, *args: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as raised:
        call(*args)
    return raised.value


# ---------------------------------------------------------------- parse_template


def test_literal_only_template_has_one_part_and_builds_itself() -> None:
    template = parse_template("PROFILE")
    assert template.parts == ("PROFILE",)
    assert template.placeholders == ()
    assert template.build({}) == "PROFILE"


def test_one_placeholder_between_literals() -> None:
    template = parse_template("USER#{user_id}")
    assert template.parts == ("USER#", "user_id", "")
    assert template.placeholders == ("user_id",)
    assert template.build({"user_id": "u1"}) == "USER#u1"


def test_several_placeholders_keep_their_order() -> None:
    template = parse_template("ORDER#{created_at}#{order_id}")
    assert template.parts == ("ORDER#", "created_at", "#", "order_id", "")
    assert template.placeholders == ("created_at", "order_id")
    assert template.build({"created_at": "2024", "order_id": "o7"}) == "ORDER#2024#o7"


def test_placeholders_at_start_and_end_leave_empty_literals() -> None:
    template = parse_template("{tenant}-{id}")
    assert template.parts == ("", "tenant", "-", "id", "")
    assert template.build({"tenant": "acme", "id": "42"}) == "acme-42"


def test_separator_after_is_the_literal_that_follows_each_placeholder() -> None:
    template = parse_template("A#{x}::{y}")
    assert template.separator_after("x") == "::"
    # The last placeholder ends the key: nothing separates it.
    assert template.separator_after("y") == ""


def test_two_placeholders_in_a_row_are_refused_as_unreadable() -> None:
    with pytest.raises(ValueError, match=r"\{a\}\{b\} has no text between its placeholders"):
        parse_template("{a}{b}")


@pytest.mark.parametrize("text", ["A{b", "A}b", "{1x}", "{}"])
def test_a_brace_that_opens_no_placeholder_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape("a brace that is not part of a {placeholder}")):
        parse_template(text)


def test_separator_after_is_not_fooled_by_a_literal_equal_to_a_placeholder_name() -> None:
    template = parse_template("{a}b{b}")
    assert template.parts == ("", "a", "b", "b", "")
    assert template.separator_after("b") == ""


# ---------------------------------------------------------------- loading the tables file


def test_example_file_declares_user_and_order(example_model: TableModel) -> None:
    assert example_model.table == "app"
    assert example_model.entity_attribute == "_entity"
    assert example_model.table_keys == ("pk", "sk")
    assert set(example_model.entities) == {"user", "order"}

    user = example_model.entities["user"]
    assert dict(user.attributes) == {"user_id": "S"}
    assert {k: t.text for k, t in user.keys.items()} == {"pk": "USER#{user_id}", "sk": "PROFILE"}
    # It fills no index key, and lsi1's sort key (created_at) is filled by no template.
    assert user.indexes == ()

    order = example_model.entities["order"]
    assert dict(order.attributes) == {"user_id": "S", "order_id": "S"}
    assert {k: t.text for k, t in order.keys.items()} == {
        "pk": "USER#{user_id}",
        "sk": "ORDER#{order_id}",
        "gsi1pk": "ORDER#{order_id}",
        "gsi1sk": "USER#{user_id}",
    }
    assert order.indexes == ("gsi1",)


def test_entity_lines_are_those_of_the_file(example_model: TableModel) -> None:
    text = EXAMPLE.read_text()
    assert example_model.entities["user"].line == line_of(text, "- name: user")
    assert example_model.entities["order"].line == line_of(text, "- name: order")


def test_file_without_entities_loads_as_before(tmp_path: pathlib.Path) -> None:
    text = EXAMPLE.read_text()
    without = text.split("    # Entities")[0]
    assert "entities:" in text and "entities:" not in without
    (plain,) = load_tables_file(write(tmp_path, without))
    (declared,) = load_tables_file(EXAMPLE)
    assert plain.model is None
    # Only the model differs: the entities change nothing else of the table's spec.
    assert dataclasses.replace(declared, model=None) == plain


def test_entity_attribute_can_be_renamed(tmp_path: pathlib.Path) -> None:
    text = with_entities(
        APP_TABLE.replace("    local_indexes:", "    entity_attribute: kind\n    local_indexes:"),
        """\
        - name: user
          attributes: {user_id: S}
          keys: {pk: "USER#{user_id}", sk: "PROFILE"}
        """,
    )
    model = model_of_file(tmp_path, text)
    assert model.entity_attribute == "kind"
    item: dict[str, Any] = {"user_id": {"S": "u1"}}
    Entities({"app": model}).fill_item("app", "user", item)
    assert item["kind"] == {"S": "user"}
    assert "_entity" not in item


def test_attributes_as_a_list_of_names_are_text(tmp_path: pathlib.Path) -> None:
    text = with_entities(
        APP_TABLE,
        """\
        - name: user
          attributes: [user_id]
          keys: {pk: "USER#{user_id}", sk: "PROFILE"}
        """,
    )
    assert dict(model_of_file(tmp_path, text).entities["user"].attributes) == {"user_id": "S"}


# Each: entities declared on the app table, the text of the line the error must name, and words
# the message must hold (saying what is wrong).
ENTITY_MISTAKES = {
    "unknown attribute in a template": (
        """\
        - name: user
          attributes: {user_id: S}
          keys: {pk: "USER#{uid}", sk: "P#{user_id}"}
        """,
        "- name: user",
        ["entity user", "template of pk", "uses uid", "does not declare"],
    ),
    "key that is no key of the table or an index": (
        """\
        - name: user
          attributes: {user_id: S}
          keys: {pk: "USER#{user_id}", sk: "PROFILE", gsi9pk: "X"}
        """,
        "- name: user",
        ["gsi9pk is not a key of the table or of any of its indexes"],
    ),
    "table key missing": (
        """\
        - name: user
          attributes: {user_id: S}
          keys: {pk: "USER#{user_id}"}
        """,
        "- name: user",
        ["keys must give the table's key sk"],
    ),
    "index half filled": (
        """\
        - name: order
          attributes: {user_id: S, order_id: S}
          keys: {pk: "USER#{user_id}", sk: "ORDER#{order_id}", gsi1pk: "ORDER#{order_id}"}
        """,
        "- name: order",
        ["fills gsi1pk but not gsi1sk", "never in gsi1"],
    ),
    "attribute in no template": (
        """\
        - name: user
          attributes: {user_id: S, nickname: S}
          keys: {pk: "USER#{user_id}", sk: "PROFILE"}
        """,
        "- name: user",
        ["attributes ['nickname'] are in no key template and are no index's key"],
    ),
    "binary attribute": (
        """\
        - name: user
          attributes: {user_id: B}
          keys: {pk: "USER#{user_id}", sk: "PROFILE"}
        """,
        "- name: user",
        ["attributes ['user_id'] must be S or N"],
    ),
    "attribute of an unknown type": (
        """\
        - name: user
          attributes: {user_id: STRING}
          keys: {pk: "USER#{user_id}", sk: "PROFILE"}
        """,
        "- name: user",
        ["attributes ['user_id'] must be S or N"],
    ),
    "template that cannot be read back": (
        """\
        - name: order
          attributes: {user_id: S, order_id: S}
          keys: {pk: "USER#{user_id}", sk: "ORDER#{user_id}{order_id}"}
        """,
        "- name: order",
        ["template of sk", "no text between its placeholders"],
    ),
    "template with a stray brace": (
        """\
        - name: user
          attributes: {user_id: S}
          keys: {pk: "USER#{user_id}", sk: "PROFILE}"}
        """,
        "- name: user",
        ["template of sk", "a brace that is not part of a {placeholder}"],
    ),
    "unknown entity setting": (
        """\
        - name: order
          attributes: {user_id: S, order_id: S}
          keys: {pk: "USER#{user_id}", sk: "ORDER#{order_id}"}
          indexes: [gsi1]
        """,
        "- name: order",
        ["unknown entity settings ['indexes']"],
    ),
    "key that is also an attribute": (
        """\
        - name: user
          attributes: {user_id: S, sk: S}
          keys: {pk: "USER#{user_id}", sk: "P#{sk}"}
        """,
        "- name: user",
        ["sk is built from a template, so it cannot be an attribute too"],
    ),
}


@pytest.mark.parametrize(
    ("entities_yaml", "line_text", "words"), ENTITY_MISTAKES.values(), ids=ENTITY_MISTAKES.keys()
)
def test_entity_mistake_names_file_and_entity_line(
    tmp_path: pathlib.Path, entities_yaml: str, line_text: str, words: list[str]
) -> None:
    # A second, valid entity first: the line named must be the faulty entity's, not the first one's.
    valid = """\
    - name: first
      attributes: {first_id: S}
      keys: {pk: "FIRST#{first_id}", sk: "F"}
    """
    text = with_entities(APP_TABLE, textwrap.dedent(valid) + textwrap.dedent(entities_yaml))
    path, message = load_error(tmp_path, text)
    assert_names_line(message, path, line_of(text, line_text))
    for word in words:
        assert word in message


# The number key's template, and the type of its attribute; each must be refused.
NUMBER_KEY_MISTAKES = {
    "literal before the placeholder": ('"#{seq_no}"', "N"),
    "literal after the placeholder": ('"{seq_no}#"', "N"),
    "no placeholder": ('"7"', "N"),
    "two placeholders": ('"{seq_no}.{seq_no}"', "N"),
    "text placeholder": ('"{seq_no}"', "S"),
}


@pytest.mark.parametrize(("template", "kind"), NUMBER_KEY_MISTAKES.values(), ids=NUMBER_KEY_MISTAKES.keys())
def test_number_key_needs_one_number_placeholder(tmp_path: pathlib.Path, template: str, kind: str) -> None:
    text = with_entities(
        EVENTS_TABLE,
        f"""\
        - name: event
          attributes: {{stream: S, seq_no: {kind}}}
          keys: {{pk: "STREAM#{{stream}}", seq: {template}}}
        """,
    )
    path, message = load_error(tmp_path, text)
    assert_names_line(message, path, line_of(text, "- name: event"))
    assert "seq is a number" in message


def test_duplicate_entity_names_both_lines(tmp_path: pathlib.Path) -> None:
    user = """\
    - name: user
      attributes: {user_id: S}
      keys: {pk: "USER#{user_id}", sk: "PROFILE"}
    """
    text = with_entities(APP_TABLE, textwrap.dedent(user) * 2)
    path, message = load_error(tmp_path, text)
    first, second = line_of(text, "- name: user", 0), line_of(text, "- name: user", 1)
    assert_names_line(message, path, second)
    assert f"entity user is declared twice (first at line {first})" in message


# Mistakes of the table entry itself name the entry's line.
TABLE_MISTAKES = {
    "entity_attribute is a key attribute": (
        APP_TABLE + "    entity_attribute: gsi1pk\n    entities: []\n",
        "entity_attribute gsi1pk is a key attribute",
    ),
    "entities not a list": (
        APP_TABLE + "    entities: {name: user}\n",
        "entities must be a list",
    ),
    "empty entity_attribute": (
        APP_TABLE + '    entity_attribute: ""\n    entities: []\n',
        "entity_attribute must be an attribute name",
    ),
}


@pytest.mark.parametrize(("text", "words"), TABLE_MISTAKES.values(), ids=TABLE_MISTAKES.keys())
def test_table_mistake_names_file_and_entry_line(tmp_path: pathlib.Path, text: str, words: str) -> None:
    path, message = load_error(tmp_path, text)
    assert_names_line(message, path, line_of(text, "- name: app"))
    assert words in message


def test_entities_on_a_declaration_only_entry_are_refused(tmp_path: pathlib.Path) -> None:
    text = """\
tables:
  - name: made_elsewhere
    create: false
    version: v
  - name: legacy
    create: false
    entities:
      - name: user
        attributes: {user_id: S}
        keys: {pk: "USER#{user_id}", sk: "PROFILE"}
"""
    path, message = load_error(tmp_path, text)
    assert_names_line(message, path, line_of(text, "- name: legacy"))
    assert "(table legacy)" in message
    assert "create: false" in message


# ---------------------------------------------------------------- Entities.fill_item


def test_fill_item_builds_every_key_and_the_entity_attribute(entities: Entities) -> None:
    item: dict[str, Any] = {"user_id": {"S": "u1"}, "order_id": {"S": "o9"}, "total": {"N": "3"}}
    entities.fill_item("app", "order", item)
    assert item == {
        "user_id": {"S": "u1"},
        "order_id": {"S": "o9"},
        "total": {"N": "3"},
        "pk": {"S": "USER#u1"},
        "sk": {"S": "ORDER#o9"},
        "gsi1pk": {"S": "ORDER#o9"},
        "gsi1sk": {"S": "USER#u1"},
        "_entity": {"S": "order"},
    }


def test_fill_item_literal_key(entities: Entities) -> None:
    item: dict[str, Any] = {"user_id": {"S": "u1"}}
    entities.fill_item("app", "user", item)
    assert item["pk"] == {"S": "USER#u1"}
    assert item["sk"] == {"S": "PROFILE"}
    # The user fills no index key.
    assert "gsi1pk" not in item and "gsi1sk" not in item


def test_fill_item_number_key_gets_a_number(tmp_path: pathlib.Path) -> None:
    text = with_entities(
        EVENTS_TABLE,
        """\
        - name: event
          attributes: {stream: S, seq_no: N}
          keys: {pk: "STREAM#{stream}", seq: "{seq_no}"}
        """,
    )
    item: dict[str, Any] = {"stream": {"S": "s1"}, "seq_no": {"N": "42"}}
    Entities({"events": model_of_file(tmp_path, text)}).fill_item("events", "event", item)
    assert item["seq"] == {"N": "42"}
    assert item["pk"] == {"S": "STREAM#s1"}


def test_fill_item_missing_template_attribute(entities: Entities) -> None:
    error = refused(entities.fill_item, "app", "order", {"user_id": {"S": "u1"}})
    assert error.field == "item.order_id"
    assert "entity order needs order_id" in error.description


def test_fill_item_field_prefix_follows_the_caller(entities: Entities) -> None:
    # A transaction's put names its own place in the request.
    error = refused(entities.fill_item, "app", "user", {}, "transact_items[2].put.item")
    assert error.field == "transact_items[2].put.item.user_id"


def test_fill_item_attribute_of_the_wrong_type(entities: Entities) -> None:
    error = refused(entities.fill_item, "app", "user", {"user_id": {"N": "7"}})
    assert error.field == "item.user_id"
    assert "user_id must be of type S" in error.description


@pytest.fixture
def pair_entities(tmp_path: pathlib.Path) -> Entities:
    text = with_entities(
        APP_TABLE,
        """\
        - name: pair
          attributes: {x: S, y: S}
          keys: {pk: "A#{x}#{y}", sk: "PAIR"}
        """,
    )
    return Entities({"app": model_of_file(tmp_path, text)})


def test_fill_item_refuses_a_value_holding_its_separator(pair_entities: Entities) -> None:
    item = {"x": {"S": "1#2"}, "y": {"S": "3"}}
    error = refused(pair_entities.fill_item, "app", "pair", item)
    assert error.field == "item.x"
    assert "contains '#'" in error.description
    assert "'A#{x}#{y}'" in error.description


def test_fill_item_accepts_the_separator_in_the_last_placeholder(pair_entities: Entities) -> None:
    # Nothing follows the last placeholder, so its value cannot be cut short when read back.
    item: dict[str, Any] = {"x": {"S": "1"}, "y": {"S": "2#3"}}
    pair_entities.fill_item("app", "pair", item)
    assert item["pk"] == {"S": "A#1#2#3"}


def test_fill_item_refuses_a_value_ending_in_part_of_its_separator(tmp_path: pathlib.Path) -> None:
    text = with_entities(
        APP_TABLE,
        """\
        - name: tenanted
          attributes: {tenant: S, id: S}
          keys: {pk: "{tenant}::{id}", sk: "T"}
        """,
    )
    model = Entities({"app": model_of_file(tmp_path, text)})
    # Read back, "a:::x" splits at the first "::" into tenant "a", id ":x" -- not what was written.
    error = refused(model.fill_item, "app", "tenanted", {"tenant": {"S": "a:"}, "id": {"S": "x"}})
    assert error.field == "item.tenant"


def test_fill_item_accepts_an_explicit_key_that_agrees(entities: Entities) -> None:
    item: dict[str, Any] = {"user_id": {"S": "u1"}, "pk": {"S": "USER#u1"}, "_entity": {"S": "user"}}
    entities.fill_item("app", "user", item)
    assert item["pk"] == {"S": "USER#u1"}
    assert item["sk"] == {"S": "PROFILE"}


def test_fill_item_refuses_an_explicit_key_that_disagrees(entities: Entities) -> None:
    item = {"user_id": {"S": "u1"}, "pk": {"S": "USER#u2"}}
    error = refused(entities.fill_item, "app", "user", item)
    assert error.field == "item.pk"
    # Both values, so the caller sees which one the gateway would have written.
    assert '{"S": "USER#u2"}' in error.description
    assert '{"S": "USER#u1"}' in error.description


def test_fill_item_refuses_an_explicit_entity_of_another_entity(entities: Entities) -> None:
    item = {"user_id": {"S": "u1"}, "_entity": {"S": "order"}}
    error = refused(entities.fill_item, "app", "user", item)
    assert error.field == "item._entity"
    assert "entity user makes it" in error.description


def test_fill_item_unknown_entity_lists_the_known_ones(entities: Entities) -> None:
    error = refused(entities.fill_item, "app", "invoice", {"user_id": {"S": "u1"}})
    assert error.field == "entity"
    assert "no entity 'invoice'" in error.description
    assert "(it has order, user)" in error.description


def test_fill_item_on_a_table_without_entities(entities: Entities) -> None:
    error = refused(entities.fill_item, "plain", "user", {"user_id": {"S": "u1"}})
    assert error.field == "entity"
    assert "table plain declares no entities" in error.description


# ---------------------------------------------------------------- Entities.key_of


def test_key_of_builds_only_the_table_key(entities: Entities) -> None:
    key = entities.key_of("app", "order", {"user_id": {"S": "u1"}, "order_id": {"S": "o9"}})
    # No index key and no entity attribute: a read's key is the table's key alone.
    assert key == {"pk": {"S": "USER#u1"}, "sk": {"S": "ORDER#o9"}}


def test_key_of_user_needs_only_user_id(entities: Entities) -> None:
    assert entities.key_of("app", "user", {"user_id": {"S": "u1"}}) == {
        "pk": {"S": "USER#u1"},
        "sk": {"S": "PROFILE"},
    }


def test_key_of_refuses_an_attribute_that_is_not_part_of_the_key(entities: Entities) -> None:
    error = refused(entities.key_of, "app", "user", {"user_id": {"S": "u1"}, "order_id": {"S": "o9"}})
    assert error.field == "key.order_id"
    assert "order_id is not part of it" in error.description


def test_key_of_refuses_a_missing_attribute(entities: Entities) -> None:
    error = refused(entities.key_of, "app", "order", {"user_id": {"S": "u1"}})
    assert error.field == "key.order_id"
    assert "entity order needs order_id" in error.description


def test_key_of_refuses_a_value_holding_its_separator(pair_entities: Entities) -> None:
    error = refused(pair_entities.key_of, "app", "pair", {"x": {"S": "1#2"}, "y": {"S": "3"}})
    assert error.field == "key.x"


# ---------------------------------------------------------------- Entities.entity_of_item


def test_entity_of_item_reads_the_entity_attribute(entities: Entities) -> None:
    assert entities.entity_of_item("app", {"pk": {"S": "USER#u1"}, "_entity": {"S": "user"}}) == "user"


def test_entity_of_item_is_empty_without_the_attribute(entities: Entities) -> None:
    assert entities.entity_of_item("app", {"pk": {"S": "USER#u1"}}) == ""


def test_entity_of_item_is_empty_for_a_table_without_a_model(entities: Entities) -> None:
    assert entities.entity_of_item("plain", {"_entity": {"S": "user"}}) == ""


# ---------------------------------------------------------------- codec.fill_declarations


def test_fill_declarations_describes_the_entities() -> None:
    (app,) = load_tables_file(EXAMPLE)
    description = table_pb2.TableDescription()
    fill_declarations(description, app)
    declarations = description.declarations
    assert declarations.entity_attribute == "_entity"
    described = {entity.name: entity for entity in declarations.entities}
    assert set(described) == {"user", "order"}
    assert dict(described["user"].attributes) == {"user_id": "S"}
    assert dict(described["user"].key_templates) == {"pk": "USER#{user_id}", "sk": "PROFILE"}
    assert list(described["user"].indexes) == []
    assert dict(described["order"].attributes) == {"user_id": "S", "order_id": "S"}
    assert dict(described["order"].key_templates) == {
        "pk": "USER#{user_id}",
        "sk": "ORDER#{order_id}",
        "gsi1pk": "ORDER#{order_id}",
        "gsi1sk": "USER#{user_id}",
    }
    assert list(described["order"].indexes) == ["gsi1"]


def test_fill_declarations_without_entities_leaves_them_empty(tmp_path: pathlib.Path) -> None:
    (plain,) = load_tables_file(write(tmp_path, APP_TABLE))
    description = table_pb2.TableDescription()
    fill_declarations(description, plain)
    assert description.declarations.entity_attribute == ""
    assert len(description.declarations.entities) == 0


def test_an_entity_attribute_without_entities_is_refused_naming_the_entry(tmp_path: pathlib.Path) -> None:
    text = APP_TABLE + "    entity_attribute: kind\n"
    path, message = load_error(tmp_path, text)
    assert_names_line(message, path, line_of(text, "- name: app"))
    assert "declare entities" in message


def test_an_attribute_that_is_an_index_key_keeps_the_keys_type_and_puts_the_entity_in_the_index(
    tmp_path: pathlib.Path,
) -> None:
    entity = """\
        - name: event
          attributes: {user_id: S, created_at: KIND}
          keys: {pk: "USER#{user_id}", sk: "EVENT"}
        """
    wrong = with_entities(APP_TABLE, entity.replace("KIND", "S"))
    path, message = load_error(tmp_path, wrong)
    assert_names_line(message, path, line_of(wrong, "- name: event"))
    assert "created_at is a key of the table or an index, of type N: declare it N" in message

    model = model_of_file(tmp_path, with_entities(APP_TABLE, entity.replace("KIND", "N")))
    assert model.entities["event"].indexes == ("lsi1",)


# ---------------------------------------------------------------- queries by entity

EVENTS_ENTITY = """\
    - name: event
      attributes: {user_id: S, day: S, event_id: S}
      keys: {pk: "USER#{user_id}", sk: "EVENT#{day}#{event_id}"}
    """


@pytest.fixture
def events(tmp_path: pathlib.Path) -> Entities:
    return Entities({"app": model_of_file(tmp_path, with_entities(APP_TABLE, EVENTS_ENTITY))})


def query_params(entities: Entities, given: dict[str, Any], **params: Any) -> dict[str, Any]:
    params = {"TableName": "app", **params}
    entities.query("app", "event", params.get("IndexName", ""), given, params)
    return params


def test_a_query_by_entity_matches_the_first_parts_of_the_sort_template(events: Entities) -> None:
    only_user = query_params(events, {"user_id": {"S": "42"}})
    assert only_user["KeyConditionExpression"] == "#dgw_pk = :dgw_pk AND begins_with(#dgw_sk, :dgw_sk)"
    assert only_user["ExpressionAttributeValues"][":dgw_sk"] == {"S": "EVENT#"}
    assert only_user["ExpressionAttributeValues"][":dgw_pk"] == {"S": "USER#42"}
    assert only_user["FilterExpression"] == "#dgw_entity = :dgw_entity"
    one_day = query_params(events, {"user_id": {"S": "42"}, "day": {"S": "2026-12-01"}})
    assert one_day["ExpressionAttributeValues"][":dgw_sk"] == {"S": "EVENT#2026-12-01#"}
    one = query_params(events, {"user_id": {"S": "42"}, "day": {"S": "2026-12-01"}, "event_id": {"S": "e1"}})
    assert one["KeyConditionExpression"] == "#dgw_pk = :dgw_pk AND #dgw_sk = :dgw_sk"
    assert one["ExpressionAttributeValues"][":dgw_sk"] == {"S": "EVENT#2026-12-01#e1"}


def test_a_query_by_entity_keeps_the_callers_filter_and_placeholders(events: Entities) -> None:
    params = query_params(
        events,
        {"user_id": {"S": "42"}},
        FilterExpression="#dgw_pk > :dgw_pk",
        ExpressionAttributeNames={"#dgw_pk": "score"},
        ExpressionAttributeValues={":dgw_pk": {"N": "3"}},
    )
    # The caller's own #dgw_pk keeps its meaning; the gateway's take the next free names.
    assert params["ExpressionAttributeNames"]["#dgw_pk"] == "score"
    assert params["ExpressionAttributeNames"]["#dgw_pk2"] == "pk"
    assert params["KeyConditionExpression"].startswith("#dgw_pk2 = :dgw_pk2")
    assert params["FilterExpression"] == "(#dgw_pk > :dgw_pk) AND #dgw_entity = :dgw_entity"


@pytest.mark.parametrize(
    ("given", "params", "field", "words"),
    [
        ({"user_id": {"S": "42"}, "event_id": {"S": "e1"}}, {}, "entity_key.event_id", "give day too"),
        ({"day": {"S": "d"}}, {}, "entity_key.user_id", "needs user_id"),
        (
            {"user_id": {"S": "4"}},
            {"KeyConditionExpression": "pk = :p"},
            "key_condition_expression",
            "leave this empty",
        ),
        ({"user_id": {"S": "4"}}, {"IndexName": "gsi1"}, "index_name", "is not in gsi1"),
        ({"user_id": {"S": "4"}}, {"IndexName": "gsi9"}, "index_name", "has no index gsi9"),
        ({"user_id": {"S": "4"}, "day": {"S": "a#b"}}, {}, "entity_key.day", "separates it"),
    ],
    ids=["skipped-part", "no-partition", "own-condition", "sparse-index", "no-index", "separator"],
)
def test_a_query_by_entity_the_templates_cannot_build_is_refused(
    events: Entities, given: dict[str, Any], params: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        query_params(events, given, **params)
    assert raised.value.field == field
    assert words in str(raised.value)


# ---------------------------------------------------------------- collections

TWO_ENTITIES = """\
    - name: user
      attributes: {user_id: S}
      keys: {pk: "USER#{user_id}", sk: "PROFILE"}
    - name: order
      attributes: {user_id: S, order_id: S}
      keys: {pk: "USER#{user_id}", sk: "ORDER#{order_id}", gsi1pk: "ORDER#{order_id}", gsi1sk: "X"}
    - name: stray
      attributes: {id: S}
      keys: {pk: "STRAY#{id}", sk: "S"}
"""


def with_collections(collections: str) -> str:
    return (
        with_entities(APP_TABLE, TWO_ENTITIES)
        + "    collections:\n"
        + textwrap.indent(textwrap.dedent(collections), " " * 6)
    )


@pytest.mark.parametrize(
    ("collections", "words"),
    [
        ("- name: mixed\n  entities: [user, stray]\n", "must build pk alike"),
        ("- name: lonely\n  entities: [user]\n", "two or more"),
        ("- name: ghost\n  entities: [user, invoice]\n", "two or more"),
        ("- name: order\n  entities: [user, order]\n", "a name of its own"),
        ("- name: by_gsi\n  entities: [user, order]\n  index: gsi1\n", "entity user is not in gsi1"),
        ("- name: nowhere\n  entities: [user, order]\n  index: gsi9\n", "not one of the table's indexes"),
    ],
    ids=["other-partition", "one-entity", "unknown-entity", "entity-name", "not-in-index", "no-index"],
)
def test_a_collection_that_cannot_be_read_together_is_refused_naming_its_line(
    tmp_path: pathlib.Path, collections: str, words: str
) -> None:
    text = with_collections(collections)
    path, message = load_error(tmp_path, text)
    first = collections.splitlines()[0].strip()
    assert_names_line(
        message, path, line_of(text, first, occurrence=-1)
    )  # the collection's, after the entities
    assert words in message


def test_collections_need_entities(tmp_path: pathlib.Path) -> None:
    text = APP_TABLE + "    collections:\n      - name: c\n        entities: [a, b]\n"
    _, message = load_error(tmp_path, text)
    assert "declare entities" in message


def test_a_collection_query_reads_the_shared_partition_for_its_entities_only(tmp_path: pathlib.Path) -> None:
    model = model_of_file(tmp_path, with_collections("- name: account\n  entities: [user, order]\n"))
    params: dict[str, Any] = {"TableName": "app"}
    Entities({"app": model}).collection_query("app", "account", {"user_id": {"S": "42"}}, params)
    assert params["KeyConditionExpression"] == "#dgw_pk = :dgw_pk"
    assert params["FilterExpression"] == "#dgw_entity IN (:dgw_entity, :dgw_entity2)"
    assert params["ExpressionAttributeValues"] == {
        ":dgw_pk": {"S": "USER#42"},
        ":dgw_entity": {"S": "user"},
        ":dgw_entity2": {"S": "order"},
    }
    description = table_pb2.TableDescription()
    (spec,) = load_tables_file(
        write(tmp_path, with_collections("- name: account\n  entities: [user, order]\n"))
    )
    fill_declarations(description, spec)
    (shown,) = description.declarations.collections
    assert (shown.name, list(shown.entities), shown.index_name) == ("account", ["user", "order"], "")


def test_a_table_made_elsewhere_declares_its_keys_to_have_entities(tmp_path: pathlib.Path) -> None:
    made_elsewhere = APP_TABLE.replace("  - name: app\n", "  - name: app\n    create: false\n")
    text = with_entities(
        made_elsewhere, '- name: user\n  attributes: {user_id: S}\n  keys: {pk: "USER#{user_id}", sk: "P"}\n'
    )
    (spec,) = load_tables_file(write(tmp_path, text))
    assert spec.create is False and spec.partition_key == "pk"
    assert spec.model is not None and set(spec.model.entities) == {"user"}
    bare = "tables:\n  - name: app\n    create: false\n    entities:\n      - name: user\n"
    _, message = load_error(tmp_path, bare)
    assert "entities need the table's keys and indexes" in message


def test_a_range_of_sort_parts_is_between_two_prefixes(events: Entities) -> None:
    params: dict[str, Any] = {"TableName": "app"}
    events.query(
        "app", "event", "", {"user_id": {"S": "42"}, "day": {"S": "01"}}, params, {"day": {"S": "05"}}
    )
    assert params["KeyConditionExpression"] == "#dgw_pk = :dgw_pk AND #dgw_sk BETWEEN :dgw_sk AND :dgw_sk2"
    assert params["ExpressionAttributeValues"][":dgw_sk"] == {"S": "EVENT#01#"}
    assert params["ExpressionAttributeValues"][":dgw_sk2"] == {"S": "EVENT#05#\U0010ffff"}
    with pytest.raises(InvalidRequestError) as raised:
        events.query(
            "app", "event", "", {"user_id": {"S": "42"}}, {"TableName": "app"}, {"event_id": {"S": "e"}}
        )
    assert raised.value.field == "entity_key_to.event_id"
