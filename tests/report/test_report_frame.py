"""The reports a person would show: bounded by the run, in the site's clock, with its limit."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np

from fleetsim.simulator.report.files import (
    _load_curve_figure,
    write_sessions_csv,
    write_site_power_csv,
)
from fleetsim.simulator.report.records import (
    GridEventMark,
    RunFrame,
    SessionRecord,
    SiteFacts,
    SitePowerSample,
)

START_EPOCH_S = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC).timestamp()
END_S = 1200.0
FRAME = RunFrame(START_EPOCH_S, END_S, (SiteFacts("town", 3600, 30_000.0),))


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.reader(file))


def charging_until_the_end() -> list[SitePowerSample]:
    """EVs charging at 29.2 kW when the run stops; the shutdown then ends their sessions."""
    return [
        SitePowerSample(0.0, "town", 0.0, 0.0, 50.0),
        SitePowerSample(600.0, "town", 29_200.0, 0.0, 49.8),
        SitePowerSample(630.0, "town", 29_200.0, 0.0, 50.0),
        SitePowerSample(END_S, "town", 0.0, 0.0, 50.01),
    ]


def session(departure: str) -> SessionRecord:
    return SessionRecord(
        "CP001", 1, "town", "m", "2026-01-15T12:10:00.000Z", departure,
        40.0, 45.0, 1000.0, 0.0, 64.0, 7.2,
    )  # fmt: skip


def test_site_power_csv_ends_with_the_power_still_flowing_not_a_false_0_w(tmp_path: Path) -> None:
    path = tmp_path / "site_power.csv"
    write_site_power_csv(charging_until_the_end(), START_EPOCH_S, path, FRAME)
    last = rows(path)[-1]
    assert last == [
        "2026-01-15T12:20:00.000Z",
        "2026-01-15T13:20:00.000+01:00",
        "town",
        "29200.0",
        "0.0",
        "50.010",
    ]


def test_site_power_csv_gives_the_sites_local_time_beside_utc(tmp_path: Path) -> None:
    path = tmp_path / "site_power.csv"
    frame = RunFrame(START_EPOCH_S, END_S, (SiteFacts("west", -5 * 3600 - 1800),))
    write_site_power_csv(
        [SitePowerSample(90.25, "west", 1.0, 0.0, 50.0)], START_EPOCH_S, path, frame
    )
    header, first, _ = rows(path)
    assert header[:3] == ["time", "local_time", "site"]
    assert first[:2] == ["2026-01-15T12:01:30.250Z", "2026-01-15T06:31:30.250-05:30"]


def test_sessions_csv_marks_the_sessions_the_end_of_the_run_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "sessions.csv"
    write_sessions_csv(
        [session("2026-01-15T12:19:59.999Z"), session("2026-01-15T12:20:00.000Z")], path, FRAME
    )
    header, *body = rows(path)
    assert header[-1] == "cut_off"
    assert sorted((row[5], row[-1]) for row in body) == [
        ("2026-01-15T12:19:59.999Z", "false"),
        ("2026-01-15T12:20:00.000Z", "true"),
    ]


def test_the_load_curve_holds_the_power_to_the_end_without_a_drop() -> None:
    figure = _load_curve_figure(charging_until_the_end(), [], START_EPOCH_S, "Tiny", FRAME)
    power = figure.axes[0].get_lines()[0]
    _, y = (np.asarray(values, dtype=float) for values in power.get_data())
    assert y[-1] == 29.2
    assert y[-2] == 29.2
    assert figure.axes[0].get_xlim() == (13.0, 13 + END_S / 3600)


def test_a_shortened_run_ends_its_axis_where_it_stopped_and_cuts_its_events() -> None:
    events = [
        GridEventMark(600.0, 630.0, "49.8 Hz"),
        GridEventMark(1150.0, 1300.0, "DER event"),
        GridEventMark(7200.0, 7230.0, "never reached"),
    ]
    figure = _load_curve_figure(charging_until_the_end(), events, START_EPOCH_S, "Tiny", FRAME)
    axes = figure.axes[0]
    assert axes.get_xlim()[1] == 13 + END_S / 3600
    labels = [text.get_text() for text in axes.texts]
    assert "never reached" not in labels
    assert sorted(labels) == ["49.8 Hz", "DER event"]
    spans_end = max(patch.get_x() + patch.get_width() for patch in axes.patches)
    assert spans_end <= 13 + END_S / 3600 + 1e-9


def test_a_30_s_frequency_dip_has_its_own_panel_that_no_power_line_covers() -> None:
    figure = _load_curve_figure(charging_until_the_end(), [], START_EPOCH_S, "Tiny", FRAME)
    power_axes, frequency_axes = figure.axes
    assert frequency_axes.get_ylabel() == "Grid frequency (Hz)"
    figure.canvas.draw()
    power_box = power_axes.get_position()
    frequency_box = frequency_axes.get_position()
    assert frequency_box.y1 <= power_box.y0
    (line,) = frequency_axes.get_lines()
    frequency_hz = np.asarray(line.get_ydata(), dtype=float)
    low, high = frequency_axes.get_ylim()
    assert frequency_hz.min() == 49.8
    assert low < 49.8 < 50.01 < high


def test_the_sites_capacity_limit_is_drawn_and_inside_the_axis() -> None:
    figure = _load_curve_figure(charging_until_the_end(), [], START_EPOCH_S, "Tiny", FRAME)
    axes = figure.axes[0]
    limits = [line for line in axes.get_lines() if "limit" in str(line.get_label())]
    assert [str(line.get_label()) for line in limits] == ["town limit (30 kW)"]
    assert list(limits[0].get_ydata()) == [30.0, 30.0]
    assert axes.get_ylim()[1] > 30.0


def test_the_time_axis_reads_in_the_sites_local_time() -> None:
    figure = _load_curve_figure(charging_until_the_end(), [], START_EPOCH_S, "Tiny", FRAME)
    bottom = figure.axes[-1]
    figure.canvas.draw()
    assert bottom.get_xlabel() == "Time of day, local time, UTC+01:00 (2026-01-15)"
    first_x, last_x = bottom.get_xlim()
    ticks = [
        label.get_text()
        for label, x in zip(bottom.get_xticklabels(), bottom.get_xticks(), strict=True)
        if first_x <= x <= last_x
    ]
    assert ticks[0] == "13:00"
    assert ticks[-1] == "13:20"


def test_sites_in_different_time_zones_keep_the_axis_in_utc() -> None:
    frame = RunFrame(START_EPOCH_S, END_S, (SiteFacts("a", 3600), SiteFacts("b", 0)))
    samples = [SitePowerSample(0.0, name, 1000.0, 0.0, 50.0) for name in ("a", "b")]
    figure = _load_curve_figure(samples, [], START_EPOCH_S, "Two zones", frame)
    assert figure.axes[-1].get_xlabel().startswith("Time of day, UTC (the sites keep different")
