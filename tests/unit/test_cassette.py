"""Cassettes: the JSON Lines format, CassetteWriter (append, rotation, values keep/hash/drop), load.

Every file lives under tmp_path; what a test checks is read back from the file itself.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from dynamo_gateway_server.backends.cassette import CassetteError, CassetteWriter, load, values_policy

SECRET = "customer-4711@example.com"
OTHER_SECRET = "customer-0815@example.com"


def writer(path: Path, values: str = "keep", **options: Any) -> CassetteWriter:
    settings: dict[str, Any] = {"salt": "pepper", "max_bytes": 1 << 20, "keep_files": 2, **options}
    return CassetteWriter(str(path), values=values, **settings)


def get_call(key: str = "a", **extra: Any) -> dict[str, Any]:
    """A GetItem as the recorder hands it to the writer."""
    return {
        "at": 1764590400.25,
        "region": "us-east-1",
        "operation": "GetItem",
        "request": {"TableName": "orders", "Key": {"pk": {"S": key}}},
        "made_here": [],
        "answer": {"Item": {"pk": {"S": key}, "total": {"N": "12.5"}}},
        "latency_ms": 1.5,
        **extra,
    }


def lines(path: Path) -> list[Any]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def write_lines(path: Path, *raw: bytes) -> Path:
    path.write_bytes(b"".join(raw))
    return path


HEADER = b'{"dynamo_gateway_cassette": 1, "values": "keep", "started_at": "2026-12-01T12:00:00Z"}\n'
GOOD_LINE = orjson.dumps(get_call()) + b"\n"


# ---------------------------------------------------------------- writing and reading back


def test_a_new_cassette_starts_with_its_header(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    writer(path).close()

    (header,) = lines(path)
    assert header["dynamo_gateway_cassette"] == 1
    assert header["values"] == "keep"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", header["started_at"])


def test_the_writer_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "down" / "calls.jsonl"
    writer(path).close()
    assert path.is_file()


def test_calls_load_back_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    cassette = writer(path)
    cassette.write(get_call("a", made_here=["token-1"]))
    failed = get_call("b", error={"kind": "unavailable", "reason": "R", "message": "M", "ambiguous": True})
    del failed["answer"]
    cassette.write(failed)
    cassette.close()

    first, second = load(str(path))
    assert (first.line, second.line) == (2, 3)  # line 1 is the header
    assert first.operation == "GetItem"
    assert first.at == 1764590400.25
    assert first.request == {"TableName": "orders", "Key": {"pk": {"S": "a"}}}
    assert first.made_here == ("token-1",)
    assert first.failed is False
    assert orjson.loads(first.outcome) == {"Item": {"pk": {"S": "a"}, "total": {"N": "12.5"}}}
    assert first.latency_ms == 1.5
    assert second.failed is True
    assert orjson.loads(second.outcome)["kind"] == "unavailable"
    # The writer numbers the calls.
    assert [line["seq"] for line in lines(path)[1:]] == [1, 2]


def test_binary_values_are_written_in_base64(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    cassette = writer(path)
    cassette.write(get_call(answer={"Item": {"blob": {"B": b"\x00\xff"}, "set": {"BS": [b"x"]}}}))
    cassette.close()

    assert lines(path)[1]["answer"] == {"Item": {"blob": {"B": "AP8="}, "set": {"BS": ["eA=="]}}}


def test_times_in_an_answer_are_written_in_epoch_seconds(tmp_path: Path) -> None:
    # The SDK gives datetimes where DynamoDB's JSON has epoch seconds (DescribeTable and others).
    created = datetime.datetime(2025, 12, 1, 12, 0, 0, 500000, tzinfo=datetime.UTC)
    path = tmp_path / "calls.jsonl"
    cassette = writer(path)
    cassette.write(get_call(answer={"Table": {"TableName": "orders", "CreationDateTime": created}}))
    cassette.close()

    written = lines(path)[1]["answer"]["Table"]["CreationDateTime"]
    assert written == created.timestamp() == 1764590400.5


def test_blank_lines_are_skipped_and_line_numbers_still_count_them(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "calls.jsonl", HEADER, b"\n", GOOD_LINE, b"   \n", GOOD_LINE)
    assert [recording.line for recording in load(str(path))] == [3, 5]


def test_appending_to_a_cassette_keeps_its_calls_and_one_header(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    first = writer(path)
    first.write(get_call("a"))
    first.close()
    second = writer(path)
    second.write(get_call("b"))
    second.close()

    written = lines(path)
    assert sum("dynamo_gateway_cassette" in line for line in written) == 1
    assert [r.request["Key"]["pk"]["S"] for r in load(str(path))] == ["a", "b"]


def test_an_empty_existing_file_gets_a_header(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.touch()
    cassette = writer(path)
    cassette.write(get_call())
    cassette.close()
    assert len(load(str(path))) == 1


@pytest.mark.parametrize(("recorded", "appending"), [("keep", "hash"), ("hash", "drop"), ("drop", "keep")])
def test_appending_with_other_values_is_refused(tmp_path: Path, recorded: str, appending: str) -> None:
    path = tmp_path / "calls.jsonl"
    writer(path, recorded).close()

    with pytest.raises(CassetteError) as refused:
        writer(path, appending)
    assert str(path) in str(refused.value)
    assert f"holds values {recorded!r}, not {appending!r}" in str(refused.value)


def test_appending_to_a_file_that_is_not_a_cassette_is_refused(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "notes.txt", b"dear diary\n")
    with pytest.raises(CassetteError, match="is not a cassette"):
        writer(path)
    assert path.read_bytes() == b"dear diary\n"  # left as it was


# ---------------------------------------------------------------- values: keep, hash, drop


def test_hash_keeps_equal_values_equal_and_hides_them(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    cassette = writer(path, "hash")
    cassette.write(get_call(SECRET))
    cassette.write(get_call(SECRET))
    cassette.write(get_call(OTHER_SECRET))
    cassette.close()

    text = path.read_text()
    assert SECRET not in text and OTHER_SECRET not in text
    keys = [line["request"]["Key"]["pk"]["S"] for line in lines(path)[1:]]
    assert all(key.startswith("hmac:") for key in keys)
    assert keys[0] == keys[1] != keys[2]
    # The answer's copy of the key hashes the same: a hot key shows across requests and answers.
    assert lines(path)[1]["answer"]["Item"]["pk"]["S"] == keys[0]
    # What is not a value stays readable.
    assert lines(path)[1]["request"]["TableName"] == "orders"
    assert lines(path)[1]["operation"] == "GetItem"


def test_hash_depends_on_the_salt_and_the_type() -> None:
    with_pepper = values_policy("hash", "pepper")
    with_salt = values_policy("hash", "salt")
    string, number = {"S": "5"}, {"N": "5"}
    assert with_pepper(string) != with_salt(string)
    assert with_pepper(string)["S"] != with_pepper(number)["N"]


def test_hash_reaches_sets_maps_lists_and_binary_but_leaves_bool_and_null() -> None:
    hashed = values_policy("hash", "pepper")(
        {
            "Item": {
                "tags": {"SS": ["x", "y"]},
                "nested": {"M": {"inner": {"L": [{"S": "deep"}, {"B": b"\x01"}]}}},
                "flag": {"BOOL": True},
                "nothing": {"NULL": True},
                # An attribute named like a type is an attribute, not a value.
                "S": {"S": "named S"},
            }
        }
    )
    item = hashed["Item"]
    assert all(member.startswith("hmac:") for member in item["tags"]["SS"])
    deep, blob = item["nested"]["M"]["inner"]["L"]
    assert deep["S"].startswith("hmac:") and blob["B"].startswith("hmac:")
    assert item["flag"] == {"BOOL": True}
    assert item["nothing"] == {"NULL": True}
    assert item["S"]["S"].startswith("hmac:")


def test_hash_covers_the_item_and_reasons_of_an_error(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    cassette = writer(path, "hash")
    failed = get_call(
        error={
            "kind": "dynamodb",
            "code": "TransactionCanceledException",
            "message": "Transaction cancelled",
            "http_status": 400,
            "request_id": "R1",
            "item": {"pk": {"S": SECRET}},
            "cancellation_reasons": [{"Code": "ConditionalCheckFailed", "Item": {"pk": {"S": SECRET}}}],
        }
    )
    del failed["answer"]
    cassette.write(failed)
    cassette.close()

    assert SECRET not in path.read_text()
    error = lines(path)[1]["error"]
    assert error["item"]["pk"]["S"].startswith("hmac:")
    assert error["cancellation_reasons"][0]["Code"] == "ConditionalCheckFailed"
    assert error["code"] == "TransactionCanceledException"


def test_keep_writes_the_items_of_an_error_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    cassette = writer(path)
    failed = get_call(error={"kind": "dynamodb", "code": "C", "message": "M", "item": {"pk": {"S": SECRET}}})
    del failed["answer"]
    cassette.write(failed)
    cassette.close()
    assert lines(path)[1]["error"]["item"] == {"pk": {"S": SECRET}}


def test_drop_writes_no_values_but_keeps_the_shape(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    cassette = writer(path, "drop")
    cassette.write(get_call(SECRET))
    cassette.close()

    assert SECRET not in path.read_text()
    call = lines(path)[1]
    assert call["request"] == {"TableName": "orders", "Key": {"pk": {"S": ""}}}
    assert call["answer"] == {"Item": {"pk": {"S": ""}, "total": {"N": ""}}}


@pytest.mark.parametrize("values", ["hash", "drop"])
def test_a_cassette_without_its_values_cannot_be_loaded(tmp_path: Path, values: str) -> None:
    path = tmp_path / "calls.jsonl"
    cassette = writer(path, values)
    cassette.write(get_call())
    cassette.close()

    with pytest.raises(CassetteError) as refused:
        load(str(path))
    assert str(path) in str(refused.value)
    assert f"recorded with values {values!r}" in str(refused.value)


# ---------------------------------------------------------------- rotation


def test_rotation_keeps_the_newest_files_and_deletes_older_ones(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    # Every call is past max_bytes: each one after the first rotates the cassette.
    cassette = writer(path, max_bytes=1, keep_files=2)
    for key in ("first", "second", "third", "fourth"):
        cassette.write(get_call(key))
    cassette.close()

    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["calls.jsonl", "calls.jsonl.1", "calls.jsonl.2"]
    held = {}
    for name in files:
        rotated = tmp_path / name
        assert "dynamo_gateway_cassette" in lines(rotated)[0]  # each file starts with a header
        held[name] = [r.request["Key"]["pk"]["S"] for r in load(str(rotated))]
    # "first" was in the oldest file, past keep_files.
    assert held == {"calls.jsonl": ["fourth"], "calls.jsonl.1": ["third"], "calls.jsonl.2": ["second"]}


def test_rotation_with_no_files_kept_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    cassette = writer(path, max_bytes=1, keep_files=0)
    for key in ("first", "second"):
        cassette.write(get_call(key))
    cassette.close()

    assert [p.name for p in tmp_path.iterdir()] == ["calls.jsonl"]
    assert [r.request["Key"]["pk"]["S"] for r in load(str(path))] == ["second"]


def test_no_rotation_below_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    cassette = writer(path, max_bytes=1 << 20, keep_files=2)
    for key in ("first", "second", "third"):
        cassette.write(get_call(key))
    cassette.close()

    assert [p.name for p in tmp_path.iterdir()] == ["calls.jsonl"]
    assert len(load(str(path))) == 3


def test_rotation_happens_only_when_the_next_call_would_pass_max_bytes(tmp_path: Path) -> None:
    measured = tmp_path / "measure" / "calls.jsonl"
    cassette = writer(measured)
    cassette.write(get_call("k1"))
    cassette.write(get_call("k2"))
    cassette.close()

    # Room for exactly the header and two calls (keys of one length, so lines of one length).
    path = tmp_path / "calls.jsonl"
    cassette = writer(path, max_bytes=measured.stat().st_size, keep_files=2)
    cassette.write(get_call("k1"))
    cassette.write(get_call("k2"))
    assert not (tmp_path / "calls.jsonl.1").exists()
    cassette.write(get_call("k3"))
    cassette.close()
    assert [r.request["Key"]["pk"]["S"] for r in load(str(tmp_path / "calls.jsonl.1"))] == ["k1", "k2"]
    assert [r.request["Key"]["pk"]["S"] for r in load(str(path))] == ["k3"]


# ---------------------------------------------------------------- files load refuses


def test_a_missing_cassette_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.jsonl"
    with pytest.raises(CassetteError) as refused:
        load(str(path))
    assert f"cassette {path} does not exist" in str(refused.value)


@pytest.mark.parametrize(
    "first_line",
    [
        b"",
        b"plain text\n",
        b'{"seq": 1, "operation": "GetItem"}\n',
        b'{"dynamo_gateway_cassette": 2}\n',
        b"[]\n",
    ],
    ids=["empty", "text", "a call", "another format", "not an object"],
)
def test_a_file_without_the_header_is_not_a_cassette(tmp_path: Path, first_line: bytes) -> None:
    path = write_lines(tmp_path / "calls.jsonl", first_line)
    with pytest.raises(CassetteError) as refused:
        load(str(path))
    assert f"{path} is not a cassette: line 1" in str(refused.value)


def test_a_corrupt_line_is_named_with_its_number(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "calls.jsonl", HEADER, GOOD_LINE, b'{"seq": 2, oops}\n', GOOD_LINE)
    with pytest.raises(CassetteError) as refused:
        load(str(path))
    message = str(refused.value)
    assert f"cassette {path} line 3 is not JSON" in message
    assert "cut short" not in message  # the line ends: something else broke it


def test_a_last_line_cut_short_says_so(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "calls.jsonl", HEADER, GOOD_LINE, GOOD_LINE[:40])
    with pytest.raises(CassetteError) as refused:
        load(str(path))
    message = str(refused.value)
    assert f"cassette {path} line 3 is not JSON" in message
    assert "cut short" in message


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ({"at": 1.0, "request": {}, "answer": {}}, "it lacks operation"),
        ({"operation": "GetItem", "answer": {}}, "it lacks request, at"),
        ({"at": 1.0, "operation": "GetItem", "request": {}}, "it needs an answer or an error"),
        (
            {"at": 1.0, "operation": "GetItem", "request": {}, "answer": {}, "error": {"kind": "cut"}},
            "it needs an answer or an error",
        ),
        ([1, 2], "it is not an object"),
        ("GetItem", "it is not an object"),
    ],
    ids=["no operation", "no request nor at", "no outcome", "two outcomes", "a list", "a string"],
)
def test_a_line_that_is_not_a_call_is_named_with_its_number(tmp_path: Path, line: Any, why: str) -> None:
    path = write_lines(tmp_path / "calls.jsonl", HEADER, GOOD_LINE, orjson.dumps(line) + b"\n")
    with pytest.raises(CassetteError) as refused:
        load(str(path))
    assert str(refused.value) == f"cassette {path} line 3 is not a recorded call: {why}"


@pytest.mark.parametrize(
    "broken",
    [{"at": "noon"}, {"request": "GetItem orders a"}, {"latency_ms": "fast"}],
    ids=["at is not a number", "request is not an object", "latency is not a number"],
)
def test_a_call_with_a_field_of_the_wrong_type_is_named_with_its_number(
    tmp_path: Path, broken: dict[str, Any]
) -> None:
    # CassetteError's promise: the message names the file and the line, whatever is wrong in it.
    path = write_lines(tmp_path / "calls.jsonl", HEADER, orjson.dumps({**get_call(), **broken}) + b"\n")
    with pytest.raises(CassetteError) as refused:
        load(str(path))
    assert f"cassette {path} line 2" in str(refused.value)
