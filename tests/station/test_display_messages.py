"""Display messages (block O), through the OCPP surface of both versions: what the CSMS sets is
listed as set until it is cleared, expires or its transaction ends, and every refusal has its
cause in what the display is (DisplayMessageCtrlr)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import EvseConfig, StationConfig
from fleetsim.simulator.station.blocks import display_messages
from fleetsim.simulator.station.blocks.display_messages import CAPACITY, ITEMS_PER_MESSAGE
from tests.helpers import STATION_ID, TEST_EV, station_on_memory_link
from tests.station.steps import (
    get_variable,
    running_transaction,
    stopped_transaction,
    updated_events,
)

VERSIONS: list[OcppVersion] = ["2.1", "2.0.1"]
ID_TOKEN = {"idToken": "04A2B3C4D5E6F7", "type": "ISO14443"}
#: The remote start's driver plugs in after a minute.
REMOTE_DRIVERS: dict[str, Any] = {
    "ev_fleet": {
        "models": {"test-ev": 1.0},
        "extra_models": {"test-ev": TEST_EV},
        "remote_start_plugin_delay_s": 60,
    }
}


def message(message_id: int, **fields: Any) -> dict[str, Any]:
    """A MessageInfo the display accepts, with `fields` added or replaced."""
    info: dict[str, Any] = {
        "id": message_id,
        "priority": "NormalCycle",
        "message": {"format": "UTF8", "language": "en", "content": f"Message {message_id}"},
    }
    info.update(fields)
    return info


async def set_message(csms: Csms, info: Mapping[str, Any]) -> Mapping[str, Any]:
    return await csms.call(STATION_ID, "SetDisplayMessage", {"message": info})


async def get_messages(
    csms: Csms, request_id: int, **criteria: Any
) -> tuple[str, list[Mapping[str, Any]]]:
    """GetDisplayMessages' status and, when Accepted, every NotifyDisplayMessages it caused."""
    since = csms.station(STATION_ID).messages_received
    answer = await csms.call(
        STATION_ID, "GetDisplayMessages", {"requestId": request_id, **criteria}
    )
    if answer["status"] != "Accepted":
        return answer["status"], []
    with trio.fail_after(60):
        await csms.wait_for_message(
            STATION_ID,
            "NotifyDisplayMessages",
            lambda p: p["requestId"] == request_id and not p.get("tbc", False),
            since=since,
        )
    parts = [
        received.payload
        for received in csms.station(STATION_ID).messages_since(since)
        if received.action == "NotifyDisplayMessages"
        and received.payload["requestId"] == request_id
    ]
    return answer["status"], parts


async def listed(csms: Csms, **criteria: Any) -> list[Mapping[str, Any]] | None:
    """The messages GetDisplayMessages reports, reassembled; None when it answers Unknown."""
    status, parts = await get_messages(csms, 99, **criteria)
    if status == "Unknown":
        return None
    return [info for part in parts for info in part["messageInfo"]]


async def message_count(csms: Csms) -> str:
    answer = await csms.call(
        STATION_ID,
        "GetVariables",
        {
            "getVariableData": [
                {
                    "component": {"name": "DisplayMessageCtrlr"},
                    "variable": {"name": "DisplayMessages"},
                }
            ]
        },
    )
    return str(answer["getVariableResult"][0]["attributeValue"])


async def settle() -> None:
    """On the autojump clock this returns only once every task waits: what the station does
    in reaction to what happened so far has been done."""
    await trio.sleep(1)


