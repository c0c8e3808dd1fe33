"""The `--report-dir` files: reproducible CSVs, and a load curve a person can read."""

from __future__ import annotations

import csv
import datetime as dt
import random
import re
import struct
from pathlib import Path

import numpy as np

from fleetsim.simulator.report.files import (
    SESSIONS_COLUMNS,
    SITE_POWER_COLUMNS,
    _load_curve_figure,
    plot_load_curve,
    write_sessions_csv,
    write_site_power_csv,
)
from fleetsim.simulator.report.records import GridEventMark, SessionRecord, SitePowerSample

START_EPOCH_S = dt.datetime(2025, 11, 24, tzinfo=dt.UTC).timestamp()
RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def session(
    station_id: str = "CP0001", evse_id: int = 1, arrival: str = "2025-11-24T17:00:00.000Z"
) -> SessionRecord:
    return SessionRecord(
        station_id=station_id,
        evse_id=evse_id,
        site="depot-north",
        ev_model="e-Citaro, 441 kWh",
        arrival=arrival,
        departure="2025-11-24T21:30:00.000Z",
        soc_start_percent=23.456,
        soc_end_percent=80.0,
        energy_wh=249_101.26,
        energy_exported_wh=0.0,
        battery_kwh=441.0,
        peak_kw=149.996,
    )


def depot_day(
    sites: tuple[str, ...] = ("depot-north", "depot-south", "retail-park"),
    dip_at_s: float = 18.5 * 3600,
    dip_s: float = 30.0,
) -> tuple[list[SitePowerSample], list[GridEventMark]]:
    """A day at depots: a morning bump, an evening peak, and a 30 s dip to 49.8 Hz.

    Chargers answer the dip by cutting power, as a LocalFrequency curve would have them do.
    """
    rng = np.random.default_rng(7)
    times_s = np.arange(0.0, 86_400.0, 60.0)
    times_s = np.union1d(times_s, [dip_at_s, dip_at_s + dip_s])
    frequency_hz = 50.0 + rng.normal(0.0, 0.015, times_s.size)
    in_dip = (times_s >= dip_at_s) & (times_s < dip_at_s + dip_s)
    frequency_hz[in_dip] = 49.8
    samples = []
    for index, site in enumerate(sites):
        scale_w = 150_000.0 / (1 + index)
        morning = np.exp(-(((times_s - 8 * 3600) / 3600) ** 2))
        evening = 2.0 * np.exp(-(((times_s - 18.7 * 3600) / 5400) ** 2))
        import_w = scale_w * (morning + evening) * np.where(in_dip, 0.6, 1.0)
        for time_s, power_w, hz in zip(times_s, import_w, frequency_hz, strict=True):
            samples.append(SitePowerSample(float(time_s), site, float(power_w), 0.0, float(hz)))
    return samples, [GridEventMark(dip_at_s, dip_at_s + dip_s, "49.8 Hz dip")]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a valid PNG has first."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.reader(file))


def test_sessions_csv_has_the_documented_columns_in_order(tmp_path: Path) -> None:
    path = tmp_path / "sessions.csv"
    write_sessions_csv([session()], path)
    header, row = rows(path)
    assert header == list(SESSIONS_COLUMNS)
    assert header == [
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
    ]
    assert row == [
        "CP0001",
        "1",
        "depot-north",
        "e-Citaro, 441 kWh",
        "2025-11-24T17:00:00.000Z",
        "2025-11-24T21:30:00.000Z",
        "23.5",
        "80.0",
        "249101.3",
        "0.0",
        "441.00",
        "150.00",
        "false",
    ]


def test_sessions_are_ordered_by_arrival_then_station_then_evse_number(tmp_path: Path) -> None:
    path = tmp_path / "sessions.csv"
    write_sessions_csv(
        [
            session("CP0002", 1, "2025-11-24T17:00:00.000Z"),
            session("CP0001", 10, "2025-11-24T17:00:00.000Z"),
            session("CP0001", 2, "2025-11-24T17:00:00.000Z"),
            session("CP0009", 1, "2025-11-24T06:59:59.999Z"),
        ],
        path,
    )
    keys = [(row[4], row[0], row[1]) for row in rows(path)[1:]]
    assert keys == [
        ("2025-11-24T06:59:59.999Z", "CP0009", "1"),
        ("2025-11-24T17:00:00.000Z", "CP0001", "2"),
        ("2025-11-24T17:00:00.000Z", "CP0001", "10"),
        ("2025-11-24T17:00:00.000Z", "CP0002", "1"),
    ]


