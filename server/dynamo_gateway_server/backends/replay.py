"""The replay backend: answers each call from a cassette, without DynamoDB (`--backend replay`).

A call matches a recording when the operation and the request are the same, once what the
gateway made up itself is set aside: the n-th value it made up for the call (a
ClientRequestToken, a version-log token, the time of a TTL filter; made_here.py) stands
for the recording's n-th, and the ReturnConsumedCapacity the gateway asks for is ignored.
The answer is the recorded one, byte for byte, except where it speaks of a value made up
earlier in the same RPC than the call itself (a versioned write's read-back looking for its
token): there the live value replaces the recorded one, so the gateway decides as it did. Which recording answers:

- match: any unused recording of the same request, the earliest first (each answers once);
- repeat: the same, but the last recording of a request answers again once the rest are used
  (calls their caller cut short are left out: they say nothing of DynamoDB's answer);
- strict: the next recording in the cassette, and only if it is this request.

A call no recording answers fails with ReplayMismatchError (FAILED_PRECONDITION), naming the
nearest recording and how it differs; with `live` (record mode new_episodes, or once with
no cassette yet), it goes to DynamoDB instead and is recorded. Must not import gRPC.
"""

from __future__ import annotations

import asyncio
import collections
import re
from collections.abc import Iterator
from typing import Any

import orjson

from ..made_here import answered_at, made_so_far, track
from .base import (
    BackendError,
    BackendUnavailableError,
    DeadlineExceededError,
    DynamoBackend,
    ReplayMismatchError,
)
from .cassette import Recording
from .json_protocol import decode_blobs, encode_default

# What the gateway adds to every request whatever the caller asked.
IGNORED = frozenset({"ReturnConsumedCapacity"})
MAX_DIFFERENCES = 5
MAX_VALUE_CHARS = 60


def _mask(number: int) -> str:
    return f"<made here #{number}>"


