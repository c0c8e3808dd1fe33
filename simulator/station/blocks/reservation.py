"""Block H, reservations: the EVSEs a station keeps for drivers until they come or time runs out.

H01  ReserveNow for one EVSE (evseId), for any EVSE, or for any EVSE with a connector of a given
     type (connectorType).  The answer comes from the station's state: Occupied when the EVSE
     has an EV, a transaction, a driver on the way or another reservation, or the reservations
     for any EVSE need it (for any EVSE: when the free EVSEs cannot serve one reservation more);
     Unavailable when the EVSE, its connectors of the type, or the whole station are out of
     service; Rejected for an unknown EVSE, a connector type it (or, for any EVSE, every EVSE)
     lacks, an expiryDateTime already past, ReservationCtrlr.Enabled false, or no evseId while
     ReservationCtrlr.NonEvseSpecific is false.  Faulted never: a fleetsim station has no faults.
     A ReserveNow with the id of a reservation the station holds replaces it when accepted and
     leaves it as it was when refused.
H02  CancelReservation: Accepted, and the EVSE is Available again; Rejected for an id the
     station does not hold.  The CSMS asked for it, so no ReservationStatusUpdate follows: that
     message tells the CSMS what the station decided on its own.
H03  A reserved EVSE takes only its driver: the one who presents the reservation's idToken, or
     an IdToken of its groupIdToken (learnt from an Authorize when the reservation names a
     group), locally or in a RequestStartTransaction; anyone else is refused without a
     transaction, and the world's EVs pass a reserved EVSE by (`Evse.is_free`).  The
     reservation ends when its driver presents the token at an EVSE it applies to, and the
     TransactionEvent in which that driver's transaction gains the token carries its
     reservationId.  When no transaction takes the token within TxCtrlr.EVConnectionTimeOut
     (the driver was refused, or the EV never came), an OCPP 2.1 station says so with
     ReservationStatusUpdate NoTransaction (2.0.1 has no such status and says nothing).
H04  A reservation not used by its expiryDateTime ends at that simulated moment (a timer, no
     polling) with ReservationStatusUpdate Expired; one whose EVSE (or, for any EVSE, the last
     EVSE that could serve it) goes out of service ends with ReservationStatusUpdate Removed.

A reservation for any EVSE is not pinned to one.  The station keeps enough EVSEs free for all
of them, and an EVSE is kept -- reports Reserved, and takes only a driver of one of them --
only while the reservations need it: while, without it, the free EVSEs could serve fewer of
them (with one such reservation, the last free EVSE that fits; with as many reservations as
free EVSEs, all of them).  A maximum matching of reservations to the EVSEs that can serve them
decides it; a station has a handful of EVSEs, so it is computed when asked.

Per station, state is made by the first accepted ReserveNow.  While it holds reservations, the
station's EVSEs point to it (`Evse.reservations`), so the world choosing an EVSE for an EV and
the station deriving a connector's status (and the availability block reporting it) learn of
reservations without knowing this block; a station without reservations pays one empty slot
per EVSE and nothing per message.  Status changes are announced with `ConnectorStatusChanged`.
ReservationStatusUpdate is not transaction-related: one due while the station is offline is
not sent later.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from ...link import Answer
from ..config import StationConfig
from ..core import Block, ConnectorStatusChanged, IdToken, StationCore, TransactionEnded, refused
from ..device_model import VariableSpec
from ..evse import Evse

__all__ = ["BLOCK", "Reservations"]


@dataclass(slots=True)
class Reservation:
    """One reservation as the station keeps it; idTokens are compared case-insensitively."""

    id: int
    #: The EVSE reserved, or None for any EVSE (with `connector_type`, any that has one).
    evse_id: int | None
    connector_type: str | None
    id_token: str
    group_id_token: str | None
    expiry_s: float
    #: Cancelled when the reservation ends before it expires.
    expiry: trio.CancelScope

    def fits(self, evse: Evse) -> bool:
        """Whether `evse` can serve this reservation: it has an operative connector of its type."""
        wanted = self.connector_type
        return any(
            connector.operative and (wanted is None or connector.type == wanted)
            for connector in evse.connectors
        )

    def matches(self, id_token: str | None, group_id_token: str | None) -> bool:
        """Whether a driver with `id_token` (of group `group_id_token`) is this one's driver."""
        if id_token is not None and id_token.casefold() in (self.id_token, self.group_id_token):
            return True
        return (
            group_id_token is not None
            and self.group_id_token is not None
            and group_id_token.casefold() == self.group_id_token
        )


