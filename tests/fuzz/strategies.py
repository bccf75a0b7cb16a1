"""Hypothesis strategies for every DynamoDBService request, derived from the proto descriptors.

`requests_for(method)` walks the request message's DESCRIPTOR: every field, oneof, map,
repeated field, enum and nested message, with the recursive ones (AttributeValue's M
and L) bounded by depth. The walk knows nothing of the gateway; what keeps the
requests from being refused at the first check is a vocabulary chosen by field name:
table names mostly of the tables the rig created, attribute names mostly key
attributes, expressions from a small grammar (plus random and mutated text),
placeholder maps that often match the expressions they sit next to, and keys that
often have the key's shape. Proto3 enums are open, so numbers no enum declares are
drawn too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor, message, message_factory
from hypothesis import strategies as st

from dynamo_gateway.v1 import service_pb2, value_pb2
from tests.fuzz.rig import INDEX_NAMES, KEY_ATTRIBUTES, OTHER_ATTRIBUTES, TABLE_NAMES

F = descriptor.FieldDescriptor
SERVICE = service_pb2.DESCRIPTOR.services_by_name["DynamoDBService"]
METHODS = {method.name: method for method in SERVICE.methods}

# AttributeValue inside M/L inside ...: deep enough for every path of the codec; the raw-bytes
# fuzzer nests far deeper.
MAX_DEPTH = 5
# Repeated and map fields: a few entries; now and then a copied one many times, across a limit.
SMALL_SIZE = 3
BULK_SIZES = (25, 26, 100, 101)
# How often an optional field is present: the fields a request is about, nearly always.
ESSENTIAL_FIELDS = frozenset(
    {
        "table_name",
        "key",
        "item",
        "request_items",
        "transact_items",
        "requests",
        "keys",
        "get",
        "update_expression",
        "key_condition_expression",
    }
)

NAME_PLACEHOLDERS = ("#a", "#b", "#pk", "#sk")
VALUE_PLACEHOLDERS = (":a", ":b", ":v", ":w")
ATTRIBUTES = KEY_ATTRIBUTES + OTHER_ATTRIBUTES

# ---------------------------------------------------------------- scalars

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each drawn in proportion to its weight.

    Not st.one_of: hypothesis steers away from values it has drawn before, so a handful
    of known names listed in one_of soon give way to junk.
    """
    total = sum(weight for weight, _ in choices)

    @st.composite
    def pick(draw: Any) -> Any:
        ticket = draw(st.integers(0, total - 1))
        for weight, strategy in choices:
            if ticket < weight:
                return draw(strategy)
            ticket -= weight
        raise AssertionError("unreachable")

    return pick()


junk_text = weighted(
    (5, texts),
    (3, st.sampled_from(["", " ", "\x00", "ü" * 30, "#", ":", "()", "\u2028"])),
    # Past DynamoDB's 255 (names) and 64 KB (expressions, keys) limits.
    (2, weighted((9, st.just("a" * 256)), (1, st.just("a" * 70_000)))),
)


def _mostly(known: tuple[str, ...], junk: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return weighted((8, st.sampled_from(known)), (2, junk))


table_names = _mostly(
    TABLE_NAMES,
    weighted((1, junk_text), (1, st.sampled_from(["missing-table", "ab", "bad name!", "fuzz-app "]))),
)
index_names = _mostly(("", *INDEX_NAMES), weighted((1, junk_text), (1, st.just("missing-index"))))
attribute_names = _mostly(ATTRIBUTES, junk_text)
name_placeholders = _mostly(NAME_PLACEHOLDERS, weighted((2, junk_text), (1, st.sampled_from(["#", "#x y"]))))
value_placeholders = _mostly(
    VALUE_PLACEHOLDERS, weighted((2, junk_text), (1, st.sampled_from([":", ":x y"])))
)

numbers = weighted(
    (4, st.integers(-(10**6), 10**6).map(str)),
    (2, st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str)),
    (
        2,
        st.sampled_from(
            [
                "0",
                "-0",
                "1e-130",
                "1e126",
                "9.9999999999999999999999999999999999999E+125",
                "1" * 39,
                "1.5e",
                "",
            ]
        ),
    ),
    (
        1,
        st.sampled_from(["NaN", "Infinity", "-Infinity", "0x10", "1_000", " 1", "+1", "\u0661"]),
    ),  # an Arabic-Indic one
    (1, texts),
)
int32s = weighted(
    (3, st.integers(-2, 10)),
    # Not 1,000,000, DynamoDB's most segments: a ParallelScan of that many outlasts any deadline.
    (1, st.sampled_from([100, 1000, 1_000_001, 2**31 - 1, -(2**31)])),
)
int64s = weighted(
    (3, st.integers(-2, 10)),
    # Versions next to int64's end (a versioned write stores expected + 1), timestamps past year 9999.
    (1, st.sampled_from([2**31, 253_402_300_799, 253_402_300_800, 2**63 - 2, 2**63 - 1, -(2**63)])),
)
binaries = st.one_of(st.binary(max_size=12), st.just(b""), st.just(b"\xff" * 1000))

