"""`--workers N` as real processes: the fleet once, one summary and one metrics endpoint that
add the workers up, a dead worker reported, Ctrl-C passed on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.cli.fleetsim_processes import ENV, FLEETSIM, ROOT, csms_process, free_port

pytestmark = pytest.mark.slow


def _run(*arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*FLEETSIM, "run", "scenarios/quickstart.yaml", "--no-progress", *arguments],
        cwd=ROOT,
        env=ENV,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _workers_of(parent_pid: int) -> dict[str, int]:
    """The worker processes of `parent_pid`, by their `--worker w/N` value."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent_pid and b"--worker" in arguments:
            found[arguments[arguments.index(b"--worker") + 1].decode()] = int(entry.name)
    return found


def _wait_for_workers(parent: subprocess.Popen[str], count: int) -> dict[str, int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        workers = _workers_of(parent.pid)
        if len(workers) == count:
            return workers
        time.sleep(0.1)
    raise AssertionError(f"the run did not start {count} workers within 30 s")


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
        booted_on_endpoint = None
        deadline = time.monotonic() + 30
        while run.poll() is None and time.monotonic() < deadline:
            booted = _metric(metrics_port, 'fleetsim_stations{state="accepted"}')
            if booted == 31:
                booted_on_endpoint = booted
                break
            time.sleep(0.2)
        output, _ = run.communicate(timeout=60)
    assert run.returncode == 0, output
    assert booted_on_endpoint == 31, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["workers"] == 3
    assert summary["workers_died"] == 0
    assert summary["stations_total"] == 31
    assert summary["stations_booted"] == 31
    assert summary["stations_connected_peak"] == 31
    station_sets = []
    sent = 0
    for index in range(3):
        records = [
            json.loads(line)
            for line in (tmp_path / f"trace.{index}.jsonl").read_text().splitlines()
        ]
        station_sets.append({record["station"] for record in records})
        sent += sum(record["direction"] == "sent" for record in records)
    assert [len(s) for s in station_sets] == [10, 10, 11]
    assert set().union(*station_sets) == {f"CP{i:05d}" for i in range(1, 32)}
    # The summary's totals are the workers' counters added up, frame for frame.
    assert summary["messages_sent"] == sent
    assert sum(row["count"] for row in summary["calls"].values()) >= summary["stations_booted"]
    assert summary["calls"]["BootNotification"]["count"] == 31


def test_a_dead_worker_is_reported_and_the_others_finish(tmp_path: Path) -> None:
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
            "--summary-json",
            str(tmp_path / "summary.json"),
        )
        try:
            workers = _wait_for_workers(run, 2)
            time.sleep(2)  # both have reported at least once
            os.kill(workers["1/2"], signal.SIGKILL)
            time.sleep(1)
            run.send_signal(signal.SIGINT)
            output, _ = run.communicate(timeout=60)
        finally:
            run.kill()
    assert run.returncode == 4, output
    assert "worker 1 (stations CP00011 to CP00020) was killed by SIGKILL" in output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["workers_died"] == 1
    # Worker 0 stopped cleanly; worker 1's last report still counts.
    assert summary["stations_booted"] == 20
    assert _workers_of(run.pid) == {}


def test_ctrl_c_stops_every_worker_and_still_writes_the_summary(tmp_path: Path) -> None:
    with csms_process() as url:
        run = _run(
            "--csms",
            url,
            "--stations",
            "10",
            "--workers",
            "2",
            "--summary-json",
            str(tmp_path / "summary.json"),
        )
        try:
            workers = _wait_for_workers(run, 2)
            time.sleep(2)
            run.send_signal(signal.SIGINT)
            output, _ = run.communicate(timeout=60)
        finally:
            run.kill()
    assert run.returncode == 130, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["workers_died"] == 0
    assert summary["stations_booted"] == 10
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers.values())


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
