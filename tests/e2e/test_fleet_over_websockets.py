"""A fleet of real stations on real loopback WebSockets against the embedded CSMS.

These run on trio's real clock (sockets and MockClock's autojump do not mix), with a speed
factor so whole charging sessions fit in a few seconds, and every wait bounded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
from rich.console import Console

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.ocpp import OcppVersion, schema_set
from fleetsim.simulator.run import RunOptions, run_scenario
from fleetsim.simulator.scenario import Scenario

pytestmark = pytest.mark.slow


def _scenario(url: str, version: OcppVersion, stations: int = 50) -> Scenario:
    return Scenario.model_validate(
        {
            "name": f"e2e-{version}",
            "seed": 3,
            "speed": 60,
            "duration_s": 6,
            "ocpp_version": version,
            "csms": {"url": url},
            "stations": {
                "count": stations,
                "ramp_up_per_s": 500,
                "meter_interval_s": 20,
                "evses": [{"connectors": ["cType2"]}, {"connectors": ["cType2"]}],
            },
            "start": "2026-01-15T12:00:00Z",
            "sites": [
                {
                    "name": "e2e",
                    "arrivals_per_evse_per_day": 1440,
                    "dwell_s": {"min": 60, "max": 120},
                    "soc_start": {"min": 0.2, "max": 0.5},
                    "target_soc": {"min": 0.6, "max": 0.9},
                }
            ],
            "ev_fleet": {"id_token_first_share": 0.0},
        }
    )


async def _run_against_recording_csms(
    version: OcppVersion, trace_path: Path
) -> tuple[Csms, dict[str, Any]]:
    csms = Csms(CsmsConfig(heartbeat_interval_s=60))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(csms.serve, "127.0.0.1", 0)
        scenario = _scenario(f"ws://127.0.0.1:{port}/ocpp", version)
        with trio.fail_after(30):
            outcome = await run_scenario(
                scenario,
                RunOptions(trace_path=trace_path, show_progress=False),
                Console(file=open("/dev/null", "w")),  # noqa: SIM115
            )
        nursery.cancel_scope.cancel()
    return csms, outcome.summary


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
async def test_fifty_stations_boot_report_and_charge_with_valid_messages(
    version: OcppVersion, tmp_path: Path
) -> None:
    trace_path = tmp_path / "frames.jsonl"
    csms, summary = await _run_against_recording_csms(version, trace_path)

    assert summary["stations_booted"] == 50
    assert summary["csms_schema_violations"] == 0
    assert summary["transactions_ended"] > 0
    assert len(csms.stations) == 50
    schemas = schema_set(version)
    completed = 0
    for station_id, record in csms.stations.items():
        assert record.version == version
        assert record.violation_count == 0, (station_id, record.violations)
        actions = record.actions()
        assert actions[0] == "BootNotification", station_id
        assert actions[1] == "StatusNotification", station_id
        for transaction in record.transactions.values():
            assert not transaction.missing_seq_nos(), (station_id, transaction)
            assert transaction.event_types[0] == "Started"
            if transaction.ended:
                completed += 1
                assert transaction.event_types[-1] == "Ended"
                assert set(transaction.event_types[1:-1]) <= {"Updated"}
        if record.transactions:
            assert actions.index("Authorize") < len(actions)
    assert completed >= 10

    # Every frame every station sent validates against the schema of its version.
    sent = 0
    for line in trace_path.read_bytes().splitlines():
        entry = orjson.loads(line)
        if entry["direction"] != "sent":
            continue
        frame = entry["frame"]
        if frame[0] == 2:
            schemas.validate(frame[2], "Request", frame[3])
        sent += 1
    assert sent == summary["messages_sent"]


async def test_authorize_precedes_the_authorized_update_of_each_cable_first_session(
    tmp_path: Path,
) -> None:
    csms, _summary = await _run_against_recording_csms("2.1", tmp_path / "frames.jsonl")
    checked = 0
    for record in csms.stations.values():
        messages = list(record.messages or ())
        for index, (action, payload) in enumerate(messages):
            # An EV that plugged in before its station booted was authorized locally (offline).
            if (
                action == "TransactionEvent"
                and payload["triggerReason"] == "Authorized"
                and not payload.get("offline")
            ):
                earlier = [a for a, _ in messages[:index]]
                assert "Authorize" in earlier
                checked += 1
    assert checked > 0
