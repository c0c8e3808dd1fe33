"""`ProgressLine`: the live line a run shows, from the stats it samples once a second.

On a terminal the line is redrawn in place; elsewhere (CI logs) a line is printed every
`log_every_s` seconds so the log stays readable.  The stats come from a function, so a run
with worker processes can show the sum of what its workers last reported.
"""

from __future__ import annotations

from collections.abc import Callable

import trio
from rich.console import Console

from ..clock import SimClock
from ..stats import RunStats, percentile_ms

__all__ = ["ProgressLine"]


class ProgressLine:
    def __init__(
        self,
        stats: Callable[[], RunStats],
        stations_total: int,
        console: Console,
        *,
        log_every_s: float = 5.0,
    ) -> None:
        self._stats = stats
        self._stations_total = stations_total
        self._console = console
        self._log_every_s = log_every_s
        self._previous_messages = 0
        self._previous_latency: dict[int, int] = {}

    def line(self, interval_s: float) -> str:
        stats = self._stats()
        messages = stats.messages_sent + stats.messages_received
        rate = (messages - self._previous_messages) / interval_s
        self._previous_messages = messages
        # Latency over the last interval: the difference of the cumulative histograms.
        merged: dict[int, int] = {}
        for action_stats in stats.calls.values():
            for micros, count in action_stats.round_trips_us.items():
                merged[micros] = merged.get(micros, 0) + count
        recent = {
            micros: count - self._previous_latency.get(micros, 0)
            for micros, count in merged.items()
            if count > self._previous_latency.get(micros, 0)
        }
        self._previous_latency = merged
        p50 = percentile_ms(recent, 0.5)
        p99 = percentile_ms(recent, 0.99)
        latency = "-" if p50 is None or p99 is None else f"{p50:.1f}/{p99:.1f} ms"
        errors = (
            stats.callerrors_received
            + stats.csms_schema_violations
            + sum(s.timeouts for s in stats.calls.values())
        )
        return (
            f"connected {stats.stations_connected}/{self._stations_total}  "
            f"booted {stats.stations_booted}  msgs/s {rate:,.0f}  "
            f"CALL p50/p99 {latency}  tx {stats.transactions_started}/"
            f"{stats.transactions_ended}  errors {errors}  "
            f"connect failures {stats.connection_failures}"
        )

    async def run_simulated(self, clock: SimClock, every_sim_s: float = 3600.0) -> None:
        """For `--fast` runs, where trio's clock is simulated: a line per simulated hour."""
        while True:
            await clock.sleep(every_sim_s)
            stats = self._stats()
            self._console.print(
                f"{clock.timestamp()[:16].replace('T', ' ')}  booted {stats.stations_booted}  "
                f"messages {stats.messages_sent + stats.messages_received:,}  tx "
                f"{stats.transactions_started}/{stats.transactions_ended}  energy "
                f"{stats.energy_delivered_wh / 1000:,.0f} kWh",
                highlight=False,
            )

    async def run(self) -> None:
        """Show the line until cancelled."""
        interval_s = 1.0
        if self._console.is_terminal:
            with self._console.status("starting", spinner="dots") as status:
                while True:
                    await trio.sleep(interval_s)
                    status.update(self.line(interval_s))
        else:
            while True:
                await trio.sleep(self._log_every_s)
                self._console.print(self.line(self._log_every_s), highlight=False)
