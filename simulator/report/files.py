"""The files `fleetsim run --report-dir` writes at the end of a run: two CSVs and a load curve.

The CSVs are for diffing and for spreadsheets, so they are byte-for-byte reproducible: rows are
sorted by their content, never by the order things happened to finish in, numbers have fixed
decimals, and lines end in `\\n` on every platform.  Two runs with the same seed give the same
files, and a change in behaviour shows up as a readable diff.  The PNG is for people: one glance
should show when the sites drew power, how much, and what the grid did meanwhile.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..clock import format_timestamp
from .records import GridEventMark, RunFrame, SessionRecord, SiteFacts, SitePowerSample

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

__all__ = [
    "SESSIONS_COLUMNS",
    "SITE_POWER_COLUMNS",
    "plot_load_curve",
    "write_sessions_csv",
    "write_site_power_csv",
]

SESSIONS_COLUMNS = (
    "station",
    "evse",
    "site",
    "ev_model",
    "arrival",
    "departure",
    "soc_start_percent",
    "soc_end_percent",
    "energy_wh",
    "energy_exported_wh",
    "battery_kwh",
    "peak_kw",
    "cut_off",
)
SITE_POWER_COLUMNS = ("time", "local_time", "site", "import_w", "export_w", "frequency_hz")

#: Sites drawn and named one by one; the rest share one "others" line, so that a fleet of
#: dozens of sites still gives a legend and a plot that can be read.
_NAMED_SITES = 8
#: Distinct colours for the named sites.  Grey is left for "others" and the total, purple for
#: the grid (frequency and events), so no two meanings share a colour.
_SITE_COLOURS = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
)
_GRID_COLOUR = "tab:purple"
_EVENT_ALPHA = 0.22
_FIGURE_SIZE_IN = (12.0, 6.0)
_DPI = 150
_SECONDS_PER_DAY = 86_400.0


def _decimal(value: float, decimals: int) -> str:
    """Fixed decimals, and never `-0.0`: a tiny negative rounding error must not change a byte."""
    return f"{round(value, decimals) + 0.0:.{decimals}f}"


def _write_rows(header: Sequence[str], rows: Iterable[Sequence[str]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue().encode("utf-8"))


def write_sessions_csv(
    records: Iterable[SessionRecord], path: Path, frame: RunFrame | None = None
) -> None:
    """One row per EV visit, in order of arrival (then station, then EVSE).

    `cut_off` is `true` for a visit the end of the run interrupted: its departure is the
    moment the run stopped, not the driver's, and its energy and final SoC fall short of what
    the visit would have come to.  Without `frame` no visit is known to be cut off.

    Sessions end in whatever order the EVs leave, and with several stations in several tasks
    that order is not reproducible; sorting by content is.  The whole formatted row breaks any
    remaining tie, so even identical keys cannot reorder the file.
    """
    end_text = None if frame is None else format_timestamp(frame.start_epoch_s + frame.end_s)
    keyed = [
        (
            (record.arrival, record.station_id, record.evse_id),
            (
                record.station_id,
                str(record.evse_id),
                record.site,
                record.ev_model,
                record.arrival,
                record.departure,
                _decimal(record.soc_start_percent, 1),
                _decimal(record.soc_end_percent, 1),
                _decimal(record.energy_wh, 1),
                _decimal(record.energy_exported_wh, 1),
                _decimal(record.battery_kwh, 2),
                _decimal(record.peak_kw, 2),
                # RFC 3339 UTC texts of one format sort as the instants they name.
                "true" if end_text is not None and record.departure >= end_text else "false",
            ),
        )
        for record in records
    ]
    keyed.sort()
    _write_rows(SESSIONS_COLUMNS, (row for _, row in keyed), path)


def write_site_power_csv(
    samples: Iterable[SitePowerSample],
    start_epoch_s: float,
    path: Path,
    frame: RunFrame | None = None,
) -> None:
    """Each site's power steps, by time and then site, in UTC and in the site's local time.

    Times are written as timestamps rather than seconds since the start, so the file lines up
    with the CSMS's own logs (`time`, UTC, as OCPP stamps messages) and with what people at
    the site saw on their clocks (`local_time`, the same instant with the site's UTC offset).
    Power has 0.1 W and frequency 1 mHz resolution: finer than any meter reports, coarse
    enough to hide float noise.  With `frame`, each site's last row is the moment the run
    stopped, with the power still flowing then (see `RunFrame`).
    """
    offsets_s = _offsets_s(frame)
    if frame is not None:
        samples = _until_end(samples, frame.end_s)
    keyed = [
        (
            (sample.time_s, sample.site),
            (
                format_timestamp(start_epoch_s + sample.time_s),
                _local_timestamp(start_epoch_s + sample.time_s, offsets_s.get(sample.site, 0)),
                sample.site,
                _decimal(sample.import_w, 1),
                _decimal(sample.export_w, 1),
                _decimal(sample.frequency_hz, 3),
            ),
        )
        for sample in samples
    ]
    keyed.sort()
    _write_rows(SITE_POWER_COLUMNS, (row for _, row in keyed), path)


def _offsets_s(frame: RunFrame | None) -> dict[str, int]:
    return {} if frame is None else {site.name: site.utc_offset_s for site in frame.sites}


def _local_timestamp(epoch_s: float, offset_s: int) -> str:
    """RFC 3339 with the site's offset (`2026-01-15T13:00:00.000+01:00`), milliseconds as in
    `format_timestamp`, so the two columns name the same instant to the millisecond."""
    whole, millis = divmod(round(epoch_s * 1000), 1000)
    zone = dt.timezone(dt.timedelta(seconds=offset_s))
    local = dt.datetime.fromtimestamp(whole, zone)
    sign, minutes = ("-", -offset_s // 60) if offset_s < 0 else ("+", offset_s // 60)
    return (
        f"{local.strftime('%Y-%m-%dT%H:%M:%S')}.{millis:03d}"
        f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    )


def _until_end(samples: Iterable[SitePowerSample], end_s: float) -> list[SitePowerSample]:
    """The record up to the run's end, closed by one row per site at `end_s`.

    Rows from `end_s` on are the shutdown (every EV still charging counted as gone); the
    closing row keeps the power that flowed until the run stopped, so neither the CSV nor the
    plot shows a drop to 0 W that no site made.  The frequency is the one at the end.
    """
    before: list[SitePowerSample] = []
    last: dict[str, SitePowerSample] = {}
    frequency_at_end: dict[str, float] = {}
    for sample in sorted(samples, key=lambda one: (one.time_s, one.site)):
        if sample.time_s < end_s:
            before.append(sample)
            last[sample.site] = sample
        else:
            frequency_at_end.setdefault(sample.site, sample.frequency_hz)
    closing = [
        SitePowerSample(
            end_s,
            site,
            held.import_w if held is not None else 0.0,
            held.export_w if held is not None else 0.0,
            frequency_at_end.get(site, held.frequency_hz if held is not None else 0.0),
        )
        for site in sorted(set(last) | set(frequency_at_end))
        for held in (last.get(site),)
    ]
    return before + closing


def _within(events: Sequence[GridEventMark], end_s: float) -> list[GridEventMark]:
    """The events that began before the run stopped, cut at its end: a shortened run must not
    draw the events it never reached."""
    return [
        GridEventMark(event.start_s, min(event.end_s, end_s), event.label)
        for event in events
        if event.start_s < end_s
    ]


@dataclass(frozen=True, slots=True)
class _SiteSeries:
    """One site's net power as a step function: `net_w[i]` holds from `times_s[i]` on."""

    site: str
    times_s: npt.NDArray[np.float64]
    net_w: npt.NDArray[np.float64]
    imported_wh: float
    exported_wh: float

    def on(self, times_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The step function's value at each of `times_s`, 0 before the site's first sample."""
        index = np.searchsorted(self.times_s, times_s, side="right") - 1
        return np.where(index >= 0, self.net_w[np.clip(index, 0, None)], 0.0)


def _site_series(ordered: Sequence[SitePowerSample], end_s: float) -> list[_SiteSeries]:
    """Per-site step functions, largest energy throughput first (ties by name).

    Throughput (import plus export) ranks a site that mostly feeds the grid as highly as one
    that mostly draws from it: both matter to whoever reads the plot.
    """
    by_site: dict[str, list[SitePowerSample]] = {}
    for sample in ordered:
        by_site.setdefault(sample.site, []).append(sample)
    series = []
    for site, site_samples in by_site.items():
        all_times_s = np.array([sample.time_s for sample in site_samples])
        # Of several samples at one instant only the last holds; the others would draw
        # zero-width spikes (an EV leaving and the next arriving in the same event).
        last = np.append(all_times_s[1:] != all_times_s[:-1], True)
        times_s = all_times_s[last]
        import_w = np.array([sample.import_w for sample in site_samples])[last]
        export_w = np.array([sample.export_w for sample in site_samples])[last]
        durations_h = np.diff(np.append(times_s, end_s)) / 3600.0
        imported_wh = float(np.sum(import_w * durations_h))
        exported_wh = float(np.sum(export_w * durations_h))
        series.append(_SiteSeries(site, times_s, import_w - export_w, imported_wh, exported_wh))
    series.sort(key=lambda one: (-(one.imported_wh + one.exported_wh), one.site))
    return series


def _grid_frequency(
    ordered: Sequence[SitePowerSample],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Frequency at each sampled time: the mean over the sites sampled then.

    The sites normally share one grid and report the same value; averaging keeps the line
    single-valued if a scenario ever gives them different ones.
    """
    times_s = np.array([sample.time_s for sample in ordered])
    frequency_hz = np.array([sample.frequency_hz for sample in ordered])
    unique_s, which = np.unique(times_s, return_inverse=True)
    sums = np.bincount(which, weights=frequency_hz)
    counts = np.bincount(which)
    return unique_s, sums / counts


def _date_label(first_epoch_s: float, last_epoch_s: float, zone: str) -> str:
    """`first_epoch_s` and `last_epoch_s` are already shifted to the zone's local time."""
    first = dt.datetime.fromtimestamp(first_epoch_s, dt.UTC).date()
    last = dt.datetime.fromtimestamp(last_epoch_s, dt.UTC).date()
    dates = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    return f"Time of day, {zone} ({dates})"


def _plot_zone(frame: RunFrame | None) -> tuple[int, str]:
    """The offset the time axis uses and its name: the sites' local time when they share one,
    UTC when they do not (one axis cannot show two clocks)."""
    offsets_s = {site.utc_offset_s for site in frame.sites} if frame is not None else set()
    if len(offsets_s) != 1:
        return 0, "UTC" if len(offsets_s) <= 1 else "UTC (the sites keep different local times)"
    (offset_s,) = offsets_s
    if offset_s == 0:
        return 0, "UTC"
    sign = "-" if offset_s < 0 else "+"
    hours, rest_s = divmod(abs(offset_s), 3600)
    return offset_s, f"local time, UTC{sign}{hours:02d}:{rest_s // 60:02d}"


def _mark_events(axes: Axes, events: Sequence[GridEventMark], to_x: _ToX, span_s: float) -> None:
    """Shade each event and name it at the top of the plot.

    A 30 s dip in a day-long run is a fraction of a pixel wide, so every span is drawn at least
    0.5 % of the plot wide, centred on the event.  Labels that would collide move down a row.
    """
    row_ends: list[float] = []
    for event in sorted(events, key=lambda one: (one.start_s, one.end_s, one.label)):
        _shade_event(axes, event, to_x, span_s)
        middle_s = (event.start_s + event.end_s) / 2
        # Width of the label as a fraction of the plot, from a typical glyph width at 8 pt.
        half_label = len(event.label) * 0.0032 + 0.005
        centre = (middle_s - to_x.first_s) / span_s
        row = next(
            (index for index, end in enumerate(row_ends) if end < centre - half_label),
            len(row_ends),
        )
        if row == len(row_ends):
            row_ends.append(0.0)
        row_ends[row] = centre + half_label
        axes.text(
            to_x(middle_s),
            0.985 - 0.055 * row,
            event.label,
            transform=axes.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=8,
            color="#4b2a6e",
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none"},
            zorder=5,
        )


@dataclass(frozen=True, slots=True)
class _ToX:
    """Simulated seconds to the x axis: hours since UTC midnight of the plot's first day.

    Plain hours, rather than matplotlib's date numbers, put ticks on round times of day with a
    plain `MultipleLocator` and leave no room for a time zone or date epoch setting to shift
    the axis.
    """

    start_epoch_s: float
    midnight_epoch_s: float
    first_s: float

    def __call__(self, time_s: float) -> float:
        return (self.start_epoch_s + time_s - self.midnight_epoch_s) / 3600.0

    def many(self, times_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return (self.start_epoch_s + times_s - self.midnight_epoch_s) / 3600.0

    def time_of_day(self, hours: float, with_seconds: bool) -> str:
        """`HH:MM` (or `HH:MM:SS`) at an x position; later days' midnights also get the date."""
        second = round(hours * 3600.0)
        day, second_of_day = divmod(second, int(_SECONDS_PER_DAY))
        hour, rest = divmod(second_of_day, 3600)
        minute, sec = divmod(rest, 60)
        text = f"{hour:02d}:{minute:02d}:{sec:02d}" if with_seconds else f"{hour:02d}:{minute:02d}"
        if day != 0 and second_of_day == 0:
            date = dt.datetime.fromtimestamp(self.midnight_epoch_s + second, dt.UTC).date()
            text += f"\n{date.isoformat()}"
        return text


#: Tick spacings to choose from, seconds: round steps of a clock.
_TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)


def _tick_step_s(span_s: float) -> float:
    """The finest round step that gives at most 12 ticks, so labels never crowd."""
    return next(
        (float(step) for step in _TICK_STEPS_S if span_s / step <= 12),
        _SECONDS_PER_DAY * math.ceil(span_s / _SECONDS_PER_DAY / 12),
    )


def plot_load_curve(
    samples: Iterable[SitePowerSample],
    events: Sequence[GridEventMark],
    start_epoch_s: float,
    path: Path,
    title: str,
    frame: RunFrame | None = None,
) -> None:
    """Draw each site's power over the run, with grid frequency and events, as a PNG.

    Power is net (import minus export) in kW, so charging rises above zero and V2G feeding
    sinks below it.  Each line is a step (a sample holds until the next one); the total is a
    shaded area with a dark outline, and the frequency sits on its own axis on the right.
    The figure is 12 x 6 inches at 150 dpi (1800 x 900 pixels).  With `frame` the axis runs
    from the run's start to the moment it stopped, in the sites' local time, and each site's
    capacity limit is drawn as a dashed line in its colour.
    """
    figure = _load_curve_figure(samples, events, start_epoch_s, title, frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" tag, so the same run gives the same bytes whatever matplotlib wrote it.
    figure.savefig(path, format="png", dpi=_DPI, metadata={"Software": None})


def _load_curve_figure(
    samples: Iterable[SitePowerSample],
    events: Sequence[GridEventMark],
    start_epoch_s: float,
    title: str,
    frame: RunFrame | None = None,
) -> Figure:
    """The load curve as a matplotlib figure, laid out and ready to save.

    matplotlib is imported here, not at the top, because only runs that ask for a report need
    it and its import takes a noticeable fraction of a second.  The figure is drawn without
    pyplot, on an Agg canvas, so no display, backend setting or global state is involved.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    if frame is not None:
        ordered = _until_end(samples, frame.end_s)
        events = _within(events, frame.end_s)
    else:
        ordered = sorted(samples, key=lambda sample: (sample.time_s, sample.site))
    offset_s, zone = _plot_zone(frame)
    # The axis reads the sites' clock: shift the epoch, and the UTC arithmetic of `_ToX`
    # gives local times of day and local midnights.
    start_epoch_s += offset_s
    figure = Figure(figsize=_FIGURE_SIZE_IN, dpi=_DPI)
    FigureCanvasAgg(figure)
    times_s, frequency_hz = _grid_frequency(ordered) if ordered else (np.array([]), np.array([]))
    # Frequency gets its own panel under the power: drawn on a twin axis it hid behind the
    # power, and a 30 s dip in a day was lost.  Only a frequency that moved gets one.
    moved = bool(ordered) and not math.isclose(
        float(frequency_hz.min()), float(frequency_hz.max()), abs_tol=1e-6
    )
    if moved:
        axes, frequency_axes = figure.subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)}
        )
    else:
        axes, frequency_axes = figure.add_subplot(), None
    axes.set_title(title, fontsize=13, loc="left")
    axes.set_ylabel("Site power (kW; import +, export \N{MINUS SIGN})")

    if frame is not None:
        first_s, end_s = 0.0, frame.end_s
    else:
        moments_s = [sample.time_s for sample in ordered]
        moments_s += [moment for event in events for moment in (event.start_s, event.end_s)]
        first_s = min(moments_s, default=0.0)
        end_s = max(moments_s, default=0.0)
    if end_s <= first_s:
        # A single instant still deserves a visible step.
        end_s = first_s + 60.0
    span_s = end_s - first_s
    first_epoch_s = start_epoch_s + first_s
    to_x = _ToX(start_epoch_s, first_epoch_s - first_epoch_s % _SECONDS_PER_DAY, first_s)

    handles: list[Line2D | Patch] = []
    frequency_line = None
    if ordered:
        handles += _draw_power(axes, ordered, to_x, end_s, () if frame is None else frame.sites)
        if frequency_axes is not None:
            frequency_line = _draw_frequency(frequency_axes, times_s, frequency_hz, to_x, end_s)
            handles.append(frequency_line)
    else:
        axes.text(
            0.5,
            0.5,
            "no charging sessions",
            transform=axes.transAxes,
            ha="center",
            va="center",
            fontsize=16,
            color="0.45",
        )
        axes.set_yticks([])
    if events:
        _mark_events(axes, events, to_x, span_s)
        if frequency_axes is not None:
            _shade_events(frequency_axes, events, to_x, span_s)
        handles.append(Patch(facecolor=_GRID_COLOUR, alpha=_EVENT_ALPHA, label="grid event"))

    axes.set_xlim(to_x(first_s), to_x(end_s))
    bottom = axes if frequency_axes is None else frequency_axes
    if ordered or events:
        tick_step_s = _tick_step_s(span_s)
        with_seconds = tick_step_s < 60
        axes.xaxis.set_major_locator(MultipleLocator(tick_step_s / 3600.0))
        axes.xaxis.set_major_formatter(
            FuncFormatter(lambda hours, _: to_x.time_of_day(hours, with_seconds))
        )
    else:
        # Nothing happened, so no time of day deserves a tick.
        axes.set_xticks([])
    bottom.set_xlabel(_date_label(start_epoch_s + first_s, start_epoch_s + end_s, zone))
    for one in (axes, frequency_axes):
        if one is not None:
            one.grid(True, color="0.88", linewidth=0.8)
            one.set_axisbelow(True)
    if handles:
        # Outside the plot, so it hides no data.
        axes.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=9,
            frameon=False,
        )
    # The legend sits outside the plot, in a right margin kept for it.
    right = 0.8 if handles else 0.97
    if frequency_axes is None:
        figure.tight_layout(rect=(0.0, 0.0, right, 1.0))
    else:
        # tight_layout cannot lay out a shared pair of panels; these margins fit the labels.
        figure.subplots_adjust(left=0.07, right=right, top=0.93, bottom=0.1, hspace=0.08)
    return figure


def _draw_power(
    axes: Axes,
    ordered: Sequence[SitePowerSample],
    to_x: _ToX,
    end_s: float,
    sites: Sequence[SiteFacts] = (),
) -> list[Line2D]:
    """The named sites, "others" and the total, and each named site's capacity limit as a
    dashed line in its colour; returns the legend handles, total first."""
    capacity_w = {site.name: site.capacity_w for site in sites if site.capacity_w is not None}
    series = _site_series(ordered, end_s)
    named, rest = series[:_NAMED_SITES], series[_NAMED_SITES:]
    grid_s = np.unique(np.append(np.array([sample.time_s for sample in ordered]), end_s))
    handles: list[Line2D] = []
    lowest_kw, highest_kw = 0.0, 0.0
    for colour, site in zip(_SITE_COLOURS, named, strict=False):
        times_s = np.append(site.times_s, end_s)
        net_kw = np.append(site.net_w, site.net_w[-1]) / 1000.0
        (line,) = axes.plot(
            to_x.many(times_s),
            net_kw,
            drawstyle="steps-post",
            color=colour,
            linewidth=1.4,
            zorder=3,
            label=f"{_short(site.site)} ({_energy_text([site])})",
        )
        handles.append(line)
        lowest_kw, highest_kw = _extend(lowest_kw, highest_kw, net_kw)
        limit_w = capacity_w.get(site.site)
        if limit_w is not None:
            limit_kw = limit_w / 1000.0
            (limit,) = axes.plot(
                to_x.many(np.array([to_x.first_s, end_s])),
                [limit_kw, limit_kw],
                color=colour,
                linestyle=(0, (5, 3)),
                linewidth=1.0,
                zorder=2,
                label=f"{_short(site.site)} limit ({limit_kw:g} kW)",
            )
            handles.append(limit)
            highest_kw = max(highest_kw, limit_kw)
    if rest:
        others_kw = sum((site.on(grid_s) for site in rest), np.zeros_like(grid_s)) / 1000.0
        noun = "site" if len(rest) == 1 else "sites"
        (line,) = axes.plot(
            to_x.many(grid_s),
            others_kw,
            drawstyle="steps-post",
            color="0.5",
            linestyle="--",
            linewidth=1.2,
            label=f"others, {len(rest)} {noun} ({_energy_text(rest)})",
        )
        handles.append(line)
        lowest_kw, highest_kw = _extend(lowest_kw, highest_kw, others_kw)
    if len(series) > 1:
        total_kw = sum((site.on(grid_s) for site in series), np.zeros_like(grid_s)) / 1000.0
        # The total is a shaded area under the site lines: where one site charges alone the
        # two coincide, and a line drawn on top would hide that site.
        axes.fill_between(
            to_x.many(grid_s), total_kw, step="post", color="0.6", alpha=0.25, linewidth=0
        )
        (line,) = axes.plot(
            to_x.many(grid_s),
            total_kw,
            drawstyle="steps-post",
            color="0.2",
            linewidth=1.0,
            label=f"total ({_energy_text(series)})",
            zorder=2,
        )
        handles.insert(0, line)
        lowest_kw, highest_kw = _extend(lowest_kw, highest_kw, total_kw)
    axes.axhline(0.0, color="0.35", linewidth=0.8, zorder=1)
    # Zero stays on the axis, and the top leaves room for the event labels.
    headroom_kw = max(highest_kw - lowest_kw, 1.0) * 0.14
    axes.set_ylim(
        lowest_kw - headroom_kw * 0.35 if lowest_kw < 0 else 0.0, highest_kw + headroom_kw
    )
    return handles


def _shade_events(axes: Axes, events: Sequence[GridEventMark], to_x: _ToX, span_s: float) -> None:
    """The event spans on the frequency panel too (at least 0.5 % of the plot wide), unlabelled:
    the power panel above names them."""
    for event in events:
        _shade_event(axes, event, to_x, span_s)


def _shade_event(axes: Axes, event: GridEventMark, to_x: _ToX, span_s: float) -> None:
    """One event's span, at least 0.5 % of the plot wide, centred on the event: a 30 s dip in
    a day-long run would otherwise be a fraction of a pixel."""
    middle_s = (event.start_s + event.end_s) / 2
    half_width_s = max(event.end_s - event.start_s, span_s * 0.005) / 2
    axes.axvspan(
        to_x(middle_s - half_width_s),
        to_x(middle_s + half_width_s),
        color=_GRID_COLOUR,
        alpha=_EVENT_ALPHA,
        linewidth=0,
        zorder=0,
    )


def _draw_frequency(
    frequency_axes: Axes,
    times_s: npt.NDArray[np.float64],
    frequency_hz: npt.NDArray[np.float64],
    to_x: _ToX,
    end_s: float,
) -> Line2D:
    """Grid frequency on its own panel under the power, where no power line can cover it.

    The axis spans at least 0.5 Hz, so ordinary noise of a few mHz looks like the band it is
    and a real excursion stands out as a spike the panel's full height.
    """
    lowest_hz, highest_hz = float(frequency_hz.min()), float(frequency_hz.max())
    (line,) = frequency_axes.plot(
        to_x.many(np.append(times_s, end_s)),
        np.append(frequency_hz, frequency_hz[-1]),
        drawstyle="steps-post",
        color=_GRID_COLOUR,
        linewidth=1.0,
        label="grid frequency",
        zorder=3,
    )
    middle_hz = (lowest_hz + highest_hz) / 2
    half_span_hz = max((highest_hz - lowest_hz) * 0.6, 0.25)
    frequency_axes.set_ylim(middle_hz - half_span_hz, middle_hz + half_span_hz)
    frequency_axes.set_ylabel("Grid frequency (Hz)", color=_GRID_COLOUR)
    frequency_axes.tick_params(axis="y", colors=_GRID_COLOUR)
    return line


def _extend(lowest: float, highest: float, values: npt.NDArray[np.float64]) -> tuple[float, float]:
    return min(lowest, float(values.min())), max(highest, float(values.max()))


def _short(name: str, limit: int = 28) -> str:
    """A site name cut to fit the legend, which would otherwise squeeze the plot."""
    return name if len(name) <= limit else name[: limit - 1] + "\N{HORIZONTAL ELLIPSIS}"


def _energy_text(sites: Sequence[_SiteSeries]) -> str:
    """The energy the sites drew, and fed back if they did, for the legend."""
    imported = _energy(sum(site.imported_wh for site in sites))
    exported_wh = sum(site.exported_wh for site in sites)
    return f"{imported} in, {_energy(exported_wh)} out" if exported_wh >= 1.0 else imported


def _energy(energy_wh: float) -> str:
    if energy_wh >= 1_000_000:
        return f"{energy_wh / 1_000_000:.2f} MWh"
    return f"{energy_wh / 1000:.0f} kWh" if energy_wh >= 100_000 else f"{energy_wh / 1000:.1f} kWh"
