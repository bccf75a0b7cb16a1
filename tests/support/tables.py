"""Table shapes shared by the suites."""

from __future__ import annotations

from dynamo_gateway_server.tables import IndexSpec, TableSpec

# The single-table design of examples/tables.yaml (name left to each user of it).
APP_TABLE = TableSpec(
    name="",
    attributes={"pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S", "created_at": "N"},
    partition_key="pk",
    sort_key="sk",
    global_indexes=(IndexSpec("gsi1", "gsi1pk", "gsi1sk", "ALL"),),
    local_indexes=(IndexSpec("lsi1", "pk", "created_at", "ALL"),),
)
