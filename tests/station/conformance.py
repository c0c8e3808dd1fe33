"""How a conformance row runs: one CSMS-initiated action in one state of a running station.

`tests/station/test_conformance.py` holds the rows of blocks B-H, J, L, N and O; each later block
adds its own `tests/station/test_conformance_<block>.py` with a `ROWS` list and one parametrized
test that calls `run_row`.  The meta-test in `test_conformance.py` gathers the rows of every such
file and fails when an action a block answers has none.

A row names how to bring the station there, the request, the status the specification names for
that state, the messages that must follow (in order), and a check of the state that follows,
read back over OCPP where the protocol can tell.  The answer validates against the version's
schema because the CSMS's link checks it: an invalid answer fails the call as a CALLERROR.  A row
without follow-ups says the station sends nothing: the test waits past `QUIET_S` of simulated time
and fails on anything but the station's own periodic messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trio.testing

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import Station
from tests.helpers import STATION_ID, station_on_memory_link
from tests.station.steps import (
    REMOTE_DRIVERS,
    Payload,
    connector_status,
    messages_now,
    running_transaction,
    stopped_transaction,
)

BOTH: tuple[OcppVersion, ...] = ("2.1", "2.0.1")
ONLY_21: tuple[OcppVersion, ...] = ("2.1",)

#: EVSE 1 has a Type 2 socket, whose lock holds a plug; EVSE 2 a captive Type 2 cable.
STATION: dict[str, Any] = {
    **REMOTE_DRIVERS,
    "stations": {"count": 1, "evses": [{"connectors": ["sType2"]}, {}]},
}
#: Simulated seconds within which the follow-ups of an answer must arrive (the remote start's
#: driver plugs in after 60 s).
FOLLOW_UP_WITHIN_S = 120
#: Simulated seconds a row without follow-ups waits for anything the station might wrongly send.
QUIET_S = 90
#: Simulated start is 12:00 UTC.
IN_FIVE_MINUTES = "2026-01-15T12:05:00Z"
AN_HOUR_AGO = "2026-01-15T11:00:00Z"

Prepare = Callable[[Station, Csms], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Expect:
    """A message that must arrive after the answer."""

    action: str
    what: str
    predicate: Callable[[Payload], bool] = lambda payload: True


@dataclass(frozen=True)
class Outcome:
    """What a state check may look at: the station, the CSMS, the request and its answer, and
    how many messages had arrived before the request."""

    station: Station
    csms: Csms
    request: Mapping[str, Any]
    answer: Payload
    since: int


StateCheck = Callable[[Outcome], Awaitable[None]]


@dataclass(frozen=True)
class Row:
    """One action in one state of the station, and what the specification says follows."""

    action: str
    state: str
    prepare: Prepare
    #: The answer's status (per version where they differ); None for answers without one.
    status: str | Mapping[str, str] | None
    #: The statusInfo.reasonCode the refusal names.
    reason: str | None = None
    #: Fields the answer must have, with these values.
    answer: Mapping[str, Any] = field(default_factory=dict)
    follow_ups: tuple[Expect, ...] = ()
    #: Messages that must not come within QUIET_S, even when others follow.
    never: tuple[str, ...] = ()
    then: StateCheck | None = None
    versions: tuple[OcppVersion, ...] = BOTH
    csms_config: CsmsConfig | None = None
    within_s: float = FOLLOW_UP_WITHIN_S
    #: The scenario, where the station must differ from `STATION` (a Local Controller).
    scenario: Mapping[str, Any] | None = None

    def expected_status(self, version: OcppVersion) -> str | None:
        if self.status is None or isinstance(self.status, str):
            return self.status
        return self.status[version]


# -- building rows --------------------------------------------------------------


def request(payload: Mapping[str, Any]) -> Prepare:
    """No preparation: a station just booted, all EVSEs free."""

    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        return dict(payload)

    return prepare


def after(step: Callable[[Csms], Awaitable[Any]], payload: Mapping[str, Any]) -> Prepare:
    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        await step(csms)
        return dict(payload)

    return prepare


def with_transaction(build: Callable[[str], Mapping[str, Any]]) -> Prepare:
    """A transaction charging on EVSE 1; the request made from its id."""

    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        return dict(build(await running_transaction(csms, charging=True)))

    return prepare


def after_ended_transaction(build: Callable[[str], Mapping[str, Any]]) -> Prepare:
    """A transaction that ran on EVSE 1 and was stopped; the request made from its id."""

    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        transaction_id = await running_transaction(csms)
        await stopped_transaction(csms, transaction_id)
        return dict(build(transaction_id))

    return prepare


def status_of(evse_id: int, status: str) -> Expect:
    return Expect(
        "StatusNotification", f"EVSE {evse_id} {status}", connector_status(evse_id, status)
    )


def tx_event(event_type: str, trigger_reason: str, **fields: Any) -> Expect:
    """A TransactionEvent of this type and triggerReason whose fields (or transactionInfo's)
    have these values."""

    def matches(payload: Payload) -> bool:
        info = payload["transactionInfo"]
        return (
            payload["eventType"] == event_type
            and payload["triggerReason"] == trigger_reason
            and all(payload.get(key, info.get(key)) == value for key, value in fields.items())
        )

    return Expect("TransactionEvent", f"{event_type} {trigger_reason} {fields}", matches)


async def nothing_more(csms: Csms, since: int, *actions: str) -> None:
    """Wait QUIET_S of simulated time; none of `actions` may have come since `since`."""
    await trio.sleep(QUIET_S)
    sent = [m for m in csms.station(STATION_ID).messages_since(since) if m.action in actions]
    assert not sent, f"unexpected: {sent}"


def _is_ambient(action: str, payload: Payload) -> bool:
    """What a station sends of its own accord, whatever it was asked: its heartbeat and the
    periodic meter values of a running transaction."""
    return action == "Heartbeat" or (
        action == "TransactionEvent" and payload["triggerReason"] == "MeterValuePeriodic"
    )


def cases(rows: Sequence[Row]) -> list[Any]:
    """pytest parameters: each row against each of its versions."""
    return [
        pytest.param(row, version, id=f"{row.action}-{row.state}-{version}")
        for row in rows
        for version in row.versions
    ]


async def _settled(station: Station, csms: Csms) -> None:
    """Wait for the connector reports that follow the boot, so that nothing the boot caused
    arrives after a row's request."""
    for evse in station.evses:
        for connector in evse.connectors:
            await csms.wait_for_message(
                STATION_ID,
                "StatusNotification",
                lambda p, e=evse.id, c=connector.id: (p["evseId"], p["connectorId"]) == (e, c),
            )


async def run_row(row: Row, version: OcppVersion) -> None:
    """Bring a station of `version` into the row's state, send the request, check the answer,
    the follow-ups in order, the silence where nothing may follow and the state after."""
    async with station_on_memory_link(
        csms_config=row.csms_config, scenario=row.scenario or STATION, ocpp_version=version
    ) as (station, csms):
        with trio.fail_after(3600):
            await _settled(station, csms)
            payload = await row.prepare(station, csms)
            # At rest: whatever the preparation sent has been answered.
            await trio.testing.wait_all_tasks_blocked()
        since = messages_now(csms)
        with trio.fail_after(30):
            answer = await csms.call(STATION_ID, row.action, payload)
        expected = row.expected_status(version)
        assert answer.get("status") == expected, answer
        if row.reason is not None:
            assert answer["statusInfo"]["reasonCode"] == row.reason, answer
            assert answer["statusInfo"]["additionalInfo"], answer
        for key, value in row.answer.items():
            assert answer.get(key) == value, answer
        if row.follow_ups:
            await _follow_ups_arrive(csms, row.follow_ups, since, row.within_s)
        else:
            await trio.sleep(QUIET_S)
            sent = [
                (m.action, m.payload)
                for m in csms.station(STATION_ID).messages_since(since)
                if not _is_ambient(m.action, m.payload)
            ]
            assert not sent, f"{row.action} answered {expected}, yet the station sent {sent}"
        if row.never:
            await nothing_more(csms, since, *row.never)
        if row.then is not None:
            await trio.testing.wait_all_tasks_blocked()
            with trio.fail_after(3600):
                await row.then(Outcome(station, csms, payload, answer, since))


async def _follow_ups_arrive(
    csms: Csms, follow_ups: Sequence[Expect], since: int, within_s: float
) -> None:
    """Each follow-up arrives within `within_s`, in order: each after the one before."""
    position = since
    with trio.fail_after(within_s):
        for expect in follow_ups:
            await csms.wait_for_message(STATION_ID, expect.action, expect.predicate, since=position)
            position = _after(csms, expect, position)


def _after(csms: Csms, expect: Expect, start: int) -> int:
    """The count of messages up to the first one after `start` that meets `expect` (which has
    arrived): the next follow-up must come after it."""
    for index, received in enumerate(csms.station(STATION_ID).messages_since(start), start):
        if received.action == expect.action and expect.predicate(received.payload):
            return index + 1
    raise AssertionError(f"{expect.action} ({expect.what}) arrived but is not kept")
