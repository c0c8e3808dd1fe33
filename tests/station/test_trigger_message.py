"""TriggerMessage (F06) for every value of each version's MessageTriggerEnumType, and the EVSE
and connector a trigger names.

The values come from the installed schemas, so a value a new schema adds fails here until the
table says what the station does with it: send the message (Accepted, and it arrives), or
refuse with the reason in statusInfo (and send nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms
from fleetsim.simulator.ocpp import OcppVersion, schema_set
from tests.helpers import STATION_ID, TEST_EV, station_on_memory_link

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
DRIVER = {"idToken": "DRIVER-1", "type": "ISO14443"}
#: A remote start's driver plugs in a minute after the request; two EVSEs, the first with two
#: connectors.
TWO_EVSES: dict[str, Any] = {
    "ev_fleet": {
        "models": {"test-ev": 1.0},
        "extra_models": {"test-ev": TEST_EV},
        "remote_start_plugin_delay_s": 60,
    },
    "stations": {"count": 1, "evses": [{"connectors": ["cType2", "sType2"]}, {}]},
}
#: Well before anything the station sends by itself (its first heartbeat is 300 s after boot).
WITHIN_S = 30

Check = Callable[[Mapping[str, Any]], bool]


def idle(payload: Mapping[str, Any]) -> bool:
    return bool(payload["status"] == "Idle")


def anything(payload: Mapping[str, Any]) -> bool:
    return True


def signing_request_for(use: str | None) -> Check:
    """A SignCertificate with a PKCS#10 request, for this certificateType (None: combined)."""

    def check(payload: Mapping[str, Any]) -> bool:
        return payload.get("certificateType") == use and "CERTIFICATE REQUEST" in payload["csr"]

    return check


#: What an accepted, booted station with no transaction does with each requestedMessage:
#: (status, reason code when refused, the message that follows and what it must say).
EXPECTED: dict[str, tuple[str, str | None, str | None, Check]] = {
    # F06.FR.17: only while the CSMS has not accepted the station.
    "BootNotification": ("Rejected", "NotEnabled", "BootNotification", anything),
    "LogStatusNotification": ("Accepted", None, "LogStatusNotification", idle),
    "FirmwareStatusNotification": ("Accepted", None, "FirmwareStatusNotification", idle),
    "PublishFirmwareStatusNotification": (
        "Accepted",
        None,
        "PublishFirmwareStatusNotification",
        idle,
    ),
    "Heartbeat": ("Accepted", None, "Heartbeat", anything),
    "MeterValues": ("Accepted", None, "MeterValues", anything),
    "StatusNotification": ("Accepted", None, "StatusNotification", anything),
    # No transaction runs: there is none to report.
    "TransactionEvent": ("Rejected", "TxNotFound", "TransactionEvent", anything),
    # A02, A03, M02: a new key pair, and its signing request.
    "SignChargingStationCertificate": (
        "Accepted",
        None,
        "SignCertificate",
        signing_request_for("ChargingStationCertificate"),
    ),
    "SignV2GCertificate": (
        "Accepted",
        None,
        "SignCertificate",
        signing_request_for("V2GCertificate"),
    ),
    "SignV2G20Certificate": (
        "Accepted",
        None,
        "SignCertificate",
        signing_request_for("V2G20Certificate"),
    ),
    "SignCombinedCertificate": ("Accepted", None, "SignCertificate", signing_request_for(None)),
    # F06.FR.19: the station knows no custom trigger.
    "CustomTrigger": ("NotImplemented", "UnsupportedRequest", None, anything),
}


def requested_messages(version: OcppVersion) -> list[str]:
    schema = schema_set(version).schema("TriggerMessage", "Request")
    return list(schema["definitions"]["MessageTriggerEnumType"]["enum"])


def messages_now(csms: Csms) -> int:
    return csms.station(STATION_ID).messages_received


async def settled(csms: Csms) -> int:
    """`messages_now` once the station has sent what it sends after booting (its connectors'
    status), so that only what a trigger makes it send comes after."""
    await trio.testing.wait_all_tasks_blocked()
    return messages_now(csms)


async def trigger(csms: Csms, requested: str, **fields: Any) -> Mapping[str, Any]:
    return await csms.call(STATION_ID, "TriggerMessage", {"requestedMessage": requested, **fields})


async def arrives(
    csms: Csms, action: str, since: int, check: Check = anything
) -> Mapping[str, Any]:
    with trio.fail_after(WITHIN_S):
        return await csms.wait_for_message(STATION_ID, action, check, since=since)


async def none_arrive(csms: Csms, action: str, since: int, check: Check = anything) -> None:
    with trio.move_on_after(WITHIN_S):
        message = await csms.wait_for_message(STATION_ID, action, check, since=since)
        pytest.fail(f"unexpected {action}: {message}")


def received(csms: Csms, action: str, since: int) -> list[Mapping[str, Any]]:
    return [
        message.payload
        for message in csms.station(STATION_ID).messages_since(since)
        if message.action == action
    ]


async def remote_start(csms: Csms) -> str:
    since = messages_now(csms)
    request = {"remoteStartId": 3, "idToken": DRIVER, "evseId": 1}
    assert (await csms.call(STATION_ID, "RequestStartTransaction", request))["status"] == "Accepted"
    started = await arrives(csms, "TransactionEvent", since, lambda p: p["eventType"] == "Started")
    return str(started["transactionInfo"]["transactionId"])


def test_the_table_knows_every_value_of_both_versions() -> None:
    assert set(requested_messages("2.1")) == set(EXPECTED)
    assert set(requested_messages("2.0.1")) <= set(EXPECTED)
    assert {"SignV2G20Certificate", "CustomTrigger"}.isdisjoint(requested_messages("2.0.1"))


