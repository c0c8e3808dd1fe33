"""A driver's personal message on the EVSE's display (C01, E, O): from the idTokenInfo of the
Authorize and TransactionEvent answers, and (2.1) the updatedPersonalMessage of any
TransactionEvent answer; shown while the driver's transaction runs, read by the CSMS as the
EVSE's Display.DataText, and never listed by GetDisplayMessages (it is no DisplayMessage)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import StationConfig
from fleetsim.simulator.station.blocks.display_messages import UNBOUND_MESSAGE_S
from tests.helpers import STATION_ID, busy_site, station_on_memory_link
from tests.station.test_stop_by_token import REMOTE_DRIVERS, charging_for, ended

VERSIONS: tuple[OcppVersion, ...] = ("2.1", "2.0.1")
CARD = {"idToken": "04A1A1A1A1A1A1", "type": "ISO14443"}
#: Token-first drivers, about one an hour, who stay half an hour.
TOKEN_FIRST = busy_site(
    dwell_s=1800,
    soc_start=0.2,
    target_soc=0.3,
    id_token_first_share=1.0,
    arrivals_per_evse_per_day=24,
)


def greeting(text: str, message_format: str = "UTF8") -> dict[str, Any]:
    return {"format": message_format, "language": "en", "content": text}


async def display_text(csms: Csms, evse_id: int = 1) -> str:
    answer = await csms.call(
        STATION_ID,
        "GetVariables",
        {
            "getVariableData": [
                {
                    "component": {"name": "Display", "evse": {"id": evse_id}},
                    "variable": {"name": "DataText"},
                }
            ]
        },
    )
    [result] = answer["getVariableResult"]
    assert result["attributeStatus"] == "Accepted", result
    return str(result.get("attributeValue", ""))


async def next_event(csms: Csms, transaction_id: str, after_seq_no: int) -> Mapping[str, Any]:
    """The transaction's first TransactionEvent after `after_seq_no`: by then the station has
    taken in the CSMS's answer to the event before it."""
    with trio.fail_after(3600):
        return await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p: (
                p["transactionInfo"]["transactionId"] == transaction_id
                and p["seqNo"] > after_seq_no
            ),
        )


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_authorize_answers_message_shows_while_the_transaction_runs(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    def authorize(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        token = payload["idToken"]["idToken"]
        return {"idTokenInfo": {"status": "Accepted", "personalMessage": greeting(f"Hi {token}")}}

    async with station_on_memory_link(
        StationConfig(ocpp_version=version),
        CsmsConfig(response_overrides={"Authorize": authorize}),
        TOKEN_FIRST,
        ocpp_version=version,
    ) as (station, csms):
        with trio.fail_after(4 * 3600):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started"
            )
        started_s = station.clock.sim_now()
        transaction_id = started["transactionInfo"]["transactionId"]
        # Read once the transaction has run longer than a message shows without one.
        with trio.fail_after(3600):
            await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: (
                    p["transactionInfo"]["transactionId"] == transaction_id
                    and p["triggerReason"] == "MeterValuePeriodic"
                    and p["timestamp"] > started["timestamp"]
                ),
            )
        ran_s = station.clock.sim_now() - started_s
        shown = await display_text(csms)
        listed = await csms.call(STATION_ID, "GetDisplayMessages", {"requestId": 1})
        await ended(csms, transaction_id, within_s=3600)
        after = await display_text(csms)
    assert ran_s > UNBOUND_MESSAGE_S
    assert shown == f"Hi {started['idToken']['idToken']}"
    assert listed["status"] == "Unknown"  # a personal message is no DisplayMessage
    assert after == ""


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_transaction_event_answers_message_shows_until_the_transaction_ends(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    def transaction_event(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        if "idToken" not in payload:
            return {}
        return {"idTokenInfo": {"status": "Accepted", "personalMessage": greeting("Welcome")}}

    async with station_on_memory_link(
        StationConfig(ocpp_version=version),
        CsmsConfig(response_overrides={"TransactionEvent": transaction_event}),
        REMOTE_DRIVERS,
        ocpp_version=version,
    ) as (_station, csms):
        assert await display_text(csms) == ""
        transaction_id = await charging_for(csms, CARD, 1, 1)
        shown = await display_text(csms)
        stop = await csms.call(
            STATION_ID, "RequestStopTransaction", {"transactionId": transaction_id}
        )
        assert stop["status"] == "Accepted"
        await ended(csms, transaction_id)
        after = await display_text(csms)
    assert (shown, after) == ("Welcome", "")


async def test_an_updated_personal_message_replaces_the_one_shown(
    autojump_clock: MockClock,
) -> None:
    """OCPP 2.1: the answer to a periodic meter value brings the running cost."""
    first_sample: list[int] = []

    def transaction_event(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        if "idToken" in payload:
            return {"idTokenInfo": {"status": "Accepted", "personalMessage": greeting("Welcome")}}
        if payload["triggerReason"] == "MeterValuePeriodic" and not first_sample:
            first_sample.append(payload["seqNo"])
            return {"updatedPersonalMessage": greeting("Cost so far: 0.42 EUR")}
        return {}

    async with station_on_memory_link(
        StationConfig(),
        CsmsConfig(response_overrides={"TransactionEvent": transaction_event}),
        REMOTE_DRIVERS,
    ) as (_station, csms):
        transaction_id = await charging_for(csms, CARD, 1, 1)
        before = await display_text(csms)
        with trio.fail_after(600):
            sample = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "MeterValuePeriodic",
            )
        await next_event(csms, transaction_id, sample["seqNo"])
        after = await display_text(csms)
    assert first_sample == [sample["seqNo"]]
    assert (before, after) == ("Welcome", "Cost so far: 0.42 EUR")


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_message_the_display_cannot_render_is_not_shown(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    def transaction_event(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        if "idToken" not in payload:
            return {}
        message = greeting("<b>Welcome</b>", "HTML")
        return {"idTokenInfo": {"status": "Accepted", "personalMessage": message}}

    async with station_on_memory_link(
        StationConfig(ocpp_version=version),
        CsmsConfig(response_overrides={"TransactionEvent": transaction_event}),
        REMOTE_DRIVERS,
        ocpp_version=version,
    ) as (_station, csms):
        await charging_for(csms, CARD, 1, 1)
        assert await display_text(csms) == ""


async def test_a_refused_driver_sees_the_message_for_a_while(autojump_clock: MockClock) -> None:
    """No transaction keeps the message of a driver the CSMS refused: it shows for
    UNBOUND_MESSAGE_S after the answer, then the display is empty again."""

    def authorize(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"idTokenInfo": {"status": "Blocked", "personalMessage": greeting("Card blocked")}}

    async with station_on_memory_link(
        StationConfig(),
        CsmsConfig(response_overrides={"Authorize": authorize}),
        TOKEN_FIRST,
    ) as (station, csms):
        with trio.fail_after(4 * 3600):
            await csms.wait_for_message(STATION_ID, "Authorize")
        answered_s = station.clock.sim_now()
        # The answer reaches the station at once; read the display in the same minute.
        shown = ""
        for _ in range(10):
            shown = await display_text(csms)
            if shown:
                break
            await station.clock.sleep(1)
        read_s = station.clock.sim_now()
        await station.clock.sleep(UNBOUND_MESSAGE_S)
        later = await display_text(csms)
    assert shown == "Card blocked"
    assert read_s - answered_s < UNBOUND_MESSAGE_S / 2
    assert later == ""


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_cost_shows_on_the_line_below_the_personal_message(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    def transaction_event(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        if "idToken" in payload:
            return {"idTokenInfo": {"status": "Accepted", "personalMessage": greeting("Welcome")}}
        return {}

    async with station_on_memory_link(
        StationConfig(ocpp_version=version),
        CsmsConfig(response_overrides={"TransactionEvent": transaction_event}),
        REMOTE_DRIVERS,
        ocpp_version=version,
    ) as (_station, csms):
        transaction_id = await charging_for(csms, CARD, 1, 1)
        assert await display_text(csms) == "Welcome"
        await csms.call(
            STATION_ID, "CostUpdated", {"transactionId": transaction_id, "totalCost": 3.2}
        )
        assert await display_text(csms) == "Welcome\nTotal cost: 3.20 EUR"
