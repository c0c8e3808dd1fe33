"""chargingPriority: the CSMS's word on whose transaction charges first (with block K).

The CSMS ranks drivers from a business point of view, -9 to 9, 0 by default, higher first: in
the idTokenInfo of its answer to a TransactionEvent that carried the IdToken (the token's
priority), and in TransactionEventResponse.chargingPriority, which is for this transaction
alone and overrules the token's while the transaction runs (OCPP 2.0.1 and 2.1 alike).  The
station keeps both on the `Transaction`; the site's load balancer (simulator/world.py) serves
higher priorities first when the grid connection cannot give every EV what it wants, so a
priority the CSMS gives visibly moves power from one EV to another.

A value outside -9..9 (the schema does not bound it) counts as the nearest bound.  A changed
priority asks the site for a balancing cycle through `SiteHooks.power_changed`; a priority
that changes nothing costs nothing.  The station keeps no state for this block: the priority
lives and ends with its transaction.

Not covered: the chargingPriority of an Authorize answer, of a cached or a local-list entry.
Authorizing is block C's business and tells the station only yes or no; a CSMS that ranks a
token gives the same idTokenInfo again in its answer to the transaction's first event with the
token, and that one counts.
"""

from __future__ import annotations

from ..core import (
    Block,
    ChargingPriorityAnswered,
    StationCore,
    TransactionEventAnswered,
)
from ..evse import Evse

__all__ = ["BLOCK", "LOWEST_PRIORITY", "HIGHEST_PRIORITY"]

LOWEST_PRIORITY = -9
HIGHEST_PRIORITY = 9


def _bounded(priority: int) -> int:
    return max(LOWEST_PRIORITY, min(HIGHEST_PRIORITY, int(priority)))


def _keep(
    station: StationCore,
    evse: Evse,
    transaction_id: str,
    token_priority: int | None,
    override: int | None,
) -> None:
    transaction = evse.transaction
    if transaction is None or transaction.id != transaction_id:
        return  # it ended meanwhile: nothing to rank
    before = transaction.charging_priority
    if token_priority is not None:
        transaction.token_priority = _bounded(token_priority)
    if override is not None:
        transaction.priority_override = _bounded(override)
    site = station.site
    if transaction.charging_priority != before and site is not None:
        site.power_changed(station, evse, station.clock.sim_now())


def _token_answered(station: StationCore, event: TransactionEventAnswered) -> None:
    response = event.response
    token_priority = response.get("idTokenInfo", {}).get("chargingPriority")
    override = response.get("chargingPriority")
    if token_priority is not None or override is not None:
        _keep(station, event.evse, event.transaction_id, token_priority, override)


def _transaction_answered(station: StationCore, event: ChargingPriorityAnswered) -> None:
    _keep(station, event.evse, event.transaction_id, None, event.charging_priority)


BLOCK: Block[None] = Block(
    letter="K",
    name="charging_priority",
    reactions={
        TransactionEventAnswered: _token_answered,
        ChargingPriorityAnswered: _transaction_answered,
    },
)
