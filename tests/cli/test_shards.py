"""Three shards as local processes against one CSMS make exactly the fleet."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLEETSIM = [sys.executable, "-m", "cli"]

pytestmark = pytest.mark.slow


def test_three_shard_processes_run_the_whole_fleet_once(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "COLUMNS": "200"}
    csms = subprocess.Popen(
        [*FLEETSIM, "csms", "--port", str(port)],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert csms.stdout is not None
        assert "embedded CSMS on" in csms.stdout.readline()
        shards = [
            subprocess.Popen(
                [
                    *FLEETSIM,
                    "run",
                    "scenarios/quickstart.yaml",
                    "--csms",
                    f"ws://127.0.0.1:{port}/ocpp",
                    "--stations",
                    "31",
                    "--shard",
                    f"{index}/3",
                    "--duration",
                    "3",
                    "--no-progress",
                    "--trace",
                    str(tmp_path / f"{index}.jsonl"),
                    "--summary-json",
                    str(tmp_path / f"{index}.json"),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            for index in range(3)
        ]
        assert [shard.wait(timeout=60) for shard in shards] == [0, 0, 0]
    finally:
        csms.send_signal(signal.SIGINT)
        csms.wait(timeout=10)
    station_sets = []
    for index in range(3):
        summary = json.loads((tmp_path / f"{index}.json").read_text())
        assert summary["shard"] == f"{index}/3"
        assert summary["stations_booted"] == summary["stations_total"]
        lines = (tmp_path / f"{index}.jsonl").read_text().splitlines()
        station_sets.append({json.loads(line)["station"] for line in lines})
    assert [len(s) for s in station_sets] == [10, 10, 11]
    union = set().union(*station_sets)
    assert union == {f"CP{i:05d}" for i in range(1, 32)}
    assert sum(len(s) for s in station_sets) == len(union)
