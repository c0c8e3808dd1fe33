"""One RFC 3339 format: the free function and the simulated clock write the same text."""

from __future__ import annotations

import datetime as dt

import pytest
import trio
from trio.testing import MockClock

from simulator.clock import SimClock, format_timestamp

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
