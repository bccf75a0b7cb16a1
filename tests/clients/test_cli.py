"""`dgw`, the installed console script, against a running gateway: commands, formats, exit codes."""

from __future__ import annotations

import base64
import json
import pathlib
import subprocess
import sys

import pytest

from dynamo_gateway import cli
from dynamo_gateway_server.backends.memory import free_loopback_port
from tests.compat import servers

DGW = pathlib.Path(sys.executable).parent / "dgw"


def dgw(target: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DGW), "--target", target, *args], input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def target(running_gateway: servers.GatewayProcess) -> str:
    return running_gateway.target


def test_put_get_update_delete_in_plain_json(target: str) -> None:
    item = (
        '{"pk": "cli#1", "sk": "a", "n": 12.50, "big": 12345678901234567890123456789012345678, "tags": ["x"]}'
    )
    assert dgw(target, "put", "app", item).returncode == 0
    got = dgw(target, "get", "app", '{"pk": "cli#1", "sk": "a"}', "--consistent")
    assert got.returncode == 0, got.stderr
    # Numbers keep their digits (no float on the way), lists stay lists; attributes come sorted.
    assert got.stdout == (
        '{"big": 12345678901234567890123456789012345678, "n": 12.50, "pk": "cli#1", "sk": "a", "tags": ["x"]}\n'
    )
    updated = dgw(
        target,
        "update",
        "app",
        '{"pk": "cli#1", "sk": "a"}',
        "--update",
        "SET #n = #n + :one",
        "--names",
        '{"#n": "n"}',
        "--values",
        '{":one": 1}',
        "--return",
        "UPDATED_NEW",
    )
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout) == {"n": 13.5}
    deleted = dgw(target, "delete", "app", '{"pk": "cli#1", "sk": "a"}', "--return-old")
    assert deleted.returncode == 0 and json.loads(deleted.stdout)["sk"] == "a"
    missing = dgw(target, "get", "app", '{"pk": "cli#1", "sk": "a"}')
    assert (missing.returncode, missing.stdout) == (cli.EXIT_NOT_FOUND, "")
    assert missing.stderr == "dgw: no item has this key\n"


def test_dynamodb_json_is_lossless_in_and_out(target: str) -> None:
    blob = base64.b64encode(b"\x00\xff").decode()
    item = {
        "pk": {"S": "cli#2"},
        "sk": {"S": "b"},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": [blob]},
        "m": {"M": {"b": {"B": blob}}},
    }
    assert dgw(target, "--dynamodb-json", "put", "app", "-", stdin=json.dumps(item)).returncode == 0
    got = dgw(target, "--dynamodb-json", "get", "app", '{"pk": {"S": "cli#2"}, "sk": {"S": "b"}}')
    assert got.returncode == 0, got.stderr
    back = json.loads(got.stdout)
    assert sorted(back.pop("ns")["NS"]) == ["1", "2.5"]
    assert back == {k: v for k, v in item.items() if k != "ns"}
    plain = dgw(target, "get", "app", '{"pk": "cli#2", "sk": "b"}')
    assert json.loads(plain.stdout)["bs"] == [blob]  # plain JSON: sets as lists, binary as base64


