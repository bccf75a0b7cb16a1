"""made_here: values the gateway makes up, noted per task, and the wall clock a replay pins.

Noted values live in a context variable and tracking is a process-wide flag, so each test
runs its scenario in a task with an empty context and sets the flag itself (monkeypatch puts
it back): no test depends on what ran before it.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from dynamo_gateway_server import made_here

T = TypeVar("T")


async def in_fresh_task(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs `coroutine` as a task that has noted nothing yet, as each RPC starts."""
    return await asyncio.create_task(coroutine, context=contextvars.Context())


@pytest.fixture
def tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(made_here, "_tracking", False)
    made_here.track()


async def test_noted_values_are_kept_in_order_when_tracking(tracking: None) -> None:
    async def scenario() -> tuple[str, tuple[str, ...]]:
        returned = made_here.noted("token-1")
        made_here.noted("1764590400")
        return returned, made_here.made_so_far()

    returned, so_far = await in_fresh_task(scenario())
    assert returned == "token-1"
    assert so_far == ("token-1", "1764590400")


async def test_nothing_is_noted_when_not_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(made_here, "_tracking", False)

    async def scenario() -> tuple[str, tuple[str, ...]]:
        return made_here.noted("token-1"), made_here.made_so_far()

    returned, so_far = await in_fresh_task(scenario())
    assert returned == "token-1"  # the value is used all the same
    assert so_far == ()


async def test_a_task_sees_what_was_noted_before_it_started_and_its_parent_not_what_it_noted(
    tracking: None,
) -> None:
    async def segment() -> tuple[str, ...]:
        made_here.noted("segment-token")
        return made_here.made_so_far()

    async def rpc() -> tuple[tuple[str, ...], tuple[str, ...]]:
        made_here.noted("rpc-token")
        in_segment = await asyncio.create_task(segment())
        return in_segment, made_here.made_so_far()

    in_segment, in_rpc = await in_fresh_task(rpc())
    assert in_segment == ("rpc-token", "segment-token")
    assert in_rpc == ("rpc-token",)


async def test_two_tasks_do_not_see_each_others_values(tracking: None) -> None:
    async def rpc(token: str) -> tuple[str, ...]:
        made_here.noted(token)
        await asyncio.sleep(0)  # let the other task note its own in between
        return made_here.made_so_far()

    first, second = await asyncio.gather(in_fresh_task(rpc("first")), in_fresh_task(rpc("second")))
    assert first == ("first",)
    assert second == ("second",)


async def test_start_afresh_forgets_what_the_task_noted_and_when_it_was_answered(tracking: None) -> None:
    # A ParallelScan worker's next segment replays as a sequence of its own.
    async def scenario() -> tuple[tuple[str, ...], float, float, float]:
        made_here.noted("first-segment-token")
        made_here.answered_at(1.0)
        made_here.start_afresh()
        before = time.time()
        return made_here.made_so_far(), before, made_here.wall_time(), time.time()

    so_far, before, wall, after = await in_fresh_task(scenario())
    assert so_far == ()
    assert before <= wall <= after


async def test_wall_time_is_now_until_an_answer_pins_it() -> None:
    async def scenario() -> tuple[float, float, float]:
        before = time.time()
        now = made_here.wall_time()
        return before, now, time.time()

    before, now, after = await in_fresh_task(scenario())
    assert before <= now <= after


async def test_answered_at_pins_wall_time_for_this_task_only() -> None:
    async def scenario() -> float:
        made_here.answered_at(1764590400.5)
        return made_here.wall_time()

    assert await in_fresh_task(scenario()) == 1764590400.5
    # This test's own context never saw it.
    assert made_here.wall_time() != 1764590400.5
