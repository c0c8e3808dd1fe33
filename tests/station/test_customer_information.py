"""N09, N10: CustomerInformation reports what the station holds about a customer in
NotifyCustomerInformation, and `clear` removes the authorization cache entry (never the local
list, which the CSMS manages, nor the transactions it must bill)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station.blocks.diagnostics import DATA_PER_MESSAGE, customer_data_parts
from tests.helpers import STATION_ID, TEST_EV, station_on_memory_link

VERSIONS: list[OcppVersion] = ["2.1", "2.0.1"]
DRIVER = {"idToken": "04A2B3C4D5E6F7", "type": "ISO14443"}
LISTED = {"idToken": "LISTED-0001", "type": "ISO14443"}
#: Remote drivers plug in a minute after the request, so a remote start runs a transaction.
REMOTE_DRIVERS: dict[str, Any] = {
    "ev_fleet": {
        "models": {"test-ev": 1.0},
        "extra_models": {"test-ev": TEST_EV},
        "remote_start_plugin_delay_s": 60,
    }
}


async def set_variable(csms: Csms, component: str, name: str, value: str) -> None:
    answer = await csms.call(
        STATION_ID,
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": component},
                    "variable": {"name": name},
                    "attributeValue": value,
                }
            ]
        },
    )
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"


async def get_variable(csms: Csms, component: str, name: str) -> str:
    answer = await csms.call(
        STATION_ID,
        "GetVariables",
        {"getVariableData": [{"component": {"name": component}, "variable": {"name": name}}]},
    )
    return str(answer["getVariableResult"][0]["attributeValue"])


async def start_transaction(csms: Csms, evse_id: int, remote_start_id: int) -> str:
    since = csms.station(STATION_ID).messages_received
    answer = await csms.call(
        STATION_ID,
        "RequestStartTransaction",
        {"remoteStartId": remote_start_id, "idToken": DRIVER, "evseId": evse_id},
    )
    assert answer["status"] == "Accepted"
    started = await csms.wait_for_message(
        STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started", since=since
    )
    return str(started["transactionInfo"]["transactionId"])


async def list_token(csms: Csms) -> None:
    answer = await csms.call(
        STATION_ID,
        "SendLocalList",
        {
            "versionNumber": 3,
            "updateType": "Full",
            "localAuthorizationList": [{"idToken": LISTED, "idTokenInfo": {"status": "Accepted"}}],
        },
    )
    assert answer["status"] == "Accepted"


async def customer_information(
    csms: Csms, request_id: int, *, report: bool = True, clear: bool = False, **customer: Any
) -> tuple[Mapping[str, Any], list[Mapping[str, Any]]]:
    """The answer and, when reported, every NotifyCustomerInformation of the request, in order
    (until one without tbc)."""
    since = csms.station(STATION_ID).messages_received
    payload = {"requestId": request_id, "report": report, "clear": clear, **customer}
    answer = await csms.call(STATION_ID, "CustomerInformation", payload)
    parts: list[Mapping[str, Any]] = []
    if answer["status"] != "Accepted" or not report:
        return answer, parts
    with trio.fail_after(60):
        while not parts or parts[-1].get("tbc", False):
            part = await csms.wait_for_message(
                STATION_ID,
                "NotifyCustomerInformation",
                lambda p: p["requestId"] == request_id and p["seqNo"] == len(parts),
                since=since,
            )
            parts.append(part)
    return answer, parts


def text(parts: list[Mapping[str, Any]]) -> str:
    return "".join(str(part["data"]) for part in parts)


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_report_names_the_cache_entry_and_the_transaction_of_a_token(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=REMOTE_DRIVERS, ocpp_version=version) as (
        _station,
        csms,
    ):
        with trio.fail_after(3600):
            await set_variable(csms, "AuthCacheCtrlr", "Enabled", "true")
            transaction_id = await start_transaction(csms, 1, 41)
            await trio.sleep(5)  # the Started event's answer reaches the cache
            answer, parts = await customer_information(csms, 1, idToken=DRIVER)
        assert answer == {"status": "Accepted"}
        assert len(parts) == 1 and "tbc" not in parts[0]
        data = text(parts)
        assert "authorization cache: status Accepted" in data
        assert f"transaction {transaction_id} on EVSE 1" in data
        assert "local authorization list" not in data


async def test_clear_removes_the_cache_entry_and_keeps_the_local_list(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=REMOTE_DRIVERS) as (_station, csms):
        with trio.fail_after(3600):
            await set_variable(csms, "AuthCacheCtrlr", "Enabled", "true")
            await start_transaction(csms, 1, 42)
            await list_token(csms)
            await trio.sleep(5)
            assert int(await get_variable(csms, "AuthCacheCtrlr", "Storage")) > 0
            _, listed = await customer_information(csms, 2, idToken=LISTED)
            assert "local authorization list: status Accepted" in text(listed)

            answer, parts = await customer_information(csms, 3, clear=True, idToken=DRIVER)
            assert answer["status"] == "Accepted"
            assert "authorization cache: status Accepted" in text(parts)  # what it held
            assert await get_variable(csms, "AuthCacheCtrlr", "Storage") == "0"
            _, after = await customer_information(csms, 4, idToken=DRIVER)
            assert "authorization cache" not in text(after)
            assert "transaction" in text(after)  # the running transaction is kept

            answer, _ = await customer_information(
                csms, 5, report=False, clear=True, idToken=LISTED
            )
            assert answer["status"] == "Accepted"
            _, still = await customer_information(csms, 6, idToken=LISTED)
            assert "local authorization list: status Accepted" in text(still)
            version = await csms.call(STATION_ID, "GetLocalListVersion", {})
            assert version["versionNumber"] == 3


async def test_a_long_report_is_split_with_tbc_and_seq_no(autojump_clock: MockClock) -> None:
    eight_evses = {"stations": {"count": 1, "evses": [{"connectors": ["cType2"]}] * 8}}
    async with station_on_memory_link(scenario={**REMOTE_DRIVERS, **eight_evses}) as (
        _station,
        csms,
    ):
        with trio.fail_after(3600):
            await set_variable(csms, "AuthCacheCtrlr", "Enabled", "true")
            ids = [await start_transaction(csms, evse_id, 50 + evse_id) for evse_id in range(1, 9)]
            await trio.sleep(5)
            _, parts = await customer_information(csms, 7, idToken=DRIVER)
        assert len(parts) >= 2
        assert [part["seqNo"] for part in parts] == list(range(len(parts)))
        assert all(part.get("tbc") is True for part in parts[:-1])
        assert all(len(part["data"]) == DATA_PER_MESSAGE for part in parts[:-1])
        assert len({part["generatedAt"] for part in parts}) == 1
        data = text(parts)
        assert all(f"transaction {tx} on EVSE" in data for tx in ids)


async def test_a_customer_the_station_holds_nothing_about_gets_a_report_saying_so(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link() as (_station, csms):
        _, parts = await customer_information(csms, 8, idToken={"idToken": "X1", "type": "KeyCode"})
        assert text(parts) == "idToken KeyCode:x1: no data held"
        _, parts = await customer_information(csms, 9, customerIdentifier="customer-17")
        assert text(parts) == "customerIdentifier customer-17: no data held"


async def test_requests_that_ask_nothing_or_name_no_customer_are_refused(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link() as (_station, csms):
        since = csms.station(STATION_ID).messages_received
        answer, _ = await customer_information(csms, 10, report=False, clear=False, idToken=DRIVER)
        assert answer["status"] == "Rejected" and answer["statusInfo"]["additionalInfo"]
        answer, _ = await customer_information(csms, 11)
        assert answer["status"] == "Invalid" and answer["statusInfo"]["additionalInfo"]
        with trio.move_on_after(60):
            await csms.wait_for_message(STATION_ID, "NotifyCustomerInformation", since=since)
            pytest.fail("a refused request is followed by no report")


def test_parts_cut_the_data_at_512_characters_and_rejoin_to_it() -> None:
    data = "".join(chr(ord("a") + i % 26) for i in range(1300))
    parts = customer_data_parts(data)
    assert [len(part) for part in parts] == [512, 512, 276]
    assert "".join(parts) == data
    assert customer_data_parts("") == [""]