def test_query_and_scan_print_json_lines(target: str) -> None:
    for i in range(12):
        assert (
            dgw(target, "put", "app", json.dumps({"pk": "cli#q", "sk": f"{i:02d}", "i": i})).returncode == 0
        )
    query = dgw(
        target,
        "query",
        "app",
        "--key-condition",
        "pk = :p",
        "--values",
        '{":p": "cli#q"}',
        "--page-size",
        "5",
        "--backward",
    )
    assert query.returncode == 0, query.stderr
    assert [json.loads(line)["i"] for line in query.stdout.splitlines()] == list(range(11, -1, -1))
    limited = dgw(
        target, "query", "app", "--key-condition", "pk = :p", "--values", '{":p": "cli#q"}', "--limit", "3"
    )
    assert len(limited.stdout.splitlines()) == 3
    scan = dgw(target, "scan", "app", "--segments", "3", "--filter", "pk = :p", "--values", '{":p": "cli#q"}')
    assert sorted(json.loads(line)["i"] for line in scan.stdout.splitlines()) == list(range(12))
    described = dgw(target, "describe", "app")
    assert json.loads(described.stdout)["table_name"] == "app"


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        (
            ["put", "app", '{"pk": "cli#1", "sk": "a"}', "--condition", "attribute_exists(nope)"],
            cli.EXIT_CONDITION,
            "dgw: ConditionalCheck.ConditionFailed: ",
        ),
        (["get", "no such table!", '{"pk": "x"}'], cli.EXIT_INVALID, "dgw: Configuration.InvalidTable: "),
        (["get", "missing-table", '{"pk": "x"}'], cli.EXIT_NOT_FOUND, "dgw: Service.ResourceNotFound: "),
        (["get", "app", '{"pk": "x"}'], cli.EXIT_INVALID, "dgw: Validation."),
        (["get", "app", "{not json"], cli.EXIT_USAGE, "dgw: key: not JSON"),
        (["put", "app", '{"pk": "x", "f": 1.5e400}', "--values", "[]"], cli.EXIT_USAGE, "dgw: "),
        (["get", "app", "@/no/such/file"], cli.EXIT_USAGE, "dgw: cannot read /no/such/file"),
        (["frobnicate"], cli.EXIT_USAGE, "usage: dgw"),
    ],
)
def test_exit_codes_and_one_line_errors(target: str, args: list[str], code: int, stderr: str) -> None:
    result = dgw(target, *args)
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith(stderr) or stderr in result.stderr, result.stderr
    assert result.stdout == ""


def test_unreachable_gateway_says_retry_later() -> None:
    # A port that must be dead (nothing listens), not a server's: so no port 0 here.
    result = dgw(
        f"127.0.0.1:{free_loopback_port()}", "--timeout", "3", "get", "app", '{"pk": "x", "sk": "y"}'
    )
    assert result.returncode == cli.EXIT_RETRY
    assert result.stderr.startswith("dgw: UNAVAILABLE: ") or result.stderr.startswith(
        "dgw: DEADLINE_EXCEEDED: "
    )


def test_import_reports_lines_it_could_not_write(target: str, tmp_path: pathlib.Path) -> None:
    lines = [json.dumps({"pk": "cli#imp", "sk": f"{i:03d}", "v": i}) for i in range(250)]
    lines[10] = "{broken json"
    lines[20] = json.dumps({"pk": "cli#imp"})  # no sort key: DynamoDB refuses it
    lines[30] = json.dumps({"pk": "cli#imp", "sk": "007", "v": "again"})  # same key as line 8: later wins
    lines.insert(40, "")  # blank lines are skipped
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    rejects = tmp_path / "rejects.jsonl"
    result = dgw(
        target,
        "import",
        "app",
        "-i",
        str(source),
        "--rejects",
        str(rejects),
        "--batch-size",
        "25",
        "--progress",
    )
    assert result.returncode == cli.EXIT_PARTIAL, result.stderr
    assert "imported 248 items into app; 2 lines could not be written" in result.stderr
    rejected = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejected] == [(11, "InvalidJson"), (21, rejected[1]["reason"])]
    assert rejected[1]["reason"].startswith("Validation.")
    assert "items/s" in result.stderr and "MB" in result.stderr  # the progress bar was drawn
    count = dgw(target, "query", "app", "--key-condition", "pk = :p", "--values", '{":p": "cli#imp"}')
    assert len(count.stdout.splitlines()) == 247  # 248 written, two of them to one key
    again = dgw(target, "get", "app", '{"pk": "cli#imp", "sk": "007"}')
    assert json.loads(again.stdout)["v"] == "again"
