"""Battery swapping as the CSMS sees it (S01-S04, E18): packs in, packs out, what a swap costs
the site, and when the station refuses."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from trio.testing import MockClock

from fleetsim.ev_models import load_catalogue
from fleetsim.simulator.csms import Csms
from fleetsim.simulator.metrics import RunStatsCollector
from fleetsim.simulator.report import build_summary
from fleetsim.simulator.report.summary import outcome_lines
from fleetsim.simulator.scenario import load_scenario
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.blocks.battery_swap import new_pack, pack_in_slot, swap_ev_arrives
from tests.helpers import STATION_ID, TEST_EV, one_station_scenario, station_on_memory_link
from tests.station.steps import get_variable

ROOT = Path(__file__).resolve().parents[2]
DRIVER = {"idToken": "SWAPPER-1", "type": "ISO14443"}
#: Four 20 kW slots; slots 1-3 hold 75 kWh packs at 90 %, slot 4 is empty.
SWAP_STATION: dict[str, Any] = {
    "stations": {
        "count": 1,
        "battery_swap": {"slots": 4, "packs": 3, "slot_power_kw": 20, "pack_soc": 0.9},
    }
}


def swap_station(**fields: Any) -> dict[str, Any]:
    return {
        "stations": {
            "count": 1,
            "battery_swap": {**SWAP_STATION["stations"]["battery_swap"], **fields},
        }
    }


def is_event(event_type: str) -> Any:
    return lambda payload: payload["eventType"] == event_type


async def swap_message(csms: Csms, event_type: str, since: int = 0) -> Mapping[str, Any]:
    with trio.fail_after(3600):
        return await csms.wait_for_message(
            STATION_ID, "BatterySwap", is_event(event_type), since=since
        )


def soc_percent(station: Station, evse_id: int) -> float:
    found = pack_in_slot(station, evse_id)
    assert found is not None
    return found[1] * 100


async def test_a_local_swap_takes_the_depleted_pack_in_and_gives_the_fullest_out(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=SWAP_STATION) as (station, csms):
        depleted = new_pack(station, 75_000.0, 0.15)
        swap_ev_arrives(station, depleted, DRIVER)
        with trio.fail_after(3600):
            await csms.wait_for_message(STATION_ID, "Authorize")
        battery_in = await swap_message(csms, "BatteryIn")
        assert battery_in["idToken"] == DRIVER
        (data_in,) = battery_in["batteryData"]
        assert data_in["evseId"] == 4
        assert data_in["serialNumber"] == depleted.serial
        assert data_in["soC"] == pytest.approx(15.0)
        battery_out = await swap_message(csms, "BatteryOut")
        assert battery_out["requestId"] == battery_in["requestId"]
        (data_out,) = battery_out["batteryData"]
        assert data_out["evseId"] in (1, 2, 3)
        assert data_out["soC"] >= 90.0
        # The slot that gave its pack out is empty; the depleted pack charges in slot 4.
        assert pack_in_slot(station, data_out["evseId"]) is None
        assert pack_in_slot(station, 4) == (depleted.serial, pytest.approx(0.15, abs=0.01))
        reading = await get_variable(csms, "BatteryCartridge", "SoC", {"id": 4})
        assert 15.0 <= float(reading) < 20.0


async def test_each_slot_charges_its_pack_in_a_transaction_that_ends_when_it_is_taken_out(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=SWAP_STATION) as (station, csms):
        started = [
            await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p, evse_id=evse_id: (
                    p["eventType"] == "Started" and p["evse"]["id"] == evse_id
                ),
            )
            for evse_id in (1, 2, 3)
        ]
        for payload in started:
            assert payload["triggerReason"] == "CablePluggedIn"
            assert payload["idToken"] == {"idToken": "", "type": "NoAuthorization"}
            assert payload["transactionInfo"]["chargingState"] == "Charging"
        swap_ev_arrives(station, new_pack(station, 75_000.0, 0.1), DRIVER)
        out = await swap_message(csms, "BatteryOut")
        out_evse = out["batteryData"][0]["evseId"]
        ended = await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p: p["eventType"] == "Ended" and p["evse"]["id"] == out_evse,
        )
        assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
        assert ended["transactionInfo"]["chargingState"] == "Idle"


async def test_stored_packs_charge_from_the_site_until_full(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=SWAP_STATION) as (station, csms):
        with trio.fail_after(60):
            while station.site.import_w == 0:  # type: ignore[union-attr]
                await trio.sleep(1)
        site = station.site
        assert site is not None
        # Three packs charging at 20 kW each.
        assert site.import_w == pytest.approx(60_000.0)  # type: ignore[attr-defined]
        # 75 kWh from 90 % to 95 % at 20 kW x 0.97: 3.75 kWh / 19.4 kW = 696 s; then idle.
        suspended = await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p: p["triggerReason"] == "ChargingStateChanged",
        )
        assert suspended["transactionInfo"]["chargingState"] == "SuspendedEVSE"
        with trio.fail_after(3600):
            while site.import_w > 0:  # type: ignore[attr-defined]
                await trio.sleep(10)
        assert soc_percent(station, 1) == pytest.approx(95.0, abs=0.01)


async def test_a_remote_swap_uses_the_csms_request_id(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=SWAP_STATION) as (_station, csms):
        answer = await csms.call(
            STATION_ID, "RequestBatterySwap", {"requestId": 4711, "idToken": DRIVER}
        )
        assert answer["status"] == "Accepted"
        battery_in = await swap_message(csms, "BatteryIn")
        battery_out = await swap_message(csms, "BatteryOut")
        assert battery_in["requestId"] == battery_out["requestId"] == 4711
        assert battery_in["batteryData"][0]["soC"] == pytest.approx(20.0)


async def test_a_remote_swap_is_rejected_without_a_charged_pack(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=swap_station(pack_soc=0.5, ready_soc=0.8)) as (
        station,
        csms,
    ):
        since = csms.station(STATION_ID).messages_received
        answer = await csms.call(
            STATION_ID, "RequestBatterySwap", {"requestId": 1, "idToken": DRIVER}
        )
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == "NoBatteryAvailable"
        await trio.sleep(300)
        kinds = {m.action for m in csms.station(STATION_ID).messages_since(since)}
        assert "BatterySwap" not in kinds
        assert station.stats.battery_swaps_by_outcome == {"no_battery_available": 1}


async def test_a_driver_who_does_not_take_the_pack_leaves_a_battery_out_timeout(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(
        scenario=swap_station(no_take_share=1.0, out_timeout_s=90)
    ) as (station, csms):
        start_s = station.clock.sim_now()
        answer = await csms.call(
            STATION_ID, "RequestBatterySwap", {"requestId": 9, "idToken": DRIVER}
        )
        assert answer["status"] == "Accepted"
        battery_in = await swap_message(csms, "BatteryIn")
        timeout = await swap_message(csms, "BatteryOutTimeout")
        assert station.clock.sim_now() - start_s == pytest.approx(90, abs=1)
        assert timeout["requestId"] == 9
        offered = timeout["batteryData"][0]
        # The pack stays in its slot; the depleted one charges in the empty slot.
        assert pack_in_slot(station, offered["evseId"]) is not None
        assert pack_in_slot(station, battery_in["batteryData"][0]["evseId"]) is not None
        assert station.stats.battery_swaps_by_outcome == {"out_timeout": 1}


def test_a_swap_station_needs_ocpp_2_1() -> None:
    with pytest.raises(ValidationError, match=r"battery swapping .* is new in OCPP 2\.1"):
        one_station_scenario(SWAP_STATION, ocpp_version="2.0.1")


def test_a_swap_station_takes_its_evses_from_its_slots() -> None:
    stations = {"count": 1, "evses": [{}, {}], "battery_swap": {"slots": 2, "packs": 1}}
    with pytest.raises(ValidationError, match=r"battery_swap\.slots"):
        one_station_scenario({"stations": stations})
    assert len(one_station_scenario(SWAP_STATION).stations.evse_specs) == 4


async def test_battery_swap_ctrlr_is_read_only(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=SWAP_STATION) as (_station, csms):
        assert await get_variable(csms, "BatterySwapCtrlr", "SwapOrder") == "In-Out"
        answer = await csms.call(
            STATION_ID,
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "component": {"name": "BatterySwapCtrlr"},
                        "variable": {"name": "MaxSoc"},
                        "attributeValue": "80",
                    }
                ]
            },
        )
        assert answer["setVariableResult"][0]["attributeStatus"] == "Rejected"


async def test_a_charging_station_rejects_request_battery_swap(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (_station, csms):
        answer = await csms.call(
            STATION_ID, "RequestBatterySwap", {"requestId": 1, "idToken": DRIVER}
        )
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == "UnsupportedRequest"


def test_the_battery_swap_scenario_loads_with_swap_stations_and_swap_evs() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "battery-swap.yaml")
    swap = scenario.stations.battery_swap
    assert swap is not None and swap.slots == 6
    assert scenario.embedded_csms.remote_swap_share > 0
    models = load_catalogue(scenario.ev_fleet.extra_models)
    assert scenario.ev_fleet.models is not None
    assert all(models[name].swap_pack_wh for name in scenario.ev_fleet.models)


def test_swap_evs_stay_out_of_a_charging_sites_default_mix() -> None:
    catalogue = load_catalogue()
    swap_models = [name for name, model in catalogue.items() if model.swap_pack_wh]
    assert swap_models
    assert catalogue["nio-et5-75kwh-swap"].swap_pack_wh == 75_000.0
    assert load_catalogue({"x": {**TEST_EV, "swap_pack_kwh": 40}})["x"].swap_pack_wh == 40_000.0


# -- meter values of the slots, and what the run counts --------------------------------------------


def _register_wh(event: Mapping[str, Any]) -> float:
    (sample,) = event["meterValue"]
    return next(
        float(value["value"])
        for value in sample["sampledValue"]
        if value["measurand"] == "Energy.Active.Import.Register" and "phase" not in value
    )


async def test_a_charging_slot_sends_periodic_meter_values_whose_register_rises(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=SWAP_STATION) as (station, csms):
        with trio.fail_after(3600):
            await csms.wait_for_message(STATION_ID, "TransactionEvent")
            await trio.sleep(930)  # 75 kWh from 90 % to 95 % takes 696 s: then the pack is full
        samples = [
            dict(m.payload)
            for m in csms.station(STATION_ID).messages_since(0)
            if m.action == "TransactionEvent"
            and m.payload["triggerReason"] == "MeterValuePeriodic"
            and m.payload["evse"]["id"] == 1
        ]
    interval_s = station.device_model.integer("SampledDataCtrlr", "TxUpdatedInterval")
    assert interval_s == 60
    # One a minute for 930 s, the pack charging for the first 696 s of them.
    assert len(samples) == 15
    registers = [_register_wh(event) for event in samples]
    charging = [later - earlier for earlier, later in itertools.pairwise(registers[:10])]
    # 20 kW for a minute is 333.3 Wh at the slot's meter.
    assert charging == pytest.approx([20_000 / 60] * 9, rel=1e-3)
    # Full: the register stands still, and the samples go on while the pack is in.
    assert registers[-1] == registers[-2] == registers[-3]
    assert all(e["transactionInfo"]["chargingState"] == "SuspendedEVSE" for e in samples[-3:])


async def test_the_run_counts_local_remote_and_refused_swaps(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=SWAP_STATION) as (station, csms):
        since = csms.station(STATION_ID).messages_received
        swap_ev_arrives(station, new_pack(station, 75_000.0, 0.15), DRIVER)
        await swap_message(csms, "BatteryOut", since)
        for request_id in (1, 2):  # two of the three packs at 90 % are left
            await trio.sleep(1)  # the swap before has let go of its slots
            since = csms.station(STATION_ID).messages_received
            answer = await csms.call(
                STATION_ID, "RequestBatterySwap", {"requestId": request_id, "idToken": DRIVER}
            )
            assert answer["status"] == "Accepted"
            await swap_message(csms, "BatteryOut", since)
        await trio.sleep(1)
        answer = await csms.call(
            STATION_ID, "RequestBatterySwap", {"requestId": 3, "idToken": DRIVER}
        )
        assert answer["statusInfo"]["reasonCode"] == "NoBatteryAvailable"
        stats = station.stats
    expected = {"local": 1, "remote": 2, "no_battery_available": 1}
    assert stats.battery_swaps_by_outcome == expected
    summary = build_summary(
        stats,
        scenario_name="swaps",
        stations_total=1,
        wall_seconds=1.0,
        simulated_seconds=600.0,
        csms_url="memory:",
        ocpp_version="2.1",
        errors=[],
    )
    assert summary["battery_swaps"] == expected
    assert "payments" not in summary and "cost_limits" not in summary
    assert outcome_lines(summary) == [
        "battery swaps: 1 local, 2 remote (RequestBatterySwap), 1 refused, no battery available"
    ]
    registry = CollectorRegistry()
    registry.register(RunStatsCollector(lambda: [stats]))
    swaps = "fleetsim_battery_swaps_total"
    assert registry.get_sample_value(swaps, {"outcome": "remote"}) == 2
    assert registry.get_sample_value(swaps, {"outcome": "out_timeout"}) == 0
