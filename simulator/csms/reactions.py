"""Reactions of the embedded CSMS that want some requests only (`Selective`).

A reaction runs in a task of its own after the CSMS has answered.  Most reactions to a
TransactionEvent care about its first or last event only; `Selective` lets the CSMS ask before
it starts the task, so the events in between cost a function call each, not a task.  This
module knows nothing of the CSMS, so that the CSMS and every module of reactions can import it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

__all__ = ["ON_ENDED", "ON_STARTED", "Selective", "wanted_by"]


class Selective:
    """A reaction for the requests `wants` picks only.  The CSMS asks `wants` as it answers,
    so a reaction to, say, the Ended TransactionEvent costs the other events of a transaction
    a function call, not a task each."""

    __slots__ = ("react", "wants")

    def __init__(
        self, wants: Callable[[Mapping[str, Any]], bool], react: Callable[..., Awaitable[None]]
    ) -> None:
        self.wants = wants
        self.react = react

    async def __call__(
        self, csms: Any, station_id: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        await self.react(csms, station_id, request, response)


def wanted_by(reaction: object, request: Mapping[str, Any]) -> bool:
    """Whether `reaction` has anything to do after `request`."""
    return not isinstance(reaction, Selective) or reaction.wants(request)


def _event_type_is(event_type: str) -> Callable[[Mapping[str, Any]], bool]:
    def wants(request: Mapping[str, Any]) -> bool:
        return bool(request.get("eventType") == event_type)

    return wants


#: TransactionEvent reactions to the first or the last event of a transaction only.
ON_STARTED = _event_type_is("Started")
ON_ENDED = _event_type_is("Ended")
