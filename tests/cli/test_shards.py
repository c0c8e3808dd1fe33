"""Three shards as local processes against one CSMS make exactly the fleet."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.fleetsim_processes import ENV, FLEETSIM, ROOT, csms_process

pytestmark = pytest.mark.slow


def test_three_shard_processes_run_the_whole_fleet_once(tmp_path: Path) -> None:
    with csms_process() as url:
        shards = [
            subprocess.Popen(
                [
                    *FLEETSIM,
                    "run",
                    "scenarios/quickstart.yaml",
                    "--csms",
                    url,
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
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            for index in range(3)
        ]
        assert [shard.wait(timeout=60) for shard in shards] == [0, 0, 0]
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
