"""One RFC 3339 format: the free function and the simulated clock write the same text."""

from __future__ import annotations

import datetime as dt

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.clock import SimClock, format_timestamp

START = dt.datetime(2026, 11, 24, 6, 49, 58, 123_000, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("epoch_s", "text"),
    [
        (START.timestamp(), "2026-11-24T06:49:58.123Z"),
        (0.25, "1970-01-01T00:00:00.250Z"),
        (0.9996, "1970-01-01T00:00:01.000Z"),
    ],
)
def test_milliseconds_are_rounded_not_truncated(epoch_s: float, text: str) -> None:
    assert format_timestamp(epoch_s) == text


async def test_the_clock_writes_what_format_timestamp_writes(autojump_clock: MockClock) -> None:
    clock = SimClock(START, speed=60)
    clock.start()
    for _ in range(50):
        assert clock.timestamp() == format_timestamp(clock.epoch_s())
        await trio.sleep(0.0173)


async def test_simulated_time_is_trio_time_since_start_times_speed(
    autojump_clock: MockClock,
) -> None:
    clock = SimClock(START, speed=60)
    await trio.sleep(3.0)  # trio time is not zero when the clock starts
    clock.start()
    origin = trio.current_time()
    for _ in range(5):
        await trio.sleep(1.5)
        assert clock.sim_now() == (trio.current_time() - origin) * 60
        assert clock.trio_deadline(clock.sim_now()) == pytest.approx(trio.current_time())


def test_a_clock_read_before_its_start_says_so() -> None:
    clock = SimClock(START)
    with pytest.raises(RuntimeError, match=r"start\(\) was not called"):
        clock.sim_now()
    with pytest.raises(RuntimeError, match=r"start\(\) was not called"):
        clock.timestamp()
