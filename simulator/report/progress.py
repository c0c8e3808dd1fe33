"""`ProgressLine`: the live view of a run, redrawn on a timer from the stats it samples.

On a terminal a rich panel is redrawn in place every second: stations by state, messages per
second, CALL latency p50/p99 by action, errors, failed connections, the simulated clock and
how far the run is through its duration, the sites' power, and while the ramp runs below
its written rate after handshakes timed out, the rate it was slowed to (`fleet.Ramp`).
Elsewhere (CI logs) one plain line is printed every `log_every_s` seconds.  The view samples
the counters on its own timer, never per message.  A plain line fits the console's width
(COLUMNS): the least needed parts are left out first, and errors and failed connections are
never left out.  The stats come from a function, so a run with worker processes can show the
sum of what its workers last reported.
"""

from __future__ import annotations

from collections.abc import Callable

import trio
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..clock import SimClock
from ..stats import RunStats, percentile_ms

__all__ = ["ProgressLine", "per_second", "ramp_text"]

#: Seconds between redraws of the terminal view.
_TERMINAL_INTERVAL_S = 1.0


def _latency(histogram_us: dict[int, int]) -> str:
    p50 = percentile_ms(histogram_us, 0.5)
    p99 = percentile_ms(histogram_us, 0.99)
    return "-" if p50 is None or p99 is None else f"{p50:.1f}/{p99:.1f} ms"


def fit_to_width(parts: list[tuple[int, str]], width: int, separator: str = "  ") -> str:
    """Join `parts` (rank, text) in their order, leaving out the highest ranks until the line
    fits `width`; rank 0 parts are always kept, shortened only if they alone do not fit."""
    kept = list(parts)
    while len(separator.join(text for _, text in kept)) > width:
        droppable = [index for index, (rank, _) in enumerate(kept) if rank > 0]
        if not droppable:
            break
        worst = max(droppable, key=lambda index: (kept[index][0], index))
        del kept[worst]
    line = separator.join(text for _, text in kept)
    return line if len(line) <= width else line[: max(0, width - 1)] + "~"


def per_second(rate_per_s: float) -> str:
    """A rate as people read it: whole numbers from 10 up, one decimal below."""
    return f"{rate_per_s:,.0f}/s" if rate_per_s >= 10 else f"{rate_per_s:.1f}/s"


def ramp_text(stats: RunStats) -> str | None:
    """While the ramp runs below its written rate, after handshakes timed out: by how much
    and why."""
    rate = stats.ramp_rate_per_s
    if rate <= 0 or rate >= stats.ramp_written_per_s:
        return None
    return (
        f"ramp slowed to {per_second(rate)}: {stats.ramp_slowed_by_timeouts:,} handshakes "
        "timed out in a second"
    )