# ---------------------------------------------------------------- expressions

_simple_paths = st.one_of(st.sampled_from(ATTRIBUTES), st.sampled_from(NAME_PLACEHOLDERS))
paths = st.one_of(
    _simple_paths,
    st.builds(lambda a, b: f"{a}.{b}", _simple_paths, _simple_paths),
    st.builds(lambda a, i: f"{a}[{i}]", _simple_paths, st.integers(-1, 3)),
)
operands = st.one_of(paths, st.sampled_from(VALUE_PLACEHOLDERS), paths.map(lambda p: f"size({p})"))
comparators = st.sampled_from(["=", "<>", "<", "<=", ">", ">=", "==", "!="])
_value = st.sampled_from(VALUE_PLACEHOLDERS)
_conditions_base = st.one_of(
    st.builds(lambda a, op, b: f"{a} {op} {b}", operands, comparators, operands),
    st.builds(lambda a, b, c: f"{a} BETWEEN {b} AND {c}", operands, _value, _value),
    st.builds(lambda a, vs: f"{a} IN ({', '.join(vs)})", operands, st.lists(_value, min_size=1, max_size=3)),
    st.builds(
        lambda f, p: f"{f}({p})",
        st.sampled_from(["attribute_exists", "attribute_not_exists", "size"]),
        paths,
    ),
    st.builds(
        lambda f, p, v: f"{f}({p}, {v})",
        st.sampled_from(["begins_with", "contains", "attribute_type"]),
        paths,
        _value,
    ),
)
conditions = st.recursive(
    _conditions_base,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} AND {b}", inner, inner),
        st.builds(lambda a, b: f"{a} OR {b}", inner, inner),
        inner.map(lambda c: f"NOT {c}"),
        inner.map(lambda c: f"({c})"),
    ),
    max_leaves=5,
)
# Nesting far past what DynamoDB allows, where parsers recurse.
deep_conditions = st.builds(
    lambda n, wrap: wrap(n), st.integers(1, 400), st.sampled_from(
        [lambda n: "(" * n + "pk = :v" + ")" * n, lambda n: "NOT " * n + "pk = :v",
         lambda n: " AND ".join(["pk = :v"] * n)]
    )
)  # fmt: skip
key_conditions = st.one_of(
    st.builds(lambda p, v: f"{p} = {v}", st.sampled_from(("pk", "#pk", "gsi1pk")), _value),
    st.builds(
        lambda p, v, sort: f"{p} = {v} AND {sort}",
        st.sampled_from(("pk", "#pk", "gsi1pk")),
        _value,
        st.one_of(
            st.builds(
                lambda s, op, v: f"{s} {op} {v}",
                st.sampled_from(("sk", "#sk", "created_at")),
                comparators,
                _value,
            ),
            st.builds(lambda s: f"begins_with({s}, :w)", st.sampled_from(("sk", "#sk", "gsi1sk"))),
            st.builds(lambda s: f"{s} BETWEEN :a AND :b", st.sampled_from(("sk", "created_at"))),
        ),
    ),
    conditions,
)
projections = st.lists(paths, min_size=1, max_size=4).map(", ".join)
_set_actions = st.one_of(
    st.builds(lambda p, v: f"{p} = {v}", paths, operands),
    st.builds(lambda p, a, op, b: f"{p} = {a} {op} {b}", paths, operands, st.sampled_from("+-"), operands),
    st.builds(lambda p, q, v: f"{p} = if_not_exists({q}, {v})", paths, paths, _value),
    st.builds(lambda p, a, b: f"{p} = list_append({a}, {b})", paths, operands, operands),
)
updates = st.lists(
    st.one_of(
        st.lists(_set_actions, min_size=1, max_size=3).map(lambda a: "SET " + ", ".join(a)),
        st.lists(paths, min_size=1, max_size=3).map(lambda a: "REMOVE " + ", ".join(a)),
        st.builds(lambda k, p, v: f"{k} {p} {v}", st.sampled_from(["ADD", "DELETE"]), paths, _value),
    ),
    min_size=1,
    max_size=3,
).map(" ".join)