@dataclass(slots=True)
class _Claim:
    """A reservation its driver claimed at an EVSE, waiting for the transaction that uses it."""

    reservation_id: int
    id_token: str
    #: Cancelled when a transaction takes the token.
    timeout: trio.CancelScope


def _served(reservations: Sequence[Reservation], evses: Sequence[Evse]) -> int:
    """How many of `reservations` distinct EVSEs of `evses` can serve at once: a maximum
    bipartite matching, by augmenting paths."""
    serving: dict[int, int] = {}  # EVSE index -> reservation index

    def place(index: int, tried: set[int]) -> bool:
        for evse_index, evse in enumerate(evses):
            if evse_index in tried or not reservations[index].fits(evse):
                continue
            tried.add(evse_index)
            if evse_index not in serving or place(serving[evse_index], tried):
                serving[evse_index] = index
                return True
        return False

    return sum(place(index, set()) for index in range(len(reservations)))


def _in_service(station: StationCore, evse: Evse) -> bool:
    return station.operative and evse.operative


def _busy(evse: Evse) -> bool:
    """An EV, a transaction or a remote start's driver on the way."""
    return (
        evse.visit is not None
        or evse.transaction is not None
        or evse.remote_start is not None
        or evse.plugged_connector is not None
    )


class _View:
    """Which EVSEs a set of reservations keeps, on one station as it is now."""

    __slots__ = ("floating", "specific", "station")

    def __init__(self, station: StationCore, reservations: Iterable[Reservation]) -> None:
        self.station = station
        self.specific: dict[int, Reservation] = {}
        self.floating: list[Reservation] = []
        for reservation in reservations:
            if reservation.evse_id is None:
                self.floating.append(reservation)
            else:
                self.specific[reservation.evse_id] = reservation

    def is_open(self, evse: Evse) -> bool:
        """Free for a new driver, were it not for the reservations for any EVSE."""
        return _in_service(self.station, evse) and not _busy(evse) and evse.id not in self.specific

    def needed(self, evse: Evse) -> bool:
        """Whether the reservations for any EVSE need `evse`, taken as free: without it, the
        other free EVSEs could serve fewer of them."""
        if not self.floating or evse.id in self.specific or not _in_service(self.station, evse):
            return False
        others = [e for e in self.station.evses if e is not evse and self.is_open(e)]
        return _served(self.floating, [*others, evse]) > _served(self.floating, others)

    def holds(self, evse: Evse) -> bool:
        return evse.id in self.specific or (self.is_open(evse) and self.needed(evse))

    def applicable(self, evse: Evse) -> list[Reservation]:
        """The reservations a driver could claim at `evse`: the EVSE's own, else those for any
        EVSE that it fits."""
        own = self.specific.get(evse.id)
        if own is not None:
            return [own]
        return [reservation for reservation in self.floating if reservation.fits(evse)]

    def kept_from_others(self, evse: Evse) -> bool:
        """Whether `evse`, with a driver at it, is kept for a reservation's driver."""
        return evse.id in self.specific or self.needed(evse)


