"""Faults on purpose, as the CSMS sees them: each kind of the scenario's `faults` section run
against the embedded CSMS over memory links on trio's MockClock, checked on what the CSMS
received (connections, frames, payloads, timestamps) and on the counts in the run's stats."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import trio
from trio.testing import MockClock
from typer.testing import CliRunner

from fleetsim.cli.exit_codes import ExitCode
from fleetsim.cli.main import app
from fleetsim.ev_models import load_catalogue
from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.des import EventPump
from fleetsim.simulator.faults import FaultSchedule, chosen, schedule_for
from fleetsim.simulator.link import Link, TextChannel
from fleetsim.simulator.ocpp import CallTimeout, OcppVersion
from fleetsim.simulator.ocpp.errors import FrameError
from fleetsim.simulator.ocpp.frames import parse
from fleetsim.simulator.run import station_config
from fleetsim.simulator.scenario import Scenario
from fleetsim.simulator.station import Station
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import open_memory_link
from fleetsim.simulator.world import World
from tests.helpers import NO_ARRIVALS, T0, TEST_EV

ROOT = Path(__file__).resolve().parents[1]

SEED = 7
VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
#: Reconnecting waits exactly 30 s, doubling twice at most (120 s) while attempts fail.
BACK_OFF: dict[str, Any] = {
    "retry_backoff_wait_minimum_s": 30,
    "retry_backoff_random_range_s": 0,
    "retry_backoff_repeat_times": 2,
}


def busy_sites(*sites: tuple[str, int]) -> dict[str, Any]:
    """Sites (name, stations) where test EVs arrive every few minutes and stay an hour."""
    return {
        "sites": [
            {
                "name": name,
                "stations": stations,
                "arrivals_per_evse_per_day": 720,
                "dwell_s": {"min": 3600, "max": 3600},
                "soc_start": {"min": 0.2, "max": 0.2},
                "target_soc": {"min": 0.9, "max": 0.9},
            }
            for name, stations in sites
        ],
        "ev_fleet": {
            "models": {"test-ev": 1.0},
            "extra_models": {"test-ev": TEST_EV},
            "id_token_first_share": 0.0,
            "iso15118_share": 0.0,
        },
    }


@dataclass
class Seen:
    """What the CSMS saw, stamped with simulated seconds."""

    clock: SimClock
    #: (sim_s, station id, connection number of the station, text) of every frame received.
    frames: list[tuple[float, str, int, str]] = field(default_factory=list)
    #: (sim_s, station id, text) of every frame the CSMS sent.
    sent: list[tuple[float, str, str]] = field(default_factory=list)
    opened: list[tuple[float, str]] = field(default_factory=list)
    closed: list[tuple[float, str]] = field(default_factory=list)

    def opened_at(self, station_id: str) -> list[float]:
        return [at_s for at_s, sid in self.opened if sid == station_id]

    def closed_at(self, station_id: str) -> list[float]:
        return [at_s for at_s, sid in self.closed if sid == station_id]

    def messages(self, station_id: str, action: str) -> list[tuple[float, dict[str, Any]]]:
        """(sim_s, payload) of the valid CALLs of `action` the station sent."""
        found = []
        for at_s, sid, _, text in self.frames:
            if sid != station_id:
                continue
            try:
                frame = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            if isinstance(frame, list) and frame[:1] == [2] and frame[2] == action:
                found.append((at_s, frame[3]))
        return found


class _Recording:
    """The CSMS's end of a memory link, writing down what passes."""

    def __init__(self, channel: TextChannel, seen: Seen, station_id: str, number: int) -> None:
        self._channel = channel
        self._seen = seen
        self._station_id = station_id
        self._number = number

    async def send_text(self, text: str) -> None:
        self._seen.sent.append((self._seen.clock.sim_now(), self._station_id, text))
        await self._channel.send_text(text)

    async def receive_text(self) -> str | bytes:
        text = await self._channel.receive_text()
        assert isinstance(text, str)
        self._seen.frames.append((self._seen.clock.sim_now(), self._station_id, self._number, text))
        return text

    async def aclose(self) -> None:
        await self._channel.aclose()