def canonical(request: dict[str, Any], made_here: tuple[str, ...]) -> Any:
    """The request as matching sees it: DynamoDB's JSON, with made-up values as placeholders."""
    masks = {value: _mask(number) for number, value in enumerate(made_here, start=1)}

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return masks.get(value, value)
        if isinstance(value, dict):
            return {key: walk(inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [walk(inner) for inner in value]
        return value

    return {key: walk(value) for key, value in request.items() if key not in IGNORED}


def _key(operation: str, canonical_request: Any) -> bytes:
    return operation.encode() + b" " + orjson.dumps(canonical_request, option=orjson.OPT_SORT_KEYS)


def _flat(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, JSON of the value) for every leaf: what a difference is counted on."""
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _flat(inner, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and value:
        for index, inner in enumerate(value):
            yield from _flat(inner, f"{path}[{index}]")
    else:
        yield path, orjson.dumps(value).decode()


def _shown(text: str) -> str:
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def differences(recorded: Any, called: Any) -> list[str]:
    """Where a call differs from a recording, one short line per path."""
    was, now = dict(_flat(recorded)), dict(_flat(called))
    lines = []
    for path in sorted(was.keys() | now.keys()):
        if was.get(path) == now.get(path):
            continue
        if path not in now:
            lines.append(f"{path}: recorded {_shown(was[path])}, absent from the call")
        elif path not in was:
            lines.append(f"{path}: {_shown(now[path])} in the call, absent from the recording")
        else:
            lines.append(f"{path}: recorded {_shown(was[path])}, called with {_shown(now[path])}")
    return lines


class ReplayBackend:
    """Answers calls from the recordings of a cassette (see the module's docstring)."""

    def __init__(
        self,
        recordings: list[Recording],
        cassette: str,
        match: str = "match",
        live: DynamoBackend | None = None,
    ) -> None:
        self.cassette = cassette
        self._match = match
        self._live = live
        self._order = recordings
        self._next = 0  # strict: the recording expected next
        self._canonical = [canonical(r.request, r.made_here) for r in recordings]
        self._keys = [_key(r.operation, c) for r, c in zip(recordings, self._canonical, strict=True)]
        self._unused: dict[bytes, collections.deque[Recording]] = collections.defaultdict(collections.deque)
        for recording, key in zip(recordings, self._keys, strict=True):
            # A call its caller cut short says nothing of DynamoDB's answer: nothing to repeat.
            if match != "repeat" or not recording.cut:
                self._unused[key].append(recording)
        self._used: dict[bytes, Recording] = {}
        self.replayed = 0
        track()

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        made = made_so_far()
        wire = orjson.loads(orjson.dumps(params, default=encode_default))
        called = canonical(wire, made)
        key = _key(operation, called)
        recording = self._take(key)
        if recording is None:
            if self._live is not None:
                return await self._live.call(operation, params)
            raise self._mismatch(operation, key, called)
        self.replayed += 1
        return await self._replay(recording, made, key)

    def _take(self, key: bytes) -> Recording | None:
        if self._match == "strict":
            if self._next < len(self._order) and self._keys[self._next] == key:
                self._next += 1
                return self._order[self._next - 1]
            return None
        waiting = self._unused.get(key)
        if waiting:
            recording = waiting.popleft()
            self._used[key] = recording
            return recording
        if self._match == "repeat":
            return self._used.get(key)
        return None

    def _mismatch(self, operation: str, key: bytes, called: Any) -> ReplayMismatchError:
        if self._match == "strict":
            if self._next >= len(self._order):
                why = f"all {len(self._order)} recordings were replayed already (strict order)"
                return ReplayMismatchError(operation, self.cassette, why, None, [])
            expected = self._order[self._next]
            shown = differences(self._canonical[self._next], called)
            if expected.operation != operation:
                shown = [f"the recording is a {expected.operation}", *shown]
            why = "strict order expects the next recording"
            return ReplayMismatchError(operation, self.cassette, why, expected.line, shown[:MAX_DIFFERENCES])
        if key in self._used:
            why = "its recordings were all replayed already (each answers once; --replay-match repeat reuses the last)"
            return ReplayMismatchError(operation, self.cassette, why, self._used[key].line, [])
        candidates = [index for index, r in enumerate(self._order) if r.operation == operation]
        if not candidates:
            return ReplayMismatchError(operation, self.cassette, f"it holds no {operation} call", None, [])
        found = [(differences(self._canonical[index], called), index) for index in candidates]
        shown, index = min(found, key=lambda pair: (len(pair[0]), pair[1]))
        why = "no recording of this request"
        return ReplayMismatchError(
            operation, self.cassette, why, self._order[index].line, shown[:MAX_DIFFERENCES]
        )

    async def _replay(self, recording: Recording, made: tuple[str, ...], key: bytes) -> dict[str, Any]:
        text = recording.outcome
        # A value the call sent comes back as recorded: its caller sees the recorded answer.
        # One made up earlier in the RPC (a token a read-back looks for) is the live one.
        swaps = {
            orjson.dumps(recorded): orjson.dumps(live)
            for number, (recorded, live) in enumerate(zip(recording.made_here, made, strict=False), start=1)
            if recorded != live and _mask(number).encode() not in key
        }
        if swaps:  # in one pass: a live value may equal another recorded one
            text = re.compile(b"|".join(map(re.escape, swaps))).sub(lambda found: swaps[found[0]], text)
        outcome = decode_blobs(orjson.loads(text))
        answered_at(recording.at)
        if not recording.failed:
            return outcome  # type: ignore[no-any-return]
        kind = outcome.get("kind")
        if kind == "dynamodb":
            raise BackendError(
                code=outcome["code"],
                message=outcome["message"],
                http_status=outcome.get("http_status", 400),
                request_id=outcome.get("request_id", ""),
                item=outcome.get("item"),
                cancellation_reasons=outcome.get("cancellation_reasons", []),
            )
        if kind == "unavailable":
            raise BackendUnavailableError(
                outcome["reason"], outcome["message"], bool(outcome.get("ambiguous"))
            )
        # Cut by its caller's deadline (or cancel): take as long as it took, so that the deadline
        # cuts it again; a caller with more time then meets the deadline the recorded one met.
        await asyncio.sleep(recording.latency_ms / 1000)
        raise DeadlineExceededError(recording.operation)

    async def close(self) -> None:
        if self._live is not None:
            await self._live.close()
