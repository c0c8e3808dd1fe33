"""Every block keeps its word: each action it claims is answered, schema-valid, on a running
station in a state where the answer can be Accepted, and the follow-up messages it declares
(`Block.follow_ups`) arrive; each message it can be triggered to send arrives when triggered.

A new block adds its cases to `ACTION_CASES` and `TRIGGER_CASES`; a test below fails while an
action or trigger of a registered block has no case.  A request the station refuses must say
why in statusInfo and send nothing.  Responses
are validated against the 2.1 schema by the embedded CSMS's link (an invalid one would be a
CALLERROR here).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.csms.policy import AcceptAfter
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.blocks import BLOCKS
from fleetsim.simulator.station.registry import default_registry
from tests.helpers import STATION_ID, station_on_memory_link
from tests.station.certificate_steps import (
    SILENT_CA,
    TEST_ROOT_HASH_DATA,
    TEST_ROOT_PEM,
    root_installed,
    signed_certificate,
)
from tests.station.steps import (
    DISPLAY_MESSAGE,
    ID_TOKEN,
    REMOTE_DRIVERS,
    RESERVATION,
    cache_enabled,
    displayed_message,
    reserved,
    running_transaction,
)

NOW = "2026-01-15T12:00:00Z"
TX_DEFAULT_PROFILE = {
    "id": 13,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": [
        {
            "id": 1,
            "startSchedule": NOW,
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0}],
        }
    ],
}
Prepare = Callable[[Station, Csms], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Case:
    """How to bring the station into a state where `action` can be Accepted, and the request."""

    prepare: Prepare
    statuses: tuple[str, ...] = ("Accepted",)
    csms_config: CsmsConfig | None = None
    booted: bool = True
    #: Scenario sections replacing those of `REMOTE_DRIVERS` (a station with sockets, say).
    scenario: dict[str, Any] | None = None


def request(payload: dict[str, Any]) -> Prepare:
    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        return payload

    return prepare


async def installed_profile(csms: Csms) -> None:
    answer = await csms.call(
        STATION_ID, "SetChargingProfile", {"evseId": 1, "chargingProfile": TX_DEFAULT_PROFILE}
    )
    assert answer["status"] == "Accepted"


async def dynamic_profile_set(station: Station, csms: Csms) -> dict[str, Any]:
    profile = {**TX_DEFAULT_PROFILE, "id": 14, "chargingProfileKind": "Dynamic"}
    answer = await csms.call(
        STATION_ID, "SetChargingProfile", {"evseId": 1, "chargingProfile": profile}
    )
    assert answer["status"] == "Accepted"
    return {"chargingProfileId": 14, "scheduleUpdate": {"limit": 2_000}}


async def priority_profile_for_a_transaction(station: Station, csms: Csms) -> dict[str, Any]:
    transaction_id = await running_transaction(csms)
    profile = {**TX_DEFAULT_PROFILE, "id": 15, "chargingProfilePurpose": "PriorityCharging"}
    answer = await csms.call(
        STATION_ID, "SetChargingProfile", {"evseId": 1, "chargingProfile": profile}
    )
    assert answer["status"] == "Accepted"
    return {"transactionId": transaction_id, "activate": True}


def after_profile(payload: dict[str, Any]) -> Prepare:
    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        await installed_profile(csms)
        return payload

    return prepare


def after_display_message(payload: dict[str, Any]) -> Prepare:
    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        await displayed_message(csms)
        return payload

    return prepare


async def stop_request(station: Station, csms: Csms) -> dict[str, Any]:
    return {"transactionId": await running_transaction(csms)}


async def own_vendor(station: Station, csms: Csms) -> dict[str, Any]:
    return {"vendorId": station.config.vendor}


TARIFF = {"tariffId": "flat", "currency": "EUR", "energy": {"prices": [{"priceKwh": 0.40}]}}


def after_tariff(payload: dict[str, Any]) -> Prepare:
    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        await csms.call(STATION_ID, "SetDefaultTariff", {"evseId": 0, "tariff": TARIFF})
        return payload

    return prepare


def after_root(payload: dict[str, Any]) -> Prepare:
    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        await root_installed(csms)
        return payload

    return prepare


async def tariff_change(station: Station, csms: Csms) -> dict[str, Any]:
    tariff = {**TARIFF, "tariffId": "driver"}
    return {"transactionId": await running_transaction(csms), "tariff": tariff}


async def cost_update(station: Station, csms: Csms) -> dict[str, Any]:
    return {"transactionId": await running_transaction(csms), "totalCost": 1.25}


HEARTBEAT = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}


async def reservation_made(station: Station, csms: Csms) -> dict[str, Any]:
    await reserved(csms)
    return {"reservationId": RESERVATION["id"]}


async def allowed_energy_transfer(station: Station, csms: Csms) -> dict[str, Any]:
    return {
        "transactionId": await running_transaction(csms),
        "allowedEnergyTransfer": ["AC_BPT"],
    }


async def with_cache(station: Station, csms: Csms) -> dict[str, Any]:
    await cache_enabled(csms)
    return {}


#: A station that publishes firmware to the stations behind it (L03, L04).
LOCAL_CONTROLLER: dict[str, Any] = {
    "stations": {"count": 1, "firmware": {"local_controller": True}}
}
PUBLISH = {
    "location": "https://firmware.example.com/fleetsim-0.2.bin",
    "checksum": "9e107d9d372bb6826bd81d3542a419d6",
    "requestId": 6,
}


async def published(station: Station, csms: Csms) -> dict[str, Any]:
    """Publish firmware and return the UnpublishFirmware request once it is Published."""
    since = csms.station(STATION_ID).messages_received
    assert (await csms.call(STATION_ID, "PublishFirmware", PUBLISH))["status"] == "Accepted"
    await csms.wait_for_message(
        STATION_ID,
        "PublishFirmwareStatusNotification",
        lambda p: p["status"] == "Published",
        since=since,
    )
    return {"checksum": PUBLISH["checksum"]}


POWER_MONITOR = {
    "component": {"name": "EVSE", "evse": {"id": 1}},
    "variable": {"name": "Power"},
    "type": "Delta",
    "value": 1000,
    "severity": 5,
}


async def monitor_to_clear(station: Station, csms: Csms) -> dict[str, Any]:
    answer = await csms.call(
        STATION_ID, "SetVariableMonitoring", {"setMonitoringData": [POWER_MONITOR]}
    )
    return {"id": [answer["setMonitoringResult"][0]["id"]]}


async def open_stream(station: Station, csms: Csms) -> dict[str, Any]:
    """A periodic monitor whose values go out on a stream the CSMS accepted."""
    since = csms.station(STATION_ID).messages_received
    monitor = {**POWER_MONITOR, "type": "Periodic", "value": 60}
    monitor["periodicEventStream"] = {"interval": 300, "values": 5}
    await csms.call(STATION_ID, "SetVariableMonitoring", {"setMonitoringData": [monitor]})
    opened = await csms.wait_for_message(STATION_ID, "OpenPeriodicEventStream", since=since)
    return {"id": opened["constantStreamData"]["id"], "params": {"interval": 60, "values": 2}}


#: A default frequency-watt curve for the DER control cases.
DER_CURVE: dict[str, Any] = {
    "isDefault": True,
    "controlId": "fw-1",
    "controlType": "FreqWatt",
    "curve": {
        "priority": 1,
        "yUnit": "PctMaxW",
        "curveData": [{"x": 49.5, "y": 0}, {"x": 50.0, "y": 100}],
    },
}


async def der_curve_set(station: Station, csms: Csms) -> dict[str, Any]:
    answer = await csms.call(STATION_ID, "SetDERControl", DER_CURVE)
    assert answer["status"] == "Accepted"
    return {"isDefault": True, "controlId": "fw-1"}


async def der_curve_to_get(station: Station, csms: Csms) -> dict[str, Any]:
    await der_curve_set(station, csms)
    return {"requestId": 8, "controlType": "FreqWatt"}


#: Per CSMS-initiated action a registered block claims (TriggerMessage: `TRIGGER_CASES`).
async def network_profile(station: Station, csms: Csms) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ocppVersion": "OCPP20" if station.config.ocpp_version == "2.0.1" else "OCPP21",
        "ocppTransport": "JSON",
        "ocppInterface": "Wired0",
        "ocppCsmsUrl": "ws://127.0.0.1:9999/ocpp",
        "messageTimeout": round(station.config.message_timeout_s),
        "securityProfile": station.security_profile,
    }
    return {"configurationSlot": 2, "connectionData": data}


#: A battery-swap station: four slots, three of them holding charged packs (block S).
SWAP_STATION: dict[str, Any] = {"stations": {"count": 1, "battery_swap": {"slots": 4}}}

ACTION_CASES: dict[str, Case] = {
    "SetDefaultTariff": Case(request({"evseId": 0, "tariff": TARIFF})),
    "GetTariffs": Case(after_tariff({"evseId": 1})),
    "ClearTariffs": Case(after_tariff({"tariffIds": ["flat"]})),
    "ChangeTransactionTariff": Case(tariff_change),
    "CostUpdated": Case(cost_update),
    "RequestBatterySwap": Case(
        request({"requestId": 5, "idToken": ID_TOKEN}), scenario=SWAP_STATION
    ),
    "GetVariables": Case(request({"getVariableData": [HEARTBEAT]})),
    "SetVariables": Case(request({"setVariableData": [{**HEARTBEAT, "attributeValue": "60"}]})),
    "GetBaseReport": Case(request({"requestId": 1, "reportBase": "FullInventory"})),
    "GetReport": Case(
        request({"requestId": 2, "componentVariable": [{"component": {"name": "EVSE"}}]})
    ),
    "SetNetworkProfile": Case(network_profile),
    "Reset": Case(request({"type": "Immediate"})),
    "ChangeAvailability": Case(request({"operationalStatus": "Inoperative", "evse": {"id": 1}})),
    "RequestStartTransaction": Case(
        request({"remoteStartId": 11, "idToken": ID_TOKEN, "evseId": 1})
    ),
    "RequestStopTransaction": Case(stop_request),
    "NotifyAllowedEnergyTransfer": Case(allowed_energy_transfer),
    "AFRRSignal": Case(request({"timestamp": "2026-01-15T12:05:00Z", "signal": 10})),
    "NotifyWebPaymentStarted": Case(request({"evseId": 1, "timeout": 120})),
    "SetChargingProfile": Case(request({"evseId": 1, "chargingProfile": TX_DEFAULT_PROFILE})),
    "ClearChargingProfile": Case(after_profile({"chargingProfileId": 13})),
    "GetChargingProfiles": Case(
        after_profile(
            {"requestId": 2, "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}}
        )
    ),
    "GetCompositeSchedule": Case(after_profile({"evseId": 1, "duration": 3600})),
    "UpdateDynamicSchedule": Case(dynamic_profile_set),
    "UsePriorityCharging": Case(priority_profile_for_a_transaction),
    "DataTransfer": Case(own_vendor),
    "SetDisplayMessage": Case(request({"message": DISPLAY_MESSAGE})),
    "SetDERControl": Case(request(DER_CURVE)),
    "GetDERControl": Case(der_curve_to_get),
    "ClearDERControl": Case(der_curve_set),
    "GetDisplayMessages": Case(after_display_message({"requestId": 3})),
    "ClearDisplayMessage": Case(after_display_message({"id": 7})),
    "ReserveNow": Case(request(RESERVATION)),
    "CancelReservation": Case(reservation_made),
    "ClearCache": Case(with_cache),
    "SendLocalList": Case(
        request(
            {
                "versionNumber": 1,
                "updateType": "Full",
                "localAuthorizationList": [
                    {"idToken": ID_TOKEN, "idTokenInfo": {"status": "Accepted"}}
                ],
            }
        )
    ),
    "GetLocalListVersion": Case(request({})),
    # A socket that locks the plug (a captive cable has no lock to release).
    "UnlockConnector": Case(
        request({"evseId": 1, "connectorId": 1}),
        statuses=("Unlocked",),
        scenario={"stations": {"count": 1, "evses": [{"connectors": ["sType2"]}]}},
    ),
    "GetTransactionStatus": Case(request({})),
    "UpdateFirmware": Case(
        request(
            {
                "requestId": 5,
                "firmware": {
                    "location": "https://firmware.example.com/fleetsim-0.2.bin",
                    "retrieveDateTime": NOW,
                },
            }
        )
    ),
    "PublishFirmware": Case(request(PUBLISH), scenario=LOCAL_CONTROLLER),
    "UnpublishFirmware": Case(published, statuses=("Unpublished",), scenario=LOCAL_CONTROLLER),
    "GetLog": Case(
        request(
            {
                "logType": "DiagnosticsLog",
                "requestId": 5,
                "log": {"remoteLocation": "https://csms.example.com/logs"},
            }
        )
    ),
    "CustomerInformation": Case(
        request({"requestId": 8, "report": True, "clear": False, "idToken": ID_TOKEN})
    ),
    "SetVariableMonitoring": Case(request({"setMonitoringData": [POWER_MONITOR]})),
    "ClearVariableMonitoring": Case(monitor_to_clear),
    "SetMonitoringBase": Case(request({"monitoringBase": "All"})),
    "SetMonitoringLevel": Case(request({"severity": 5})),
    "GetMonitoringReport": Case(request({"requestId": 4})),
    "GetPeriodicEventStream": Case(request({})),
    "AdjustPeriodicEventStream": Case(open_stream),
    "InstallCertificate": Case(
        request({"certificateType": "CSMSRootCertificate", "certificate": TEST_ROOT_PEM})
    ),
    "GetInstalledCertificateIds": Case(after_root({"certificateType": ["CSMSRootCertificate"]})),
    "DeleteCertificate": Case(after_root({"certificateHashData": TEST_ROOT_HASH_DATA})),
    "CertificateSigned": Case(signed_certificate, csms_config=SILENT_CA),
}


def trigger(requested: str) -> Prepare:
    return request({"requestedMessage": requested})


async def trigger_transaction_event(station: Station, csms: Csms) -> dict[str, Any]:
    await running_transaction(csms)
    return {"requestedMessage": "TransactionEvent", "evse": {"id": 1}}


#: Per `requestedMessage` a registered block can produce.
TRIGGER_CASES: dict[str, Case] = {
    "BootNotification": Case(
        trigger("BootNotification"),
        csms_config=CsmsConfig(boot_policy=AcceptAfter(1, status="Pending", retry_interval_s=3600)),
        booted=False,
    ),
    "Heartbeat": Case(trigger("Heartbeat")),
    "StatusNotification": Case(trigger("StatusNotification")),
    "MeterValues": Case(trigger("MeterValues")),
    "TransactionEvent": Case(trigger_transaction_event),
    "FirmwareStatusNotification": Case(trigger("FirmwareStatusNotification")),
    "LogStatusNotification": Case(trigger("LogStatusNotification")),
    "PublishFirmwareStatusNotification": Case(trigger("PublishFirmwareStatusNotification")),
    "SignChargingStationCertificate": Case(trigger("SignChargingStationCertificate")),
    "SignV2GCertificate": Case(trigger("SignV2GCertificate")),
    "SignV2G20Certificate": Case(trigger("SignV2G20Certificate")),
    "SignCombinedCertificate": Case(trigger("SignCombinedCertificate")),
}
#: The message a trigger makes the station send, where it is not named after the trigger.
TRIGGERED_ACTION = {
    "SignChargingStationCertificate": "SignCertificate",
    "SignV2GCertificate": "SignCertificate",
    "SignV2G20Certificate": "SignCertificate",
    "SignCombinedCertificate": "SignCertificate",
}

CLAIMED_ACTIONS = [
    (block.name, action)
    for block in BLOCKS
    for action in block.handlers
    if action != "TriggerMessage"
]


def test_every_claimed_action_and_trigger_has_a_contract_case() -> None:
    missing = [action for _, action in CLAIMED_ACTIONS if action not in ACTION_CASES]
    missing += [
        requested for requested in default_registry().triggers if requested not in TRIGGER_CASES
    ]
    assert not missing, f"add contract cases for: {', '.join(missing)}"
    assert "TriggerMessage" in default_registry().handlers


#: Simulated seconds within which a follow-up must come: well before anything the station
#: sends on its own (the first heartbeat is 300 s after the boot), so a message that only
#: arrives by itself later does not pass for a follow-up.
FOLLOW_UP_WITHIN_S = 30


def _is_follow_up(action: str, request: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
    """A triggered TransactionEvent says so; any message of the other kinds counts."""
    if action == "TriggerMessage" and request["requestedMessage"] == "TransactionEvent":
        return lambda payload: payload["triggerReason"] == "Trigger"
    return lambda payload: True


async def _answer_and_follow_ups(
    case: Case, action: str, follow_ups: tuple[str, ...]
) -> Mapping[str, Any]:
    async with station_on_memory_link(
        csms_config=case.csms_config,
        scenario={**REMOTE_DRIVERS, **(case.scenario or {})},
        wait_booted=case.booted,
    ) as (station, csms):
        with trio.fail_after(4 * 3600):
            if not case.booted:
                await csms.wait_for_message(STATION_ID, "BootNotification")
                while station.registration == "Unknown":
                    await trio.sleep(1)
            payload = await case.prepare(station, csms)
            since = csms.station(STATION_ID).messages_received
            answer = await csms.call(STATION_ID, action, payload)
            assert answer.get("status", "Accepted") in case.statuses, answer
        if answer.get("status", "Accepted") == "Rejected":
            # A refusal says why, and nothing follows it.
            assert answer["statusInfo"]["additionalInfo"], answer
            with trio.move_on_after(FOLLOW_UP_WITHIN_S):
                for follow_up in follow_ups:
                    await csms.wait_for_message(STATION_ID, follow_up, since=since)
                    pytest.fail(f"{follow_up} was sent after {action} was refused")
            return answer
        with trio.fail_after(FOLLOW_UP_WITHIN_S):
            for follow_up in follow_ups:
                await csms.wait_for_message(
                    STATION_ID, follow_up, _is_follow_up(action, payload), since=since
                )
    return answer


@pytest.mark.parametrize(("block", "action"), CLAIMED_ACTIONS)
async def test_a_claimed_action_is_answered_and_its_follow_ups_arrive(
    autojump_clock: MockClock, block: str, action: str
) -> None:
    owner = default_registry().handler_owner[action]
    assert owner.name == block
    await _answer_and_follow_ups(ACTION_CASES[action], action, owner.follow_ups.get(action, ()))


@pytest.mark.parametrize("requested", sorted(TRIGGER_CASES))
async def test_a_triggered_message_arrives(autojump_clock: MockClock, requested: str) -> None:
    assert requested in default_registry().triggers
    case = TRIGGER_CASES[requested]
    await _answer_and_follow_ups(
        case, "TriggerMessage", (TRIGGERED_ACTION.get(requested, requested),)
    )
