"""`RpcLink`'s own CALLs: one outstanding at a time, the others queued first come first served.

The CSMS end is the bare other half of a `memory_channel_pair`, so the test sees each frame the
link sends and decides when to answer it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pytest
import trio
from trio.testing import MockClock, wait_all_tasks_blocked

from fleetsim.simulator.link import Answer
from fleetsim.simulator.ocpp import (
    CSMS_INITIATED,
    ErrorCode,
    LinkClosed,
    RpcError,
    RpcSession,
    schema_set,
)
from fleetsim.simulator.transport import RpcLink, memory_channel_pair

WAIT_S = 10


def refuse(action: str, payload: Mapping[str, Any]) -> Answer:
    raise RpcError(ErrorCode.NOT_IMPLEMENTED, f"this test station does not handle {action}")


def status(evse_id: int) -> dict[str, Any]:
    return {
        "timestamp": "2024-01-01T00:00:00.000Z",
        "connectorStatus": "Available",
        "evseId": evse_id,
        "connectorId": 1,
    }


async def test_concurrent_calls_go_out_one_at_a_time_in_the_order_they_were_made(
    autojump_clock: MockClock, nursery: trio.Nursery
) -> None:
    station_end, csms_end = memory_channel_pair()
    link = RpcLink(
        station_end, RpcSession(schema_set("2.1"), CSMS_INITIATED), refuse, spawn=nursery.start_soon
    )
    nursery.start_soon(link.run)
    log: list[str] = []

    async def report(evse_id: int) -> None:
        await link.call("StatusNotification", status(evse_id))
        log.append(f"answered {evse_id}")

    with trio.fail_after(WAIT_S):
        for evse_id in (1, 2, 3):
            nursery.start_soon(report, evse_id)
            await wait_all_tasks_blocked()
        for _ in range(3):
            message_type, message_id, action, payload = orjson.loads(await csms_end.receive_text())
            assert (message_type, action) == (2, "StatusNotification")
            log.append(f"received {payload['evseId']}")
            await csms_end.send_text(orjson.dumps([3, message_id, {}]).decode())
            await wait_all_tasks_blocked()
    assert log == [
        "received 1",
        "answered 1",
        "received 2",
        "answered 2",
        "received 3",
        "answered 3",
    ]


async def test_closing_the_link_fails_the_call_in_flight_and_the_queued_ones(
    autojump_clock: MockClock, nursery: trio.Nursery
) -> None:
    station_end, csms_end = memory_channel_pair()
    link = RpcLink(
        station_end, RpcSession(schema_set("2.1"), CSMS_INITIATED), refuse, spawn=nursery.start_soon
    )
    nursery.start_soon(link.run)
    failed: list[int] = []

    async def report(evse_id: int) -> None:
        with pytest.raises(LinkClosed):
            await link.call("StatusNotification", status(evse_id))
        failed.append(evse_id)

    with trio.fail_after(WAIT_S):
        async with trio.open_nursery() as callers:
            for evse_id in (1, 2, 3):
                callers.start_soon(report, evse_id)
                await wait_all_tasks_blocked()
            await csms_end.receive_text()
            await link.aclose()
    assert failed == [1, 2, 3]
