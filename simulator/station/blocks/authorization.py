"""Block C, authorization: whether a driver's IdToken may charge (C01).

With AuthCtrlr.Enabled false the station authorizes nobody with the CSMS: every token may
charge, as on a free-vend site.  Offline -- no connection, or not yet Accepted -- the station
decides by itself: with AuthCtrlr.OfflineTxForUnknownIdEnabled it lets the driver charge, and
the CSMS learns of the transaction from the queued events when the station is back (E04, E12).
The station has no authorization cache or local list, so the variables that would make it
use them are read-only and false.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..config import StationConfig
from ..core import Block, IdToken, StationCore
from ..device_model import VariableSpec

__all__ = ["BLOCK"]


async def authorize(station: StationCore, id_token: IdToken) -> bool:
    """Whether `id_token` may charge now."""
    model = station.device_model
    if not model.boolean("AuthCtrlr", "Enabled"):
        return True
    if not station.online:
        return model.boolean("AuthCtrlr", "OfflineTxForUnknownIdEnabled")
    response = await station.call("Authorize", {"idToken": id_token})
    if response is None:
        # No answer: offline rules if the connection went meanwhile; a CALLERROR or a timeout
        # on a live connection refuses the driver.
        if not station.online:
            return model.boolean("AuthCtrlr", "OfflineTxForUnknownIdEnabled")
        return False
    return bool(response["idTokenInfo"]["status"] == "Accepted")


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    auth = "AuthCtrlr"
    yield VariableSpec(auth, "Enabled", "boolean", "true")
    yield VariableSpec(auth, "OfflineTxForUnknownIdEnabled", "boolean", "true")
    # A remote start is not authorized again by the station, and there is no cache or local
    # list to authorize from: facts, not settings.
    yield VariableSpec(auth, "AuthorizeRemoteStart", "boolean", "false", "ReadOnly")
    yield VariableSpec(auth, "LocalAuthorizeOffline", "boolean", "false", "ReadOnly")
    yield VariableSpec(auth, "LocalPreAuthorize", "boolean", "false", "ReadOnly")


BLOCK: Block[None] = Block(
    letter="C", name="authorization", variables=_variables, authorize=authorize
)
