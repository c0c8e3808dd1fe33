"""An EVSE's token reader: a driver presents an IdToken there to end a transaction (E07, C09,
C16).

Who may end what is block C's to judge (`StationCore.stop_authority`): the transaction's own
token, a valid token of its group, or a master pass.  What follows is the station's own
machinery, as a real firmware's reader handler would do it:

- a token that may end the EVSE's transaction ends its authorization: a TransactionEvent with
  triggerReason StopAuthorized that carries the presented token.  When TxStopPoint holds a
  point that the end of the authorization ends (Authorized, PowerPathClosed, EnergyTransfer
  while energy flows), that event is the Ended one, with stoppedReason Local (or MasterPass);
  otherwise it is an Updated one, the EVSE opens the power path, and the transaction ends
  later at its own stop point (the EV unplugging) -- `transaction.authorization_ended`;
- a master pass ends every transaction of the station, as a station without a screen to
  choose from must (C16.FR.02), wherever it is presented;
- any other token leaves the transaction as it was: the driver is refused.

Central tokens (the CSMS's own, for remote starts) and NoAuthorization (nothing to present)
are not cards anyone can hold to a reader, so presenting one does nothing.  Presenting a token
at an EVSE with no transaction is how a driver starts one: the visit's own business
(`ev_driver`), except for a master pass, which still ends the station's other transactions.
"""

from __future__ import annotations

from .core import IdToken, StationCore
from .evse import Evse, Transaction
from .transaction import authorization_ended

__all__ = ["UNPRESENTABLE_TOKEN_TYPES", "present_id_token"]

#: IdToken types no driver can hold to a reader.
UNPRESENTABLE_TOKEN_TYPES = frozenset({"Central", "NoAuthorization"})


async def present_id_token(station: StationCore, evse: Evse, id_token: IdToken) -> str | None:
    """A driver presents `id_token` at `evse`'s reader to end a transaction.

    Returns the stoppedReason the ended transactions got (Local or MasterPass), or None when
    the token ended nothing (refused, nothing running, or no token a reader can take).
    """
    if id_token.get("type") in UNPRESENTABLE_TOKEN_TYPES:
        return None
    transaction = evse.transaction
    if transaction is not None:
        reason = await station.stop_authority(transaction, id_token)
        if reason is None or evse.transaction is not transaction:
            return None  # refused, or the transaction ended while the station asked
        if reason != "MasterPass":
            await _end_authorization(station, evse, transaction, id_token, reason)
            return reason
    else:
        # Only a master pass has anything to end from an EVSE that is not charging.
        busy = station.transactions()
        running = busy[0].transaction if busy else None
        if running is None or await station.stop_authority(running, id_token) != "MasterPass":
            return None
    for busy_evse in station.transactions():
        running = busy_evse.transaction
        if running is not None:
            await _end_authorization(station, busy_evse, running, id_token, "MasterPass")
    return "MasterPass"


async def _end_authorization(
    station: StationCore, evse: Evse, transaction: Transaction, id_token: IdToken, reason: str
) -> None:
    """End the authorization of `transaction` with the presented token; TxStopPoint decides
    whether that ends the transaction (`authorization_ended`)."""
    if evse.transaction is transaction:
        await authorization_ended(station, evse, "StopAuthorized", reason, id_token=id_token)
