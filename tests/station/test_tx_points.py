"""Where transactions start and stop, as the CSMS sees it (E01, E04, E06, E08, E10, E15, E16).

TxStartPoint and TxStopPoint are set with SetVariables, as a CSMS would, before the first EV
of a busy site arrives; each test then follows one transaction on the wire: its triggerReasons,
chargingStates, stoppedReason and meter values, with seqNo checked by the embedded CSMS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import EvseConfig, Station, StationConfig
from fleetsim.simulator.station.ev_driver import DRIVE_OFF_S, WALK_TO_CAR_S
from tests.helpers import STATION_ID, busy_site, station_on_memory_link
from tests.station.steps import set_variable_statuses

VERSIONS: tuple[OcppVersion, ...] = ("2.1", "2.0.1")
# Test EVs that each want 4 kWh (20 % to 30 % of 40 kWh at 11 kW) and stay 30 minutes.
CABLE_FIRST = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.3)
#: Seconds the station waits for an EV to come back (TxCtrlr.EVConnectionTimeOut default).
EV_CONNECTION_TIMEOUT_S = 120
#: Simulated seconds within which a test's transaction has begun and ended.
WITHIN_S = 4 * 3600

Event = dict[str, Any]


def _config(version: OcppVersion, **overrides: Any) -> StationConfig:
    return StationConfig(**({"ocpp_version": version, "meter_interval_s": 300} | overrides))


async def _set_points(csms: Csms, *, start: str | None = None, stop: str | None = None) -> None:
    values = {}
    if start is not None:
        values["TxCtrlr", "TxStartPoint"] = start
    if stop is not None:
        values["TxCtrlr", "TxStopPoint"] = stop
    assert await set_variable_statuses(csms, values) == ["Accepted"] * len(values)


def _events(csms: Csms, transaction_id: str) -> list[Event]:
    return [
        dict(payload)
        for action, payload in csms.station(STATION_ID).messages
        if action == "TransactionEvent"
        and payload["transactionInfo"]["transactionId"] == transaction_id
    ]


async def _next_transaction(csms: Csms, since: int, within_s: float = WITHIN_S) -> list[Event]:
    """The events of the first transaction that starts after message `since`, once ended."""
    with trio.fail_after(within_s):
        started = await csms.wait_for_message(
            STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started", since=since
        )
        transaction_id = started["transactionInfo"]["transactionId"]
        await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p: (
                p["eventType"] == "Ended"
                and p["transactionInfo"]["transactionId"] == transaction_id
            ),
            since=since,
        )
    events = _events(csms, transaction_id)
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert csms.station(STATION_ID).transactions[transaction_id].seq_nos_complete
    return events


def _steps(events: list[Event]) -> list[tuple[str, str, str | None, str | None]]:
    """(eventType, triggerReason, chargingState, stoppedReason) of each event but the periodic
    meter values."""
    return [
        (
            e["eventType"],
            e["triggerReason"],
            e["transactionInfo"].get("chargingState"),
            e["transactionInfo"].get("stoppedReason"),
        )
        for e in events
        if e["triggerReason"] != "MeterValuePeriodic"
    ]


def _sample(event: Event, measurand: str) -> float:
    [meter_value] = event["meterValue"]
    return float(
        next(s["value"] for s in meter_value["sampledValue"] if s.get("measurand") == measurand)
    )


def _register_wh(event: Event) -> float:
    return _sample(event, "Energy.Active.Import.Register")


def _epoch(event: Event) -> float:
    return dt.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def _first(events: list[Event], trigger_reason: str) -> Event:
    return next(e for e in events if e["triggerReason"] == trigger_reason)


# -- E01: start points --------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("start_point", "started_as"),
    [
        ("ParkingBayOccupancy", ("EVDetected", None)),
        ("EVConnected", ("CablePluggedIn", "EVConnected")),
        ("Authorized", ("Authorized", "EVConnected")),
        ("PowerPathClosed", ("Authorized", "EVConnected")),
        ("EnergyTransfer", ("ChargingStateChanged", "Charging")),
    ],
)
async def test_a_transaction_starts_when_its_start_point_becomes_true(
    autojump_clock: MockClock,
    version: OcppVersion,
    start_point: str,
    started_as: tuple[str, str | None],
) -> None:
    async with station_on_memory_link(_config(version), scenario=CABLE_FIRST) as (_, csms):
        await _set_points(csms, start=start_point)
        events = await _next_transaction(csms, csms.station(STATION_ID).messages_received)
    started = events[0]
    assert (started["triggerReason"], started["transactionInfo"].get("chargingState")) == (
        started_as
    )
    # Energy flows only inside a transaction: none before it started.
    assert _register_wh(started) == pytest.approx(0.0, abs=1e-6)
    assert "idToken" in started if start_point in ("Authorized", "EnergyTransfer") else True
    assert any(e["transactionInfo"].get("chargingState") == "Charging" for e in events)
    assert _steps(events)[-1] == ("Ended", "EVCommunicationLost", "Idle", "EVDisconnected")
    assert _register_wh(events[-1]) == pytest.approx(4000.0, abs=0.1)


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_parking_bay_start_gets_the_token_of_an_id_token_first_driver(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    token_first = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.3, id_token_first_share=1)
    async with station_on_memory_link(_config(version), scenario=token_first) as (_, csms):
        await _set_points(csms, start="ParkingBayOccupancy")
        events = await _next_transaction(csms, csms.station(STATION_ID).messages_received)
    assert _steps(events)[:3] == [
        ("Started", "EVDetected", None, None),
        ("Updated", "Authorized", None, None),
        ("Updated", "CablePluggedIn", "EVConnected", None),
    ]
    assert "idToken" not in events[0]
    assert events[1]["idToken"]["type"] == "ISO14443"
    # The driver walked to the car before plugging in.
    assert _epoch(events[2]) - _epoch(events[1]) == pytest.approx(WALK_TO_CAR_S, abs=0.01)


async def test_data_signed_is_refused_since_the_meter_signs_nothing(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link() as (_, csms):
        for variable in ("TxStartPoint", "TxStopPoint"):
            assert await set_variable_statuses(csms, {("TxCtrlr", variable): "DataSigned"}) == [
                "Rejected"
            ]


# -- E06: stop points ---------------------------------------------------------------------------

UNPLUGGED = ("Ended", "EVCommunicationLost", "Idle", "EVDisconnected")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("stop_point", "last_steps", "after_unplug_s"),
    [
        ("EVConnected", [UNPLUGGED], 0.0),
        ("PowerPathClosed", [UNPLUGGED], 0.0),
        # StopTxOnEVSideDisconnect (true) ends the authorization as the cable leaves the EV.
        ("Authorized", [UNPLUGGED], 0.0),
        (
            "ParkingBayOccupancy",
            [
                ("Updated", "EVCommunicationLost", "Idle", None),
                ("Ended", "EVDeparted", "Idle", "EVDisconnected"),
            ],
            DRIVE_OFF_S,
        ),
        # No stop point sees the driver leave: the EV gets EVConnectionTimeOut to come back.
        (
            "",
            [
                ("Updated", "EVCommunicationLost", "Idle", None),
                ("Ended", "EVConnectTimeout", "Idle", "Timeout"),
            ],
            DRIVE_OFF_S + EV_CONNECTION_TIMEOUT_S,
        ),
    ],
)
async def test_a_transaction_ends_when_its_stop_point_stops_being_true(
    autojump_clock: MockClock,
    version: OcppVersion,
    stop_point: str,
    last_steps: list[tuple[str, str, str | None, str | None]],
    after_unplug_s: float,
) -> None:
    async with station_on_memory_link(_config(version), scenario=CABLE_FIRST) as (_, csms):
        await _set_points(csms, stop=stop_point)
        events = await _next_transaction(csms, csms.station(STATION_ID).messages_received)
    assert _steps(events)[-len(last_steps) :] == last_steps
    unplugged = _first(events, "EVCommunicationLost")
    assert _epoch(events[-1]) - _epoch(unplugged) == pytest.approx(after_unplug_s, abs=0.01)
    assert _register_wh(events[-1]) == pytest.approx(4000.0, abs=0.1)


@pytest.mark.parametrize("version", VERSIONS)
async def test_energy_transfer_as_stop_point_ends_the_transaction_when_the_ev_is_full(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(_config(version), scenario=CABLE_FIRST) as (_, csms):
        await _set_points(csms, stop="EnergyTransfer")
        events = await _next_transaction(csms, csms.station(STATION_ID).messages_received)
    assert _steps(events) == [
        ("Started", "CablePluggedIn", "EVConnected", None),
        ("Updated", "Authorized", "Charging", None),
        ("Ended", "ChargingStateChanged", "EVConnected", "StoppedByEV"),
    ]
    # 4 kWh at 11 kW: the EV is full 1309 s after the energy began to flow.
    assert _register_wh(events[-1]) == pytest.approx(4000.0, abs=0.1)
    assert _epoch(events[-1]) - _epoch(events[1]) == pytest.approx(4000 / 11000 * 3600, abs=0.01)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("stop_point", "after_deauthorization"),
    [
        ("Authorized", [("Ended", "Deauthorized", "EVConnected", "DeAuthorized")]),
        ("PowerPathClosed", [("Ended", "Deauthorized", "EVConnected", "DeAuthorized")]),
        # The authorization ends but not the transaction: the power path opens (E15) and the
        # transaction waits for its own stop point, the EV leaving.
        (
            "EVConnected",
            [("Updated", "Deauthorized", "EVConnected", None), UNPLUGGED],
        ),
    ],
)
async def test_an_authorization_that_ends_ends_the_transaction_per_its_stop_points(
    autojump_clock: MockClock,
    version: OcppVersion,
    stop_point: str,
    after_deauthorization: list[tuple[str, str, str | None, str | None]],
) -> None:
    """The CSMS answers the event that carries the driver's IdToken Invalid (E05) and
    StopTxOnInvalidId is true: the transaction's authorization ends (E06.FR.04)."""
    async with station_on_memory_link(
        _config(version), CsmsConfig(deauthorize_share=1.0), CABLE_FIRST
    ) as (_, csms):
        await _set_points(csms, stop=stop_point)
        events = await _next_transaction(csms, csms.station(STATION_ID).messages_received)
    steps = _steps(events)
    assert steps[:2] == [
        ("Started", "CablePluggedIn", "EVConnected", None),
        ("Updated", "Authorized", "Charging", None),
    ]
    assert steps[2:] == after_deauthorization
    periodic = [e for e in events if e["triggerReason"] == "MeterValuePeriodic"]
    assert all(_sample(e, "Power.Active.Import") == 0 for e in periodic)


