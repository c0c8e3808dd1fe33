"""`Alarm`: sleeps that end at their deadline or at `wake()`, fired from one timer heap.

Every test runs on trio's MockClock (pytest-trio's `autojump_clock`), so deadlines are exact
and a simulated minute takes no wall time.
"""

from __future__ import annotations

import math
import random

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator import clock as clock_module
from fleetsim.simulator.clock import Alarm


async def test_a_sleep_ends_exactly_at_its_deadline(autojump_clock: MockClock) -> None:
    alarm = Alarm()
    start = trio.current_time()
    woken = await alarm.sleep_until(start + 10.0)
    assert woken is False
    assert trio.current_time() == start + 10.0
    assert not alarm.sleeping


async def test_wake_ends_the_sleep_early_and_the_old_deadline_fires_nothing(
    autojump_clock: MockClock,
) -> None:
    alarm = Alarm()
    start = trio.current_time()
    results: list[tuple[bool, float]] = []

    async def sleeper() -> None:
        for deadline in (start + 10.0, start + 30.0):
            results.append((await alarm.sleep_until(deadline), trio.current_time() - start))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper)
        await trio.sleep(4.0)
        assert alarm.sleeping
        alarm.wake()
    # Woken at 4 s; the second sleep then ran its full course to 30 s, untouched by the
    # dead entry of the first (due at 10 s).
    assert results == [(True, 4.0), (False, 30.0)]


async def test_wake_without_a_sleeper_does_nothing(autojump_clock: MockClock) -> None:
    alarm = Alarm()
    alarm.wake()
    start = trio.current_time()
    assert await alarm.sleep_until(start + 1.0) is False


async def test_an_infinite_sleep_waits_for_wake(autojump_clock: MockClock) -> None:
    alarm = Alarm()
    start = trio.current_time()
    async with trio.open_nursery() as nursery:

        async def waker() -> None:
            await trio.sleep(3600.0)
            alarm.wake()

        nursery.start_soon(waker)
        assert await alarm.sleep_until(math.inf) is True
    assert trio.current_time() == start + 3600.0


async def test_a_past_deadline_returns_at_once(autojump_clock: MockClock) -> None:
    alarm = Alarm()
    start = trio.current_time()
    assert await alarm.sleep_until(start - 1.0) is False
    assert trio.current_time() == start


async def test_cancellation_ends_the_sleep_and_leaves_the_alarm_usable(
    autojump_clock: MockClock,
) -> None:
    alarm = Alarm()
    start = trio.current_time()
    with trio.move_on_after(5.0):
        await alarm.sleep_until(start + 20.0)
    assert trio.current_time() == start + 5.0
    assert not alarm.sleeping
    assert await alarm.sleep_until(start + 8.0) is False
    assert trio.current_time() == start + 8.0


async def test_one_alarm_one_sleeper(autojump_clock: MockClock) -> None:
    alarm = Alarm()
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(alarm.sleep_until, start + 10.0)
        await trio.sleep(1.0)
        with pytest.raises(RuntimeError, match="already sleeping"):
            await alarm.sleep_until(start + 5.0)
        alarm.wake()


async def test_many_alarms_fire_in_order_each_at_its_deadline(autojump_clock: MockClock) -> None:
    draw = random.Random(7)
    start = trio.current_time()
    deadlines = [start + draw.uniform(0.0, 120.0) for _ in range(500)]
    fired: list[tuple[float, float]] = []

    async def sleep(deadline: float) -> None:
        await Alarm().sleep_until(deadline)
        fired.append((deadline, trio.current_time()))

    async with trio.open_nursery() as nursery:
        for deadline in deadlines:
            nursery.start_soon(sleep, deadline)
    assert len(fired) == len(deadlines)
    assert all(at == deadline for deadline, at in fired)
    assert [deadline for deadline, _ in fired] == sorted(deadlines)


async def test_woken_sleeps_do_not_pile_up_in_the_heap(autojump_clock: MockClock) -> None:
    alarm = Alarm()
    start = trio.current_time()
    wakes = 10 * clock_module._TimerHeap.PRUNE_SLACK

    async def sleep_long() -> None:
        for _ in range(wakes):
            assert await alarm.sleep_until(start + 1e6) is True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleep_long)
        for _ in range(wakes):
            await trio.sleep(0.001)
            alarm.wake()
    heap = clock_module._timers()._heap
    assert len(heap) <= 2 * clock_module._TimerHeap.PRUNE_SLACK + 2


async def test_on_the_real_clock_alarms_close_together_fire_together() -> None:
    # A timer heap with a 50 ms resolution, installed as this run's: after one firing, alarms
    # falling due within the next 50 ms fire together at its end, none early.
    timers = clock_module._TimerHeap(0.05)
    clock_module._TIMERS.set(timers)
    trio.lowlevel.spawn_system_task(timers.run)
    start = trio.current_time()
    fired: list[float] = []

    async def sleep(delay_s: float) -> None:
        await Alarm().sleep_until(start + delay_s)
        fired.append(trio.current_time() - start)

    with trio.fail_after(5.0):
        await sleep(0.01)  # the first firing: exact, nothing fired before it
        async with trio.open_nursery() as nursery:
            for delay_s in (0.02, 0.03, 0.04):
                nursery.start_soon(sleep, delay_s)
    assert fired[0] >= 0.01
    assert all(at >= 0.059 for at in fired[1:])  # held back to the 50 ms after the first
    assert max(fired[1:]) - min(fired[1:]) < 0.02  # and released together
