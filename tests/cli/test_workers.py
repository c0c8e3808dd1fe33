"""`--workers N` as real processes: the fleet once, one summary and one metrics endpoint that
add the workers up, a dead worker reported, and a stop that reaches every process of the run
at any moment: Ctrl-C and SIGTERM to the parent, or the parent killed outright.

Every wait is on something the processes do (a line, a metric, a process that appears or
ends), bounded in time."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.cli.fleetsim_processes import (
    ENV,
    FLEETSIM,
    ROOT,
    OutputLines,
    children_of,
    csms_process,
    free_port,
    is_running,
    wait_until_gone,
)

pytestmark = pytest.mark.slow

#: Bound of every wait on the processes: generous, since the machine may be busy.
WAIT_S = 60


def _run(*arguments: str, scenario: str = "scenarios/quickstart.yaml") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*FLEETSIM, "run", scenario, "--no-progress", *arguments],
        cwd=ROOT,
        env=ENV,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _workers_of(parent_pid: int) -> dict[str, int]:
    """The worker processes of `parent_pid`, by their `--worker w/N` value."""
    return {
        arguments[arguments.index(b"--worker") + 1].decode(): pid
        for pid, arguments in children_of(parent_pid).items()
        if b"--worker" in arguments
    }


def _csms_of(parent_pid: int) -> list[int]:
    """The embedded CSMS process that a `--workers` parent started."""
    return [pid for pid, arguments in children_of(parent_pid).items() if b"csms" in arguments]


def _wait_for_workers(parent: subprocess.Popen[str], count: int) -> dict[str, int]:
    """The workers' pids, as soon as all `count` exist (polled every 10 ms, so a test can
    signal the parent while the workers are still starting)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and parent.poll() is None:
        workers = _workers_of(parent.pid)
        if len(workers) == count:
            return workers
        time.sleep(0.01)
    raise AssertionError(f"the run did not start {count} workers within {WAIT_S} s")


def _metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    ]
    return sum(values) if values else None


ACCEPTED = 'fleetsim_stations{state="accepted"}'