class ProgressLine:
    def __init__(
        self,
        stats: Callable[[], RunStats],
        stations_total: int,
        console: Console,
        *,
        log_every_s: float = 5.0,
        clock: SimClock | None = None,
        duration_s: float | None = None,
        site_power_w: Callable[[], dict[str, tuple[float, float]]] | None = None,
        active_faults: Callable[[], list[str]] | None = None,
    ) -> None:
        self._stats = stats
        self._stations_total = stations_total
        self._console = console
        self._log_every_s = log_every_s
        self._clock = clock
        self._duration_s = duration_s
        self._site_power_w = site_power_w
        #: The scenario's faults in effect now (`FaultSchedule.active`), if it has any.
        self._active_faults = active_faults
        self._started_at = trio.current_time()
        self._previous_messages = 0
        #: Cumulative round-trip histograms per action at the last sample.
        self._previous_latency: dict[str, dict[int, int]] = {}

    # -- sampling -------------------------------------------------------------------------

    def _sample(self, interval_s: float) -> tuple[RunStats, float, dict[str, dict[int, int]]]:
        """The stats now, messages per second and each action's round trips over the interval
        (the difference of the cumulative histograms)."""
        stats = self._stats()
        messages = stats.messages_sent + stats.messages_received
        rate = (messages - self._previous_messages) / interval_s if interval_s > 0 else 0.0
        self._previous_messages = messages
        recent: dict[str, dict[int, int]] = {}
        latest: dict[str, dict[int, int]] = {}
        for action, action_stats in stats.calls.items():
            now = dict(action_stats.round_trips_us)
            before = self._previous_latency.get(action, {})
            latest[action] = now
            delta = {us: n - before.get(us, 0) for us, n in now.items() if n > before.get(us, 0)}
            if delta:
                recent[action] = delta
        self._previous_latency = latest
        return stats, rate, recent

    @staticmethod
    def _errors(stats: RunStats) -> int:
        return (
            stats.callerrors_received
            + stats.csms_schema_violations
            + sum(s.timeouts for s in stats.calls.values())
            + stats.station_failures
        )

    def _clock_text(self) -> str | None:
        if self._clock is None:
            return None
        text = self._clock.timestamp()[:19].replace("T", " ")
        if self._duration_s:
            elapsed_s = trio.current_time() - self._started_at
            text += f" ({min(100.0, 100 * elapsed_s / self._duration_s):.0f}%)"
        return text

    def _power_text(self) -> str | None:
        if self._site_power_w is None:
            return None
        sites = self._site_power_w()
        if not sites:
            return None
        import_w = sum(power[0] for power in sites.values())
        export_w = sum(power[1] for power in sites.values())
        text = f"site power {import_w / 1000:,.1f} kW in"
        return text + (f", {export_w / 1000:,.1f} kW out" if export_w else "")

    # -- plain line -----------------------------------------------------------------------

    def line(self, interval_s: float, width: int | None = None) -> str:
        """One plain line over the last `interval_s`, fitted to `width` (the console's)."""
        stats, rate, recent = self._sample(interval_s)
        return self._line(stats, rate, recent, self._console.width if width is None else width)

    def _line(
        self, stats: RunStats, rate: float | None, recent: dict[str, dict[int, int]], width: int
    ) -> str:
        merged: dict[int, int] = {}
        for histogram in recent.values():
            for micros, count in histogram.items():
                merged[micros] = merged.get(micros, 0) + count
        parts: list[tuple[int, str]] = []
        clock_text = self._clock_text()
        if clock_text is not None:
            parts.append((4, clock_text))
        parts += [
            (1, f"connected {stats.stations_connected}/{self._stations_total}"),
            (2, f"booted {stats.stations_booted}"),
            (0, f"errors {self._errors(stats)}"),
            (0, f"connect failures {stats.connection_failures}"),
        ]
        ramp = ramp_text(stats)
        if ramp is not None:
            parts.append((1, ramp))
        if rate is None:
            parts.append((3, f"messages {stats.messages_sent + stats.messages_received:,}"))
        else:
            parts.append((3, f"msgs/s {rate:,.0f}"))
        parts.append((5, f"p50/p99 {_latency(merged)}"))
        parts.append((6, f"tx {stats.transactions_started}/{stats.transactions_ended}"))
        power = self._power_text()
        if power is not None:
            parts.append((7, power))
        faults = self._faults_text()
        if faults is not None:
            parts.append((8, faults))
        return fit_to_width(parts, width)

    def _faults_text(self) -> str | None:
        if self._active_faults is None:
            return None
        active = self._active_faults()
        return "faults: " + ", ".join(active) if active else None

    # -- terminal view --------------------------------------------------------------------

    def view(self, interval_s: float) -> Group:
        """The terminal view: a summary line, stations by state, latency by action."""
        stats, rate, recent = self._sample(interval_s)
        heading = Text(self._line(stats, rate, recent, self._console.width))
        by_state = "  ".join(
            f"{state} {count}" for state, count in sorted(stats.stations_by_state.items()) if count
        )
        states = Text(f"stations: {by_state or '-'}", overflow="ellipsis", no_wrap=True)

        table = Table(box=None, pad_edge=False, show_edge=False, expand=False)
        for column in ("action", "calls", "errors", "timeouts", "p50/p99 (last interval)"):
            table.add_column(column, justify="left" if column == "action" else "right")
        for action, action_stats in sorted(stats.calls.items()):
            table.add_row(
                action,
                f"{action_stats.count:,}",
                f"{action_stats.errors:,}",
                f"{action_stats.timeouts:,}",
                _latency(recent.get(action, {})),
            )
        faults = self._faults_text()
        if faults is None:
            return Group(heading, states, table)
        active = Text(f"active {faults}", overflow="ellipsis", no_wrap=True)
        return Group(heading, states, active, table)

    async def run_simulated(self, clock: SimClock, every_sim_s: float = 3600.0) -> None:
        """For `--fast` runs, where trio's clock is simulated: a plain line per simulated hour
        (the rate per wall second means nothing there, so the line shows the messages)."""
        while True:
            await clock.sleep(every_sim_s)
            stats, _, recent = self._sample(every_sim_s)
            line = self._line(stats, None, recent, self._console.width)
            self._console.print(line, highlight=False, markup=False, soft_wrap=True)

    async def run(self) -> None:
        """Show the live view until cancelled."""
        if self._console.is_terminal:
            interval_s = _TERMINAL_INTERVAL_S
            with Live(
                Text("starting"), console=self._console, auto_refresh=False, transient=True
            ) as live:
                while True:
                    await trio.sleep(interval_s)
                    live.update(self.view(interval_s), refresh=True)
        else:
            while True:
                await trio.sleep(self._log_every_s)
                line = self.line(self._log_every_s)
                self._console.print(line, highlight=False, markup=False, soft_wrap=True)
