"""What a writable variable changes, for the variables no block's own test sets over OCPP.

Each case sets the variable through SetVariables to a value other than its default and checks
what follows through OCPP on simulated time, so it fails if the station kept acting on the
default.  `test_every_writable_variable` names, for every writable variable, the test of what
it does: these, or the block's own test.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.link import ConnectError, Link
from fleetsim.simulator.ocpp import ErrorCode, OcppVersion, RpcError
from fleetsim.simulator.run import station_config
from fleetsim.simulator.station import Station
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import open_memory_link
from tests.helpers import STATION_ID, T0, busy_site, one_station_scenario, station_on_memory_link
from tests.station.steps import (
    REMOTE_DRIVERS,
    arrives,
    messages_now,
    running_transaction,
    set_variables,
)

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
#: Remote starts only: no driver arrives by themself.
REMOTE_ONLY = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.3, arrivals_per_evse_per_day=0)
DEFAULT_MEASURAND = "Energy.Active.Import.Register"


def measurands(event: Mapping[str, Any]) -> set[str]:
    """The measurands of an event's meter values (an unnamed sample is the default one)."""
    return {
        sampled.get("measurand", DEFAULT_MEASURAND)
        for meter_value in event.get("meterValue", ())
        for sampled in meter_value["sampledValue"]
    }


async def updated_event(csms: Csms, transaction_id: str, since: int) -> Mapping[str, Any]:
    """The next Updated event of `transaction_id` that carries meter values."""
    return await arrives(
        csms,
        "TransactionEvent",
        lambda p: (
            p["eventType"] == "Updated"
            and p["transactionInfo"]["transactionId"] == transaction_id
            and "meterValue" in p
        ),
        since=since,
    )