# -- E10: the cable leaves the EV ---------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("stop_tx_on_ev_side_disconnect", "last_steps", "after_unplug_s"),
    [
        ("true", [UNPLUGGED], 0.0),
        # Suspended: the transaction waits for the EV to be plugged in again, which it is not.
        (
            "false",
            [
                ("Updated", "EVCommunicationLost", "Idle", None),
                ("Ended", "EVConnectTimeout", "Idle", "Timeout"),
            ],
            DRIVE_OFF_S + EV_CONNECTION_TIMEOUT_S,
        ),
    ],
)
async def test_an_ev_side_disconnect_deauthorizes_or_suspends_the_transaction(
    autojump_clock: MockClock,
    version: OcppVersion,
    stop_tx_on_ev_side_disconnect: str,
    last_steps: list[tuple[str, str, str | None, str | None]],
    after_unplug_s: float,
) -> None:
    async with station_on_memory_link(_config(version), scenario=CABLE_FIRST) as (_, csms):
        await _set_points(csms, stop="Authorized")
        assert await set_variable_statuses(
            csms, {("TxCtrlr", "StopTxOnEVSideDisconnect"): stop_tx_on_ev_side_disconnect}
        ) == ["Accepted"]
        events = await _next_transaction(csms, csms.station(STATION_ID).messages_received)
    assert _steps(events)[-len(last_steps) :] == last_steps
    unplugged = _first(events, "EVCommunicationLost")
    assert _epoch(events[-1]) - _epoch(unplugged) == pytest.approx(after_unplug_s, abs=0.01)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("unlock", "cable_back_s"), [("true", 0.0), ("false", WALK_TO_CAR_S)])