class Reservations:
    """One station's reservations, and the `ReservationHold` its EVSEs see."""

    __slots__ = ("book", "claims", "station")

    def __init__(self) -> None:
        self.station: StationCore | None = None
        #: The reservations in force, by id, oldest first.
        self.book: dict[int, Reservation] = {}
        #: Claimed reservations awaiting their transaction, by EVSE id.
        self.claims: dict[int, _Claim] = {}

    def view(self) -> _View:
        assert self.station is not None
        return _View(self.station, self.book.values())

    # -- ReservationHold: asked by the world and by the station's status, without waiting

    def holds(self, evse: Evse) -> bool:
        return self.view().holds(evse)

    def admits(self, evse: Evse, id_token: str | None, group_id_token: str | None = None) -> bool:
        view = self.view()
        if not view.holds(evse):
            return True
        return any(r.matches(id_token, group_id_token) for r in view.applicable(evse))

    # -- the book

    def add(self, station: StationCore, reservation: Reservation) -> None:
        replaced = self.book.pop(reservation.id, None)
        if replaced is not None:
            replaced.expiry.cancel()
        self.book[reservation.id] = reservation
        for evse in station.evses:
            evse.reservations = self

    def end(self, station: StationCore, reservation: Reservation) -> None:
        """Take `reservation` out of the book; the EVSEs stop pointing here with the last."""
        if self.book.get(reservation.id) is reservation:
            del self.book[reservation.id]
        reservation.expiry.cancel()
        if not self.book:
            for evse in station.evses:
                evse.reservations = None

    def unservable(self, station: StationCore) -> list[Reservation]:
        """The reservations that no EVSE in service can serve any more (H04: Removed).

        EVSEs busy for now still count: their EV leaves, their driver may be the one who
        claims the reservation; out of service, they do not.
        """
        gone = []
        floating: list[Reservation] = []
        reserved = {r.evse_id for r in self.book.values() if r.evse_id is not None}
        candidates = [
            evse for evse in station.evses if _in_service(station, evse) and evse.id not in reserved
        ]
        for reservation in self.book.values():
            if reservation.evse_id is None:
                if _served([*floating, reservation], candidates) > len(floating):
                    floating.append(reservation)
                else:
                    gone.append(reservation)
                continue
            evse = station.evse(reservation.evse_id)
            if evse is None or not (_in_service(station, evse) and reservation.fits(evse)):
                gone.append(reservation)
        return gone


def _bound_state(station: StationCore) -> Reservations:
    state = station.block_state(BLOCK)
    state.station = station
    return state


def _rejected(status: str, reason_code: str, info: str) -> Answer:
    return refused(reason_code, info, status)


