"""Every measurand a station advertises is computed from the simulation, and sanely (J)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import EvseConfig, StationConfig
from fleetsim.simulator.station.evse import NOMINAL_PHASE_VOLTAGE_V
from fleetsim.simulator.station.measurands import MEASURANDS
from fleetsim.simulator.station.registry import station_spec
from tests.helpers import STATION_ID, TEST_EV, busy_site, station_on_memory_link

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
DRIVER = {"idToken": "DRIVER-1", "type": "ISO14443"}
CHARGING = busy_site(dwell_s=7200, soc_start=0.2, target_soc=0.9, arrivals_per_evse_per_day=0)
_MEASURAND_LISTS = ("Measurands", "TxEndedMeasurands", "TxUpdatedMeasurands", "TxStartedMeasurands")


def advertised() -> tuple[str, ...]:
    spec = station_spec(StationConfig()).device_model
    [measurands] = [
        v.values_list
        for v in spec.variables
        if (v.component, v.variable) == ("AlignedDataCtrlr", "Measurands")
    ]
    return measurands


def test_every_measurand_list_offers_exactly_the_table() -> None:
    config = StationConfig(evses=(EvseConfig(), EvseConfig(bidirectional=True)))
    lists = [
        v.values_list
        for v in station_spec(config).device_model.variables
        if v.variable in _MEASURAND_LISTS
    ]
    assert len(lists) == 5
    assert all(values == tuple(MEASURANDS) for values in lists)
    # Not simulated, so not offered.
    assert not [name for name in MEASURANDS if name.startswith("Temperature")]


async def sample_while_charging(
    csms: Csms, measurands: tuple[str, ...], profile_limit_w: float | None = None
) -> dict[tuple[str, str | None], float]:
    """Start a remote session, and once the EV charges trigger a MeterValues of `measurands`:
    its values by (measurand, phase)."""
    answer = await csms.call(
        STATION_ID,
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": "AlignedDataCtrlr"},
                    "variable": {"name": "Measurands"},
                    "attributeValue": ",".join(measurands),
                }
            ]
        },
    )
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    start = {"idToken": DRIVER, "remoteStartId": 1}
    if profile_limit_w is not None:
        start["chargingProfile"] = {
            "id": 5,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": [
                {
                    "id": 1,
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": profile_limit_w}],
                }
            ],
        }
    answer = await csms.call(STATION_ID, "RequestStartTransaction", start)
    assert answer["status"] == "Accepted"
    with trio.fail_after(600):
        await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p: p["transactionInfo"].get("chargingState") == "Charging",
        )
    await trio.sleep(600)
    seen = csms.station(STATION_ID).messages_received
    answer = await csms.call(
        STATION_ID, "TriggerMessage", {"requestedMessage": "MeterValues", "evse": {"id": 1}}
    )
    assert answer["status"] == "Accepted"
    with trio.fail_after(30):
        meter: Mapping[str, Any] = await csms.wait_for_message(
            STATION_ID, "MeterValues", since=seen
        )
    return {
        (s["measurand"], s.get("phase")): s["value"]
        for value in meter["meterValue"]
        for s in value["sampledValue"]
    }


@VERSIONS
async def test_every_advertised_measurand_has_a_sane_value(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    names = advertised()
    async with station_on_memory_link(scenario=CHARGING, ocpp_version=version) as (station, csms):
        values = await sample_while_charging(csms, names)
        soc = station.evses[0].session.soc_at(station.clock.sim_now())  # type: ignore[union-attr]
    assert {name for name, _ in values} == set(names)
    power_w = values[("Power.Active.Import", None)]
    assert power_w == pytest.approx(11_000)
    for phase in ("L1", "L2", "L3"):
        assert values[("Current.Import", phase)] == pytest.approx(
            power_w / (NOMINAL_PHASE_VOLTAGE_V * 3), abs=0.01
        )
        assert values[("Current.Export", phase)] == 0
        assert values[("Voltage", f"{phase}-N")] == NOMINAL_PHASE_VOLTAGE_V
    assert values[("Power.Active.Export", None)] == 0
    # 600 s at 11 kW after the EV began to charge from an empty register.
    assert values[("Energy.Active.Import.Register", None)] == pytest.approx(
        11_000 * 600 / 3600, abs=0.5
    )
    assert values[("Energy.Active.Export.Register", None)] == 0
    assert values[("SoC", None)] == pytest.approx(soc * 100, abs=0.1)
    assert 20 < values[("SoC", None)] < 90
    assert values[("Frequency", None)] == pytest.approx(50, abs=0.5)
    assert values[("Power.Offered", None)] == 22_000  # the EVSE's rating, no profile
    assert values[("Current.Offered", None)] == pytest.approx(22_000 / (230 * 3), abs=0.01)


async def test_power_offered_is_the_active_charging_limit(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=CHARGING) as (_, csms):
        values = await sample_while_charging(
            csms, ("Power.Offered", "Power.Active.Import"), profile_limit_w=6_900
        )
    assert values[("Power.Offered", None)] == 6_900
    assert values[("Power.Active.Import", None)] == pytest.approx(6_900)


async def test_a_one_phase_ev_draws_its_current_on_l1(autojump_clock: MockClock) -> None:
    one_phase_ev = {**TEST_EV, "ac_phases": 1, "max_ac_kw": 7.4}
    scenario = {
        **CHARGING,
        "ev_fleet": {**CHARGING["ev_fleet"], "extra_models": {"test-ev": one_phase_ev}},
    }
    async with station_on_memory_link(scenario=scenario) as (_, csms):
        values = await sample_while_charging(
            csms, ("Current.Import", "Power.Active.Import", "Voltage")
        )
    assert [key for key in values if key[0] == "Current.Import"] == [("Current.Import", "L1")]
    assert values[("Current.Import", "L1")] == pytest.approx(7_400 / 230, abs=0.01)
    # The supply still has its three phases.
    assert {key[1] for key in values if key[0] == "Voltage"} == {"L1-N", "L2-N", "L3-N"}
