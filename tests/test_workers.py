"""What workers send their parent, how the parent adds it up, and how many workers a run gets."""

from __future__ import annotations

import orjson
import pytest

from simulator.stats import RunStats
from simulator.workers import plan_workers, worker_blocks


def _busy_stats(scale: int) -> RunStats:
    stats = RunStats()
    for _ in range(scale):
        stats.frame_sent()
        stats.frame_received()
    stats.call_done("Heartbeat", "ok", 0.004 * scale)
    stats.call_done("Heartbeat", "timeout", None)
    stats.call_done("Authorize", "callerror", 0.120)
    stats.callerror_received("Authorize", "InternalError")
    stats.csms_violation("Authorize", "FormationViolation")
    stats.frame_dropped("not_json")
    stats.connection_attempt("ok")
    stats.connection_attempt("refused")
    stats.station_state_changed(None, "disconnected")
    stats.station_state_changed("disconnected", "accepted")
    stats.station_booted()
    stats.transaction_started()
    stats.transaction_ended("EVDisconnected")
    stats.energy_delivered(1500.5 * scale)
    stats.station_failed(RuntimeError("boom"))
    return stats


def test_the_wire_form_rebuilds_every_counter() -> None:
    original = _busy_stats(3)
    # Through real JSON, as the pipe carries it.
    rebuilt = RunStats.from_wire(orjson.loads(orjson.dumps(original.to_wire())))
    assert rebuilt.totals() == original.totals()
    assert rebuilt.snapshot() == original.snapshot()
    assert rebuilt.stations_connected == original.stations_connected == 1
    assert rebuilt.calls["Heartbeat"].round_trips_us == original.calls["Heartbeat"].round_trips_us


def test_combined_adds_the_parts_up_and_keeps_percentiles_exact() -> None:
    first, second = _busy_stats(1), _busy_stats(5)
    total = RunStats.combined([first, second])
    assert total.messages_sent == 6
    assert total.transactions_ended == 2
    assert total.energy_delivered_wh == pytest.approx(1500.5 * 6)
    assert total.exchanges[("Heartbeat", "station_to_csms", "ok")] == 2
    assert total.callerrors == {("Authorize", "InternalError"): 2}
    assert total.stations_by_state == {"disconnected": 0, "accepted": 2}
    heartbeat = total.calls["Heartbeat"]
    assert (heartbeat.count, heartbeat.timeouts) == (4, 2)
    # One round trip of 4 ms and one of 20 ms: the histogram holds both.
    assert heartbeat.round_trips_us == {4000: 1, 20000: 1}
    assert sum(heartbeat.duration_buckets) == 2
    assert heartbeat.duration_sum_s == pytest.approx(0.024)
    # The parts are left as they were.
    assert first.calls["Heartbeat"].round_trips_us == {4000: 1}
    assert total.snapshot()["durations"]["Heartbeat"][0] == [
        a + b
        for a, b in zip(
            first.calls["Heartbeat"].duration_buckets,
            second.calls["Heartbeat"].duration_buckets,
            strict=True,
        )
    ]


def test_auto_keeps_small_fleets_in_one_process_and_uses_the_cores_for_large_ones() -> None:
    assert plan_workers("auto", 500, cpus=2) == 1
    assert plan_workers("auto", 10_000, cpus=2) == 2
    assert plan_workers("auto", 10_000, cpus=8) == 5


def test_auto_takes_enough_workers_for_every_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("simulator.limits.raise_open_file_limit", lambda: 20_000)
    # 45,000 sockets at fewer than 20,000 per process need 3 processes, even on one core.
    assert plan_workers("auto", 45_000, cpus=1) == 3


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        ("many", "--workers takes a number of processes or auto, not 'many'"),
        ("0", "--workers needs at least 1 process, not 0"),
        ("11", "--workers 11 is more processes than the 10 stations; use at most 10"),
    ],
)
def test_a_bad_workers_value_says_what_to_give(requested: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_workers(requested, 10)


@pytest.mark.parametrize(("stations", "workers"), [(31, 3), (10, 10), (30_000, 2), (7, 4)])
def test_worker_blocks_hold_every_station_once(stations: int, workers: int) -> None:
    blocks = worker_blocks(1, stations, workers)
    assert len(blocks) == workers
    assert [index for block in blocks for index in block] == list(range(1, stations + 1))
    assert all(len(block) > 0 for block in blocks)
