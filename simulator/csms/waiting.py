"""Event-driven waits on stations: one-shot events by station id, and waits for a message.

Tests wait for a station to connect, leave, or send something; a CSMS serving thousands of
stations must not pay for that when nobody waits.  So nothing here exists until a test waits:
an event is created by the first waiter and dropped once set, and a message is offered to
waiters only when some are parked (`bool(MessageWaiters)` is one dict-size check).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import trio

__all__ = ["MessagePredicate", "MessageWaiters", "StationEvents"]

MessagePredicate = Callable[[Mapping[str, Any]], bool]


class StationEvents:
    """One-shot `trio.Event`s keyed by station id, for a condition such as "connected".

    The waiter re-checks its condition after each wake-up (`while not cond: await
    events.event(id).wait()`), so a condition that flips back before it runs is not missed.
    """

    __slots__ = ("_events",)

    def __init__(self) -> None:
        self._events: dict[str, trio.Event] = {}

    def event(self, station_id: str) -> trio.Event:
        """The event the next `fire(station_id)` sets."""
        event = self._events.get(station_id)
        if event is None:
            event = self._events[station_id] = trio.Event()
        return event

    def fire(self, station_id: str) -> None:
        event = self._events.pop(station_id, None)
        if event is not None:
            event.set()


class _Waiter:
    """One parked wait for a message."""

    __slots__ = ("action", "error", "event", "payload", "predicate", "since")

    def __init__(self, action: str, predicate: MessagePredicate | None, since: int) -> None:
        self.action = action
        self.predicate = predicate
        self.since = since
        self.event = trio.Event()
        self.payload: Mapping[str, Any] | None = None
        self.error: Exception | None = None

    def offer(self, position: int, payload: Mapping[str, Any]) -> bool:
        """Take the message at `position` if it matches; True when the wait is over.

        A predicate that raises ends the wait with its error, raised in the waiting task
        rather than in the station's link, which must go on answering.
        """
        if position < self.since:
            return False
        try:
            if self.predicate is not None and not self.predicate(payload):
                return False
        except Exception as exc:
            self.error = exc
        self.payload = payload
        self.event.set()
        return True


class MessageWaiters:
    """Waits for a station's next message of an action, matched by an optional predicate."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: dict[str, list[_Waiter]] = {}

    def __bool__(self) -> bool:
        return bool(self._waiters)

    async def wait(
        self,
        station_id: str,
        action: str,
        predicate: MessagePredicate | None,
        since: int,
    ) -> Mapping[str, Any]:
        """The payload of the first matching message at position `since` or later."""
        waiter = _Waiter(action, predicate, since)
        self._waiters.setdefault(station_id, []).append(waiter)
        try:
            await waiter.event.wait()
        finally:
            if not waiter.event.is_set():
                self._forget(station_id, waiter)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.payload is not None
        return waiter.payload

    def offer(
        self, station_id: str, position: int, action: str, payload: Mapping[str, Any]
    ) -> None:
        """Hand the station's message at `position` to the waits it ends."""
        waiters = self._waiters.get(station_id)
        if not waiters:
            return
        remaining = [
            waiter
            for waiter in waiters
            if waiter.action != action or not waiter.offer(position, payload)
        ]
        if remaining:
            self._waiters[station_id] = remaining
        else:
            del self._waiters[station_id]

    def _forget(self, station_id: str, waiter: _Waiter) -> None:
        waiters = self._waiters.get(station_id)
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._waiters[station_id]