def _sim_seconds(station: StationCore, date_time: str) -> float:
    """Simulated second of an OCPP dateTime (one without an offset is taken as UTC)."""
    moment = dt.datetime.fromisoformat(date_time.upper().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp() - station.clock.epoch_s(0.0)


def _has_type(evse: Evse, connector_type: str | None) -> bool:
    return connector_type is None or any(c.type == connector_type for c in evse.connectors)


# -- H01: ReserveNow -------------------------------------------------------------------------


def reserve_now(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    model = station.device_model
    if not model.boolean("ReservationCtrlr", "Enabled"):
        return _rejected("Rejected", "NotEnabled", "ReservationCtrlr.Enabled is false")
    reservation_id = int(payload["id"])
    evse_id = payload.get("evseId")
    connector_type = payload.get("connectorType")
    try:
        expiry_s = _sim_seconds(station, payload["expiryDateTime"])
    except ValueError:
        # Valid RFC 3339 that Python cannot read: a leap second.
        return _rejected(
            "Rejected", "InvalidValue", f"expiryDateTime {payload['expiryDateTime']} is no date"
        )
    if expiry_s <= station.clock.sim_now():
        return _rejected(
            "Rejected", "InvalidValue", f"expiryDateTime {payload['expiryDateTime']} has passed"
        )
    current = station.peek_block_state(BLOCK)
    others = [] if current is None else [r for r in current.book.values() if r.id != reservation_id]
    group = payload.get("groupIdToken")
    reservation = Reservation(
        reservation_id,
        evse_id,
        connector_type,
        str(payload["idToken"]["idToken"]).casefold(),
        None if group is None else str(group["idToken"]).casefold(),
        expiry_s,
        trio.CancelScope(),
    )
    if evse_id is None:
        refusal = _refuse_any_evse(station, others, reservation)
    else:
        refusal = _refuse_evse(station, others, reservation)
    if refusal is not None:
        return refusal

    state = _bound_state(station)
    state.add(station, reservation)
    station.spawn(partial(_expire, station, state, reservation))

    async def report() -> None:
        await station.emit(ConnectorStatusChanged())

    return Answer({"status": "Accepted"}, then=report)


def _refuse_evse(
    station: StationCore, others: list[Reservation], reservation: Reservation
) -> Answer | None:
    """Why `reservation` of one EVSE cannot be made now, as the answer; None if it can."""
    evse_id = reservation.evse_id
    evse = None if evse_id is None else station.evse(evse_id)
    if evse is None:
        return _rejected(
            "Rejected", "UnknownEvse", f"this station has EVSEs 1..{len(station.evses)}"
        )
    if not _has_type(evse, reservation.connector_type):
        return _rejected(
            "Rejected",
            "UnknownConnectorType",
            f"EVSE {evse.id} has no {reservation.connector_type} connector",
        )
    if not (_in_service(station, evse) and reservation.fits(evse)):
        return _rejected("Unavailable", "NotAvailable", f"EVSE {evse.id} is out of service")
    view = _View(station, others)
    if evse.id in view.specific:
        return _rejected("Occupied", "NotAvailable", f"EVSE {evse.id} is already reserved")
    if _busy(evse):
        return _rejected("Occupied", "NotAvailable", f"EVSE {evse.id} is in use")
    if view.needed(evse):
        return _rejected(
            "Occupied",
            "NotAvailable",
            f"EVSE {evse.id} is kept for the reservations for any EVSE",
        )
    return None


def _refuse_any_evse(
    station: StationCore, others: list[Reservation], reservation: Reservation
) -> Answer | None:
    """Why `reservation` for any EVSE cannot be made now, as the answer; None if it can."""
    if not station.device_model.boolean("ReservationCtrlr", "NonEvseSpecific"):
        return _rejected(
            "Rejected",
            "UnsupportedRequest",
            "ReservationCtrlr.NonEvseSpecific is false: name the EVSE to reserve",
        )
    kinds = [evse for evse in station.evses if _has_type(evse, reservation.connector_type)]
    if not kinds:
        return _rejected(
            "Rejected",
            "UnknownConnectorType",
            f"no EVSE of this station has a {reservation.connector_type} connector",
        )
    view = _View(station, others)
    free = [evse for evse in station.evses if view.is_open(evse)]
    wanted = [*view.floating, reservation]
    if _served(wanted, free) == len(wanted):
        return None
    if not any(_in_service(station, evse) and reservation.fits(evse) for evse in kinds):
        return _rejected(
            "Unavailable", "NotAvailable", "every EVSE that could serve it is out of service"
        )
    return _rejected("Occupied", "NotAvailable", "no EVSE that could serve it is free")


async def _expire(station: StationCore, state: Reservations, reservation: Reservation) -> None:
    """H04: the reservation ends at its expiryDateTime unless it ended before."""
    with reservation.expiry:
        await station.clock.sleep_until(reservation.expiry_s)
    if state.book.get(reservation.id) is not reservation:
        return
    state.end(station, reservation)
    await _status_update(station, reservation.id, "Expired")
    await station.emit(ConnectorStatusChanged())


async def _status_update(station: StationCore, reservation_id: int, status: str) -> None:
    await station.call(
        "ReservationStatusUpdate",
        {"reservationId": reservation_id, "reservationUpdateStatus": status},
    )


# -- H02: CancelReservation ---------------------------------------------------------------------


def cancel_reservation(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    reservation_id = payload["reservationId"]
    state = station.peek_block_state(BLOCK)
    reservation = None if state is None else state.book.get(reservation_id)
    if state is None or reservation is None:
        return _rejected(
            "Rejected", "NotFound", f"this station holds no reservation {reservation_id}"
        )
    state.end(station, reservation)

    async def report() -> None:
        await station.emit(ConnectorStatusChanged())

    return Answer({"status": "Accepted"}, then=report)


# -- H03: using a reservation -----------------------------------------------------------------


async def admit(
    station: StationCore, evse: Evse, id_token: IdToken, group_id_token: str | None
) -> bool:
    """A driver presents `id_token` at `evse`: their reservation there ends (claimed), another
    driver's keeps them out; True when the driver may go on (to authorization)."""
    state = station.peek_block_state(BLOCK)
    if state is None or not state.book:
        return True
    view = state.view()
    applicable = view.applicable(evse)
    token = id_token["idToken"]
    claimed = next((r for r in applicable if r.matches(token, group_id_token)), None)
    if claimed is None and group_id_token is None and any(r.group_id_token for r in applicable):
        group_id_token = await _group_of(station, id_token)
        claimed = next((r for r in applicable if r.matches(token, group_id_token)), None)
    if claimed is None:
        return not state.view().kept_from_others(evse)
    state.end(station, claimed)
    earlier = state.claims.pop(evse.id, None)
    if earlier is not None:
        earlier.timeout.cancel()
    claim = _Claim(claimed.id, token.casefold(), trio.CancelScope())
    state.claims[evse.id] = claim
    station.spawn(partial(_await_transaction, station, state, evse.id, claim))
    await station.emit(ConnectorStatusChanged())
    return True


async def _group_of(station: StationCore, id_token: IdToken) -> str | None:
    """The groupIdToken the CSMS gives `id_token` (C01), or None when it gives none or the
    station is offline."""
    if not station.online:
        return None
    response = await station.call("Authorize", {"idToken": id_token})
    group = None if response is None else response["idTokenInfo"].get("groupIdToken")
    return None if group is None else str(group["idToken"])


def use_reservation(station: StationCore, evse: Evse, id_token: IdToken) -> int | None:
    """The reservation claimed at `evse` with `id_token`, now taken by a transaction."""
    state = station.peek_block_state(BLOCK)
    if state is None or not state.claims:
        return None
    claim = state.claims.get(evse.id)
    if claim is None or claim.id_token != id_token["idToken"].casefold():
        return None
    del state.claims[evse.id]
    claim.timeout.cancel()
    return claim.reservation_id


async def _await_transaction(
    station: StationCore, state: Reservations, evse_id: int, claim: _Claim
) -> None:
    """H03 (2.1): a claimed reservation that no transaction takes within EVConnectionTimeOut
    is reported NoTransaction."""
    with claim.timeout:
        await station.clock.sleep(station.device_model.integer("TxCtrlr", "EVConnectionTimeOut"))
    if state.claims.get(evse_id) is not claim:
        return
    del state.claims[evse_id]
    if station.config.ocpp_version == "2.1":
        await _status_update(station, claim.reservation_id, "NoTransaction")


# -- H04: the EVSE goes out of service ----------------------------------------------------------


def _remove_unservable(station: StationCore, event: object) -> Awaitable[None] | None:
    """End, as Removed, the reservations that no EVSE in service can serve any more."""
    state = station.peek_block_state(BLOCK)
    if state is None or not state.book:
        return None
    gone = state.unservable(station)
    if not gone:
        return None
    for reservation in gone:
        state.end(station, reservation)
    return _announce_removed(station, gone)


async def _announce_removed(station: StationCore, gone: list[Reservation]) -> None:
    for reservation in gone:
        await _status_update(station, reservation.id, "Removed")
    await station.emit(ConnectorStatusChanged())


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    ctrlr = "ReservationCtrlr"
    yield VariableSpec(ctrlr, "Available", "boolean", "true", "ReadOnly")
    yield VariableSpec(ctrlr, "Enabled", "boolean", "true")
    yield VariableSpec(ctrlr, "NonEvseSpecific", "boolean", "true")


BLOCK: Block[Reservations] = Block(
    letter="H",
    name="reservation",
    handlers={"ReserveNow": reserve_now, "CancelReservation": cancel_reservation},
    follow_ups={
        "ReserveNow": ("StatusNotification",),
        "CancelReservation": ("StatusNotification",),
    },
    variables=_variables,
    reactions={
        ConnectorStatusChanged: _remove_unservable,
        TransactionEnded: _remove_unservable,
    },
    new_state=Reservations,
    admit=admit,
    use_reservation=use_reservation,
)