@VERSIONS
async def test_ev_connection_timeout_ends_a_remote_start_after_that_many_seconds(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    scenario = {**REMOTE_ONLY, "ev_fleet": {"remote_start_plugin_delay_s": None}}
    async with station_on_memory_link(scenario=scenario, ocpp_version=version) as (station, csms):
        await set_variables(csms, {("TxCtrlr", "EVConnectionTimeOut"): "37"})
        transaction_id = await running_transaction(csms)
        started_s = station.clock.sim_now()
        ended = await arrives(
            csms,
            "TransactionEvent",
            lambda p: p["eventType"] == "Ended",
            since=messages_now(csms),
        )
        ended_after_s = station.clock.sim_now() - started_s
    assert ended["transactionInfo"]["transactionId"] == transaction_id
    assert ended["triggerReason"] == "EVConnectTimeout"
    assert ended_after_s == pytest.approx(37, abs=1)


@VERSIONS
async def test_tx_started_and_updated_measurands_are_what_the_events_carry(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=REMOTE_DRIVERS, ocpp_version=version) as (_, csms):
        await set_variables(
            csms,
            {
                ("SampledDataCtrlr", "TxStartedMeasurands"): "Power.Active.Import,Current.Import",
                ("SampledDataCtrlr", "TxUpdatedMeasurands"): "Current.Import",
                ("SampledDataCtrlr", "TxUpdatedInterval"): "60",
            },
        )
        since = messages_now(csms)
        transaction_id = await running_transaction(csms, charging=True)
        started = await arrives(
            csms, "TransactionEvent", lambda p: p["eventType"] == "Started", since=since
        )
        updated = await updated_event(csms, transaction_id, messages_now(csms))
    assert measurands(started) == {"Power.Active.Import", "Current.Import"}
    assert measurands(updated) == {"Current.Import"}


@VERSIONS
async def test_sampled_data_disabled_sends_transaction_events_without_meter_values(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=REMOTE_DRIVERS, ocpp_version=version) as (_, csms):
        await set_variables(
            csms,
            {
                ("SampledDataCtrlr", "Enabled"): "false",
                ("SampledDataCtrlr", "TxUpdatedInterval"): "60",
            },
        )
        since = messages_now(csms)
        transaction_id = await running_transaction(csms, charging=True)
        # Two intervals of charging: an enabled station would have sampled twice by then.
        with trio.move_on_after(150):
            await updated_event(csms, transaction_id, since)
            pytest.fail("an Updated event carried meter values with SampledDataCtrlr disabled")
        events = [
            payload
            for action, payload in list(csms.station(STATION_ID).messages)
            if action == "TransactionEvent"
        ]
    assert events[0]["eventType"] == "Started"
    assert not [event for event in events if "meterValue" in event]


async def _reconnect_delay_s(station: Any, csms: Csms) -> float:
    """Drop the connection from the CSMS side; the simulated seconds until the station is back."""
    await csms.disconnect(STATION_ID)
    with trio.fail_after(10):
        await csms.wait_disconnected(STATION_ID)
    dropped_s = station.clock.sim_now()
    with trio.fail_after(3600):
        await csms.wait_connected(STATION_ID)
    return float(station.clock.sim_now() - dropped_s)


async def test_retry_back_off_wait_minimum_and_random_range_set_the_reconnect_delay(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link() as (station, csms):
        await set_variables(
            csms,
            {
                ("OCPPCommCtrlr", "RetryBackOffWaitMinimum"): "250",
                ("OCPPCommCtrlr", "RetryBackOffRandomRange"): "0",
            },
        )
        exact_s = await _reconnect_delay_s(station, csms)
        await set_variables(csms, {("OCPPCommCtrlr", "RetryBackOffRandomRange"): "400"})
        jittered_s = await _reconnect_delay_s(station, csms)
    assert exact_s == pytest.approx(250, abs=1)
    assert 251 < jittered_s <= 650 + 1


async def test_retry_back_off_repeat_times_caps_the_doubling(autojump_clock: MockClock) -> None:
    """After the connection drops, the CSMS refuses the station's next attempts: the waits
    between them double RetryBackOffRepeatTimes times, then stay."""
    clock = SimClock(T0)
    clock.start()
    csms = Csms(CsmsConfig(), clock=clock.epoch_s)
    stats = RunStats()
    station = Station(STATION_ID, 1, station_config(one_station_scenario()), clock, stats)
    refusing = [0]
    attempts_s: list[float] = []

    def connect(s: Station) -> AbstractAsyncContextManager[Link]:
        attempts_s.append(clock.sim_now())
        if refusing[0] > 0:
            refusing[0] -= 1
            raise ConnectError("the CSMS refuses connections", "refused")
        return open_memory_link(s.id, csms.attach, s.handle, spawn=s.spawn, observer=stats)

    async with trio.open_nursery() as nursery:
        await nursery.start(station.run, connect)
        with trio.fail_after(3600):
            await station.wait_synced()
        await set_variables(
            csms,
            {
                ("OCPPCommCtrlr", "RetryBackOffWaitMinimum"): "10",
                ("OCPPCommCtrlr", "RetryBackOffRandomRange"): "0",
                ("OCPPCommCtrlr", "RetryBackOffRepeatTimes"): "2",
            },
        )
        refusing[0] = 5
        await csms.disconnect(STATION_ID)
        attempts_s[:] = [clock.sim_now()]  # the drop, then the attempts
        with trio.fail_after(3600):
            while len(attempts_s) < 7:
                await trio.sleep(1)
            await csms.wait_connected(STATION_ID)
        nursery.cancel_scope.cancel()
    gaps_s = [later - earlier for earlier, later in itertools.pairwise(attempts_s)]
    # The drop itself is no failure (the first attempt waits the minimum); each refused
    # attempt doubles the wait, twice at most; the sixth attempt connects.
    assert gaps_s == pytest.approx([10, 10, 20, 40, 40, 40])


@VERSIONS
async def test_message_attempts_and_interval_set_over_ocpp_pace_the_retries(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """E13 with values the CSMS chose: 2 attempts in all, 25 s times the attempt number apart."""
    attempts_s: list[float] = []
    clock_of: list[Any] = []

    def refuse_started(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        if payload["eventType"] == "Started":
            attempts_s.append(clock_of[0].sim_now())
            raise RpcError(ErrorCode.INTERNAL_ERROR, "database is down")
        return {}

    config = CsmsConfig(response_overrides={"TransactionEvent": refuse_started})
    async with station_on_memory_link(
        csms_config=config, scenario=REMOTE_DRIVERS, ocpp_version=version
    ) as (station, csms):
        clock_of.append(station.clock)
        item: dict[str, Any] = {
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "MessageAttempts", "instance": "TransactionEvent"},
            "attributeValue": "4",
        }
        interval = {
            **item,
            "variable": {"name": "MessageAttemptInterval", "instance": "TransactionEvent"},
            "attributeValue": "25",
        }
        answer = await csms.call(STATION_ID, "SetVariables", {"setVariableData": [item, interval]})
        assert [r["attributeStatus"] for r in answer["setVariableResult"]] == ["Accepted"] * 2
        await csms.call(
            STATION_ID,
            "RequestStartTransaction",
            {"remoteStartId": 1, "idToken": {"idToken": "R1", "type": "Central"}, "evseId": 1},
        )
        with trio.fail_after(3600):
            while len(attempts_s) < 4:
                await trio.sleep(1)
            await trio.sleep(600)  # a fifth attempt would have come by now
    gaps_s = [later - earlier for earlier, later in itertools.pairwise(attempts_s)]
    assert len(attempts_s) == 4
    assert gaps_s == pytest.approx([25, 50, 75])


@VERSIONS
async def test_auth_ctrlr_disabled_lets_any_token_charge_without_asking(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """With AuthCtrlr.Enabled false the station authorizes nothing itself: a remote start of a
    token the CSMS would refuse starts a transaction, and no Authorize goes out (with it true,
    `test_with_authorize_remote_start_a_refused_token_starts_nothing`)."""
    csms_config = CsmsConfig(accepted_id_tokens=["GOOD"])
    async with station_on_memory_link(
        csms_config=csms_config, scenario=REMOTE_DRIVERS, ocpp_version=version
    ) as (_, csms):
        await set_variables(
            csms, {("AuthCtrlr", "AuthorizeRemoteStart"): "true", ("AuthCtrlr", "Enabled"): "false"}
        )
        await running_transaction(csms, id_token={"idToken": "BAD", "type": "ISO14443"})
        actions = [action for action, _ in list(csms.station(STATION_ID).messages)]
    assert "Authorize" not in actions