@dataclass
class Fleet:
    stations: list[Station]
    csms: Csms
    stats: RunStats
    seen: Seen
    clock: SimClock
    schedule: FaultSchedule

    async def run_until(self, sim_s: float) -> None:
        """Let the simulation run to simulated second `sim_s`."""
        await trio.sleep_until(self.clock.trio_deadline(sim_s))

    def hit(self, number: int, share: float) -> list[Station]:
        return [s for s in self.stations if chosen(SEED, number, share, s.id)]

    def faults(self) -> dict[str, int]:
        return self.stats.faults_injected_by_kind


@asynccontextmanager
async def fleet(
    faults: list[dict[str, Any]],
    *,
    count: int = 10,
    version: OcppVersion = "2.1",
    sections: Mapping[str, Any] | None = None,
    stations: Mapping[str, Any] | None = None,
) -> AsyncIterator[Fleet]:
    """`count` stations with `faults`, joined to the embedded CSMS through recording links."""
    data: dict[str, Any] = {
        "name": "faults",
        "seed": SEED,
        "start": T0.isoformat(),
        "ocpp_version": version,
        "stations": {"count": count, **(stations or {})},
        "csms": BACK_OFF,
        "ev_fleet": {"models": {"test-ev": 1.0}, "extra_models": {"test-ev": TEST_EV}},
        **NO_ARRIVALS,
        "faults": faults,
    }
    data.update(sections or {})
    scenario = Scenario.model_validate(data)
    clock = SimClock(T0, 1.0)
    clock.start()
    csms = Csms(CsmsConfig(), clock=clock.epoch_s)
    stats = RunStats()
    config = station_config(scenario)
    by_index = {
        index: Station(scenario.stations.station_id(index), index, config, clock, stats)
        for index in scenario.stations.station_indices
    }
    members = list(by_index.values())
    pump = EventPump(clock)
    world = World(scenario, clock, pump, by_index, load_catalogue(scenario.ev_fleet.extra_models))
    schedule = schedule_for(
        scenario,
        members,
        by_index,
        clock=clock,
        start=T0,
        stats=stats,
        rng=np.random.default_rng(SEED),
    )
    assert schedule is not None
    seen = Seen(clock)
    connections: dict[str, int] = {}

    async def serve(station_id: str, channel: TextChannel, version: OcppVersion) -> None:
        number = connections[station_id] = connections.get(station_id, 0) + 1
        seen.opened.append((clock.sim_now(), station_id))
        try:
            await csms.attach(station_id, _Recording(channel, seen, station_id, number), version)
        finally:
            seen.closed.append((clock.sim_now(), station_id))

    def connect(station: Station) -> AbstractAsyncContextManager[Link]:
        return open_memory_link(
            station.id,
            serve,
            station.handle,
            spawn=station.spawn,
            observer=stats,
            ocpp_version=version,
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump.run)
        for station in members:
            await nursery.start(station.run, schedule.connect(connect))
        world.start()
        nursery.start_soon(schedule.run)
        yield Fleet(members, csms, stats, seen, clock, schedule)
        nursery.cancel_scope.cancel()


# -- drop ------------------------------------------------------------------------------------


async def test_a_drop_closes_its_share_of_connections_and_they_reopen_after_the_back_off(
    autojump_clock: MockClock,
) -> None:
    async with fleet([{"kind": "drop", "at": "+10m", "share": 0.5}]) as run:
        await run.run_until(700)
        hit = {station.id for station in run.hit(0, 0.5)}
        assert 0 < len(hit) < len(run.stations)
        assert {sid for at_s, sid in run.seen.closed if at_s == 600} == hit
        for station in run.stations:
            if station.id in hit:
                # RetryBackOffWaitMinimum (30 s), no random range.
                assert run.seen.opened_at(station.id)[1:] == [630]
            else:
                assert run.seen.closed_at(station.id) == []
        assert run.faults() == {"drop": len(hit)}