async def test_a_socket_outlet_keeps_the_drivers_cable_locked_per_unlock_on_ev_side_disconnect(
    autojump_clock: MockClock, version: OcppVersion, unlock: str, cable_back_s: float
) -> None:
    """With the bay as stop point the moment the car drives off shows how long the driver
    spent at the station: at once with the cable unlocked, after presenting the IdToken to
    the station with it kept locked."""
    config = _config(version, evses=(EvseConfig(connector_types=("sType2",)),))
    async with station_on_memory_link(config, scenario=CABLE_FIRST) as (_, csms):
        await _set_points(csms, stop="ParkingBayOccupancy")
        assert await set_variable_statuses(
            csms, {("OCPPCommCtrlr", "UnlockOnEVSideDisconnect"): unlock}
        ) == ["Accepted"]
        events = await _next_transaction(csms, csms.station(STATION_ID).messages_received)
    assert _steps(events)[-2:] == [
        ("Updated", "EVCommunicationLost", "Idle", None),
        ("Ended", "EVDeparted", "Idle", "EVDisconnected"),
    ]
    unplugged = _first(events, "EVCommunicationLost")
    assert _epoch(events[-1]) - _epoch(unplugged) == pytest.approx(
        cable_back_s + DRIVE_OFF_S, abs=0.01
    )


