"""Tables file: parsing, the CreateTable parameters it yields, and idempotent creation."""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from typing import Any

import pytest

from dynamo_gateway_server.backends import BackendError
from dynamo_gateway_server.tables import (
    IndexSpec,
    TablesFileError,
    TableSpec,
    VersionSpec,
    create_table_params,
    create_tables,
    load_tables_file,
)

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "tables.yaml"

APP_SPEC = TableSpec(
    name="app",
    attributes={"pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S", "created_at": "N"},
    partition_key="pk",
    sort_key="sk",
    global_indexes=(IndexSpec("gsi1", "gsi1pk", "gsi1sk", "ALL", ()),),
    local_indexes=(IndexSpec("lsi1", "pk", "created_at", "KEYS_ONLY", ()),),
    ttl_attribute="expires_at",
    stream_view_type="NEW_AND_OLD_IMAGES",
    version=VersionSpec("version"),
)

APP_PARAMS = {
    "TableName": "app",
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
        {"AttributeName": "gsi1pk", "AttributeType": "S"},
        {"AttributeName": "gsi1sk", "AttributeType": "S"},
        {"AttributeName": "created_at", "AttributeType": "N"},
    ],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "BillingMode": "PAY_PER_REQUEST",
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "gsi1",
            "KeySchema": [
                {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    "LocalSecondaryIndexes": [
        {
            "IndexName": "lsi1",
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "created_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ],
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
}


def _load(tmp_path: pathlib.Path, text: str) -> list[TableSpec]:
    path = tmp_path / "tables.yaml"
    path.write_text(text)
    return load_tables_file(path)


def _error(tmp_path: pathlib.Path, text: str) -> str:
    with pytest.raises(TablesFileError) as caught:
        _load(tmp_path, text)
    return str(caught.value)


# ---------------------------------------------------------------- the example file


def test_example_file_spec() -> None:
    # The example's entities are tests/unit/test_entities.py's: here, the table itself.
    for path in (EXAMPLE, str(EXAMPLE)):
        (spec,) = load_tables_file(path)
        assert spec.model is not None and set(spec.model.entities) == {"user", "order"}
        assert dataclasses.replace(spec, model=None) == APP_SPEC


def test_example_create_table_params() -> None:
    (spec,) = load_tables_file(EXAMPLE)
    assert create_table_params(spec) == APP_PARAMS


def test_minimal_table(tmp_path: pathlib.Path) -> None:
    (spec,) = _load(tmp_path, "tables:\n  - name: kv\n    attributes: {id: B}\n    key: {partition: id}\n")
    assert spec == TableSpec(name="kv", attributes={"id": "B"}, partition_key="id")
    assert create_table_params(spec) == {
        "TableName": "kv",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "B"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def test_include_projection_and_hash_only_gsi(tmp_path: pathlib.Path) -> None:
    (spec,) = _load(
        tmp_path,
        """
tables:
  - name: t
    attributes: {pk: S, email: S}
    key: {partition: pk}
    global_indexes:
      - name: by_email
        key: {partition: email}
        projection: [name, age]
      - name: keys
        key: {partition: email}
        projection: KEYS_ONLY
""",
    )
    assert spec.global_indexes == (
        IndexSpec("by_email", "email", None, "INCLUDE", ("name", "age")),
        IndexSpec("keys", "email", None, "KEYS_ONLY", ()),
    )
    assert create_table_params(spec)["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "by_email",
            "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["name", "age"]},
        },
        {
            "IndexName": "keys",
            "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        },
    ]


def test_several_tables_in_order(tmp_path: pathlib.Path) -> None:
    specs = _load(
        tmp_path,
        "tables:\n"
        "  - {name: a, attributes: {k: S}, key: {partition: k}}\n"
        "  - {name: b, attributes: {k: N, s: N}, key: {partition: k, sort: s}}\n",
    )
    assert [s.name for s in specs] == ["a", "b"]
    assert specs[1].sort_key == "s"
    assert _load(tmp_path, "tables: []\n") == []


# ---------------------------------------------------------------- malformed files

GOOD_TABLE = "  - name: t\n    attributes: {pk: S}\n    key: {partition: pk}\n"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ["'tables' list"]),
        ("tables: {}\n", ["'tables' list"]),
        ("- name: t\n", ["'tables' list"]),
        ("tables:\n  - attributes: {pk: S}\n    key: {partition: pk}\n", ["tables[0]", "'name' is required"]),
        ("tables:\n  - name: t\n    key: {partition: pk}\n", ["tables[0] (t)", "'attributes' is required"]),
        ("tables:\n  - name: t\n    attributes: {pk: S}\n", ["tables[0] (t)", "'key' is required"]),
        (
            "tables:\n  - name: t\n    attributes: {pk: S}\n    key: {sort: pk}\n",
            ["tables[0] (t): key", "'partition' is required"],
        ),
        (
            "tables:\n"
            + GOOD_TABLE
            + "  - name: u\n    attributes: {pk: STRING}\n    key: {partition: pk}\n",
            ["tables[1] (u)", "S, N or B"],
        ),
        (
            "tables:\n  - name: t\n    attributes: [pk]\n    key: {partition: pk}\n",
            ["tables[0] (t)", "S, N or B"],
        ),
        (
            "tables:\n  - name: t\n    attributes: {pk: S}\n    key: {partition: pk, sort: sk}\n",
            ["tables[0] (t)", "['sk']", "attributes"],
        ),
        (
            "tables:\n  - name: t\n    attributes: {pk: S}\n    key: {partition: id}\n",
            ["['id']"],
        ),
        (
            "tables:\n"
            + GOOD_TABLE
            + "    global_indexes:\n      - name: g\n        key: {partition: gpk, sort: gsk}\n",
            ["tables[0] (t)", "['gpk', 'gsk']"],
        ),
        (
            "tables:\n" + GOOD_TABLE + "    local_indexes:\n      - name: l\n        key: {sort: created}\n",
            ["['created']"],
        ),
        (
            "tables:\n" + GOOD_TABLE + "    global_indexes:\n      - name: g\n        key: {sort: pk}\n",
            ["global_indexes[0]", "key.partition is required"],
        ),
        (
            "tables:\n" + GOOD_TABLE + "    global_indexes:\n      - key: {partition: pk}\n",
            ["global_indexes[0]", "'name' is required"],
        ),
        (
            "tables:\n" + GOOD_TABLE + "    global_indexes:\n      - name: g\n",
            ["global_indexes[0]", "'key' is required"],
        ),
        (
            "tables:\n"
            + GOOD_TABLE
            + "    global_indexes:\n      - {name: g, key: {partition: pk}, projection: SOME}\n",
            ["global_indexes[0]", "projection must be ALL, KEYS_ONLY or a list"],
        ),
        (
            "tables:\n"
            + GOOD_TABLE
            + "    local_indexes:\n      - {name: l, key: {sort: pk}, projection: all}\n",
            ["local_indexes[0]", "projection"],
        ),
        (
            "tables:\n" + GOOD_TABLE + "    stream: NEW\n",
            ["tables[0] (t)", "stream must be one of", "NEW_AND_OLD_IMAGES"],
        ),
        (
            "tables:\n" + GOOD_TABLE + "    stream: true\n",
            ["stream must be one of"],
        ),
    ],
)
def test_malformed_files(tmp_path: pathlib.Path, text: str, fragments: list[str]) -> None:
    message = _error(tmp_path, text)
    assert message.startswith(str(tmp_path / "tables.yaml"))
    for fragment in fragments:
        assert fragment in message


def test_not_yaml(tmp_path: pathlib.Path) -> None:
    message = _error(tmp_path, "tables: [\n  - name: {\n")
    assert str(tmp_path / "tables.yaml") in message


def test_missing_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(TablesFileError) as caught:
        load_tables_file(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(caught.value)


@pytest.mark.parametrize(
    "extra",
    [
        "    global_indexes:\n",
        "    local_indexes: null\n",
        "    stream: [NEW_IMAGE]\n",
        "    global_indexes:\n      - {name: g, key: {partition: pk}, projection: {type: ALL}}\n",
    ],
    ids=["null-gsis", "null-lsis", "list-stream", "mapping-projection"],
)
def test_structurally_wrong_values_raise_tables_file_error(tmp_path: pathlib.Path, extra: str) -> None:
    _error(tmp_path, "tables:\n" + GOOD_TABLE + extra)


def test_unhashable_attribute_type_raises_tables_file_error(tmp_path: pathlib.Path) -> None:
    _error(tmp_path, "tables:\n  - name: t\n    attributes: {pk: [S]}\n    key: {partition: pk}\n")


# ---------------------------------------------------------------- versions and declaration-only entries


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("", None),
        (
            "    version: v\n",
            VersionSpec("v", start=1, increment=1, required=False, log_attribute="_version_log"),
        ),
        (
            "    version: {attribute: rev, start: 0, increment: 10, required: true, log_attribute: rev_log}\n",
            VersionSpec("rev", start=0, increment=10, required=True, log_attribute="rev_log"),
        ),
        ("    version: {attribute: rev, start: -5}\n", VersionSpec("rev", start=-5)),
    ],
    ids=["none", "short-form", "full", "negative-start"],
)
def test_version(tmp_path: pathlib.Path, declared: str, expected: VersionSpec | None) -> None:
    (spec,) = _load(tmp_path, "tables:\n" + GOOD_TABLE + declared)
    assert spec.version == expected


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        ("{attribute: v, step: 2, every: 1}", "version has unknown settings ['every', 'step']"),
        ("{start: 1}", "version needs an 'attribute'"),
        ("{attribute: 5}", "version needs an 'attribute'"),
        ("[v]", "version needs an 'attribute'"),
        ("{attribute: v, start: '1'}", "version.start must be an integer"),
        ("{attribute: v, start: 1.5}", "version.start must be an integer"),
        ("{attribute: v, start: true}", "version.start must be an integer"),
        ("{attribute: v, increment: 0}", "version.increment must be a positive integer"),
        ("{attribute: v, increment: -1}", "version.increment must be a positive integer"),
        ("{attribute: v, increment: true}", "version.increment must be a positive integer"),
        ("{attribute: v, required: 'yes'}", "version.required must be true or false"),
        ("{attribute: v, log_attribute: v}", "version.log_attribute must name another attribute"),
        ("{attribute: v, log_attribute: ''}", "version.log_attribute must name another attribute"),
        ("{attribute: v, log_attribute: 3}", "version.log_attribute must name another attribute"),
    ],
)
def test_malformed_version(tmp_path: pathlib.Path, version: str, fragment: str) -> None:
    # The second entry, and a declaration-only one: the message still names which.
    text = f"tables:\n{GOOD_TABLE}  - name: ext\n    create: false\n    version: {version}\n"
    message = _error(tmp_path, text)
    assert f"tables[1] (ext): {fragment}" in message