@pytest.mark.parametrize(
    ("version", "requested"),
    [
        pytest.param(version, requested, id=f"{version}-{requested}")
        for version in ("2.1", "2.0.1")
        for requested in requested_messages(version)
    ],
)
async def test_each_requested_message_is_sent_or_refused_with_its_reason(
    autojump_clock: MockClock, version: OcppVersion, requested: str
) -> None:
    status, reason, action, check = EXPECTED[requested]
    async with station_on_memory_link(scenario=TWO_EVSES, ocpp_version=version) as (_, csms):
        since = await settled(csms)
        fields = {"customTrigger": "SolarForecast"} if requested == "CustomTrigger" else {}
        answer = await trigger(csms, requested, **fields)
        assert answer["status"] == status, answer
        if status == "Accepted":
            assert "statusInfo" not in answer
            assert action is not None
            await arrives(csms, action, since, check)
            return
        assert answer["statusInfo"]["reasonCode"] == reason
        assert answer["statusInfo"]["additionalInfo"]
        if action is not None:
            await none_arrive(csms, action, since)


@VERSIONS
async def test_a_status_notification_is_triggered_for_the_one_connector_named(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=TWO_EVSES, ocpp_version=version) as (_, csms):
        since = await settled(csms)
        evse = {"id": 1, "connectorId": 2}
        assert (await trigger(csms, "StatusNotification", evse=evse))["status"] == "Accepted"
        await arrives(csms, "StatusNotification", since)
        await none_arrive(csms, "StatusNotification", since, lambda p: p["connectorId"] != 2)
        (status,) = received(csms, "StatusNotification", since)
        assert (status["evseId"], status["connectorId"]) == (1, 2)
        assert status["connectorStatus"] == "Available"


@VERSIONS
async def test_a_status_notification_for_no_evse_reports_every_connector(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=TWO_EVSES, ocpp_version=version) as (_, csms):
        since = await settled(csms)
        assert (await trigger(csms, "StatusNotification"))["status"] == "Accepted"
        await arrives(csms, "StatusNotification", since, lambda p: p["evseId"] == 2)
        await none_arrive(csms, "StatusNotification", messages_now(csms))
        reported = [
            (p["evseId"], p["connectorId"]) for p in received(csms, "StatusNotification", since)
        ]
        assert sorted(reported) == [(1, 1), (1, 2), (2, 1)]


@VERSIONS
async def test_meter_values_are_triggered_for_the_evse_named_or_for_every_evse(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=TWO_EVSES, ocpp_version=version) as (_, csms):
        since = await settled(csms)
        assert (await trigger(csms, "MeterValues", evse={"id": 2}))["status"] == "Accepted"
        meter = await arrives(csms, "MeterValues", since)
        assert meter["evseId"] == 2
        measurands = {s["measurand"] for s in meter["meterValue"][0]["sampledValue"]}
        assert measurands == {"Energy.Active.Import.Register", "Power.Active.Import"}
        assert {s["context"] for s in meter["meterValue"][0]["sampledValue"]} == {"Trigger"}
        await none_arrive(csms, "MeterValues", since, lambda p: p["evseId"] != 2)

        since = messages_now(csms)
        assert (await trigger(csms, "MeterValues"))["status"] == "Accepted"
        await arrives(csms, "MeterValues", since, lambda p: p["evseId"] == 2)
        assert [p["evseId"] for p in received(csms, "MeterValues", since)] == [1, 2]


@VERSIONS
async def test_an_unknown_evse_or_connector_is_refused_only_by_messages_about_one(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=TWO_EVSES, ocpp_version=version) as (_, csms):
        since = await settled(csms)
        for requested in ("StatusNotification", "MeterValues", "TransactionEvent"):
            answer = await trigger(csms, requested, evse={"id": 9})
            assert answer["status"] == "Rejected", requested
            assert answer["statusInfo"]["reasonCode"] == "UnknownEvse"
        answer = await trigger(csms, "StatusNotification", evse={"id": 1, "connectorId": 5})
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == "UnknownConnectorId"
        await none_arrive(csms, "StatusNotification", since)
        assert not received(csms, "MeterValues", since)

        # F06.FR.03: an EVSE a message is not about is ignored, and the message still sent.
        answer = await trigger(csms, "Heartbeat", evse={"id": 9})
        assert answer["status"] == "Accepted"
        await arrives(csms, "Heartbeat", since)


@VERSIONS
async def test_a_triggered_transaction_event_reports_the_transactions_now(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=TWO_EVSES, ocpp_version=version) as (_, csms):
        transaction_id = await remote_start(csms)

        # The driver is on the way: no EV is connected yet (F06.FR.07: chargingState Idle).
        since = messages_now(csms)
        answer = await trigger(csms, "TransactionEvent", evse={"id": 1})
        assert answer["status"] == "Accepted"
        event = await arrives(csms, "TransactionEvent", since)
        assert (event["eventType"], event["triggerReason"]) == ("Updated", "Trigger")
        assert event["transactionInfo"]["transactionId"] == transaction_id
        assert event["transactionInfo"]["chargingState"] == "Idle"
        assert event["meterValue"][0]["sampledValue"]

        with trio.fail_after(3600):  # the driver plugs in
            await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["transactionInfo"].get("chargingState") == "Charging",
                since=since,
            )
        since = messages_now(csms)
        assert (await trigger(csms, "TransactionEvent"))["status"] == "Accepted"
        event = await arrives(csms, "TransactionEvent", since)
        assert event["triggerReason"] == "Trigger"
        assert event["transactionInfo"]["chargingState"] == "Charging"
        assert received(csms, "TransactionEvent", since) == [event]  # one transaction runs

        answer = await trigger(csms, "TransactionEvent", evse={"id": 2})
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == "TxNotFound"
