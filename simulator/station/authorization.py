"""Block C, authorization: asking the CSMS whether an IdToken may charge (C01).

Offline -- no connection, or not yet Accepted -- the station decides by itself: with
AuthCtrlr.OfflineTxForUnknownIdEnabled it lets the driver charge, and the CSMS learns of the
transaction from the queued events when the station is back (E04, E12).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .station import Station

__all__ = ["authorize"]


async def authorize(station: Station, id_token: dict[str, str]) -> bool:
    """Whether `id_token` may charge now."""
    if not station.online:
        return station.device_model.boolean("AuthCtrlr", "OfflineTxForUnknownIdEnabled")
    response = await station.call("Authorize", {"idToken": id_token})
    if response is None:
        # No answer: offline rules if the connection went meanwhile; a CALLERROR or a timeout
        # on a live connection refuses the driver.
        if not station.online:
            return station.device_model.boolean("AuthCtrlr", "OfflineTxForUnknownIdEnabled")
        return False
    return bool(response["idTokenInfo"]["status"] == "Accepted")
