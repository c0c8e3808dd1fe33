"""The three-tier model at run time: a station's EVSEs, their connectors, meter and session.

An EVSE delivers energy to one EV at a time through one of its connectors.  Its meter is
piecewise-analytic: power is constant between changes, so the energy register at any instant is
computed when asked (`register_wh`), and an idle EVSE costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from ev_models import EvVisit

    from .transactions import Transaction

__all__ = ["Connector", "Evse", "RemoteStart"]


@dataclass(slots=True)
class Connector:
    id: int
    type: str
    operative: bool = True
    #: The status the CSMS last heard (StatusNotification / NotifyEvent), None before any.
    reported_status: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteStart:
    """A RequestStartTransaction waiting for its EVSE's session task."""

    id_token: str
    id_token_type: str
    remote_start_id: int


@dataclass(slots=True)
class Evse:
    id: int
    max_power_w: float
    phases: int
    connectors: list[Connector]
    operative: bool = True
    #: Availability the CSMS asked for while a transaction ran (ChangeAvailability Scheduled).
    scheduled_operative: bool | None = None
    ev: EvVisit | None = None
    plugged_connector: int | None = None
    transaction: Transaction | None = None
    remote_start: RemoteStart | None = None
    #: Meter: the register at `power_since_s`, and the power since then.
    register_at_since_wh: float = 0.0
    power_since_s: float = 0.0
    power_w: float = 0.0
    #: Energy delivered to the EV now plugged in, at `power_since_s`.
    session_at_since_wh: float = 0.0
    visits: int = 0
    _wake: trio.Event | None = field(default=None, repr=False)

    def register_wh(self, now_s: float) -> float:
        return self.register_at_since_wh + self.power_w * (now_s - self.power_since_s) / 3600.0

    def session_wh(self, now_s: float) -> float:
        return self.session_at_since_wh + self.power_w * (now_s - self.power_since_s) / 3600.0

    def set_power(self, power_w: float, now_s: float) -> float:
        """Change the power from `now_s` on; returns the energy delivered since the last change."""
        delivered_wh = self.power_w * (now_s - self.power_since_s) / 3600.0
        self.register_at_since_wh += delivered_wh
        self.session_at_since_wh += delivered_wh
        self.power_since_s = now_s
        self.power_w = power_w
        return delivered_wh

    def connector(self, connector_id: int) -> Connector | None:
        for connector in self.connectors:
            if connector.id == connector_id:
                return connector
        return None

    def wake(self) -> None:
        """Make the EVSE's session task look at its state again (a CSMS request changed it)."""
        if self._wake is not None:
            self._wake.set()

    def new_wake_event(self) -> trio.Event:
        self._wake = trio.Event()
        return self._wake