def _wait_for_metric(
    run: subprocess.Popen[str], port: int, name: str, reached: Callable[[float], bool]
) -> float:
    """The value of metric `name` on the parent's endpoint once `reached(value)` holds: the
    workers' reports have come in."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and run.poll() is None:
        value = _metric(port, name)
        if value is not None and reached(value):
            return value
        time.sleep(0.1)
    raise AssertionError(f"{name} did not reach the value wanted within {WAIT_S} s")


def test_three_workers_run_the_fleet_once_with_one_summary_and_endpoint(tmp_path: Path) -> None:
    metrics_port = free_port()
    with csms_process() as url:
        run = _run(
            "--csms",
            url,
            "--stations",
            "31",
            "--workers",
            "3",
            "--duration",
            "6",
            "--metrics-port",
            str(metrics_port),
            "--trace",
            str(tmp_path / "trace.jsonl"),
            "--summary-json",
            str(tmp_path / "summary.json"),
        )
        try:
            booted_on_endpoint = _wait_for_metric(run, metrics_port, ACCEPTED, lambda v: v == 31)
            # The fleet's state, read in each worker and combined by the parent: bytes add up,
            # the simulated clock is the latest worker's.
            bytes_sent = _wait_for_metric(
                run, metrics_port, 'fleetsim_websocket_bytes_total{direction="sent"}', bool
            )
            simulated_time_s = _wait_for_metric(
                run, metrics_port, "fleetsim_simulated_time_seconds", bool
            )
            output, _ = run.communicate(timeout=WAIT_S)
        finally:
            run.kill()
    assert run.returncode == 0, output
    assert booted_on_endpoint == 31, output
    assert bytes_sent > 31 * 100, "31 BootNotifications at least"
    assert simulated_time_s > 1.7e9, "the simulated clock as Unix time, not seconds into the run"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["workers"] == 3
    assert summary["workers_died"] == 0
    assert summary["stations_total"] == 31
    assert summary["stations_booted"] == 31
    assert summary["stations_connected_peak"] == 31
    station_sets = []
    for index in range(3):
        records = _trace(tmp_path / f"trace.{index}.jsonl")
        station_sets.append({record["station"] for record in records})
    assert [len(s) for s in station_sets] == [10, 10, 11]
    assert set().union(*station_sets) == {f"CP{i:05d}" for i in range(1, 32)}
    # The summary's totals are the workers' counters added up, frame for frame.
    assert summary["messages_sent"] == _frames_sent(tmp_path, workers=3)
    assert sum(row["count"] for row in summary["calls"].values()) >= summary["stations_booted"]
    assert summary["calls"]["BootNotification"]["count"] == 31


def _trace(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _frames_sent(directory: Path, *, workers: int) -> int:
    """Frames the stations of every worker sent, as their traces (trace.w.jsonl) hold them."""
    return sum(
        record["direction"] == "sent"
        for index in range(workers)
        for record in _trace(directory / f"trace.{index}.jsonl")
    )


def test_a_dead_worker_is_reported_once_and_the_others_finish(tmp_path: Path) -> None:
    metrics_port = free_port()
    with csms_process() as url:
        run = _run(
            "--csms",
            url,
            "--stations",
            "20",
            "--workers",
            "2",
            "--duration",
            "60",
            "--metrics-port",
            str(metrics_port),
            "--summary-json",
            str(tmp_path / "summary.json"),
        )
        assert run.stdout is not None
        output = OutputLines(run.stdout)
        try:
            workers = _wait_for_workers(run, 2)
            # Both workers have reported every station booted.
            _wait_for_metric(run, metrics_port, ACCEPTED, lambda v: v == 20)
            os.kill(workers["1/2"], signal.SIGKILL)
            died = "worker 1 (stations CP00011 to CP00020) was killed by SIGKILL"
            output.wait_for(died, WAIT_S)
            run.send_signal(signal.SIGINT)
            run.wait(timeout=WAIT_S)
        finally:
            run.kill()
    text = output.wait_for_end(WAIT_S)
    assert run.returncode == 4, text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["workers_died"] == 1
    assert [error for error in summary["errors"] if "worker" in error] == [
        f"{died} before its final report; its last reported counters are in the totals"
    ]
    # Worker 0 stopped cleanly; worker 1's last report still counts.
    assert summary["stations_booted"] == 20
    wait_until_gone(workers.values(), WAIT_S)


def test_ctrl_c_stops_every_worker_and_still_writes_the_summary(tmp_path: Path) -> None:
    metrics_port = free_port()
    with csms_process() as url:
        run = _run(
            "--csms",
            url,
            "--stations",
            "10",
            "--workers",
            "2",
            "--metrics-port",
            str(metrics_port),
            "--summary-json",
            str(tmp_path / "summary.json"),
        )
        try:
            workers = _wait_for_workers(run, 2)
            _wait_for_metric(run, metrics_port, ACCEPTED, lambda v: v == 10)
            run.send_signal(signal.SIGINT)
            output, _ = run.communicate(timeout=WAIT_S)
        finally:
            run.kill()
    assert run.returncode == 130, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["workers_died"] == 0
    assert summary["stations_booted"] == 10
    wait_until_gone(workers.values(), WAIT_S)


def test_sigterm_while_the_workers_start_stops_them_all_with_a_summary(tmp_path: Path) -> None:
    """The signal comes the moment the worker processes exist, long before they have loaded
    the engine and written their first report line."""
    run = _run(
        "--stations",
        "20",
        "--workers",
        "2",
        "--duration",
        "60",
        "--summary-json",
        str(tmp_path / "summary.json"),
    )
    try:
        workers = _wait_for_workers(run, 2)
        csms = _csms_of(run.pid)
        run.send_signal(signal.SIGTERM)
        output, _ = run.communicate(timeout=WAIT_S)
    finally:
        run.kill()
    assert run.returncode == 130, output
    assert "stopping: the workers close their stations' connections" in output
    assert re.search(r"stations \d+/20 booted", output), output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["workers"] == 2
    assert summary["workers_died"] == 0, output
    assert "Traceback" not in output
    wait_until_gone([*workers.values(), *csms], WAIT_S)


def _slow_ramp_scenario(tmp_path: Path, ramp_up_per_s: float) -> Path:
    scenario = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    scenario["stations"]["ramp_up_per_s"] = ramp_up_per_s
    path = tmp_path / "slow-ramp.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return path


def test_ctrl_c_during_ramp_up_stops_with_each_worker_counted_once(tmp_path: Path) -> None:
    metrics_port = free_port()
    # 40 stations at 2 per second (1 per worker): the ramp-up takes 20 s.
    scenario = _slow_ramp_scenario(tmp_path, ramp_up_per_s=2)
    with csms_process() as url:
        run = _run(
            "--csms",
            url,
            "--stations",
            "40",
            "--workers",
            "2",
            "--metrics-port",
            str(metrics_port),
            "--trace",
            str(tmp_path / "trace.jsonl"),
            "--summary-json",
            str(tmp_path / "summary.json"),
            scenario=str(scenario),
        )
        try:
            workers = _wait_for_workers(run, 2)
            _wait_for_metric(run, metrics_port, ACCEPTED, lambda v: v >= 2)
            run.send_signal(signal.SIGINT)
            output, _ = run.communicate(timeout=WAIT_S)
        finally:
            run.kill()
    assert run.returncode == 130, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["workers"], summary["workers_died"]) == (2, 0), output
    assert 2 <= summary["stations_booted"] < 40
    # Each worker's final counters are in the totals once: frame for frame its trace.
    assert summary["messages_sent"] == _frames_sent(tmp_path, workers=2)
    wait_until_gone(workers.values(), WAIT_S)


@pytest.mark.parametrize("moment", ["while the workers start", "while the stations run"])
def test_workers_and_the_csms_stop_by_themselves_when_the_parent_is_killed(
    tmp_path: Path, moment: str
) -> None:
    metrics_port = free_port()
    run = _run(
        "--stations",
        "20",
        "--workers",
        "2",
        "--duration",
        "120",
        "--metrics-port",
        str(metrics_port),
    )
    assert run.stdout is not None
    output = OutputLines(run.stdout)
    left_behind: list[int] = []
    try:
        workers = _wait_for_workers(run, 2)
        csms = _csms_of(run.pid)
        assert len(csms) == 1
        left_behind = [*workers.values(), *csms]
        if moment == "while the stations run":
            _wait_for_metric(run, metrics_port, ACCEPTED, lambda v: v == 20)
        run.kill()
        run.wait(timeout=WAIT_S)
        # The processes of the run share the parent's output pipe: it ends when all are gone.
        text = output.wait_for_end(WAIT_S)
        wait_until_gone(left_behind, WAIT_S)
    finally:
        run.kill()
        for pid in left_behind:
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)
    assert "Traceback" not in text, text


def test_without_a_csms_url_the_workers_share_embedded_csms_processes(tmp_path: Path) -> None:
    run = _run(
        "--stations",
        "20",
        "--workers",
        "2",
        "--duration",
        "4",
        "--summary-json",
        str(tmp_path / "summary.json"),
    )
    output, _ = run.communicate(timeout=60)
    assert run.returncode == 0, output
    assert "embedded CSMS on ws://127.0.0.1:" in output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stations_booted"] == 20
    assert summary["csms_url"].startswith("ws://127.0.0.1:")
    port = summary["csms_url"].split(":")[2].split("/")[0]
    # The CSMS processes ended with the run.
    leftovers = [
        entry.name
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and b"csms" in _cmdline(entry)
        and f"--port\0{port}".encode() in _cmdline(entry)
    ]
    assert leftovers == []


def _cmdline(entry: Path) -> bytes:
    try:
        return (entry / "cmdline").read_bytes()
    except OSError:
        return b""


def _worker_alone(*arguments: str) -> subprocess.Popen[bytes]:
    """`fleetsim run --worker 0/2` as its parent would start it, its stdin a pipe from us."""
    return subprocess.Popen(
        [
            *FLEETSIM,
            "run",
            "scenarios/quickstart.yaml",
            "--stations",
            "4",
            "--csms",
            f"ws://127.0.0.1:{free_port()}/ocpp",
            "--no-progress",
            "--worker",
            "0/2",
            *arguments,
        ],
        cwd=ROOT,
        env=ENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def test_a_worker_stopped_right_after_its_ready_line_reports_that_it_stopped() -> None:
    worker = _worker_alone()
    try:
        assert worker.stdout is not None
        assert json.loads(worker.stdout.readline()) == {"ready": True}
        worker.send_signal(signal.SIGTERM)  # most likely while it still loads the engine
        rest, _ = worker.communicate(timeout=WAIT_S)
    finally:
        worker.kill()
    assert worker.returncode == 130
    last = json.loads(rest.splitlines()[-1])
    assert last == {"stopped_before_start": True} or last["interrupted"] is True, last


def test_a_worker_stops_by_itself_when_its_parent_is_gone() -> None:
    worker = _worker_alone("--duration", "120")
    try:
        assert worker.stdout is not None and worker.stdin is not None
        assert json.loads(worker.stdout.readline()) == {"ready": True}
        worker.stdin.close()  # as when the parent dies: the pipe's write end is gone
        worker.wait(timeout=WAIT_S)  # its few report lines fit in the pipe meanwhile
        rest = worker.stdout.read()
    finally:
        worker.kill()
    assert worker.returncode == 130
    final = json.loads(rest.splitlines()[-1])
    assert final["interrupted"] is True
    assert final["summary"]["stations_total"] == 2
