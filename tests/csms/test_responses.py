"""Every station-initiated action gets a schema-valid answer that makes sense.

The requests are written by hand, one minimal valid example per action, so the test checks the
CSMS against what a station really sends rather than against what a generator thinks it might.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import AcceptAfter, AlwaysAnswer, BootDecision, Csms, CsmsConfig
from fleetsim.simulator.csms.responses import ANSWERED_ACTIONS
from fleetsim.simulator.ocpp import (
    OCPP_VERSIONS,
    SEND_ONLY,
    STATION_INITIATED,
    CallErrorReceived,
    ErrorCode,
    OcppVersion,
    RpcError,
    schema_set,
)
from fleetsim.simulator.ocpp.actions import OCPP_201_ACTIONS_MISSING
from fleetsim.simulator.transport import RpcLink

#: Connects a station to a CSMS over memory channels (the `connect_station` fixture).
ConnectStation = Callable[..., Awaitable[RpcLink]]

#: 2023-11-14T22:13:20.000Z: the CSMS clock of tests that compare timestamps.
T0_S = 1_700_000_000.0
T0 = "2023-11-14T22:13:20.000Z"

TS = "2025-06-01T08:00:00.000Z"
ID_TOKEN = {"idToken": "04A2B3C4D5E6F7", "type": "ISO14443"}
HASH_DATA = {
    "hashAlgorithm": "SHA256",
    "issuerNameHash": "4d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3928170605f4e3d2c1b0a9f8",
    "issuerKeyHash": "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "serialNumber": "4a3f2e1d",
}
SCHEDULE = {
    "id": 1,
    "chargingRateUnit": "W",
    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}],
}

#: A minimal valid request for every station-initiated action of OCPP 2.1; those that exist
#: in OCPP 2.0.1 are valid there too (the test validates each before sending it).
REQUESTS_2_1: dict[str, Mapping[str, Any]] = {
    "Authorize": {"idToken": ID_TOKEN},
    "BatterySwap": {
        "eventType": "BatteryIn",
        "requestId": 7,
        "idToken": ID_TOKEN,
        "batteryData": [{"evseId": 1, "serialNumber": "BAT-0001", "soC": 80.0, "soH": 97.5}],
    },
    "BootNotification": {
        "reason": "PowerUp",
        "chargingStation": {"model": "FS-22", "vendorName": "fleetsim"},
    },
    "ClearedChargingLimit": {"chargingLimitSource": "EMS", "evseId": 1},
    "ClosePeriodicEventStream": {"id": 3},
    "DataTransfer": {"vendorId": "org.example", "messageId": "hello", "data": {"x": 1}},
    "FirmwareStatusNotification": {"status": "Downloading", "requestId": 11},
    "Get15118EVCertificate": {
        "iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
        "action": "Install",
        "exiRequest": "gAQCAwQFBgcICQ==",
    },
    "GetCertificateChainStatus": {
        "certificateStatusRequests": [
            {
                "source": "OCSP",
                "urls": ["http://ocsp.example/"],
                "certificateHashData": HASH_DATA,
            }
        ]
    },
    "GetCertificateStatus": {
        "ocspRequestData": {**HASH_DATA, "responderURL": "http://ocsp.example/"}
    },
    "Heartbeat": {},
    "LogStatusNotification": {"status": "Uploading", "requestId": 12},
    "MeterValues": {
        "evseId": 1,
        "meterValue": [{"timestamp": TS, "sampledValue": [{"value": 1234.5}]}],
    },
    "NotifyChargingLimit": {"chargingLimit": {"chargingLimitSource": "SO"}},
    "NotifyCustomerInformation": {
        "data": "no data held",
        "seqNo": 0,
        "generatedAt": TS,
        "requestId": 13,
    },
    "NotifyDERAlarm": {"controlType": "FreqDroop", "timestamp": TS},
    "NotifyDERStartStop": {"controlId": "der-1", "started": True, "timestamp": TS},
    "NotifyDisplayMessages": {"requestId": 14},
    "NotifyEVChargingNeeds": {
        "evseId": 1,
        "chargingNeeds": {"requestedEnergyTransfer": "DC"},
    },
    "NotifyEVChargingSchedule": {"timeBase": TS, "evseId": 1, "chargingSchedule": SCHEDULE},
    "NotifyEvent": {
        "generatedAt": TS,
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": TS,
                "trigger": "Delta",
                "actualValue": "Occupied",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                "variable": {"name": "AvailabilityState"},
            }
        ],
    },
    "NotifyMonitoringReport": {"requestId": 15, "seqNo": 0, "generatedAt": TS},
    "NotifyPeriodicEventStream": {
        "id": 3,
        "pending": 0,
        "basetime": TS,
        "data": [{"t": 0.0, "v": "230.1"}],
    },
    "NotifyPriorityCharging": {"transactionId": "tx-1", "activated": True},
    "NotifyReport": {"requestId": 16, "generatedAt": TS, "seqNo": 0},
    "NotifySettlement": {
        "pspRef": "psp-0001",
        "status": "Settled",
        "settlementAmount": 12.34,
        "settlementTime": TS,
    },
    "OpenPeriodicEventStream": {
        "constantStreamData": {"id": 3, "variableMonitoringId": 2, "params": {"interval": 1}}
    },
    "PublishFirmwareStatusNotification": {"status": "Published", "requestId": 17},
    "PullDynamicScheduleUpdate": {"chargingProfileId": 5},
    "ReportChargingProfiles": {
        "requestId": 18,
        "chargingLimitSource": "CSO",
        "evseId": 1,
        "chargingProfile": [
            {
                "id": 5,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [{**SCHEDULE, "startSchedule": TS}],
            }
        ],
    },
    "ReportDERControl": {"requestId": 19},
    "ReservationStatusUpdate": {"reservationId": 20, "reservationUpdateStatus": "Expired"},
    "SecurityEventNotification": {"type": "StartupOfTheDevice", "timestamp": TS},
    "SignCertificate": {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n"},
    "StatusNotification": {
        "timestamp": TS,
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": 1,
    },
    "TransactionEvent": {
        "eventType": "Started",
        "timestamp": TS,
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "tx-1"},
        "idToken": ID_TOKEN,
        "evse": {"id": 1, "connectorId": 1},
    },
    "VatNumberValidation": {"vatNumber": "NL123456789B01", "evseId": 1},
}


def request_example(version: OcppVersion, action: str) -> Mapping[str, Any]:
    """The example request of `action`; the minimal examples are valid in both versions."""
    return REQUESTS_2_1[action]


def test_every_station_initiated_action_has_an_example_request() -> None:
    assert set(REQUESTS_2_1) == STATION_INITIATED


def test_the_csms_has_an_answer_to_every_station_initiated_call() -> None:
    assert ANSWERED_ACTIONS == STATION_INITIATED - SEND_ONLY


#: Every (version, action) a station may send: all of 2.1, and those of them 2.0.1 has.
EVERY_STATION_REQUEST = [
    (version, action)
    for version in OCPP_VERSIONS
    for action in sorted(STATION_INITIATED)
    if not (version == "2.0.1" and action in OCPP_201_ACTIONS_MISSING)
]


@pytest.mark.parametrize(("version", "action"), EVERY_STATION_REQUEST)
async def test_every_station_initiated_action_gets_a_schema_valid_answer(
    version: OcppVersion,
    action: str,
    connect_station: ConnectStation,
    autojump_clock: MockClock,
) -> None:
    schemas = schema_set(version)
    request = request_example(version, action)
    schemas.validate(action, "Request", request)  # a broken example fails here, clearly
    csms = Csms(clock=lambda: T0_S)
    with trio.fail_after(5):
        link = await connect_station(csms, version=version)
        if action in SEND_ONLY:
            await link.send(action, request)
            received = await csms.wait_for_message("CP1", action)
            assert received == request
            return
        response = await link.call(action, request)
    schemas.validate(action, "Response", response)
    station = csms.station("CP1")
    assert station.violation_count == 0
    assert station.internal_errors == 0
    assert station.actions() == [action]


# -- answers that depend on the request or the configuration -----------------------------


async def test_boot_is_accepted_with_the_heartbeat_interval_and_the_csms_time(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms(CsmsConfig(heartbeat_interval_s=60), clock=lambda: T0_S)
    with trio.fail_after(5):
        link = await connect_station(csms)
        response = await link.call("BootNotification", REQUESTS_2_1["BootNotification"])
    assert response == {"currentTime": T0, "interval": 60, "status": "Accepted"}
    station = csms.station("CP1")
    assert (station.boots, station.last_boot_status, station.last_boot_reason) == (
        1,
        "Accepted",
        "PowerUp",
    )
    assert station.charging_station == {"model": "FS-22", "vendorName": "fleetsim"}


async def test_accept_after_answers_pending_with_the_retry_interval_then_accepted(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    policy = AcceptAfter(2, retry_interval_s=15)
    csms = Csms(CsmsConfig(heartbeat_interval_s=60, boot_policy=policy), clock=lambda: T0_S)
    boot = REQUESTS_2_1["BootNotification"]
    with trio.fail_after(5):
        link = await connect_station(csms)
        answers = [await link.call("BootNotification", boot) for _ in range(3)]
    assert [(a["status"], a["interval"]) for a in answers] == [
        ("Pending", 15),
        ("Pending", 15),
        ("Accepted", 60),
    ]
    assert csms.station("CP1").last_boot_status == "Accepted"


async def test_a_rejecting_policy_rejects_every_boot(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms(CsmsConfig(boot_policy=AlwaysAnswer("Rejected", retry_interval_s=120)))
    with trio.fail_after(5):
        link = await connect_station(csms)
        response = await link.call("BootNotification", REQUESTS_2_1["BootNotification"])
    assert (response["status"], response["interval"]) == ("Rejected", 120)
    assert csms.station("CP1").last_boot_status == "Rejected"


async def test_a_custom_boot_policy_sees_the_station_and_its_boot_number(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    seen: list[tuple[str, int]] = []

    def policy(station_id: str, boot_number: int) -> BootDecision:
        seen.append((station_id, boot_number))
        return BootDecision("Pending" if station_id == "CP-slow" else "Accepted")

    csms = Csms(CsmsConfig(boot_policy=policy))
    with trio.fail_after(5):
        slow = await connect_station(csms, "CP-slow")
        fast = await connect_station(csms, "CP-fast")
        slow_answer = await slow.call("BootNotification", REQUESTS_2_1["BootNotification"])
        fast_answer = await fast.call("BootNotification", REQUESTS_2_1["BootNotification"])
    assert (slow_answer["status"], fast_answer["status"]) == ("Pending", "Accepted")
    assert seen == [("CP-slow", 1), ("CP-fast", 1)]


async def test_heartbeat_returns_the_csms_time_in_milliseconds(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms(clock=lambda: T0_S + 0.25)
    with trio.fail_after(5):
        link = await connect_station(csms)
        response = await link.call("Heartbeat", {})
    assert response == {"currentTime": "2023-11-14T22:13:20.250Z"}


@pytest.mark.parametrize(
    ("token", "token_type", "status"),
    [
        ("04A2B3C4", "ISO14443", "Accepted"),
        ("04a2b3c4", "ISO14443", "Accepted"),  # idTokens are case-insensitive
        ("DEADBEEF", "ISO14443", "Unknown"),
        ("", "NoAuthorization", "Accepted"),
    ],
)
async def test_authorize_accepts_only_the_configured_tokens(
    token: str,
    token_type: str,
    status: str,
    connect_station: ConnectStation,
    autojump_clock: MockClock,
) -> None:
    csms = Csms(CsmsConfig(accepted_id_tokens={"04A2B3C4"}))
    with trio.fail_after(5):
        link = await connect_station(csms)
        response = await link.call("Authorize", {"idToken": {"idToken": token, "type": token_type}})
    assert response == {"idTokenInfo": {"status": status}}


async def test_authorize_accepts_every_token_when_no_set_is_configured(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms()
    with trio.fail_after(5):
        link = await connect_station(csms)
        response = await link.call("Authorize", {"idToken": ID_TOKEN})
    assert response == {"idTokenInfo": {"status": "Accepted"}}


async def test_authorize_with_certificate_hash_data_gets_a_certificate_status(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms()
    request = {
        "idToken": {"idToken": "NL-FSM-C12345678-X", "type": "eMAID"},
        "iso15118CertificateHashData": [{**HASH_DATA, "responderURL": "http://ocsp.example/"}],
    }
    with trio.fail_after(5):
        link = await connect_station(csms)
        response = await link.call("Authorize", request)
    assert response["certificateStatus"] == "Accepted"


async def test_transaction_event_carries_id_token_info_only_when_the_request_has_a_token(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms(CsmsConfig(accepted_id_tokens=()))
    started = REQUESTS_2_1["TransactionEvent"]
    updated = {
        "eventType": "Updated",
        "timestamp": TS,
        "triggerReason": "MeterValuePeriodic",
        "seqNo": 1,
        "transactionInfo": {"transactionId": "tx-1", "chargingState": "Charging"},
    }
    with trio.fail_after(5):
        link = await connect_station(csms)
        with_token = await link.call("TransactionEvent", started)
        without_token = await link.call("TransactionEvent", updated)
    assert with_token == {"idTokenInfo": {"status": "Unknown"}}
    assert without_token == {}


async def test_a_deauthorize_share_answers_that_share_of_transactions_invalid(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    """Each transaction gets one answer for all its events, decided by its id: about the
    configured share of them Invalid, the rest as for Authorize."""

    def event(transaction_id: str, seq_no: int) -> dict[str, Any]:
        return {
            "eventType": "Updated",
            "timestamp": TS,
            "triggerReason": "Authorized",
            "seqNo": seq_no,
            "transactionInfo": {"transactionId": transaction_id},
            "idToken": ID_TOKEN,
        }

    csms = Csms(CsmsConfig(deauthorize_share=0.25, record_messages=False))
    ids = [f"CP00001-{index:06d}" for index in range(400)]
    with trio.fail_after(60):
        link = await connect_station(csms)
        first = [(await link.call("TransactionEvent", event(i, 1)))["idTokenInfo"] for i in ids]
        again = [(await link.call("TransactionEvent", event(i, 2)))["idTokenInfo"] for i in ids]
    assert first == again
    assert {info["status"] for info in first} == {"Accepted", "Invalid"}
    invalid = sum(info["status"] == "Invalid" for info in first)
    assert 70 <= invalid <= 130


@pytest.mark.parametrize(("share", "status"), [(0.0, "Accepted"), (1.0, "Invalid")])
async def test_a_deauthorize_share_of_none_or_all(
    share: float, status: str, connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms(CsmsConfig(deauthorize_share=share))
    with trio.fail_after(5):
        link = await connect_station(csms)
        response = await link.call("TransactionEvent", REQUESTS_2_1["TransactionEvent"])
    assert response == {"idTokenInfo": {"status": status}}


def test_a_deauthorize_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="deauthorize_share"):
        CsmsConfig(deauthorize_share=1.5)


async def test_data_transfer_knows_only_the_configured_vendors(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms(CsmsConfig(data_transfer_vendor_ids={"org.fleetsim"}))
    with trio.fail_after(5):
        link = await connect_station(csms)
        known = await link.call("DataTransfer", {"vendorId": "org.fleetsim"})
        unknown = await link.call("DataTransfer", {"vendorId": "com.other"})
    assert (known["status"], unknown["status"]) == ("Accepted", "UnknownVendorId")


async def test_certificate_chain_status_answers_each_certificate_asked_about_unknown_if_foreign(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    csms = Csms(clock=lambda: T0_S)
    with trio.fail_after(5):
        link = await connect_station(csms)
        response = await link.call(
            "GetCertificateChainStatus", REQUESTS_2_1["GetCertificateChainStatus"]
        )
    assert response == {
        "certificateStatus": [
            {
                "certificateHashData": HASH_DATA,
                "source": "OCSP",
                "status": "Unknown",
                "nextUpdate": "2023-11-15T22:13:20.000Z",
            }
        ]
    }


@pytest.mark.parametrize(
    ("version", "status"), [("2.1", "NoChargingProfile"), ("2.0.1", "Rejected")]
)
async def test_charging_needs_are_answered_with_no_schedule_promised(
    version: OcppVersion,
    status: str,
    connect_station: ConnectStation,
    autojump_clock: MockClock,
) -> None:
    csms = Csms()
    with trio.fail_after(5):
        link = await connect_station(csms, version=version)
        response = await link.call(
            "NotifyEVChargingNeeds", request_example(version, "NotifyEVChargingNeeds")
        )
    assert response == {"status": status}


async def test_an_override_replaces_the_built_in_answer(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    def charge_for_it(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"totalCost": 4.2} if payload["eventType"] == "Ended" else {}

    csms = Csms(CsmsConfig(response_overrides={"TransactionEvent": charge_for_it}))
    ended = {
        "eventType": "Ended",
        "timestamp": TS,
        "triggerReason": "EVDeparted",
        "seqNo": 1,
        "transactionInfo": {"transactionId": "tx-1", "stoppedReason": "EVDisconnected"},
    }
    with trio.fail_after(5):
        link = await connect_station(csms)
        response = await link.call("TransactionEvent", ended)
    assert response == {"totalCost": 4.2}


async def test_an_override_that_raises_rpc_error_answers_with_that_callerror(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    def busy(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        raise RpcError(ErrorCode.GENERIC_ERROR, "try again later")

    csms = Csms(CsmsConfig(response_overrides={"Heartbeat": busy}))
    with trio.fail_after(5):
        link = await connect_station(csms)
        with pytest.raises(CallErrorReceived) as caught:
            await link.call("Heartbeat", {})
    assert (caught.value.code, caught.value.description) == ("GenericError", "try again later")
    assert csms.station("CP1").actions() == ["Heartbeat"]


async def test_an_override_that_builds_an_invalid_answer_gets_an_internal_error_not_bad_data(
    connect_station: ConnectStation, autojump_clock: MockClock
) -> None:
    def broken(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"currentTime": 12}

    csms = Csms(CsmsConfig(response_overrides={"Heartbeat": broken}))
    with trio.fail_after(5):
        link = await connect_station(csms)
        with pytest.raises(CallErrorReceived) as caught:
            await link.call("Heartbeat", {})
        assert caught.value.code == "InternalError"
        assert (await link.call("StatusNotification", REQUESTS_2_1["StatusNotification"])) == {}
    assert csms.station("CP1").internal_errors == 1
