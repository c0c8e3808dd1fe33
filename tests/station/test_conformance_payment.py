"""Conformance rows of the payment block (C25): NotifyWebPaymentStarted, OCPP 2.1 only.

The response has no status: the station acknowledges, and what it did shows in the EVSE's
WebPaymentsCtrlr.Active and in what a remote start with the payment's IdToken then does."""

from __future__ import annotations

import pytest
import trio.testing
from trio.testing import MockClock

from fleetsim.simulator.ocpp import OcppVersion
from tests.helpers import STATION_ID
from tests.station.conformance import (
    ONLY_21,
    Outcome,
    Row,
    cases,
    request,
    run_row,
    with_transaction,
)
from tests.station.steps import arrives, get_variable, messages_now

WEB_TOKEN = {"idToken": "PSP-WEB-000001", "type": "DirectPayment"}


async def shown_then_started(outcome: Outcome) -> None:
    """The EVSE awaits the web payment until the CSMS starts its transaction."""
    csms = outcome.csms
    assert await get_variable(csms, "WebPaymentsCtrlr", "Active", {"id": 1}) == "true"
    since = messages_now(csms)
    answer = await csms.call(
        STATION_ID,
        "RequestStartTransaction",
        {"remoteStartId": 5, "idToken": WEB_TOKEN, "evseId": 1},
    )
    assert answer["status"] == "Accepted"
    started = await arrives(
        csms, "TransactionEvent", lambda p: p["eventType"] == "Started", since=since
    )
    assert started["idToken"] == WEB_TOKEN
    await trio.testing.wait_all_tasks_blocked()  # the station's own reactions to the start
    assert await get_variable(csms, "WebPaymentsCtrlr", "Active", {"id": 1}) == "false"


async def expired(outcome: Outcome) -> None:
    assert await get_variable(outcome.csms, "WebPaymentsCtrlr", "Active", {"id": 1}) == "false"


ROWS: list[Row] = [
    Row(
        "NotifyWebPaymentStarted",
        "EVSE free",
        request({"evseId": 1, "timeout": 300}),
        None,
        then=shown_then_started,
        versions=ONLY_21,
    ),
    Row(
        "NotifyWebPaymentStarted",
        "EVSE free, no start within the timeout",
        request({"evseId": 1, "timeout": 30}),
        None,
        then=expired,
        versions=ONLY_21,
    ),
    Row(
        "NotifyWebPaymentStarted",
        "transaction on the EVSE",
        with_transaction(lambda transaction_id: {"evseId": 1, "timeout": 300}),
        None,
        then=expired,
        versions=ONLY_21,
    ),
]


@pytest.mark.parametrize(("row", "version"), cases(ROWS))
async def test_action_in_state(autojump_clock: MockClock, row: Row, version: OcppVersion) -> None:
    await run_row(row, version)
