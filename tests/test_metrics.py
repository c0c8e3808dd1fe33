"""The Prometheus metrics, as a scrape sees them (through `get_sample_value`)."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from rich.console import Console
from trio.testing import MockClock, wait_all_tasks_blocked

from fleetsim.ev_models import load_catalogue
from fleetsim.ev_models.session import EvSession
from fleetsim.grid_models.der import DerEvent, DerSchedule
from fleetsim.simulator import api
from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.metrics import (
    ALL_METRICS,
    FleetStateCollector,
    RunStatsCollector,
    empty_fleet_state,
    read_fleet_state,
    trio_task_count,
    walk_trio_tasks,
)
from fleetsim.simulator.run import RunOptions, run_scenario
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport.websocket import WireBytes


def _registry(*sources: RunStats) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(RunStatsCollector(lambda: sources))
    return registry


def test_known_label_values_are_exported_at_zero_before_anything_happens() -> None:
    registry = _registry(RunStats())
    assert registry.get_sample_value("fleetsim_stations", {"state": "accepted"}) == 0
    assert (
        registry.get_sample_value("fleetsim_connection_attempts_total", {"outcome": "refused"}) == 0
    )
    assert registry.get_sample_value("fleetsim_transactions_started_total") == 0


def test_exchanges_and_round_trips_appear_as_counters_and_histograms() -> None:
    stats = RunStats()
    registry = _registry(stats)
    stats.call_done("Heartbeat", "ok", 0.003)
    stats.call_done("Heartbeat", "ok", 0.2)
    stats.call_done("Heartbeat", "timeout", None)
    labels = {"action": "Heartbeat", "direction": "station_to_csms"}
    assert (
        registry.get_sample_value("fleetsim_ocpp_messages_total", {**labels, "outcome": "ok"}) == 2
    )
    assert (
        registry.get_sample_value("fleetsim_ocpp_messages_total", {**labels, "outcome": "timeout"})
        == 1
    )
    duration = "fleetsim_ocpp_call_duration_seconds"
    assert (
        registry.get_sample_value(f"{duration}_bucket", {"action": "Heartbeat", "le": "0.005"}) == 1
    )
    assert (
        registry.get_sample_value(f"{duration}_bucket", {"action": "Heartbeat", "le": "+Inf"}) == 2
    )
    assert registry.get_sample_value(f"{duration}_sum", {"action": "Heartbeat"}) == 0.203


def test_several_sources_add_up_and_energy_is_in_joules() -> None:
    first, second = RunStats(), RunStats()
    registry = _registry(first, second)
    first.energy_delivered(1.0)
    second.energy_delivered(2.0)
    first.station_state_changed(None, "accepted")
    second.station_state_changed(None, "accepted")
    assert registry.get_sample_value("fleetsim_energy_delivered_joules_total") == 3 * 3600
    assert registry.get_sample_value("fleetsim_stations", {"state": "accepted"}) == 2


def test_unknown_error_codes_from_the_csms_do_not_grow_the_label_set() -> None:
    stats = RunStats()
    registry = _registry(stats)
    stats.callerror_received("Authorize", "MyVeryOwnCode")
    stats.callerror_received("Authorize", "InternalError")
    assert (
        registry.get_sample_value(
            "fleetsim_callerrors_received_total", {"action": "Authorize", "code": "other"}
        )
        == 1
    )


def test_every_metric_follows_the_naming_rules() -> None:
    for spec in ALL_METRICS:
        assert spec.name.startswith("fleetsim_")
        assert (spec.kind == "counter") == spec.name.endswith("_total"), spec.name
        assert "station_id" not in spec.labels and "station" not in spec.labels


# -- what the world and the stations hold, read at scrape time ------------------------------


def _fast_run_scrape(tmp_path: Path, stations: int) -> bytes:
    """A --fast run of `stations` bidirectional stations with a frequency dip and a DER event,
    scraped ten simulated minutes in: the exposition text Prometheus would read."""
    path = tmp_path / f"fleet-{stations}.yaml"
    path.write_text(json.dumps(_scenario(stations)))
    plan = api.plan_run(api.RunRequest(scenario_path=path, in_memory=True, show_progress=False))
    options = RunOptions(in_memory=True, show_progress=False)
    scraped: list[bytes] = []

    async def run_and_scrape() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_scenario, plan.scenario, options, Console(quiet=True))
            await trio.sleep(630 / SPEED)  # in the DER event, EVs plugged in
            scraped.append(generate_latest(REGISTRY))

    trio.run(run_and_scrape, clock=MockClock(autojump_threshold=0))
    return scraped[0]


SPEED = 60


def _scenario(stations: int) -> dict[str, Any]:
    return {
        "name": "cardinality",
        "seed": 7,
        "speed": SPEED,
        "duration_s": 700 / SPEED,
        "start": "2026-01-15T17:00:00Z",
        "stations": {
            "count": stations,
            "model": "v2g-ac-11",
            "ramp_up_per_s": 10_000,
            "meter_interval_s": 600,
            "evses": [
                {"max_power_w": 11000, "phases": 3, "connectors": ["cType2"], "bidirectional": True}
            ],
        },
        "sites": [{"name": "residential", "kind": "depot", "arrivals_per_evse_per_day": 24}],
        "ev_fleet": {"iso15118_share": 1.0, "min_soc": 0.3},
        "grid": {
            "nominal_hz": 50,
            "events": [{"at_s": 600, "duration_s": 60, "frequency_hz": 49.8}],
            "der_events": [
                {"at_s": 590, "duration_s": 60, "kind": "UnderFrequency", "value": 49.8}
            ],
        },
        "embedded_csms": {"v2x_operation_mode": "LocalFrequency", "v2x_max_power_w": 11000},
    }


def _series(text: bytes) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.decode().splitlines()
        if line and not line.startswith("#")
    }


def test_a_fleet_of_3000_has_as_many_series_as_one_of_100(tmp_path: Path) -> None:
    small = _series(_fast_run_scrape(tmp_path, 100))
    large = _series(_fast_run_scrape(tmp_path, 3_000))
    assert len(small) == len(large), sorted(small.keys() ^ large.keys())
    # The scrape saw the fleet at work, not an empty registry.
    assert (
        large['fleetsim_evs_plugged_in{site="residential"}']
        > small['fleetsim_evs_plugged_in{site="residential"}']
        > 0
    )
    assert large['fleetsim_der_events_active{kind="UnderFrequency"}'] == 1
    assert large['fleetsim_site_energy_joules_total{direction="import",site="residential"}'] > 0
    assert (
        large["fleetsim_plugged_in_ev_soc_ratio_gcount"]
        == large['fleetsim_evs_plugged_in{site="residential"}']
    )
    assert large["fleetsim_simulated_time_seconds"] == pytest.approx(1768496400 + 630, abs=SPEED)


def test_series_a_dashboard_shows_exist_at_zero_before_anything_happens() -> None:
    registry = CollectorRegistry()
    registry.register(RunStatsCollector(lambda: [RunStats()]))
    registry.register(FleetStateCollector(lambda: [], ["depot"]))
    value = registry.get_sample_value
    for code in ("FormatViolation", "InternalError", "NotImplemented"):
        labels = {"action": "BootNotification", "code": code}
        assert value("fleetsim_callerrors_received_total", labels) == 0
        assert value("fleetsim_csms_schema_violations_total", labels) == 0
    assert (
        value(
            "fleetsim_ocpp_messages_total",
            {"action": "Heartbeat", "direction": "station_to_csms", "outcome": "timeout"},
        )
        == 0
    )
    assert value("fleetsim_ocpp_call_duration_seconds_count", {"action": "TransactionEvent"}) == 0
    assert value("fleetsim_transactions_ended_total", {"reason": "EVDisconnected"}) == 0
    assert value("fleetsim_station_failures_total", {"error": ""}) == 0
    assert value("fleetsim_faults_injected_total", {"kind": "partition"}) == 0
    assert value("fleetsim_site_power_watts", {"site": "depot", "direction": "export"}) == 0
    assert value("fleetsim_der_events_active", {"kind": "OverVoltage"}) == 0
    assert value("fleetsim_connect_duration_seconds_count") == 0
    assert value("fleetsim_reconnects_total") == 0


def test_workers_states_combine_by_sum_max_and_mean() -> None:
    first, second = empty_fleet_state(["a"]), empty_fleet_state(["a"])
    first["sites"]["a"]["import_w"], second["sites"]["a"]["import_w"] = 1000.0, 500.0
    first["simulated_time_s"], second["simulated_time_s"] = 100.0, 103.0
    first["grid_frequency_hz"], second["grid_frequency_hz"] = 49.9, 50.1
    first["der_events_active"]["UnderFrequency"] = 1
    second["der_events_active"]["UnderFrequency"] = 1
    first["soc_buckets"][3] = 2
    second["soc_buckets"][3] = 1
    registry = CollectorRegistry()
    registry.register(FleetStateCollector(lambda: [first, second]))
    value = registry.get_sample_value
    assert value("fleetsim_site_power_watts", {"site": "a", "direction": "import"}) == 1500
    assert value("fleetsim_simulated_time_seconds") == 103
    assert value("fleetsim_grid_frequency_hertz") == pytest.approx(50.0)
    assert value("fleetsim_der_events_active", {"kind": "UnderFrequency"}) == 1
    assert value("fleetsim_plugged_in_ev_soc_ratio_bucket", {"le": "0.4"}) == 3
    assert {spec.combine for spec in ALL_METRICS} == {"sum", "max", "mean"}


async def test_the_task_gauge_follows_tasks_as_they_start_and_end() -> None:
    assert trio_task_count() == walk_trio_tasks()
    before = trio_task_count()
    release = trio.Event()
    async with trio.open_nursery() as nursery:
        for _ in range(25):
            nursery.start_soon(release.wait)
        await wait_all_tasks_blocked()
        assert trio_task_count() == walk_trio_tasks() == before + 25
        release.set()
    assert trio_task_count() == walk_trio_tasks() == before
    # Workers' counts add up, as the fleet's processes' tasks do.
    first, second = empty_fleet_state(), empty_fleet_state()
    first["trio_tasks"], second["trio_tasks"] = 40, 2
    registry = CollectorRegistry()
    registry.register(FleetStateCollector(lambda: [first, second]))
    assert registry.get_sample_value("fleetsim_trio_tasks") == 42


def test_connect_latency_and_reconnects_add_up_across_workers() -> None:
    first, second = RunStats(), RunStats()
    first.connected(0.004)
    second.connected(0.3)
    second.station_state_changed(None, "accepted")
    second.station_state_changed("accepted", "disconnected")
    combined = RunStats.combined([RunStats.from_wire(first.to_wire()), second])
    registry = _registry(combined)
    assert registry.get_sample_value("fleetsim_connect_duration_seconds_count") == 2
    assert (
        registry.get_sample_value("fleetsim_connect_duration_seconds_bucket", {"le": "0.005"}) == 1
    )
    assert registry.get_sample_value("fleetsim_reconnects_total") == 1


# -- a scrape of 30,000 stations ------------------------------------------------------------


class _Link:
    call_in_flight = True


class _Station:
    def __init__(self, index: int) -> None:
        self.link = _Link() if index % 3 == 0 else None
        self.tx_queue = [{}] if index % 10 == 0 else []


class _Site:
    def __init__(self, name: str, sessions: list[EvSession]) -> None:
        self.name = name
        self.sessions = sessions
        self.import_w, self.export_w = 7_000_000.0, 11_000.0
        self.imported_wh_ended, self.exported_wh_ended = 1e6, 2e3

    def plugged_in(self) -> list[EvSession]:
        return list(self.sessions)


class _World:
    def __init__(self, sites: list[_Site], clock: SimClock) -> None:
        self.sites = sites
        self.clock = clock
        self.frequency_hz = 49.97
        self.der = DerSchedule([DerEvent(0.0, 100.0, "UnderFrequency", 49.8)])


def test_a_scrape_of_30000_stations_takes_under_100_ms_and_200_kb() -> None:
    model = next(iter(load_catalogue().values()))
    sessions = []
    for index in range(30_000):
        session = EvSession(
            model,
            supply="AC",
            evse_max_w=11_000,
            evse_phases=3,
            soc=(index % 90) / 100,
            target_soc=0.95,
            min_soc=0.2,
            now_s=0.0,
        )
        session.set_enabled(True, 0.0)
        if index % 4 == 0:
            session.set_limit(7_000, 0.0)
        if index % 7 == 0:
            session.set_setpoint(-5_000, 0.0)
        sessions.append(session)
    stations = [_Station(index) for index in range(30_000)]
    stats = RunStats()
    for action in (
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "TransactionEvent",
        "MeterValues",
        "Authorize",
        "NotifyEVChargingNeeds",
        "NotifyEvent",
    ):
        for round_trip_s in (0.001, 0.02, 0.4):
            stats.call_done(action, "ok", round_trip_s)
        stats.callerror_received(action, "InternalError")
    for _ in range(30_000):
        stats.station_state_changed(None, "accepted")

    async def scrape() -> tuple[float, bytes]:
        clock = SimClock(dt.datetime(2026, 1, 15, tzinfo=dt.UTC))
        clock.start()
        await trio.sleep(60)
        sites = [_Site("north", sessions[:15_000]), _Site("south", sessions[15_000:])]
        world = _World(sites, clock)
        registry = CollectorRegistry()
        registry.register(RunStatsCollector(lambda: [stats]))
        registry.register(
            FleetStateCollector(
                lambda: [read_fleet_state(world, stations, WireBytes())], ["north", "south"]
            )
        )
        best_s, text = math.inf, b""
        for _ in range(3):  # the best of three: a busy machine slows any one of them
            started = time.perf_counter()
            text = generate_latest(registry)
            best_s = min(best_s, time.perf_counter() - started)
        return best_s, text

    elapsed_s, text = trio.run(scrape, clock=MockClock(autojump_threshold=0))
    series = _series(text)
    assert series['fleetsim_evs_plugged_in{site="north"}'] == 15_000
    assert series["fleetsim_ocpp_calls_in_flight"] == 10_000
    assert series["fleetsim_offline_queue_messages"] == 3_000
    assert series['fleetsim_evs_with_charging_limit{site="south"}'] == 3_750
    assert series["fleetsim_plugged_in_ev_soc_ratio_gcount"] == 30_000
    assert len(text) < 200_000, len(text)
    print(f"30,000 stations: {len(text)} bytes in {elapsed_s * 1000:.1f} ms")
    assert elapsed_s < 0.100, f"a scrape took {elapsed_s * 1000:.0f} ms"


def test_payments_cost_limits_and_swaps_are_counted_by_outcome_and_add_up_across_workers() -> None:
    empty = _registry(RunStats())
    # Every outcome exists at 0 from the first scrape, so a panel reads 0, not "No data".
    for outcome in ("settled", "prepaid_exhausted", "web_timeout"):
        assert empty.get_sample_value("fleetsim_payments_total", {"outcome": outcome}) == 0
    for outcome in ("local", "remote", "no_battery_available", "out_timeout"):
        assert empty.get_sample_value("fleetsim_battery_swaps_total", {"outcome": outcome}) == 0
    assert empty.get_sample_value("fleetsim_cost_limits_reached_total") == 0
    first, second = RunStats(), RunStats()
    first.payment("settled")
    first.payment("prepaid_exhausted")
    second.payment("settled")
    first.cost_limit_reached()
    second.cost_limit_reached()
    second.battery_swap("remote")
    second.battery_swap("out_timeout")
    # A worker sends its counters to its parent, which adds them up.
    total = RunStats.combined([RunStats.from_wire(first.to_wire()), second])
    registry = _registry(total)
    value = registry.get_sample_value
    assert value("fleetsim_payments_total", {"outcome": "settled"}) == 2
    assert value("fleetsim_payments_total", {"outcome": "prepaid_exhausted"}) == 1
    assert value("fleetsim_cost_limits_reached_total") == 2
    assert value("fleetsim_battery_swaps_total", {"outcome": "remote"}) == 1
    assert value("fleetsim_battery_swaps_total", {"outcome": "out_timeout"}) == 1
    assert value("fleetsim_battery_swaps_total", {"outcome": "local"}) == 0
    totals = total.totals()
    assert totals["payments"] == {"prepaid_exhausted": 1, "settled": 2}
    assert totals["cost_limits"] == {"reached": 2, "ended_local_out_of_credit": 0}
    assert totals["battery_swaps"] == {"out_timeout": 1, "remote": 1}
    # A run without any of them says nothing of them.
    assert not {"payments", "cost_limits", "battery_swaps"} & RunStats().totals().keys()
