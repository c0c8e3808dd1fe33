"""Block A, security: what the station tells a CSMS about how it connects.

SecurityCtrlr reports the security profile of the connection the station really opens (1:
HTTP Basic auth over ws://, 2: TLS over wss://) and the organization of its certificates.
Both are read-only facts.

A04 SecurityEventNotification: a security event another block reports (`SecurityEventOccurred`:
the firmware events of block L) goes to the CSMS with the time it happened.  While the station is
offline the events are queued, and the queue goes out first, in order, once the station is
Accepted again (A04.FR.02: queued with guaranteed delivery).  An event the CSMS answers with a
CALLERROR or not at all while the connection holds counts as delivered: sending it again would
be answered the same way.  At most MAX_QUEUED_EVENTS wait; beyond that the oldest give way.

Certificates -- the store, SecurityCtrlr.CertificateEntries and the signing requests that
TriggerMessage Sign*Certificate asks for (A02, A03, M02) -- are block M's
(`blocks/certificates/`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..config import StationConfig
from ..core import Block, Booted, SecurityEventOccurred, StationCore
from ..device_model import VariableSpec

__all__ = ["BLOCK", "MAX_QUEUED_EVENTS"]

#: Security events kept for a CSMS the station cannot reach; a station offline for long drops
#: the oldest first, so its memory stays bounded.
MAX_QUEUED_EVENTS = 1000


@dataclass(slots=True)
class SecurityState:
    """Per station that ever had a security event to report."""

    #: SecurityEventNotification payloads not yet delivered, oldest first.
    queue: list[dict[str, Any]] = field(default_factory=list)
    sending: bool = False


async def _event_occurred(station: StationCore, event: SecurityEventOccurred) -> None:
    state = station.block_state(BLOCK)
    payload: dict[str, Any] = {"type": event.kind, "timestamp": event.timestamp}
    if event.tech_info:
        payload["techInfo"] = event.tech_info
    state.queue.append(payload)
    del state.queue[:-MAX_QUEUED_EVENTS]
    await _deliver(station, state)


async def _booted(station: StationCore, event: Booted) -> None:
    """Accepted again: what was queued offline goes out now, oldest first."""
    state = station.peek_block_state(BLOCK)
    if state is not None and state.queue:
        await _deliver(station, state)


async def _deliver(station: StationCore, state: SecurityState) -> None:
    """Send the queue in order; stop, keeping the rest, when the connection is lost."""
    if state.sending or not station.online:
        return
    state.sending = True
    try:
        while state.queue:
            answer = await station.call("SecurityEventNotification", state.queue[0])
            if answer is None and not station.online:
                return  # offline again: sent after the next reconnect
            state.queue.pop(0)
    finally:
        state.sending = False


def _security_profile(station: Any) -> str:
    return str(station.security_profile)


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    security = "SecurityCtrlr"
    yield VariableSpec(
        security, "SecurityProfile", "integer", "", "ReadOnly", reader=_security_profile
    )
    yield VariableSpec(security, "OrganizationName", "string", config.vendor, "ReadOnly")


BLOCK: Block[SecurityState] = Block(
    letter="A",
    name="security",
    variables=_variables,
    reactions={SecurityEventOccurred: _event_occurred, Booted: _booted},
    new_state=SecurityState,
)
