"""The station turns an ISO 15118 EV's needs into NotifyEVChargingNeeds payloads that validate."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from fleetsim.ev_models import EvArrival, load_catalogue
from fleetsim.simulator.clock import format_timestamp
from fleetsim.simulator.ocpp import schema_set
from fleetsim.simulator.station.iso15118 import charging_needs

CATALOGUE = load_catalogue()
NOW_EPOCH_S = dt.datetime(2026, 3, 2, 18, 30, tzinfo=dt.UTC).timestamp()


def arrival(name: str, *, iso15118_20: bool = True) -> EvArrival:
    return EvArrival(
        arrival_s=1_000.0,
        model=CATALOGUE[name],
        soc_start=0.4,
        target_soc=0.8,
        min_soc=0.3,
        departure_s=1_000.0 + 9 * 3600,
        id_token="TOKEN00001",
        id_token_type="ISO14443",
        id_token_first=False,
        uses_iso15118_20=iso15118_20,
    )


def validate(version: str, needs: dict[str, object]) -> None:
    schema_set(version).validate(
        "NotifyEVChargingNeeds", "Request", {"evseId": 1, "chargingNeeds": needs}
    )


CASES = [
    (name, supply, iso)
    for name in CATALOGUE
    for supply in ("AC", "DC")
    for iso in (True, False)
    if not (supply == "AC" and CATALOGUE[name].max_ac_w == 0)
]


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
@pytest.mark.parametrize(("name", "supply", "iso"), CASES)
def test_every_model_yields_needs_that_validate(
    version: str, name: str, supply: str, iso: bool
) -> None:
    needs = charging_needs(
        arrival(name, iso15118_20=iso),
        NOW_EPOCH_S,
        supply=supply,
        evse_max_w=22_000.0 if supply == "AC" else 150_000.0,
        ocpp_version=version,
    )
    validate(version, needs)


def test_a_bidirectional_iso15118_20_ev_asks_for_bpt_with_its_v2x_window() -> None:
    needs = charging_needs(
        arrival("renault-5-etech-52kwh"),
        NOW_EPOCH_S,
        supply="AC",
        evse_max_w=7_400.0,
        ocpp_version="2.1",
    )
    assert needs["requestedEnergyTransfer"] == "AC_BPT"
    assert needs["controlMode"] == "DynamicControl"
    assert needs["departureTime"] == "2026-03-03T03:30:00.000Z"
    v2x = needs["v2xChargingParameters"]
    assert v2x["maxChargePower"] == 7_400.0
    assert v2x["maxDischargePower"] == 7_400.0
    assert v2x["evTargetEnergyRequest"] == round(0.4 * 52_000)
    assert v2x["evMinV2XEnergyRequest"] == round(-0.1 * 52_000)
    assert v2x["targetSoC"] == 80


def test_ocpp_201_gets_the_ac_or_dc_parameters_and_no_bpt() -> None:
    ac = charging_needs(
        arrival("renault-5-etech-52kwh"),
        NOW_EPOCH_S,
        supply="AC",
        evse_max_w=22_000.0,
        ocpp_version="2.0.1",
    )
    assert ac["requestedEnergyTransfer"] == "AC_three_phase"
    assert ac["acChargingParameters"]["evMaxCurrent"] == 16
    dc = charging_needs(
        arrival("hyundai-ioniq5-72kwh"),
        NOW_EPOCH_S,
        supply="DC",
        evse_max_w=350_000.0,
        ocpp_version="2.0.1",
    )
    assert dc["requestedEnergyTransfer"] == "DC"
    parameters = dc["dcChargingParameters"]
    assert parameters["stateOfCharge"] == 40
    assert parameters["evMaxVoltage"] == 800
    assert parameters["bulkSoC"] == 30


def test_the_report_can_come_later_than_the_arrival() -> None:
    later = replace(arrival("vw-id3-pro-58kwh", iso15118_20=False), uses_iso15118_20=False)
    needs = charging_needs(
        later,
        NOW_EPOCH_S,
        supply="DC",
        evse_max_w=50_000.0,
        ocpp_version="2.1",
        now_s=1_000.0 + 3_600.0,
        soc=0.5,
    )
    assert needs["departureTime"] == "2026-03-03T02:30:00.000Z"
    assert needs["dcChargingParameters"]["energyAmount"] == round(0.3 * 58_000)


def test_timestamps_are_utc_with_milliseconds() -> None:
    assert format_timestamp(0.25) == "1970-01-01T00:00:00.250Z"


def test_an_ev_without_an_ac_inlet_has_no_ac_needs() -> None:
    with pytest.raises(ValueError, match="no AC inlet"):
        charging_needs(
            arrival("mercedes-eactros-600"),
            NOW_EPOCH_S,
            supply="AC",
            evse_max_w=22_000.0,
            ocpp_version="2.1",
        )
