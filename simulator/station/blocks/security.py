"""Block A, security: what the station tells a CSMS about how it connects.

SecurityCtrlr reports the security profile of the connection in use (1: HTTP Basic auth, 2:
TLS with Basic auth, 3: TLS with a client certificate; a network profile's own, B10/A05) and
the organization of its certificates.  These are read-only facts.

A01 BasicAuthPassword is write-only: GetVariables refuses to read it and reports never carry
it.  A new value must be a passwordString of 16 to 40 characters (A00.FR.205, `passwords`);
any other is Rejected with the rule in statusInfo (never the value), and the station goes on
connecting with the password it has, without reconnecting.  Once a SetVariables sets a valid
one, the station closes its connection and reconnects with the new password.  Should the CSMS
refuse it (HTTP 401), the station falls back to the password that last worked, connects with
that, and reports FailedToAuthenticateAtCsms in a SecurityEventNotification; once the new
password is accepted it becomes the one that works.  The connection code asks
`connection_password` which password to send and tells the block how the attempt went
(`password_accepted`, `password_refused`), and reports TLS failures the spec lists as security
events (`connection_failed`: InvalidCsmsCertificate, InvalidTLSVersion).

A04 SecurityEventNotification: a security event another block reports (`SecurityEventOccurred`:
the firmware events of block L) goes to the CSMS with the time it happened.  While the station is
offline the events are queued, and the queue goes out first, in order, once the station is
Accepted again (A04.FR.02: queued with guaranteed delivery).  An event the CSMS answers with a
CALLERROR or not at all while the connection holds counts as delivered: sending it again would
be answered the same way.  At most MAX_QUEUED_EVENTS wait; beyond that the oldest give way.
A connection failure that repeats at every attempt while the station is offline is queued once
(the first), so a station that cannot connect for hours does not pile up copies.

Certificates -- the store, SecurityCtrlr.CertificateEntries and the signing requests that
TriggerMessage Sign*Certificate asks for (A02, A03, M02) -- are block M's
(`blocks/certificates/`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..config import StationConfig
from ..core import Block, Booted, SecurityEventOccurred, StationCore, VariableChanged
from ..device_model import VariableKey, VariableSpec
from ..passwords import PASSWORD_MAX_LENGTH, password_problem

__all__ = [
    "BLOCK",
    "MAX_QUEUED_EVENTS",
    "connection_failed",
    "connection_password",
    "password_accepted",
    "password_refused",
    "security_profile_in_use",
]

_SECURITY = "SecurityCtrlr"
_PASSWORD: VariableKey = (_SECURITY, None, None, None, "BasicAuthPassword", None)
#: Events of failed connection attempts: queued once per run of failures, not per attempt.
_COALESCED = frozenset(
    {"FailedToAuthenticateAtCsms", "InvalidCsmsCertificate", "InvalidTLSVersion"}
)
#: ConnectError outcomes (transport/tls.py) -> the security event the spec lists for them.
_TLS_EVENTS = {
    "untrusted_certificate": "InvalidCsmsCertificate",
    "hostname_mismatch": "InvalidCsmsCertificate",
    "certificate_expired": "InvalidCsmsCertificate",
    "tls_version": "InvalidTLSVersion",
}

#: Security events kept for a CSMS the station cannot reach; a station offline for long drops
#: the oldest first, so its memory stays bounded.
MAX_QUEUED_EVENTS = 1000


@dataclass(slots=True)
class SecurityState:
    """Per station that ever had a security event to report."""

    #: SecurityEventNotification payloads not yet delivered, oldest first.
    queue: list[dict[str, Any]] = field(default_factory=list)
    sending: bool = False
    #: A01: a new BasicAuthPassword is being tried and has not connected yet.
    trying_new_password: bool = False
    #: The password that last connected ("" for the scenario's), kept to fall back to.
    working_password: str = field(default="", repr=False)


async def _event_occurred(station: StationCore, event: SecurityEventOccurred) -> None:
    state = station.block_state(BLOCK)
    if (
        event.kind in _COALESCED
        and state.queue
        and state.queue[-1]["type"] == event.kind
        and not station.online
    ):
        return  # the same failure again while offline: the first one says it
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


# -- A01: the HTTP Basic password -----------------------------------------------------------


def connection_password(station: StationCore) -> str | None:
    """The password the station connects with: the BasicAuthPassword the CSMS set (A01), or
    None for the scenario's (or the network profile's)."""
    return station.device_model.get("SecurityCtrlr", "BasicAuthPassword") or None


def password_accepted(station: StationCore) -> None:
    """The station connected: a new password being tried is now the one that works."""
    state = station.peek_block_state(BLOCK)
    if state is not None and state.trying_new_password:
        state.trying_new_password = False
        state.working_password = station.device_model.get("SecurityCtrlr", "BasicAuthPassword")


def password_refused(station: StationCore) -> bool:
    """The CSMS refused the credentials (HTTP 401).  When they were a new password, fall back
    to the one that last worked and report it; True when the station fell back."""
    state = station.peek_block_state(BLOCK)
    if state is None or not state.trying_new_password:
        station.post(
            SecurityEventOccurred(
                "FailedToAuthenticateAtCsms",
                station.clock.timestamp(),
                "the CSMS refused the station's credentials (HTTP 401)",
            )
        )
        return False
    state.trying_new_password = False
    station.device_model.store(_PASSWORD, state.working_password)
    station.post(
        SecurityEventOccurred(
            "FailedToAuthenticateAtCsms",
            station.clock.timestamp(),
            "the CSMS refused the new BasicAuthPassword (HTTP 401); the station connects "
            "with the previous one again",
        )
    )
    return True


def connection_failed(station: StationCore, outcome: str) -> None:
    """A connection attempt failed with `outcome`; report the failures the spec lists as
    security events (the CSMS's certificate, the TLS version)."""
    kind = _TLS_EVENTS.get(outcome)
    if kind is not None:
        station.post(
            SecurityEventOccurred(kind, station.clock.timestamp(), outcome.replace("_", " "))
        )


def _variable_changed(station: StationCore, event: VariableChanged) -> None:
    """A new BasicAuthPassword: reconnect with it now (A01)."""
    if event.key != _PASSWORD or security_profile_in_use(station) >= 3:
        return  # (profile 3 sends no password: nothing to reconnect for)
    state = station.block_state(BLOCK)
    state.trying_new_password = True
    link = station.link
    if link is not None:
        # After the SetVariables answer has gone out: the CSMS hears Accepted first.
        station.spawn(link.aclose)


def security_profile_in_use(station: StationCore) -> int:
    """The security profile of the connection in use: the network profile's (B10, A05), else
    the scenario's."""
    profile = station.connection_profile
    if profile is not None:
        return int(profile.get("securityProfile", station.security_profile))
    return station.security_profile


def _security_profile(station: Any) -> str:
    return str(security_profile_in_use(station))


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    security = _SECURITY
    yield VariableSpec(
        security, "SecurityProfile", "integer", "", "ReadOnly", reader=_security_profile
    )
    yield VariableSpec(security, "OrganizationName", "string", config.vendor, "ReadOnly")
    yield VariableSpec(
        security,
        "BasicAuthPassword",
        "string",
        "",
        "WriteOnly",
        max_limit=PASSWORD_MAX_LENGTH,
        check=password_problem,
    )


BLOCK: Block[SecurityState] = Block(
    letter="A",
    name="security",
    variables=_variables,
    reactions={
        SecurityEventOccurred: _event_occurred,
        Booted: _booted,
        VariableChanged: _variable_changed,
    },
    new_state=SecurityState,
)