# -- set, list, clear ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_message_is_set_listed_cleared_and_then_gone(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        assert station.peek_block_state(display_messages.BLOCK) is None
        info = message(
            5,
            priority="InFront",
            state="Charging",
            display={"name": "Display", "evse": {"id": 1}},
        )
        assert (await set_message(csms, info))["status"] == "Accepted"
        status, parts = await get_messages(csms, 31)
        assert status == "Accepted"
        assert parts == [{"requestId": 31, "messageInfo": [info], "tbc": False}]
        assert await message_count(csms) == "1"

        answer = await csms.call(STATION_ID, "ClearDisplayMessage", {"id": 5})
        assert answer["status"] == "Accepted"
        assert await listed(csms) is None
        assert await message_count(csms) == "0"
        answer = await csms.call(STATION_ID, "ClearDisplayMessage", {"id": 5})
        assert answer["status"] == "Unknown"


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_station_the_csms_never_set_a_message_on_holds_nothing(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        assert await listed(csms) is None
        answer = await csms.call(STATION_ID, "ClearDisplayMessage", {"id": 1})
        assert answer["status"] == "Unknown"
        refused = await set_message(csms, message(1, priority="AlwaysFront"))
        assert refused["status"] == "NotSupportedPriority"
        assert station.peek_block_state(display_messages.BLOCK) is None


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_message_with_a_known_id_replaces_the_old_one(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_, csms):
        await set_message(csms, message(1))
        await set_message(csms, message(2))
        new = message(1, priority="InFront", message={"format": "ASCII", "content": "Closed"})
        assert (await set_message(csms, new))["status"] == "Accepted"
        assert await listed(csms) == [new, message(2)]


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_list_is_filtered_by_id_priority_and_state(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    first = message(1, priority="InFront", state="Idle")
    second = message(2, state="Idle")
    third = message(3, priority="InFront", state="Charging")
    async with station_on_memory_link(ocpp_version=version) as (_, csms):
        for info in (first, second, third):
            assert (await set_message(csms, info))["status"] == "Accepted"
        assert await listed(csms, id=[3, 1, 8]) == [first, third]
        assert await listed(csms, priority="InFront") == [first, third]
        assert await listed(csms, state="Idle") == [first, second]
        assert await listed(csms, priority="InFront", state="Idle") == [first]
        assert await listed(csms, id=[2], priority="InFront") is None
        assert await listed(csms, id=[8]) is None


# -- refusals, each from its cause --------------------------------------------------------------

HTML = {"format": "HTML", "content": "<b>Welcome</b>"}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("refused", "status"),
    [
        pytest.param(message(1, message=HTML), "NotSupportedMessageFormat", id="html"),
        pytest.param(message(1, priority="AlwaysFront"), "NotSupportedPriority", id="front"),
        pytest.param(message(1, state="Faulted"), "NotSupportedState", id="faulted"),
        pytest.param(message(1, transactionId="CP00001-999"), "UnknownTransaction", id="tx"),
        pytest.param(
            message(1, display={"name": "Display", "evse": {"id": 4}}), "Rejected", id="evse"
        ),
    ],
)
async def test_a_message_the_display_cannot_show_is_refused_with_its_reason(
    autojump_clock: MockClock, version: OcppVersion, refused: dict[str, Any], status: str
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_, csms):
        answer = await set_message(csms, refused)
        assert answer["status"] == status
        assert answer["statusInfo"]["additionalInfo"]
        assert await listed(csms) is None
        assert (await set_message(csms, message(1)))["status"] == "Accepted"


@pytest.mark.parametrize(
    ("version", "status"), [("2.1", "LanguageNotSupported"), ("2.0.1", "Rejected")]
)
async def test_a_language_the_display_does_not_offer_is_refused(
    autojump_clock: MockClock, version: OcppVersion, status: str
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_, csms):
        japanese = message(1, message={"format": "UTF8", "language": "ja", "content": "ようこそ"})
        assert (await set_message(csms, japanese))["status"] == status
        assert await listed(csms) is None
        british = message(1, message={"format": "UTF8", "language": "en-GB", "content": "Hi"})
        assert (await set_message(csms, british))["status"] == "Accepted"


async def test_every_language_of_a_21_message_must_be_offered(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (_, csms):
        extra = [
            {"format": "UTF8", "language": "de", "content": "Willkommen"},
            {"format": "UTF8", "language": "ja", "content": "ようこそ"},
        ]
        answer = await set_message(csms, message(1, messageExtra=extra))
        assert answer["status"] == "LanguageNotSupported"
        answer = await set_message(csms, message(1, messageExtra=[extra[0], {**HTML}]))
        assert answer["status"] == "NotSupportedMessageFormat"
        info = message(1, messageExtra=[extra[0]])
        assert (await set_message(csms, info))["status"] == "Accepted"
        assert await listed(csms) == [info]


async def test_discharging_is_a_state_only_of_a_bidirectional_station(
    autojump_clock: MockClock,
) -> None:
    discharging = message(1, state="Discharging")
    async with station_on_memory_link() as (_, csms):
        assert (await set_message(csms, discharging))["status"] == "NotSupportedState"
    config = StationConfig(evses=(EvseConfig(bidirectional=True),))
    async with station_on_memory_link(config) as (_, csms):
        assert (await set_message(csms, discharging))["status"] == "Accepted"


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_full_display_refuses_a_new_id_but_replaces_a_known_one(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_, csms):
        for message_id in range(CAPACITY):
            assert (await set_message(csms, message(message_id)))["status"] == "Accepted"
        answer = await set_message(csms, message(CAPACITY))
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == "OutOfStorage"
        replaced = message(3, priority="InFront")
        assert (await set_message(csms, replaced))["status"] == "Accepted"
        await csms.call(STATION_ID, "ClearDisplayMessage", {"id": 0})
        assert (await set_message(csms, message(CAPACITY)))["status"] == "Accepted"
        assert await message_count(csms) == str(CAPACITY)


@pytest.mark.parametrize("version", VERSIONS)
async def test_with_the_display_disabled_set_display_message_is_rejected(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async def set_enabled(csms: Csms, value: str) -> None:
        variable = {"component": {"name": "DisplayMessageCtrlr"}, "variable": {"name": "Enabled"}}
        answer = await csms.call(
            STATION_ID, "SetVariables", {"setVariableData": [{**variable, "attributeValue": value}]}
        )
        assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"

    async with station_on_memory_link(ocpp_version=version) as (_, csms):
        await set_enabled(csms, "false")
        answer = await set_message(csms, message(1))
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == "NotEnabled"
        await set_enabled(csms, "true")
        assert (await set_message(csms, message(1)))["status"] == "Accepted"


# -- a long list --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_long_list_is_split_and_reassembles_to_what_was_set(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    assert CAPACITY > 2 * ITEMS_PER_MESSAGE
    infos = [
        message(message_id, priority=("InFront", "NormalCycle")[message_id % 2])
        for message_id in range(CAPACITY)
    ]
    async with station_on_memory_link(ocpp_version=version) as (_, csms):
        for info in reversed(infos):
            assert (await set_message(csms, info))["status"] == "Accepted"
        status, parts = await get_messages(csms, 77)
        assert status == "Accepted"
        sizes = [len(part["messageInfo"]) for part in parts]
        assert sizes == [ITEMS_PER_MESSAGE, ITEMS_PER_MESSAGE, CAPACITY - 2 * ITEMS_PER_MESSAGE]
        assert [part["tbc"] for part in parts] == [True, True, False]
        assert [info for part in parts for info in part["messageInfo"]] == infos


# -- the end of a message: its transaction, its validity window ---------------------------------


async def start_transaction(csms: Csms) -> str:
    since = csms.station(STATION_ID).messages_received
    answer = await csms.call(
        STATION_ID,
        "RequestStartTransaction",
        {"remoteStartId": 8, "idToken": ID_TOKEN, "evseId": 1},
    )
    assert answer["status"] == "Accepted"
    with trio.fail_after(600):
        started = await csms.wait_for_message(
            STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started", since=since
        )
    return str(started["transactionInfo"]["transactionId"])


async def stop_transaction(csms: Csms, transaction_id: str) -> None:
    since = csms.station(STATION_ID).messages_received
    answer = await csms.call(
        STATION_ID, "RequestStopTransaction", {"transactionId": transaction_id}
    )
    assert answer["status"] == "Accepted"
    with trio.fail_after(600):
        await csms.wait_for_message(
            STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended", since=since
        )
    await settle()


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_transaction_message_is_gone_when_its_transaction_ends(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=REMOTE_DRIVERS, ocpp_version=version) as (_, csms):
        transaction_id = await start_transaction(csms)
        bound = message(1, transactionId=transaction_id, state="Charging")
        assert (await set_message(csms, bound))["status"] == "Accepted"
        assert (await set_message(csms, message(2)))["status"] == "Accepted"
        assert await listed(csms) == [bound, message(2)]

        await stop_transaction(csms, transaction_id)
        assert await listed(csms) == [message(2)]
        assert (await set_message(csms, bound))["status"] == "UnknownTransaction"


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_message_is_gone_once_its_validity_window_has_passed(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        clock = station.clock
        now_s = clock.sim_now()
        windowed = message(
            1,
            startDateTime=clock.timestamp(now_s + 600),
            endDateTime=clock.timestamp(now_s + 3600),
        )
        assert (await set_message(csms, windowed))["status"] == "Accepted"
        assert (await set_message(csms, message(2)))["status"] == "Accepted"
        assert await listed(csms) == [windowed, message(2)]  # listed before its start too

        await clock.sleep_until(now_s + 3599)
        assert await listed(csms) == [windowed, message(2)]
        assert await message_count(csms) == "2"
        await clock.sleep_until(now_s + 3600)
        assert await message_count(csms) == "1"
        assert await listed(csms) == [message(2)]
        answer = await csms.call(STATION_ID, "ClearDisplayMessage", {"id": 1})
        assert answer["status"] == "Unknown"


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_expired_message_frees_its_place_on_a_full_display(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        clock = station.clock
        end_s = clock.sim_now() + 60
        short = message(0, endDateTime=clock.timestamp(end_s))
        assert (await set_message(csms, short))["status"] == "Accepted"
        for message_id in range(1, CAPACITY):
            assert (await set_message(csms, message(message_id)))["status"] == "Accepted"
        assert (await set_message(csms, message(CAPACITY)))["status"] == "Rejected"
        await clock.sleep_until(end_s)
        assert (await set_message(csms, message(CAPACITY)))["status"] == "Accepted"


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_window_that_has_ended_or_is_empty_is_rejected(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        clock = station.clock
        now_s = clock.sim_now()
        past = message(1, endDateTime=clock.timestamp(now_s - 1))
        empty = message(
            1, startDateTime=clock.timestamp(now_s + 60), endDateTime=clock.timestamp(now_s + 60)
        )
        for refused in (past, empty):
            answer = await set_message(csms, refused)
            assert answer["status"] == "Rejected"
            assert answer["statusInfo"]["reasonCode"] == "InvalidValue"
        assert await listed(csms) is None


# -- cost on the display (I04, I12) --------------------------------------------------------------

#: 0.40 per kWh, nothing else.
FLAT: dict[str, Any] = {
    "tariffId": "flat",
    "currency": "EUR",
    "energy": {"prices": [{"priceKwh": 0.40}]},
}
_RUNNING_COST = re.compile(r"Running cost: (\d+\.\d\d) EUR")


async def shown(csms: Csms, evse_id: int = 1) -> str:
    return await get_variable(csms, "Display", "DataText", {"id": evse_id})


@pytest.mark.parametrize("version", VERSIONS)
async def test_cost_updated_shows_the_total_with_its_currency_on_the_evse_display(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=REMOTE_DRIVERS, ocpp_version=version) as (
        _,
        csms,
    ):
        with trio.fail_after(3600):
            transaction_id = await running_transaction(csms, charging=True)
            assert await shown(csms) == ""  # no tariff, no cost yet
            await csms.call(
                STATION_ID, "CostUpdated", {"transactionId": transaction_id, "totalCost": 4.85}
            )
            assert await shown(csms) == "Total cost: 4.85 EUR"
            await csms.call(
                STATION_ID, "CostUpdated", {"transactionId": transaction_id, "totalCost": 6.1}
            )
            assert await shown(csms) == "Total cost: 6.10 EUR"
            # One for a transaction that does not run here shows nowhere.
            await csms.call(STATION_ID, "CostUpdated", {"transactionId": "NOPE", "totalCost": 1})
            assert await shown(csms) == "Total cost: 6.10 EUR"
            await stopped_transaction(csms, transaction_id)
            assert await shown(csms) == ""


async def test_a_metered_transaction_shows_its_running_cost_on_the_display(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=REMOTE_DRIVERS) as (_, csms):
        with trio.fail_after(3 * 3600):
            answer = await csms.call(STATION_ID, "SetDefaultTariff", {"evseId": 0, "tariff": FLAT})
            assert answer["status"] == "Accepted"
            transaction_id = await running_transaction(csms, charging=True)
            await trio.sleep(1800)
            first = _RUNNING_COST.fullmatch(await shown(csms))
            await trio.sleep(1800)
            second = _RUNNING_COST.fullmatch(await shown(csms))
            # The CSMS's total, once it sends one, is what the driver owes.
            await csms.call(
                STATION_ID, "CostUpdated", {"transactionId": transaction_id, "totalCost": 9.99}
            )
            assert await shown(csms) == "Total cost: 9.99 EUR"
            await stopped_transaction(csms, transaction_id)
    assert first is not None and second is not None
    # Half an hour at 11 kW is 5.5 kWh, 2.20 at 0.40; an hour 4.40 (the EV plugs in and
    # starts within the first minute, which costs a few cents at most).
    assert float(first.group(1)) == pytest.approx(2.20, abs=0.05)
    assert float(second.group(1)) == pytest.approx(4.40, abs=0.05)
    assert float(second.group(1)) > float(first.group(1))


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_total_cost_of_a_transaction_event_answer_shows_on_the_display(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """A CSMS that computes the cost itself sends it as totalCost in its TransactionEvent
    answers (I02/I03): the display shows the newest one, in TariffCostCtrlr.Currency without a
    tariff at the station."""
    costs = iter(range(1, 1000))

    def priced(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        if payload["eventType"] != "Updated":
            return {}
        return {"totalCost": next(costs) / 4}

    async with station_on_memory_link(
        csms_config=CsmsConfig(response_overrides={"TransactionEvent": priced}),
        scenario=REMOTE_DRIVERS,
        ocpp_version=version,
    ) as (_, csms):
        with trio.fail_after(3600):
            await running_transaction(csms, charging=True)
            await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "MeterValuePeriodic",
            )
            answered = updated_events(csms)  # each answered before the GetVariables below
            # The station may read the display for a GetVariables before it has applied
            # the answer that came just ahead of it; a few more reads let it catch up.
            for _ in range(5):
                text = await shown(csms)
                found = re.fullmatch(r"Total cost: (\d+\.\d\d) EUR", text)
                assert found is not None, text
                if float(found.group(1)) * 4 >= answered:
                    break
            sent = updated_events(csms)  # and those the station sent meanwhile
    assert 1 <= answered <= float(found.group(1)) * 4 <= sent
