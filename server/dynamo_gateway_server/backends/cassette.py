"""Cassettes: DynamoDB calls as JSON Lines, written by the recorder and read by the replayer.

Line 1 is the header, every other line one call, in DynamoDB's JSON protocol (binary values
in base64), so a cassette reads like DynamoDB's own traffic:

    {"dynamo_gateway_cassette": 1, "values": "keep", "started_at": "2026-12-01T12:00:00Z"}
    {"seq": 1, "at": 1764590400.123, "region": "us-east-1", "operation": "PutItem",
     "request": {...}, "made_here": ["3f2a..."], "answer": {...}, "latency_ms": 1.9}

A failed call has "error" instead of "answer": {"kind": "dynamodb", "code", "message",
"http_status", "request_id", "item"?, "cancellation_reasons"?}, {"kind": "unavailable",
"reason", "message", "ambiguous"}, or {"kind": "cut"} when the caller's deadline (or cancel)
ended it first. "made_here" lists the values the gateway made up for the call (made_here.py).

Values: `keep` writes items and keys as they are; `hash` writes each scalar as an HMAC of it
(equal values stay equal, so hot keys still show); `drop` writes none. Only a cassette that
kept its values can be replayed. Must not import gRPC.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .json_protocol import encode_default

FORMAT = 1
HEADER_KEY = "dynamo_gateway_cassette"
_SCALARS: dict[str, type | tuple[type, ...]] = {
    "S": str,
    "N": str,
    "B": (bytes, str),
    "BOOL": bool,
    "NULL": bool,
}
_SETS = ("SS", "NS", "BS")


class CassetteError(ValueError):
    """A cassette that cannot be read or written; the message names the file and the line."""


# ---------------------------------------------------------------- item and key values


def _is_attribute_value(value: Any) -> bool:
    """Whether `value` is one of DynamoDB's typed values ({"S": "x"}, {"M": {...}}, ...), not an
    item or map that happens to have one attribute named like a type."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in _SCALARS:
        return isinstance(inner, _SCALARS[kind])
    if kind in _SETS:
        return isinstance(inner, list)
    if kind == "M":
        return isinstance(inner, dict) and all(isinstance(v, dict) for v in inner.values())
    if kind == "L":
        return isinstance(inner, list) and all(isinstance(v, dict) for v in inner)
    return False


def _rewrite_values(document: Any, scalar: Callable[[str, Any], Any]) -> Any:
    """`document` with every scalar inside its typed values replaced by `scalar(kind, value)`."""
    if _is_attribute_value(document):
        ((kind, inner),) = document.items()
        if kind in ("S", "N", "B"):
            return {kind: scalar(kind, inner)}
        if kind in _SETS:
            return {kind: [scalar(kind[0], member) for member in inner]}
        if kind in ("M", "L"):
            return {kind: _rewrite_values(inner, scalar)}
        return document  # BOOL and NULL say little
    if isinstance(document, dict):
        return {key: _rewrite_values(value, scalar) for key, value in document.items()}
    if isinstance(document, list):
        return [_rewrite_values(value, scalar) for value in document]
    return document


def values_policy(mode: str, salt: str) -> Callable[[Any], Any]:
    """What the recorder does to a request or an answer before writing it (`keep`, `hash`, `drop`)."""
    if mode == "keep":
        return lambda document: document
    if mode == "drop":
        return lambda document: _rewrite_values(document, lambda kind, value: "")
    key = salt.encode()

    def hashed(kind: str, value: Any) -> str:
        data = value if isinstance(value, bytes) else str(value).encode()
        return "hmac:" + hmac.new(key, kind.encode() + b":" + data, hashlib.sha256).hexdigest()[:24]

    return lambda document: _rewrite_values(document, hashed)


# ---------------------------------------------------------------- writing


def _wire_value(value: Any) -> Any:
    # The SDK's answers hold datetimes where DynamoDB's JSON has epoch seconds.
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return encode_default(value)


def dumps(document: Any) -> bytes:
    """One JSON line, as DynamoDB's JSON protocol writes values (bytes in base64, times in epoch seconds)."""
    return orjson.dumps(document, default=_wire_value, option=orjson.OPT_PASSTHROUGH_DATETIME) + b"\n"