async def test_drops_at_a_rate_close_connections_as_often_as_asked_and_each_is_counted(
    autojump_clock: MockClock,
) -> None:
    faults = [{"kind": "drop", "rate_per_station_hour": 3, "at": "+0s", "for": "1h"}]
    async with fleet(faults) as run:
        await run.run_until(3700)
        closes = [at_s for at_s, _ in run.seen.closed]
        assert all(0 < at_s < 3600 for at_s in closes)
        # 10 stations at 3 an hour for an hour: about 30 (some fall on a station already down).
        assert 15 <= len(closes) <= 45
        assert run.faults() == {"drop": len(closes)}
        assert all(run.csms.is_connected(station.id) for station in run.stations)


# -- partition -------------------------------------------------------------------------------


@VERSIONS
async def test_a_partition_silences_its_stations_then_they_deliver_their_offline_events(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    faults = [{"kind": "partition", "at": "+20m", "for": "20m", "share": 0.5}]
    async with fleet(faults, count=6, version=version, sections=busy_sites(("depot", 6))) as run:
        await run.run_until(2400 + 150)
        hit = run.hit(0, 0.5)
        assert 0 < len(hit) < 6
        for station in run.stations:
            during = [f for f in run.seen.frames if f[1] == station.id and 1200 < f[0] < 2400]
            if station not in hit:
                assert during, "a station outside the partition goes on talking"
                continue
            assert during == []
            assert run.seen.closed_at(station.id) == [1200]
            # Attempts fail through the window (30, 60, 120, 120 ... s apart); the first one
            # after it succeeds, within the longest back-off.
            reopened = run.seen.opened_at(station.id)[1]
            assert 2400 <= reopened <= 2400 + 120
            events = [
                payload
                for at_s, payload in run.seen.messages(station.id, "TransactionEvent")
                if at_s >= reopened
            ]
            offline = [payload for payload in events if payload.get("offline")]
            assert offline, "the events made during the partition arrive, marked offline"
            first_online = next(
                (i for i, p in enumerate(events) if not p.get("offline")), len(events)
            )
            assert all(p.get("offline") for p in events[:first_online])
        assert run.stats.connection_attempts_by_outcome.get("refused", 0) >= len(hit)
        assert run.faults() == {"partition": len(hit)}


# -- storm -----------------------------------------------------------------------------------


async def test_a_storm_reconnects_every_station_at_the_same_moment_without_back_off(
    autojump_clock: MockClock,
) -> None:
    async with fleet([{"kind": "storm", "at": "+10m"}], count=6) as run:
        await run.run_until(700)
        for station in run.stations:
            assert run.seen.closed_at(station.id) == [600]
            assert run.seen.opened_at(station.id)[1:] == [600]
            boots = run.seen.messages(station.id, "BootNotification")
            assert len(boots) == 1, "a reconnect is not a reboot"
        assert run.faults() == {"storm": 6}


# -- slow and stuck --------------------------------------------------------------------------

GET_HEARTBEAT_INTERVAL = {
    "getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    ]
}


def csms_calls_between(run: Fleet, start_s: float, end_s: float) -> int:
    return sum(
        1
        for at_s, _, text in run.seen.sent
        if start_s <= at_s < end_s and orjson.loads(text)[0] == 2
    )


async def test_slow_stations_answer_the_csms_after_the_delay_during_the_window_only(
    autojump_clock: MockClock,
) -> None:
    faults = [{"kind": "slow", "at": "+10m", "for": "10m", "delay_s": 5}]
    async with fleet(faults, count=2) as run:
        station_id = run.stations[0].id
        await run.run_until(700)
        asked_at = trio.current_time()
        answer = await run.csms.call(station_id, "GetVariables", GET_HEARTBEAT_INTERVAL)
        assert answer["getVariableResult"][0]["attributeStatus"] == "Accepted"
        assert trio.current_time() - asked_at == pytest.approx(5.0)
        await run.run_until(1300)
        asked_at = trio.current_time()
        await run.csms.call(station_id, "GetVariables", GET_HEARTBEAT_INTERVAL)
        assert trio.current_time() - asked_at < 0.01
        assert run.faults() == {"slow": csms_calls_between(run, 600, 1200)}
        assert run.faults()["slow"] >= 1


async def test_stuck_stations_never_answer_the_csms_during_the_window(
    autojump_clock: MockClock,
) -> None:
    faults = [{"kind": "stuck", "at": "+10m", "for": "10m", "share": 1}]
    async with fleet(faults, count=2) as run:
        station_id = run.stations[1].id
        await run.run_until(700)
        with pytest.raises(CallTimeout):
            await run.csms.call(station_id, "GetVariables", GET_HEARTBEAT_INTERVAL, timeout_s=30)
        await run.run_until(1300)
        answer = await run.csms.call(station_id, "GetVariables", GET_HEARTBEAT_INTERVAL)
        assert answer["getVariableResult"][0]["attributeStatus"] == "Accepted"
        assert run.faults() == {"stuck": csms_calls_between(run, 600, 1200)}
        assert run.faults()["stuck"] >= 1


# -- clock drift -----------------------------------------------------------------------------


async def test_drifting_stations_send_timestamps_off_by_the_drift_per_day(
    autojump_clock: MockClock,
) -> None:
    # 8640 s a day is 0.1 s per second: 6 minutes after an hour.
    faults = [{"kind": "clock_drift", "share": 0.5, "drift_s_per_day": 8640}]
    async with fleet(faults, count=6) as run:
        hit = {station.id for station in run.hit(0, 0.5)}
        assert 0 < len(hit) < 6
        await run.run_until(3600)
        for station in run.stations:
            since = run.csms.station(station.id).messages_received
            await run.csms.call(
                station.id,
                "TriggerMessage",
                {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}},
            )
            with trio.fail_after(5):
                status = await run.csms.wait_for_message(
                    station.id, "StatusNotification", since=since
                )
            sent_s = dt.datetime.fromisoformat(status["timestamp"]).timestamp()
            off_s = sent_s - run.clock.epoch_s()
            expected_s = 360.0 if station.id in hit else 0.0
            assert off_s == pytest.approx(expected_s, abs=1.0)
        assert run.faults() == {"clock_drift": len(hit)}


