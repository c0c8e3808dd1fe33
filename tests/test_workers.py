"""What workers send their parent, how the parent adds it up, how many workers a run gets, and
how the parent takes a stop and a worker's end."""

from __future__ import annotations

import io
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import trio
from rich.console import Console

from fleetsim.simulator import stop_signals
from fleetsim.simulator.run import RunOutcome
from fleetsim.simulator.scenario import load_scenario
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.workers import WorkersRun, plan_workers, worker_blocks

ROOT = Path(__file__).resolve().parents[1]
#: Bound of every wait on a stand-in worker.
WAIT_S = 60


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
    monkeypatch.setattr("fleetsim.simulator.limits.raise_open_file_limit", lambda: 20_000)
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


# -- the parent's side of a stop, with stand-in workers ------------------------------------

#: A stand-in for `fleetsim run --worker`, speaking its protocol without the engine: it says it
#: has started, waits for the test's gate file (that stands for its loading), then catches stop
#: signals as a worker does (writing its ready line) and "loads" until stopped.  A SIGTERM
#: before its ready line is the parent's mistake: it then exits with 1.
STAND_IN_WORKER = """
import os, signal, sys, time
from pathlib import Path
from fleetsim.simulator import stop_signals

signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(1))
directory, index, behaviour = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
(directory / f"started-{index}").touch()
deadline = time.monotonic() + 60
while not (directory / "gate").exists() and time.monotonic() < deadline:
    time.sleep(0.01)
with stop_signals.caught(report_to=sys.stdout.buffer):
    if behaviour == "dies":
        os.kill(os.getpid(), signal.SIGKILL)
    if behaviour == "ends":
        sys.stdout.buffer.write(stop_signals.STOPPED_BEFORE_START)
        sys.stdout.flush()
        sys.exit(130)
    sys.stdin.read()
"""


def _stand_ins(directory: Path, behaviours: list[str]) -> tuple[WorkersRun, io.StringIO]:
    """A parent of len(behaviours) stand-in workers against a CSMS URL (so no embedded CSMS),
    and the text its console prints."""
    scenario = load_scenario(ROOT / "scenarios" / "quickstart.yaml").with_overrides(
        stations=4, csms_url="ws://127.0.0.1:9/ocpp"
    )
    output = io.StringIO()

    def command(index: int, csms_url: str) -> list[str]:
        arguments = [str(directory), str(index), behaviours[index]]
        script = f"import sys; sys.path.insert(0, {str(ROOT)!r})\n{STAND_IN_WORKER}"
        return [sys.executable, "-c", script, *arguments]

    parent = WorkersRun(
        scenario,
        workers=len(behaviours),
        worker_command=command,
        csms_command=lambda processes: pytest.fail("no embedded CSMS was asked for"),
        console=Console(file=output, width=200),
        show_progress=False,
    )
    return parent, output


async def _wait_until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(WAIT_S):
        while not condition():
            await trio.sleep(0.01)


def test_a_stop_caught_before_the_parent_listens_starts_no_process(tmp_path: Path) -> None:
    parent, output = _stand_ins(tmp_path, ["loads", "loads"])
    with stop_signals.caught():
        os.kill(os.getpid(), signal.SIGTERM)
        outcome = trio.run(parent.run)
    assert not list(tmp_path.glob("started-*"))
    assert (outcome.interrupted, outcome.workers_died) == (True, 0)
    assert outcome.summary["stations_booted"] == 0
    assert "stopping: the workers close their stations' connections" in output.getvalue()


async def test_a_worker_is_signalled_once_ready_and_then_counts_as_stopped(
    tmp_path: Path,
) -> None:
    parent, output = _stand_ins(tmp_path, ["loads", "loads"])
    async with trio.open_nursery() as nursery:
        outcomes: list[RunOutcome] = []

        async def run() -> None:
            outcomes.append(await parent.run())

        nursery.start_soon(run)
        await _wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2)
        # The workers are still "loading": the parent must keep the signal for later.
        os.kill(os.getpid(), signal.SIGTERM)
        await _wait_until(lambda: "stopping:" in output.getvalue())
        (tmp_path / "gate").touch()
    (outcome,) = outcomes
    assert (outcome.interrupted, outcome.workers_died) == (True, 0), output.getvalue()
    assert "error" not in output.getvalue()


def test_a_dead_worker_is_counted_once_and_a_stopped_one_not_at_all(tmp_path: Path) -> None:
    (tmp_path / "gate").touch()
    parent, output = _stand_ins(tmp_path, ["dies", "ends"])
    outcome = trio.run(parent.run)
    assert outcome.workers_died == 1
    died = "worker 0 (stations CP00001 to CP00002) was killed by SIGKILL before its final report"
    assert [error for error in outcome.summary["errors"] if "worker" in error] == [
        f"{died}; its last reported counters are in the totals"
    ]
    assert outcome.summary["workers_died"] == 1
    assert not outcome.interrupted
    assert "worker 1" not in output.getvalue()
