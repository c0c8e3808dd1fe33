"""`SimClock`: simulated time, and the only place that turns it into trio time and back.

Simulated seconds count from the scenario's start; `speed` simulated seconds pass per second of
trio time (1 = real time, 60 = one simulated minute per second).  Because the clock reads
`trio.current_time()`, a test on trio's MockClock runs a simulated day in moments, and a load
run on the real clock keeps station timers honest.  OCPP timestamps carry simulated time.
"""

from __future__ import annotations

import datetime as dt
import time

import trio

__all__ = ["SimClock", "format_timestamp"]


def format_timestamp(epoch_s: float) -> str:
    """RFC 3339 UTC with exactly three decimals (`2026-11-24T06:49:58.123Z`).

    Some CSMSs reject more digits, and OCPP asks for UTC, so this is the one format fleetsim
    writes.
    """
    total_ms = round(epoch_s * 1000)
    whole, millis = divmod(total_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


class SimClock:
    """Simulated time for one run; call `start()` inside trio before anything reads it."""

    __slots__ = ("_cached_second", "_cached_text", "_start_epoch_s", "_trio_origin", "speed")

    def __init__(self, start: dt.datetime, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be a positive number, got {speed!r}")
        if start.tzinfo is None:
            raise ValueError("the start time must carry a timezone (write it with Z or +00:00)")
        self.speed = speed
        self._start_epoch_s = start.timestamp()
        self._trio_origin: float | None = None
        self._cached_second = -1
        self._cached_text = ""

    def start(self) -> None:
        """Pin simulated second 0 to the current trio time."""
        self._trio_origin = trio.current_time()

    @property
    def trio_origin(self) -> float:
        if self._trio_origin is None:
            raise RuntimeError("SimClock.start() was not called inside the trio run")
        return self._trio_origin

    def sim_now(self) -> float:
        """Simulated seconds since the scenario's start."""
        return (trio.current_time() - self.trio_origin) * self.speed

    def trio_deadline(self, sim_s: float) -> float:
        """The trio time at which simulated second `sim_s` arrives."""
        return self.trio_origin + sim_s / self.speed

    def trio_duration(self, sim_duration_s: float) -> float:
        return sim_duration_s / self.speed

    async def sleep_until(self, sim_s: float) -> None:
        await trio.sleep_until(self.trio_deadline(sim_s))

    async def sleep(self, sim_duration_s: float) -> None:
        await trio.sleep(max(0.0, sim_duration_s) / self.speed)

    def epoch_s(self, sim_s: float | None = None) -> float:
        """Unix time of simulated second `sim_s` (default: now)."""
        return self._start_epoch_s + (self.sim_now() if sim_s is None else sim_s)

    def timestamp(self, sim_s: float | None = None) -> str:
        """The OCPP timestamp of simulated second `sim_s` (default: now).

        The date-time part is formatted once per simulated second and reused, because
        thousands of stations stamp their messages within the same second.
        """
        whole, millis = divmod(round(self.epoch_s(sim_s) * 1000), 1000)
        if whole != self._cached_second:
            self._cached_second = whole
            self._cached_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        return f"{self._cached_text}.{millis:03d}Z"