# -- power cut -------------------------------------------------------------------------------


def open_transactions_at(run: Fleet, station_id: str, at_s: float) -> set[str]:
    started: set[str] = set()
    for sent_s, payload in run.seen.messages(station_id, "TransactionEvent"):
        transaction_id = payload["transactionInfo"]["transactionId"]
        if payload["eventType"] == "Started" and sent_s < at_s:
            started.add(transaction_id)
        elif payload["eventType"] == "Ended" and sent_s < at_s:
            started.discard(transaction_id)
    return started


@VERSIONS
async def test_a_power_cut_reboots_the_site_with_power_up_and_resumes_as_the_version_says(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    faults = [{"kind": "power_cut", "site": "dark", "at": "+20m", "for": "5m"}]
    sections = busy_sites(("dark", 2), ("lit", 2))
    async with fleet(faults, count=4, version=version, sections=sections) as run:
        await run.run_until(1200 + 300 + 60)
        dark, lit = run.stations[:2], run.stations[2:]
        resumed_or_ended = 0
        for station in dark:
            assert run.seen.closed_at(station.id) == [1200]
            # The power is back after 5 minutes, and the station boots in config.reboot_s.
            assert run.seen.opened_at(station.id)[1:] == [1200 + 300 + station.config.reboot_s]
            boots = run.seen.messages(station.id, "BootNotification")
            assert [p["reason"] for _, p in boots] == ["PowerUp", "PowerUp"]
            assert boots[1][0] > 1500
            after = [
                p for at_s, p in run.seen.messages(station.id, "TransactionEvent") if at_s > 1500
            ]
            for transaction_id in open_transactions_at(run, station.id, 1200):
                mine = [p for p in after if p["transactionInfo"]["transactionId"] == transaction_id]
                if version == "2.1":
                    assert mine[0]["triggerReason"] == "TxResumed"
                    assert mine[0]["eventType"] == "Updated"
                else:
                    ended = [p for p in mine if p["eventType"] == "Ended"]
                    assert ended[0]["transactionInfo"]["stoppedReason"] == "PowerLoss"
                resumed_or_ended += 1
        assert resumed_or_ended >= 1, "EVs were charging when the power went"
        for station in lit:
            assert run.seen.closed_at(station.id) == []
        assert run.faults() == {"power_cut": 2}


# -- malformed frames and duplicate ids -------------------------------------------------------


def is_malformed(text: str) -> bool:
    """Whether the CSMS got a frame that breaks OCPP-J (or a schema, for a Heartbeat)."""
    try:
        frame = parse(text)
    except FrameError:
        return True
    payload = getattr(frame, "payload", None)
    return getattr(frame, "action", None) == "Heartbeat" and bool(payload)


async def test_malformed_frames_reach_the_csms_at_the_rate_asked_and_the_stations_go_on(
    autojump_clock: MockClock,
) -> None:
    faults = [{"kind": "malformed", "rate_per_station_hour": 6, "for": "1h"}]
    async with fleet(faults, count=2) as run:
        await run.run_until(3700)
        malformed = [f for f in run.seen.frames if is_malformed(f[3])]
        # Two stations at 6 an hour for an hour: about 12.
        assert 4 <= len(malformed) <= 25
        assert run.faults() == {"malformed": len(malformed)}
        assert all(f[0] < 3600 for f in malformed)
        noticed = sum(sum(run.csms.station(s.id).violations.values()) for s in run.stations)
        assert noticed == len(malformed), "the CSMS noticed every one"
        assert all(run.csms.is_connected(station.id) for station in run.stations)
        assert run.seen.opened_at(run.stations[0].id) == [0]


async def test_a_call_is_sent_again_with_its_id_at_the_rate_asked(
    autojump_clock: MockClock,
) -> None:
    faults = [{"kind": "duplicate_id", "rate_per_station_hour": 6, "for": "1h"}]
    async with fleet(faults, count=2, stations={"heartbeat_interval_s": 60}) as run:
        await run.run_until(3700)
        first_text: dict[tuple[str, int, str], str] = {}
        duplicates = 0
        for _, station_id, connection, text in run.seen.frames:
            frame = orjson.loads(text)
            if frame[0] != 2:
                continue
            key = (station_id, connection, frame[1])
            if key in first_text:
                assert text == first_text[key], "the same CALL, with the same id"
                duplicates += 1
            else:
                first_text[key] = text
        assert 4 <= duplicates <= 25
        assert run.faults() == {"duplicate_id": duplicates}


# -- over a loopback WebSocket, and from the command line ------------------------------------


async def test_a_storm_over_websockets_closes_every_socket_and_reopens_it_at_once() -> None:
    """On the real clock, through the stations' own WebSocket client and the embedded CSMS's
    server: the fault closes real sockets, and the CSMS sees each station come back."""
    from fleetsim.simulator.transport import ConnectionSettings, open_station_link

    scenario = Scenario.model_validate(
        {
            "name": "storm",
            "seed": SEED,
            "start": T0.isoformat(),
            "stations": {"count": 3},
            "csms": BACK_OFF,
            **NO_ARRIVALS,
            "faults": [{"kind": "storm", "at": "+1s"}],
        }
    )
    clock = SimClock(T0, 1.0)
    clock.start()
    csms = Csms(CsmsConfig(), clock=clock.epoch_s)
    stats = RunStats()
    config = station_config(scenario)
    by_index = {
        index: Station(scenario.stations.station_id(index), index, config, clock, stats)
        for index in scenario.stations.station_indices
    }
    members = list(by_index.values())
    schedule = schedule_for(
        scenario,
        members,
        by_index,
        clock=clock,
        start=T0,
        stats=stats,
        rng=np.random.default_rng(SEED),
    )
    assert schedule is not None
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(csms.serve, "127.0.0.1", 0)
            settings = ConnectionSettings(csms_url=f"ws://127.0.0.1:{port}/ocpp")

            def connect(station: Station) -> AbstractAsyncContextManager[Link]:
                return open_station_link(
                    station.id, settings, station.handle, spawn=station.spawn, observer=stats
                )

            for station in members:
                await nursery.start(station.run, schedule.connect(connect))
            for station in members:
                await station.wait_synced()
            nursery.start_soon(schedule.run)
            for station in members:
                while run_connections(csms, station.id) < 2:
                    await trio.sleep(0.05)
                await station.wait_synced()
            assert stats.faults_injected_by_kind == {"storm": 3}
            assert stats.connection_attempts_by_outcome == {"ok": 6}
            # Back at once: well within the 30 s RetryBackOffWaitMinimum.
            assert clock.sim_now() < 10
            nursery.cancel_scope.cancel()


def run_connections(csms: Csms, station_id: str) -> int:
    return csms.station(station_id).connections


def test_the_fault_flags_make_a_fast_run_produce_and_count_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    summary_path = tmp_path / "summary.json"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "scenarios/quickstart.yaml",
            "--fast",
            "--no-progress",
            "--stations",
            "10",
            "--summary-json",
            str(summary_path),
            "--partition",
            "50%@+2m+5m",
            "--storm",
            "1@+8m",  # the run lasts ten simulated minutes
            "--malformed-rate",
            "30",
        ],
    )
    assert result.exit_code == ExitCode.OK, result.output
    summary = json.loads(summary_path.read_text())
    faults = summary["faults_injected"]
    assert faults["storm"] == 10
    assert 1 <= faults["partition"] <= 9
    assert faults["malformed"] >= 1
    assert "faults injected on purpose: malformed" in result.output
    assert summary["station_failures"] == 0