@pytest.mark.parametrize(
    ("entry", "refused_for"),
    [
        pytest.param(
            "ttl_attribute: [expires_at]",
            "ttl_attribute",
        ),
        pytest.param(
            "version: ''",
            "version",
        ),
        pytest.param(
            "version: pk",
            "version",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused(tmp_path: pathlib.Path, entry: str, refused_for: str) -> None:
    assert refused_for in _error(tmp_path, "tables:\n" + GOOD_TABLE + f"    {entry}\n")


def test_a_declaration_only_entry_needs_no_keys(tmp_path: pathlib.Path) -> None:
    specs = _load(
        tmp_path,
        "tables:\n"
        "  - {name: ext, create: false, version: v, ttl_attribute: expires_at}\n"
        "  - {name: bare, create: false}\n"
        "  - {name: t, create: true, attributes: {pk: S}, key: {partition: pk}}\n",
    )
    assert specs == [
        TableSpec("ext", {}, "", ttl_attribute="expires_at", version=VersionSpec("v"), create=False),
        TableSpec("bare", {}, "", create=False),
        TableSpec("t", {"pk": "S"}, "pk"),  # create: true is the default
    ]


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("{name: ext, create: 'no'}", "create must be true or false"),
        ("{name: ext, create: 0}", "create must be true or false"),
        ("{name: ext, create: false, ttl_attribute: [a]}", "ttl_attribute must be an attribute name"),
        ("{name: ext, create: false, version: {start: 2}}", "version needs an 'attribute'"),
    ],
)
def test_malformed_declaration_only_entry(tmp_path: pathlib.Path, entry: str, fragment: str) -> None:
    assert f"tables[0] (ext): {fragment}" in _error(tmp_path, f"tables:\n  - {entry}\n")


# ---------------------------------------------------------------- create_tables


class FakeBackend:
    def __init__(self, fail: dict[str, BackendError] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail or {}

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, params))
        error = self.fail.get(params.get("TableName", ""))
        if error is not None and operation == "CreateTable":
            raise error
        return {}

    async def close(self) -> None:  # pragma: no cover - not used
        pass


