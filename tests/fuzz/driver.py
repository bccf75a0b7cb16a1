"""Sends fuzzed requests to a running gateway and tallies the verdicts; hypothesis draws them.

Calls go through a plain (synchronous) gRPC channel with identity serializers, so a
structured request and a raw byte string travel the same way, exactly as given. The
fuzzers run in a thread of their own while the gateway serves on its event loop.
Each run collects its violations instead of stopping at the first, so one run
reports them all (and hypothesis does not shrink against a live server).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import message, message_factory, text_format
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.fuzz.oracle import OK, Outcome, Tally, judge
from tests.fuzz.rig import CALL_DEADLINE_S
from tests.fuzz.strategies import METHODS, SERVICE, requests_for

# Called after an answer that may mean the emulator died or hung (UNAVAILABLE, DEADLINE_EXCEEDED).
AfterTrouble = Callable[[], None]
_TROUBLE = {"UNAVAILABLE", "DEADLINE_EXCEEDED"}


class Caller:
    """Calls any method of the service with bytes, on one channel, each call with CALL_DEADLINE_S."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)

    def close(self) -> None:
        self.channel.close()

    def call(self, method: str, request: bytes) -> Outcome:
        path = f"/{SERVICE.full_name}/{method}"
        output = METHODS[method].output_type
        # Any: grpc's stubs type a multicallable by the messages its (absent) serializers take.
        calls: Any = self.channel
        try:
            if METHODS[method].server_streaming:
                answers = list(calls.unary_stream(path)(request, timeout=CALL_DEADLINE_S))
            else:
                answers = [calls.unary_unary(path)(request, timeout=CALL_DEADLINE_S)]
        except grpc.RpcError as error:
            call: Any = error
            return judge(call.code(), call.details() or "", tuple(call.trailing_metadata() or ()))
        for answer in answers:
            try:
                _response_class(output).FromString(answer)
            except message.DecodeError:
                return Outcome("OK", violation=f"an answer that is not a {output.name}")
        return OK


def _response_class(output: Any) -> type[message.Message]:
    return message_factory.GetMessageClass(output)


def run_examples(
    strategy: st.SearchStrategy[Any],
    examples: int,
    send: Callable[[Any], None],
    seed_value: int | None,
) -> None:
    """Draws `examples` values of `strategy` and sends each: derandomized without a seed."""
    if examples < 1:
        return
    config = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=seed_value is None,
        # Generate only: a run reports every violation, and shrinking would replay against a live server.
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )

    @config
    @given(strategy)
    def each(value: Any) -> None:
        send(value)

    if seed_value is not None:
        each = seed(seed_value)(each)
    each()


def fuzz_method(
    caller: Caller,
    method: str,
    examples: int,
    tally: Tally,
    seed_value: int | None = None,
    after_trouble: AfterTrouble | None = None,
) -> None:
    """`examples` structured requests of the method, derived from its descriptor."""

    def send(request: message.Message) -> None:
        outcome = caller.call(method, request.SerializeToString())
        tally.add(method, text_format.MessageToString(request, as_one_line=True), outcome)
        if after_trouble is not None and outcome.code in _TROUBLE:
            after_trouble()

    run_examples(requests_for(method), examples, send, seed_value)


def fuzz_method_bytes(
    caller: Caller,
    method: str,
    examples: int,
    tally: Tally,
    raw_requests: st.SearchStrategy[bytes],
    seed_value: int | None = None,
    after_trouble: AfterTrouble | None = None,
) -> None:
    """`examples` byte strings sent as the method's serialized request."""

    def send(raw: bytes) -> None:
        outcome = caller.call(method, raw)
        tally.add(method, raw.hex(), outcome)
        if after_trouble is not None and outcome.code in _TROUBLE:
            after_trouble()

    run_examples(raw_requests, examples, send, seed_value)


def campaign(
    address: str,
    requests: int,
    raw_share: float,
    seed_value: int | None = None,
    after_trouble: AfterTrouble | None = None,
) -> tuple[Tally, Tally]:
    """About `requests` calls spread evenly over every method, `raw_share` of them raw bytes:
    the (structured, raw) tallies."""
    from tests.fuzz.raw_bytes import raw_requests_for

    per_method = max(1, requests // len(METHODS))
    raw_per_method = round(per_method * raw_share)
    structured, raw = Tally(), Tally()
    caller = Caller(address)
    try:
        for method in METHODS:
            fuzz_method(caller, method, per_method - raw_per_method, structured, seed_value, after_trouble)
            fuzz_method_bytes(
                caller, method, raw_per_method, raw, raw_requests_for(method), seed_value, after_trouble
            )
    finally:
        caller.close()
    return structured, raw