def test_the_same_sessions_in_any_order_give_the_same_bytes(tmp_path: Path) -> None:
    records = [
        session(f"CP{index % 7:04d}", index % 3 + 1, f"2025-11-24T{index % 24:02d}:00:00.000Z")
        for index in range(60)
    ]
    shuffled = list(records)
    random.Random(4).shuffle(shuffled)
    write_sessions_csv(records, tmp_path / "a.csv")
    write_sessions_csv(reversed(shuffled), tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_csv_lines_end_in_a_bare_newline(tmp_path: Path) -> None:
    write_sessions_csv([session(), session("CP0002")], tmp_path / "sessions.csv")
    data = (tmp_path / "sessions.csv").read_bytes()
    assert b"\r" not in data
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 3


def test_a_rounding_error_below_zero_is_written_as_zero(tmp_path: Path) -> None:
    record = SessionRecord(
        "CP0001", 1, "s", "m", "2025-11-24T00:00:00.000Z", "2025-11-24T01:00:00.000Z",
        50.0, 50.0, -1e-9, -0.04, 60.0, -0.001,
    )  # fmt: skip
    write_sessions_csv([record], tmp_path / "sessions.csv")
    row = rows(tmp_path / "sessions.csv")[1]
    assert row[8:] == ["0.0", "0.0", "60.00", "0.00", "false"]


def test_site_power_csv_has_rfc3339_millisecond_times_in_order_of_time_then_site(
    tmp_path: Path,
) -> None:
    path = tmp_path / "site_power.csv"
    write_site_power_csv(
        [
            SitePowerSample(90.25, "depot-south", 11_000.0, 0.0, 49.98),
            SitePowerSample(90.25, "depot-north", 22_000.04, 0.0, 49.98),
            SitePowerSample(0.0, "depot-south", 0.0, 3_500.0, 50.0123),
        ],
        START_EPOCH_S,
        path,
    )
    header, *body = rows(path)
    assert header == list(SITE_POWER_COLUMNS)
    assert header == ["time", "local_time", "site", "import_w", "export_w", "frequency_hz"]
    assert body == [
        ["2025-11-24T00:00:00.000Z", "2025-11-24T00:00:00.000+00:00", "depot-south", "0.0",
         "3500.0", "50.012"],
        ["2025-11-24T00:01:30.250Z", "2025-11-24T00:01:30.250+00:00", "depot-north",
         "22000.0", "0.0", "49.980"],
        ["2025-11-24T00:01:30.250Z", "2025-11-24T00:01:30.250+00:00", "depot-south",
         "11000.0", "0.0", "49.980"],
    ]  # fmt: skip
    assert all(RFC3339_MS.match(row[0]) for row in body)


def test_the_same_site_power_in_any_order_gives_the_same_bytes(tmp_path: Path) -> None:
    samples, _ = depot_day()
    shuffled = list(samples)
    random.Random(11).shuffle(shuffled)
    write_site_power_csv(samples, START_EPOCH_S, tmp_path / "a.csv")
    write_site_power_csv(shuffled, START_EPOCH_S, tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_the_load_curve_is_a_1800_by_900_png_with_something_drawn_on_it(tmp_path: Path) -> None:
    from matplotlib.image import imread

    samples, events = depot_day()
    path = tmp_path / "load_curve.png"
    plot_load_curve(samples, events, START_EPOCH_S, path, "Depot day")
    assert png_size(path) == (1800, 900)
    pixels = imread(path)[:, :, :3]
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    not_white = np.any(pixels < 0.99, axis=2).mean()
    assert len(colours) > 100
    assert 0.05 < not_white < 0.9


def test_the_same_run_draws_the_same_png(tmp_path: Path) -> None:
    samples, events = depot_day(sites=("depot-north",))
    plot_load_curve(samples, events, START_EPOCH_S, tmp_path / "a.png", "One site")
    plot_load_curve(reversed(samples), events, START_EPOCH_S, tmp_path / "b.png", "One site")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_a_run_without_sessions_still_gets_a_plot_that_says_so(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "load_curve.png"
    plot_load_curve([], [], START_EPOCH_S, path, "Quiet run")
    assert png_size(path) == (1800, 900)
    figure = _load_curve_figure([], [], START_EPOCH_S, "Quiet run")
    assert "no charging sessions" in [text.get_text() for text in figure.axes[0].texts]


def test_a_steady_grid_frequency_gets_no_frequency_axis() -> None:
    samples = [
        SitePowerSample(time_s, "depot-north", 7_400.0 * (time_s < 3600), 0.0, 50.0)
        for time_s in (0.0, 1800.0, 3600.0)
    ]
    figure = _load_curve_figure(samples, [], START_EPOCH_S, "Steady grid")
    assert len(figure.axes) == 1


def test_one_site_gets_no_separate_total_line() -> None:
    samples, events = depot_day(sites=("depot-north",))
    figure = _load_curve_figure(samples, events, START_EPOCH_S, "One site")
    legend = figure.axes[0].get_legend()
    assert legend is not None
    labels = [text.get_text() for text in legend.get_texts()]
    assert [label.split(" (")[0] for label in labels] == [
        "depot-north",
        "grid frequency",
        "grid event",
    ]


def test_dozens_of_sites_name_the_top_eight_by_energy_and_group_the_rest() -> None:
    sites = tuple(f"site-{index:02d}" for index in range(30))
    samples, events = depot_day(sites=sites)
    figure = _load_curve_figure(samples, events, START_EPOCH_S, "Thirty sites")
    legend = figure.axes[0].get_legend()
    assert legend is not None
    labels = [text.get_text() for text in legend.get_texts()]
    # depot_day gives earlier sites more power, so the first eight are the largest.
    assert [label.split(" (")[0] for label in labels] == [
        "total",
        *sites[:8],
        "others, 22 sites",
        "grid frequency",
        "grid event",
    ]


def test_the_time_axis_reads_as_time_of_day_in_utc() -> None:
    samples, events = depot_day()
    figure = _load_curve_figure(samples, events, START_EPOCH_S, "Depot day")
    # The frequency panel under the power carries the time axis.
    axes = figure.axes[-1]
    figure.canvas.draw()
    first_x, last_x = axes.get_xlim()
    ticks = [
        label.get_text()
        for label, x in zip(axes.get_xticklabels(), axes.get_xticks(), strict=True)
        if first_x <= x <= last_x
    ]
    assert ticks == [f"{hour:02d}:00" for hour in range(0, 24, 2)]
    assert axes.get_xlabel() == "Time of day, UTC (2025-11-24)"
    assert "kW" in figure.axes[0].get_ylabel()
    assert figure.axes[1].get_ylabel() == "Grid frequency (Hz)"