def test_a_fault_flag_written_wrong_says_how_to_write_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(
        app, ["run", "scenarios/quickstart.yaml", "--fast", "--partition", "20%@08:00"]
    )
    assert result.exit_code == ExitCode.BAD_SCENARIO
    assert "--partition 20%@08:00: write SHARE@AT+FOR" in result.output


async def test_the_live_view_shows_the_faults_in_effect(autojump_clock: MockClock) -> None:
    from rich.console import Console

    from fleetsim.simulator.report import ProgressLine

    faults = [
        {"kind": "partition", "at": "+20m", "for": "20m", "share": 0.5},
        {"kind": "slow", "at": "+30m", "delay_s": 2, "share": 0.25},
    ]
    async with fleet(faults, count=4) as run:
        progress = ProgressLine(
            lambda: run.stats,
            4,
            Console(width=200, record=True),
            clock=run.clock,
            active_faults=run.schedule.active,
        )
        await run.run_until(1000)
        assert run.schedule.active() == []
        await run.run_until(2000)
        assert run.schedule.active() == [
            "partition 50% 12:20-12:40 UTC",
            "slow 2 s 25% from 12:30 UTC",
        ]
        line = progress.line(1.0, width=200)
        assert line.endswith("faults: partition 50% 12:20-12:40 UTC, slow 2 s 25% from 12:30 UTC")
        await run.run_until(2500)
        assert run.schedule.active() == ["slow 2 s 25% from 12:30 UTC"]
