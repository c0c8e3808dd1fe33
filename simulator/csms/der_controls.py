"""The DER curve the embedded CSMS sets on its stations (`embedded_csms.der_control`, R04).

A grid operator asks chargers to support the grid with a frequency-watt or volt-watt curve:
the EV's power follows the grid's frequency or voltage.  The CSMS sends the curve as a default
control (SetDERControl, isDefault true) to each OCPP 2.1 station after its boot, and again when
the station reports that a grid event began (NotifyDERAlarm without alarmEnded), so a station
that lost its controls gets them before the excursion goes on.  The same controlId each time:
the station replaces the curve rather than piling up copies.  OCPP 2.0.1 stations have no DER
control and are left alone.

A refusal or a station that does not answer is counted in `CsmsStatistics.pushes`
(`der_control_failed`; `der_control_set` when Accepted) and logged; nothing raises into the
connection.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .smart_charging import Reaction

if TYPE_CHECKING:
    from .csms import Csms

__all__ = ["DerCurvePush", "default_curve"]

_log = logging.getLogger(__name__)


def default_curve(control_type: str, nominal_hz: float) -> list[tuple[float, float]]:
    """The curve sent when the scenario names none: a FreqWatt curve that gives up charging as
    the frequency falls from 0.2 Hz to 1 Hz below nominal, or a VoltWatt curve that halves the
    power when the voltage sags to 90 % of nominal."""
    if control_type == "FreqWatt":
        return [(nominal_hz - 1.0, 0.0), (nominal_hz - 0.2, 100.0)]
    return [(90.0, 50.0), (95.0, 100.0)]


@dataclass(frozen=True, slots=True)
class DerCurvePush:
    """The curve, and when to send it."""

    control_type: str
    curve: Sequence[tuple[float, float]]
    priority: int = 1
    control_id: str = "fleetsim-der"
    after_boot: bool = True
    on_alarm: bool = True

    def request(self) -> dict[str, Any]:
        return {
            "isDefault": True,
            "controlId": self.control_id,
            "controlType": self.control_type,
            "curve": {
                "priority": self.priority,
                "yUnit": "PctMaxW",
                "curveData": [{"x": x, "y": y} for x, y in self.curve],
            },
        }

    def reactions(self) -> dict[str, Reaction]:
        """The CSMS reactions that send the curve: to BootNotification and NotifyDERAlarm."""
        table: dict[str, Reaction] = {}
        if self.after_boot:

            async def after_boot(
                csms: Csms, station_id: str, request: Mapping[str, Any], answer: Mapping[str, Any]
            ) -> None:
                if answer.get("status") == "Accepted":
                    await self._send(csms, station_id)

            table["BootNotification"] = after_boot
        if self.on_alarm:

            async def on_alarm(
                csms: Csms, station_id: str, request: Mapping[str, Any], answer: Mapping[str, Any]
            ) -> None:
                if not request.get("alarmEnded", False):
                    await self._send(csms, station_id)

            table["NotifyDERAlarm"] = on_alarm
        return table

    async def _send(self, csms: Csms, station_id: str) -> None:
        if csms.station(station_id).version != "2.1":
            return
        try:
            answer = await csms.call_quietly(station_id, "SetDERControl", self.request())
        except Exception as exc:
            csms.count_push("der_control_failed")
            _log.warning("embedded CSMS: setting the DER curve on %s failed: %r", station_id, exc)
            return
        if answer is not None and answer.get("status") == "Accepted":
            csms.count_push("der_control_set")
            return
        csms.count_push("der_control_failed")
        _log.debug("embedded CSMS: %s refused the DER curve: %r", station_id, answer)