@st.composite
def _mutated(draw: Any, strategy: st.SearchStrategy[str]) -> str:
    """A grammatical text with one character inserted, replaced or dropped."""
    text: str = draw(strategy)
    at = draw(st.integers(0, len(text)))
    char: str = draw(st.one_of(st.sampled_from("()#:,.[]=<> \"'\\"), st.characters(codec="utf-8")))
    how = draw(st.sampled_from(["insert", "replace", "drop"]))
    if how == "insert":
        return text[:at] + char + text[at:]
    if how == "replace":
        return text[:at] + char + text[at + 1 :]
    return text[:at] + text[at + 1 :]


def _expressions(grammar: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return weighted((6, grammar), (2, _mutated(grammar)), (1, junk_text), (1, deep_conditions))


# Strings by field name (or full name, where the name alone says too little).
STRING_ROLES: dict[str, st.SearchStrategy[str]] = {
    "table_name": table_names,
    "index_name": index_names,
    "key_condition_expression": _expressions(key_conditions),
    "filter_expression": _expressions(conditions),
    "condition_expression": _expressions(conditions),
    "projection_expression": _expressions(projections),
    "update_expression": _expressions(updates),
    "client_request_token": st.one_of(texts, st.just("t" * 36), st.just("t" * 37)),
    "dynamo_gateway.v1.AttributeValue.n": numbers,
    "dynamo_gateway.v1.NumberSet.values": numbers,
}
# Integers by field name: mostly counts that work, so that the rest of the request is what is tried.
INT_ROLES: dict[str, st.SearchStrategy[int]] = {
    "total_segments": weighted((8, st.integers(1, 8)), (2, int32s)),
    "segment": weighted((8, st.integers(0, 3)), (2, int32s)),
}
# Map keys by the map field's name.
KEY_ROLES: dict[str, st.SearchStrategy[str]] = {
    "expression_attribute_names": name_placeholders,
    "expression_attribute_values": value_placeholders,
    "request_items": table_names,
}
# Attribute maps: often the key's own shape, so that reads and writes reach the table.
KEY_SHAPED = frozenset({"key", "item", "exclusive_start_key", "attributes"})

# ---------------------------------------------------------------- the descriptor walk


def _class_of(message_descriptor: descriptor.Descriptor) -> type[message.Message]:
    return message_factory.GetMessageClass(message_descriptor)


def _message_type(field: descriptor.FieldDescriptor) -> descriptor.Descriptor:
    assert field.message_type is not None, f"{field.full_name} is not a message field"
    return field.message_type


def _is_map(field: descriptor.FieldDescriptor) -> bool:
    return field.type == F.TYPE_MESSAGE and bool(_message_type(field).GetOptions().map_entry)


def _scalar(field: descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == F.TYPE_STRING:
        for role in (field.full_name, field.name):
            if role in STRING_ROLES:
                return STRING_ROLES[role]
        if field.name == "value":
            return attribute_names  # the value of expression_attribute_names
        return texts
    if field.type == F.TYPE_BYTES:
        return binaries
    if field.type == F.TYPE_BOOL:
        return st.booleans()
    if field.type == F.TYPE_ENUM:
        assert field.enum_type is not None
        declared = sorted(field.enum_type.values_by_number)
        return weighted((9, st.sampled_from(declared)), (1, st.integers(-3, 50)))
    if field.type in (F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64):
        return int64s
    if field.type in (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32):
        if field.name in INT_ROLES:
            return INT_ROLES[field.name]
        if field.name == "nanos":
            return st.one_of(st.integers(0, 999_999_999), int32s)
        return int32s
    raise NotImplementedError(f"no strategy for {field.full_name} (type {field.type})")


class _Walk:
    """Strategies for the messages under one vocabulary, each built once per nesting depth."""

    def __init__(self) -> None:
        self._messages: dict[tuple[str, int], st.SearchStrategy[message.Message]] = {}

    def strategy_for(
        self, message_descriptor: descriptor.Descriptor, depth: int = 0
    ) -> st.SearchStrategy[Any]:
        cache_key = (message_descriptor.full_name, depth)
        if cache_key not in self._messages:
            # deferred: a message that contains itself (through M or L) is built while it is built.
            self._messages[cache_key] = st.deferred(lambda: self._build(message_descriptor, depth))
        return self._messages[cache_key]

    def _build(self, message_descriptor: descriptor.Descriptor, depth: int) -> st.SearchStrategy[Any]:
        cls = _class_of(message_descriptor)
        if depth > MAX_DEPTH:
            return st.just(cls())
        plain = [f for f in message_descriptor.fields if f.containing_oneof is None]
        # The oneofs proto3 `optional` makes count as plain fields: present or not.
        oneofs = [o for o in message_descriptor.oneofs if not (len(o.fields) == 1 and o.name.startswith("_"))]
        plain += [o.fields[0] for o in message_descriptor.oneofs if o not in oneofs]
        fill: dict[str, Callable[[Any, message.Message], None]] = {
            f.name: self._filler(f, depth) for f in message_descriptor.fields
        }

        @st.composite
        def build(draw: Any) -> message.Message:
            built = cls()
            for field in plain:
                odds = 9 if field.name in ESSENTIAL_FIELDS else 3
                if draw(st.integers(0, 9)) < odds:
                    fill[field.name](draw, built)
            for oneof in oneofs:
                choice = draw(st.sampled_from([None, *oneof.fields]))
                if choice is not None:
                    fill[choice.name](draw, built)
            if draw(st.booleans()):
                _align_placeholders(draw, built)
            return built

        return build()

    def _filler(
        self, field: descriptor.FieldDescriptor, depth: int
    ) -> Callable[[Any, message.Message], None]:
        """Draws a value for `field` and sets it on a message."""
        name = field.name
        if _is_map(field):
            value_field = _message_type(field).fields_by_name["value"]
            keys = KEY_ROLES[name] if name in KEY_ROLES else attribute_names
            values = (
                self.strategy_for(_message_type(value_field), depth + 1)
                if value_field.type == F.TYPE_MESSAGE
                else _scalar(value_field)
            )
            # A request's own map (request_items) is seldom empty: most requests have more to try.
            fewest = 1 if name in ESSENTIAL_FIELDS else 0
            entries = weighted(
                (9, st.dictionaries(keys, values, min_size=fewest, max_size=SMALL_SIZE)),
                (1, st.dictionaries(keys, values, max_size=SMALL_SIZE)),
            )
            if name in KEY_SHAPED and value_field.message_type is not None:
                entries = weighted(
                    (6, key_shaped_maps(self.strategy_for(_message_type(value_field), depth + 1))),
                    (4, entries),
                )

            def fill_map(draw: Any, target: message.Message) -> None:
                container = getattr(target, name)
                for k, v in draw(entries).items():
                    if value_field.type == F.TYPE_MESSAGE:
                        container[k].CopyFrom(v)
                    else:
                        container[k] = v

            return fill_map
        if field.is_repeated:
            element = (
                self.strategy_for(_message_type(field), depth + 1)
                if field.type == F.TYPE_MESSAGE
                else _scalar(field)
            )
            fewest = 1 if name in ESSENTIAL_FIELDS else 0
            sizes = weighted(
                (17, st.integers(fewest, SMALL_SIZE)),
                (2, st.just(0)),
                (1, st.sampled_from(BULK_SIZES)),
            )

            def fill_repeated(draw: Any, target: message.Message) -> None:
                container = getattr(target, name)
                size = draw(sizes)
                # Past a few entries, copies of one: a request across a limit, drawn cheaply.
                drawn = [draw(element) for _ in range(min(size, SMALL_SIZE))]
                values = drawn + drawn[-1:] * (size - len(drawn))
                if field.type == F.TYPE_MESSAGE:
                    for value in values:
                        container.add().CopyFrom(value)
                else:
                    container.extend(values)

            return fill_repeated
        if field.type == F.TYPE_MESSAGE:
            nested = self.strategy_for(_message_type(field), depth + 1)

            def fill_message(draw: Any, target: message.Message) -> None:
                getattr(target, name).CopyFrom(draw(nested))

            return fill_message
        scalar = _scalar(field)

        def fill_scalar(draw: Any, target: message.Message) -> None:
            setattr(target, name, draw(scalar))

        return fill_scalar


_scalar_values = weighted(
    # A few values over and over: writes and reads meet the same items (and their versions).
    (6, st.sampled_from([{"s": "a"}, {"s": "b"}, {"n": "1"}, {"b": b"k"}])),
    (3, st.builds(lambda s: {"s": s}, texts)),
    (1, st.builds(lambda n: {"n": n}, st.integers(-1000, 1000).map(str))),
    (1, st.builds(lambda b: {"b": b}, st.binary(min_size=1, max_size=8))),
)
# What an unversioned write may store in the version attribute, for a versioned write to meet.
_stored_versions = st.sampled_from(["1", "2", str(2**63 - 2), str(2**63 - 1), "1e100", "-1", "1.5", "0"])


def _attribute_value(**fields: Any) -> value_pb2.AttributeValue:
    return value_pb2.AttributeValue(**fields)


@st.composite
def key_shaped_maps(draw: Any, any_value: st.SearchStrategy[Any]) -> dict[str, Any]:
    """pk (and usually sk) with scalar values, sometimes with more attributes of any kind."""
    shaped = {"pk": _attribute_value(**draw(_scalar_values))}
    if draw(st.integers(0, 9)) < 7:
        shaped["sk"] = _attribute_value(**draw(_scalar_values))
    for extra in draw(st.lists(st.sampled_from(OTHER_ATTRIBUTES), max_size=2, unique=True)):
        if extra == "version" and draw(st.booleans()):
            shaped[extra] = _attribute_value(n=draw(_stored_versions))
        else:
            shaped[extra] = draw(any_value)
    return shaped


_PLACEHOLDER = re.compile(r"[#:][A-Za-z0-9_]+")


def _align_placeholders(draw: Any, built: message.Message) -> None:
    """Makes a message's placeholder maps name exactly the placeholders its expressions use.

    DynamoDB refuses a map with an unused or a missing placeholder before anything else,
    so without this few requests with expressions would get further.
    """
    fields = built.DESCRIPTOR.fields_by_name
    if "expression_attribute_names" not in fields:
        return
    used: set[str] = set()
    for field in built.DESCRIPTOR.fields:
        if field.name.endswith("_expression"):
            used.update(_PLACEHOLDER.findall(getattr(built, field.name)))
    names = built.expression_attribute_names  # type: ignore[attr-defined]
    names.clear()
    for placeholder in sorted(p for p in used if p.startswith("#")):
        names[placeholder] = draw(st.sampled_from(ATTRIBUTES))
    if "expression_attribute_values" in fields:
        values = built.expression_attribute_values  # type: ignore[attr-defined]
        values.clear()
        for placeholder in sorted(p for p in used if p.startswith(":")):
            values[placeholder].CopyFrom(_attribute_value(**draw(_scalar_values)))


_WALK = _Walk()


def requests_for(method: str) -> st.SearchStrategy[Any]:
    """Requests of the method's input type."""
    return _WALK.strategy_for(METHODS[method].input_type)