class CassetteWriter:
    """Appends calls to a cassette, one line each, rotating it past `max_bytes`.

    Each line is written with one unbuffered append, so a killed gateway leaves every call it
    answered in the file (at most the line being written is cut short).
    """

    def __init__(
        self, path: str, *, values: str = "keep", salt: str = "", max_bytes: int, keep_files: int
    ) -> None:
        self.path = Path(path)
        self.values = values
        self._treat = values_policy(values, salt)
        self._max_bytes = max_bytes
        self._keep_files = keep_files
        self._seq = 0
        self._fd = -1
        self._size = 0
        self._open()

    def _open(self) -> None:
        existing = self.path.exists() and self.path.stat().st_size > 0
        if existing:
            header = read_header(self.path)
            if header.get("values") != self.values:
                raise CassetteError(
                    f"cassette {self.path} holds values {header.get('values')!r}, not {self.values!r}: "
                    "record into another file"
                )
            self._seq = max(self._seq, _calls_in(self.path))  # numbers go on from the last call
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size
        self._holds_calls = existing and self._size > len(read_first_line(self.path))
        if not existing:
            started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._append(dumps({HEADER_KEY: FORMAT, "values": self.values, "started_at": started}))

    def _append(self, line: bytes) -> None:
        os.write(self._fd, line)
        self._size += len(line)

    def _rotate(self) -> None:
        """<cassette> -> <cassette>.1 -> <cassette>.2 ..., the oldest past keep_files deleted."""
        os.close(self._fd)
        name = self.path.name
        self.path.with_name(f"{name}.{self._keep_files}").unlink(missing_ok=True)
        for number in range(self._keep_files - 1, 0, -1):
            older = self.path.with_name(f"{name}.{number}")
            if older.exists():
                older.rename(self.path.with_name(f"{name}.{number + 1}"))
        if self._keep_files:
            self.path.rename(self.path.with_name(f"{name}.1"))
        else:
            self.path.unlink()
        self._open()

    def write(self, call: dict[str, Any]) -> None:
        """Appends one call (a dict as the module's docstring shows, without "seq")."""
        self._seq += 1
        call = {"seq": self._seq, **call}
        for part in ("request", "answer"):
            if part in call:
                call[part] = self._treat(call[part])
        error = call.get("error")
        if error is not None and self.values != "keep":
            for part in ("item", "cancellation_reasons"):
                if part in error:
                    error[part] = self._treat(error[part])
        line = dumps(call)
        if self._size + len(line) > self._max_bytes and self._holds_calls:
            self._rotate()
        self._append(line)
        self._holds_calls = True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# ---------------------------------------------------------------- reading


@dataclass
class Recording:
    """One recorded call, as the replayer needs it."""

    line: int
    at: float
    operation: str
    # The request as DynamoDB received it (binary values in base64).
    request: dict[str, Any]
    made_here: tuple[str, ...]
    # The answer, or the error, as the line holds it (JSON): parsed afresh for every replay.
    outcome: bytes
    failed: bool
    latency_ms: float
    # Its caller's deadline (or cancel) ended it before DynamoDB answered.
    cut: bool = False


def read_first_line(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.readline()


def _calls_in(path: Path) -> int:
    """How many calls a cassette holds (its lines but the header)."""
    with path.open("rb") as file:
        return max(0, sum(1 for line in file if line.strip()) - 1)


def read_header(path: Path) -> dict[str, Any]:
    first = read_first_line(path)
    try:
        header = orjson.loads(first)
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get(HEADER_KEY) != FORMAT:
        raise CassetteError(
            f"{path} is not a cassette: line 1 is not its header "
            f'({{"{HEADER_KEY}": {FORMAT}, ...}}, which the gateway writes when it records)'
        )
    return header


def _recordings(path: Path) -> Iterator[Recording]:
    with path.open("rb") as file:
        lines = iter(enumerate(file, start=1))
        next(lines, None)  # the header, read already
        for number, raw in lines:
            if not raw.strip():
                continue
            try:
                call = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                cut = (
                    ""
                    if raw.endswith(b"\n")
                    else " (it is cut short: the recording may have stopped mid-write)"
                )
                raise CassetteError(f"cassette {path} line {number} is not JSON{cut}: {error}") from None
            problem = _problem_of(call)
            if problem is not None:
                raise CassetteError(f"cassette {path} line {number} is not a recorded call: {problem}")
            failed = "error" in call
            yield Recording(
                line=number,
                at=float(call["at"]),
                operation=call["operation"],
                request=call["request"],
                made_here=tuple(call.get("made_here", ())),
                outcome=orjson.dumps(call["error"] if failed else call["answer"]),
                failed=failed,
                latency_ms=float(call.get("latency_ms", 0.0)),
                cut=failed and call["error"].get("kind") == "cut",
            )


# Each field a replay reads, and the JSON types it may have.
_FIELDS: dict[str, tuple[type, ...]] = {
    "operation": (str,),
    "request": (dict,),
    "at": (int, float),
    "latency_ms": (int, float),
    "made_here": (list,),
    "answer": (dict,),
    "error": (dict,),
}


def _problem_of(call: Any) -> str | None:
    """What keeps a parsed line from being a recorded call, if anything."""
    if not isinstance(call, dict):
        return "it is not an object"
    missing = [name for name in ("operation", "request", "at") if name not in call]
    if missing:
        return f"it lacks {', '.join(missing)}"
    if ("answer" in call) == ("error" in call):
        return "it needs an answer or an error"
    for name, types in _FIELDS.items():
        value = call.get(name)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            return f"its {name} is {type(value).__name__}, not {' or '.join(t.__name__ for t in types)}"
    if not all(isinstance(value, str) for value in call.get("made_here", ())):
        return "its made_here holds something other than text"
    return None


def load(path: str) -> list[Recording]:
    """Every call of a cassette that kept its values; CassetteError says what is wrong otherwise."""
    file = Path(path)
    if not file.is_file():
        raise CassetteError(
            f"cassette {path} does not exist: record one with --record {path}, "
            "or start the replay with --record-mode once to record it now"
        )
    header = read_header(file)
    if header.get("values") != "keep":
        raise CassetteError(
            f"cassette {path} was recorded with values {header.get('values')!r}: its items and keys are "
            "not in it, so it cannot be replayed (record with --record-values keep)"
        )
    return list(_recordings(file))
