"""The Prometheus metrics, as a scrape sees them (through `get_sample_value`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from simulator.metrics import ALL_METRICS, RunStatsCollector
from simulator.stats import RunStats


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