PLAIN = TableSpec(name="plain", attributes={"id": "S"}, partition_key="id")


async def test_create_tables_creates_and_sets_ttl() -> None:
    backend = FakeBackend()
    await create_tables(backend, [APP_SPEC, PLAIN])
    assert backend.calls == [
        ("CreateTable", APP_PARAMS),
        (
            "UpdateTimeToLive",
            {
                "TableName": "app",
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "expires_at"},
            },
        ),
        ("CreateTable", create_table_params(PLAIN)),
    ]


async def test_existing_table_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    backend = FakeBackend({"app": BackendError(code="ResourceInUseException", message="exists")})
    with caplog.at_level(logging.INFO, logger="dynamo_gateway_server.tables"):
        await create_tables(backend, [APP_SPEC, PLAIN])
    # No UpdateTimeToLive for the table that was already there, and the next table is still created.
    assert [(op, params["TableName"]) for op, params in backend.calls] == [
        ("CreateTable", "app"),
        ("CreateTable", "plain"),
    ]
    assert any("app" in r.getMessage() and "already exists" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "code",
    ["ValidationException", "LimitExceededException", "AccessDeniedException", "ResourceNotFoundException"],
)
async def test_other_backend_errors_propagate(code: str) -> None:
    error = BackendError(code=code, message="no")
    backend = FakeBackend({"app": error})
    with pytest.raises(BackendError) as caught:
        await create_tables(backend, [APP_SPEC, PLAIN])
    assert caught.value is error
    assert [op for op, _ in backend.calls] == ["CreateTable"]


async def test_nothing_to_create() -> None:
    backend = FakeBackend()
    await create_tables(backend, [])
    assert backend.calls == []


async def test_declaration_only_tables_are_not_created() -> None:
    backend = FakeBackend()
    made_elsewhere = TableSpec(
        "ext", {}, "", ttl_attribute="expires_at", version=VersionSpec("v"), create=False
    )
    created = await create_tables(backend, [made_elsewhere, PLAIN])
    # Not created, and its TTL is not switched on either: the table is someone else's.
    assert backend.calls == [("CreateTable", create_table_params(PLAIN))]
    assert created == [PLAIN]
