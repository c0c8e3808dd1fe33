"""Every CSMS-initiated request gets a schema-valid response or the right CALLERROR.

All of them, not a sample: the table below has a hand-written, minimal but realistic request
for each action of `CSMS_INITIATED`, and each is sent to a running station of both OCPP
versions.  An action the station handles must answer with a payload valid against the response
schema; one it does not handle yet must answer NotImplemented, never an invalid payload, an
InternalError or silence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.ocpp import (
    CSMS_INITIATED,
    CallErrorReceived,
    ErrorCode,
    OcppVersion,
    RpcError,
    schema_set,
)
from fleetsim.simulator.station.registry import default_registry
from tests.helpers import STATION_ID, station_on_memory_link

NOW = "2026-01-15T06:00:00Z"
LATER = "2026-01-15T08:00:00Z"
TRANSACTION_ID = "CP00001-000001"
ID_TOKEN = {"idToken": "04A2B3C4D5E6F7", "type": "ISO14443"}
HASH_DATA = {
    "hashAlgorithm": "SHA256",
    "issuerNameHash": "5f2c7b1a9e0d4c3b8a7f6e5d4c3b2a1908f7e6d5c4b3a2918f7e6d5c4b3a2910",
    "issuerKeyHash": "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
    "serialNumber": "4a3f1c2b",
}
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2Fs\n-----END CERTIFICATE-----\n"
TARIFF = {"tariffId": "standard-ac", "currency": "EUR", "energy": {"prices": [{"priceKwh": 0.39}]}}
COMPONENT = {"name": "OCPPCommCtrlr"}
HEARTBEAT_INTERVAL = {"name": "HeartbeatInterval"}

#: One minimal valid OCPP 2.1 request per CSMS-initiated action.
REQUESTS_21: dict[str, dict[str, Any]] = {
    "AFRRSignal": {"timestamp": NOW, "signal": -1},
    "AdjustPeriodicEventStream": {"id": 1, "params": {"interval": 60, "values": 10}},
    "CancelReservation": {"reservationId": 17},
    "CertificateSigned": {"certificateChain": CERTIFICATE},
    "ChangeAvailability": {"operationalStatus": "Inoperative", "evse": {"id": 1}},
    "ChangeTransactionTariff": {"transactionId": TRANSACTION_ID, "tariff": TARIFF},
    "ClearCache": {},
    "ClearChargingProfile": {"chargingProfileId": 3},
    "ClearDERControl": {"isDefault": False, "controlType": "FreqDroop"},
    "ClearDisplayMessage": {"id": 5},
    "ClearTariffs": {},
    "ClearVariableMonitoring": {"id": [1, 2]},
    "CostUpdated": {"totalCost": 4.85, "transactionId": TRANSACTION_ID},
    "CustomerInformation": {
        "requestId": 8,
        "report": True,
        "clear": False,
        "idToken": ID_TOKEN,
    },
    "DataTransfer": {"vendorId": "com.example.csms", "messageId": "ping"},
    "DeleteCertificate": {"certificateHashData": HASH_DATA},
    "GetBaseReport": {"requestId": 1, "reportBase": "SummaryInventory"},
    "GetChargingProfiles": {
        "requestId": 2,
        "chargingProfile": {"chargingProfilePurpose": "TxProfile"},
    },
    "GetCompositeSchedule": {"duration": 3600, "evseId": 1, "chargingRateUnit": "W"},
    "GetDERControl": {"requestId": 3, "controlType": "FreqDroop"},
    "GetDisplayMessages": {"requestId": 4},
    "GetInstalledCertificateIds": {},
    "GetLocalListVersion": {},
    "GetLog": {
        "logType": "DiagnosticsLog",
        "requestId": 5,
        "log": {"remoteLocation": "https://csms.example.com/logs/CP00001"},
    },
    "GetMonitoringReport": {"requestId": 6},
    "GetPeriodicEventStream": {},
    "GetReport": {
        "requestId": 7,
        "componentVariable": [{"component": COMPONENT, "variable": HEARTBEAT_INTERVAL}],
    },
    "GetTariffs": {"evseId": 1},
    "GetTransactionStatus": {},
    "GetVariables": {"getVariableData": [{"component": COMPONENT, "variable": HEARTBEAT_INTERVAL}]},
    "InstallCertificate": {"certificateType": "CSMSRootCertificate", "certificate": CERTIFICATE},
    "NotifyAllowedEnergyTransfer": {
        "transactionId": TRANSACTION_ID,
        "allowedEnergyTransfer": ["AC_three_phase"],
    },
    "NotifyWebPaymentStarted": {"evseId": 1, "timeout": 120},
    "PublishFirmware": {
        "location": "https://firmware.example.com/fleetsim-0.2.bin",
        "checksum": "9e107d9d372bb6826bd81d3542a419d6",
        "requestId": 9,
    },
    "RequestBatterySwap": {"requestId": 10, "idToken": ID_TOKEN},
    "RequestStartTransaction": {"remoteStartId": 11, "idToken": ID_TOKEN, "evseId": 1},
    "RequestStopTransaction": {"transactionId": TRANSACTION_ID},
    "ReserveNow": {"id": 12, "expiryDateTime": LATER, "idToken": ID_TOKEN},
    "Reset": {"type": "Immediate"},
    "SendLocalList": {"versionNumber": 1, "updateType": "Full"},
    "SetChargingProfile": {
        "evseId": 1,
        "chargingProfile": {
            "id": 13,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [
                {
                    "id": 1,
                    "startSchedule": NOW,
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}],
                }
            ],
        },
    },
    "SetDERControl": {
        "isDefault": False,
        "controlId": "freq-droop-1",
        "controlType": "FreqDroop",
        "freqDroop": {
            "priority": 1,
            "overFreq": 50.2,
            "underFreq": 49.8,
            "overDroop": 5.0,
            "underDroop": 5.0,
            "responseTime": 1.0,
        },
    },
    "SetDefaultTariff": {"evseId": 0, "tariff": TARIFF},
    "SetDisplayMessage": {
        "message": {
            "id": 14,
            "priority": "NormalCycle",
            "message": {"format": "UTF8", "content": "Welcome to fleetsim"},
        }
    },
    "SetMonitoringBase": {"monitoringBase": "All"},
    "SetMonitoringLevel": {"severity": 5},
    "SetNetworkProfile": {
        "configurationSlot": 1,
        "connectionData": {
            "ocppInterface": "Wired0",
            "ocppTransport": "JSON",
            "messageTimeout": 30,
            "ocppCsmsUrl": "wss://csms.example.com/ocpp",
            "securityProfile": 2,
        },
    },
    "SetVariableMonitoring": {
        "setMonitoringData": [
            {
                "value": 600,
                "type": "UpperThreshold",
                "severity": 5,
                "component": COMPONENT,
                "variable": HEARTBEAT_INTERVAL,
            }
        ]
    },
    "SetVariables": {
        "setVariableData": [
            {"attributeValue": "120", "component": COMPONENT, "variable": HEARTBEAT_INTERVAL}
        ]
    },
    "TriggerMessage": {"requestedMessage": "Heartbeat"},
    "UnlockConnector": {"evseId": 1, "connectorId": 1},
    "UnpublishFirmware": {"checksum": "9e107d9d372bb6826bd81d3542a419d6"},
    "UpdateDynamicSchedule": {"chargingProfileId": 13, "scheduleUpdate": {"limit": 7400.0}},
    "UpdateFirmware": {
        "requestId": 15,
        "firmware": {
            "location": "https://firmware.example.com/fleetsim-0.2.bin",
            "retrieveDateTime": NOW,
        },
    },
    "UsePriorityCharging": {"transactionId": TRANSACTION_ID, "activate": True},
}

#: The OCPP 2.0.1 requests that must differ from the 2.1 ones, because the 2.0.1 schema does.
REQUESTS_201_DIFFERENT: dict[str, dict[str, Any]] = {
    "SetNetworkProfile": {
        "configurationSlot": 1,
        "connectionData": {
            "ocppVersion": "OCPP20",
            "ocppInterface": "Wired0",
            "ocppTransport": "JSON",
            "messageTimeout": 30,
            "ocppCsmsUrl": "wss://csms.example.com/ocpp",
            "securityProfile": 2,
        },
    },
}


def request_for(version: OcppVersion, action: str) -> Mapping[str, Any]:
    if version == "2.0.1" and action in REQUESTS_201_DIFFERENT:
        return REQUESTS_201_DIFFERENT[action]
    if action not in REQUESTS_21:
        pytest.fail(f"the table has no example request for {action}; add one to REQUESTS_21")
    return REQUESTS_21[action]


def cases() -> list[Any]:
    """(version, action) for every CSMS-initiated action the version has."""
    return [
        pytest.param(version, action, id=f"{version}-{action}")
        for version in ("2.1", "2.0.1")
        for action in sorted(CSMS_INITIATED)
        if schema_set(version).has(action, "Request")
    ]


def test_the_table_has_a_request_for_every_csms_initiated_action() -> None:
    assert set(REQUESTS_21) == CSMS_INITIATED


def test_the_201_variants_are_of_201_actions() -> None:
    assert set(REQUESTS_201_DIFFERENT) <= schema_set("2.0.1").actions & CSMS_INITIATED


def test_every_201_variant_is_needed_because_the_21_request_breaks_the_201_schema() -> None:
    for action in REQUESTS_201_DIFFERENT:
        with pytest.raises(RpcError):
            schema_set("2.0.1").validate(action, "Request", REQUESTS_21[action])


@pytest.mark.parametrize(("version", "action"), cases())
def test_the_example_request_is_valid(version: OcppVersion, action: str) -> None:
    schema_set(version).validate(action, "Request", request_for(version, action))


async def check_the_station_answers(
    version: OcppVersion, action: str, request: Mapping[str, Any]
) -> None:
    """Send `request` to a booted station; fail unless its answer is what the DESIGN promises."""
    try:
        schema_set(version).validate(action, "Request", request)
    except RpcError as exc:
        pytest.fail(f"the example {action} request is not valid OCPP {version}: {exc}")

    error: CallErrorReceived | None = None
    response: Mapping[str, Any] = {}
    with trio.fail_after(120):
        async with station_on_memory_link(ocpp_version=version) as (_, csms):
            try:
                response = await csms.call(STATION_ID, action, request)
            except CallErrorReceived as exc:
                error = exc

    if error is not None:
        handled = action in default_registry().handlers
        assert not handled, (
            f"the station handles {action} but answered CALLERROR {error.code}: {error.description}"
        )
        assert error.code == ErrorCode.NOT_IMPLEMENTED.value, (
            f"{action} was answered with {error.code} ({error.description}), "
            "expected NotImplemented"
        )
        return
    try:
        schema_set(version).validate(action, "Response", response)
    except RpcError as exc:
        pytest.fail(f"the {action} response is not valid OCPP {version}: {exc}")


@pytest.mark.parametrize(("version", "action"), cases())
async def test_the_station_answers_with_a_valid_response_or_not_implemented(
    autojump_clock: MockClock, version: OcppVersion, action: str
) -> None:
    await check_the_station_answers(version, action, request_for(version, action))


# -- beyond the minimal examples: requests a handled action must refuse or partly refuse -------

UNKNOWN_COMPONENT = {"name": "SolarInverter"}
#: (case, action, request valid in both versions) for answers with statusInfo, unknown
#: components and the like, which the minimal examples do not reach.
DEMANDING_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "GetVariables-unknown-component-variable-and-attribute",
        "GetVariables",
        {
            "getVariableData": [
                {"component": UNKNOWN_COMPONENT, "variable": HEARTBEAT_INTERVAL},
                {"component": COMPONENT, "variable": {"name": "NoSuchVariable"}},
                {"component": COMPONENT, "variable": HEARTBEAT_INTERVAL, "attributeType": "Target"},
            ]
        },
    ),
    (
        "SetVariables-read-only",
        "SetVariables",
        {
            "setVariableData": [
                {
                    "attributeValue": "other",
                    "component": {"name": "ChargingStation"},
                    "variable": {"name": "Model"},
                }
            ]
        },
    ),
    (
        "SetVariables-longest-201-value-not-an-integer",
        "SetVariables",
        {
            "setVariableData": [
                {
                    "attributeValue": "9" * 999 + "x",
                    "component": COMPONENT,
                    "variable": HEARTBEAT_INTERVAL,
                }
            ]
        },
    ),
    ("Reset-one-evse", "Reset", {"type": "OnIdle", "evseId": 1}),
    (
        "ChangeAvailability-unknown-evse",
        "ChangeAvailability",
        {"operationalStatus": "Inoperative", "evse": {"id": 9}},
    ),
    (
        "ChangeAvailability-unknown-connector",
        "ChangeAvailability",
        {"operationalStatus": "Inoperative", "evse": {"id": 1, "connectorId": 4}},
    ),
    (
        "RequestStartTransaction-unknown-evse",
        "RequestStartTransaction",
        {"remoteStartId": 21, "idToken": ID_TOKEN, "evseId": 9},
    ),
    (
        "TriggerMessage-boot-when-accepted",
        "TriggerMessage",
        {"requestedMessage": "BootNotification"},
    ),
    (
        "TriggerMessage-sign-certificate",
        "TriggerMessage",
        {"requestedMessage": "SignChargingStationCertificate"},
    ),
    (
        "TriggerMessage-unknown-evse",
        "TriggerMessage",
        {"requestedMessage": "StatusNotification", "evse": {"id": 9}},
    ),
    (
        "TriggerMessage-evse-a-heartbeat-is-not-about",
        "TriggerMessage",
        {"requestedMessage": "Heartbeat", "evse": {"id": 9}},
    ),
    (
        "UnlockConnector-unknown-connector",
        "UnlockConnector",
        {"evseId": 1, "connectorId": 7},
    ),
    (
        "RequestStartTransaction-with-tx-profile",
        "RequestStartTransaction",
        {
            "remoteStartId": 22,
            "idToken": ID_TOKEN,
            "evseId": 1,
            "chargingProfile": {
                "id": 5,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": [
                    {
                        "id": 1,
                        "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
                    }
                ],
            },
        },
    ),
    ("DataTransfer-own-vendor", "DataTransfer", {"vendorId": "fleetsim"}),
    (
        "GetBaseReport-full-inventory",
        "GetBaseReport",
        {"requestId": 22, "reportBase": "FullInventory"},
    ),
]


@pytest.mark.parametrize(
    ("version", "action", "request_payload"),
    [
        pytest.param(version, action, payload, id=f"{version}-{case}")
        for version in ("2.1", "2.0.1")
        for case, action, payload in DEMANDING_REQUESTS
    ],
)
async def test_a_handled_action_answers_a_demanding_request_with_a_valid_response(
    autojump_clock: MockClock, version: OcppVersion, action: str, request_payload: dict[str, Any]
) -> None:
    assert action in default_registry().handlers
    await check_the_station_answers(version, action, request_payload)