async def test_a_station_whose_cables_are_fixed_has_no_lock_to_configure(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link() as (_, csms):
        assert await set_variable_statuses(
            csms, {("OCPPCommCtrlr", "UnlockOnEVSideDisconnect"): "false"}
        ) == ["Rejected"]


# -- E15: the end of charging -------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_end_of_charging_is_reported_as_the_evs_state_changes(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(_config(version), scenario=CABLE_FIRST) as (_, csms):
        events = await _next_transaction(csms, 0)
    assert _steps(events) == [
        ("Started", "CablePluggedIn", "EVConnected", None),
        ("Updated", "Authorized", "Charging", None),
        ("Updated", "ChargingStateChanged", "SuspendedEV", None),
        UNPLUGGED,
    ]
    full = _first(events, "ChargingStateChanged")
    after = [e for e in events if _epoch(e) > _epoch(full) and "meterValue" in e]
    assert after
    assert all(_register_wh(e) == pytest.approx(4000.0, abs=0.1) for e in after)
    assert all(
        _sample(e, "Power.Active.Import") == 0
        for e in after
        if e["triggerReason"] == "MeterValuePeriodic"
    )


# -- E16: limits a 2.1 CSMS sets ----------------------------------------------------------------


def _limits(**by_trigger: Mapping[str, Any]) -> CsmsConfig:
    """A CSMS that answers the Started event, and events with the named triggerReasons, with a
    transactionLimit."""

    def answer(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        key = "Started" if payload["eventType"] == "Started" else payload["triggerReason"]
        limit = by_trigger.get(key)
        return {} if limit is None else {"transactionLimit": dict(limit)}

    return CsmsConfig(response_overrides={"TransactionEvent": answer})


async def _limited(csms_config: CsmsConfig, stop: str | None = None) -> tuple[list[Event], float]:
    """The first transaction under `csms_config`, and the register at its start."""
    async with station_on_memory_link(_config("2.1"), csms_config, CABLE_FIRST) as (_, csms):
        if stop is not None:
            await _set_points(csms, stop=stop)
        events = await _next_transaction(csms, csms.station(STATION_ID).messages_received)
    return events, _register_wh(events[0])


async def test_max_energy_ends_a_transaction_at_that_energy_on_the_meter(
    autojump_clock: MockClock,
) -> None:
    events, start_wh = await _limited(_limits(Started={"maxEnergy": 1500}), "EnergyTransfer")
    limit_set = _first(events, "LimitSet")
    assert limit_set["transactionInfo"]["transactionLimit"] == {"maxEnergy": 1500}
    assert _steps(events) == [
        ("Started", "CablePluggedIn", "EVConnected", None),
        ("Updated", "LimitSet", "EVConnected", None),
        ("Updated", "Authorized", "Charging", None),
        ("Ended", "EnergyLimitReached", "EVConnected", "EnergyLimitReached"),
    ]
    assert _register_wh(events[-1]) - start_wh == pytest.approx(1500.0, abs=0.01)


async def test_a_reached_limit_suspends_energy_until_the_transaction_ends(
    autojump_clock: MockClock,
) -> None:
    """Without EnergyTransfer among the stop points the transaction goes on without energy."""
    events, start_wh = await _limited(_limits(Started={"maxEnergy": 1500}))
    assert _steps(events)[-2:] == [
        ("Updated", "EnergyLimitReached", "SuspendedEVSE", None),
        UNPLUGGED,
    ]
    assert _register_wh(events[-1]) - start_wh == pytest.approx(1500.0, abs=0.01)


async def test_a_raised_limit_lets_energy_flow_again_up_to_the_new_limit(
    autojump_clock: MockClock,
) -> None:
    events, start_wh = await _limited(
        _limits(Started={"maxEnergy": 1000}, EnergyLimitReached={"maxEnergy": 2500})
    )
    steps = [step for step in _steps(events) if step[1] != "Authorized"]
    assert steps == [
        ("Started", "CablePluggedIn", "EVConnected", None),
        ("Updated", "LimitSet", "EVConnected", None),
        ("Updated", "EnergyLimitReached", "SuspendedEVSE", None),
        ("Updated", "LimitSet", "SuspendedEVSE", None),
        ("Updated", "ChargingStateChanged", "Charging", None),
        ("Updated", "EnergyLimitReached", "SuspendedEVSE", None),
        UNPLUGGED,
    ]
    raised = [e for e in events if e["triggerReason"] == "LimitSet"][1]
    assert raised["transactionInfo"]["transactionLimit"] == {"maxEnergy": 2500}
    assert _register_wh(events[-1]) - start_wh == pytest.approx(2500.0, abs=0.01)


async def test_max_time_ends_the_transaction_that_long_after_its_start(
    autojump_clock: MockClock,
) -> None:
    events, _ = await _limited(_limits(Started={"maxTime": 600}), "EnergyTransfer")
    assert _steps(events)[-1] == ("Ended", "TimeLimitReached", "EVConnected", "TimeLimitReached")
    assert _epoch(events[-1]) - _epoch(events[0]) == pytest.approx(600.0, abs=0.01)


async def test_max_soc_stops_the_energy_at_that_state_of_charge(
    autojump_clock: MockClock,
) -> None:
    events, start_wh = await _limited(_limits(Started={"maxSoC": 25}))
    assert ("Updated", "SoCLimitReached", "SuspendedEVSE", None) in _steps(events)
    # From 20 % to 25 % of a 40 kWh battery, no losses.
    assert _register_wh(events[-1]) - start_wh == pytest.approx(2000.0, abs=0.01)


async def test_a_cost_limit_is_neither_confirmed_nor_enforced_without_a_running_cost(
    autojump_clock: MockClock,
) -> None:
    events, start_wh = await _limited(_limits(Started={"maxCost": 0.5}))
    assert all(e["triggerReason"] != "LimitSet" for e in events)
    assert _register_wh(events[-1]) - start_wh == pytest.approx(4000.0, abs=0.1)


# -- E04, E08: transactions while offline -------------------------------------------------------


def _offline_config(version: OcppVersion) -> StationConfig:
    """A station that stays offline for ten simulated hours once its connection drops."""
    return _config(
        version,
        meter_interval_s=60,
        retry_backoff_wait_minimum_s=36_000.0,
        retry_backoff_random_range_s=0.0,
    )


async def _go_offline(station: Station, csms: Csms) -> None:
    await csms.disconnect(STATION_ID)
    with trio.fail_after(10):
        await csms.wait_disconnected(STATION_ID)
        while station.online:
            await trio.sleep(0.01)


def _check_delivered_in_order(csms: Csms, events: list[Event]) -> None:
    record = csms.station(STATION_ID).transactions[events[0]["transactionInfo"]["transactionId"]]
    assert record.seq_nos == list(range(len(events)))
    assert record.seq_nos_complete and record.ended
    assert [e["eventType"] for e in events] == ["Started"] + ["Updated"] * (len(events) - 2) + [
        "Ended"
    ]
    assert [_epoch(e) for e in events] == sorted(_epoch(e) for e in events)


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_transaction_started_and_ended_offline_reaches_the_csms_after_reconnecting(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(_offline_config(version), scenario=CABLE_FIRST) as (
        station,
        csms,
    ):
        await _go_offline(station, csms)
        offline_at = station.clock.epoch_s()
        events = await _next_transaction(csms, csms.station(STATION_ID).messages_received, 86400)
        with trio.fail_after(60):
            while station.tx_queue:
                await trio.sleep(1)
    assert all(e.get("offline") is True for e in events)
    assert _epoch(events[0]) > offline_at
    _check_delivered_in_order(csms, events)
    assert csms.station(STATION_ID).boots == 1  # a reconnect is not a reboot


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_transaction_stopped_offline_ends_with_its_queued_events_in_order(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(_offline_config(version), scenario=CABLE_FIRST) as (
        station,
        csms,
    ):
        with trio.fail_after(WITHIN_S):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["triggerReason"] == "Authorized"
            )
        await _go_offline(station, csms)
        transaction_id = started["transactionInfo"]["transactionId"]
        with trio.fail_after(86400):
            await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: (
                    p["eventType"] == "Ended"
                    and p["transactionInfo"]["transactionId"] == transaction_id
                ),
            )
        events = _events(csms, transaction_id)
    online = [e for e in events if not e.get("offline")]
    assert [e["triggerReason"] for e in online] == ["CablePluggedIn", "Authorized"]
    assert all(e.get("offline") is True for e in events[len(online) :])
    assert events[-1]["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    _check_delivered_in_order(csms, events)
