"""Block O, display messages: what the CSMS asks a station to show on its display.

O01/O02/O06  SetDisplayMessage stores a message (for any time, for a validity window, or for
             one running transaction); a message with an id already stored replaces it.
O03/O04      GetDisplayMessages lists the stored messages that match the request, in
             NotifyDisplayMessages of at most DeviceDataCtrlr.ItemsPerMessage[GetDisplayMessages]
             messages each, `tbc` on all but the last.
O05          ClearDisplayMessage removes one.

Every refusal comes from what the display is, stated in DisplayMessageCtrlr: it renders text,
URIs and (2.1) QR codes but not HTML; it shows messages in front of or in the normal cycle of
its own, never AlwaysFront, because that would hide the station's own instructions; it has a
message for each state the station can be in, so none for Faulted (a fleetsim station never
faults) and none for Discharging unless an EVSE is bidirectional; it offers the languages of
`LANGUAGES`; it holds `CAPACITY` messages.

A message leaves when its endDateTime has passed, checked whenever the messages are read (no
timer: a message nobody asks about costs nothing), and when the transaction it was set for
ends.  A station holds no state for this block until the CSMS sets a message.

Personal messages (C01, E, O): the CSMS may give a driver a personalMessage in the idTokenInfo
of its answer to an Authorize (`AuthorizeAnswered`) or to a TransactionEvent, and in 2.1 an
updatedPersonalMessage in any TransactionEvent answer (running cost, a new tariff).  The
display of the EVSE where that driver is shows it -- the EVSE whose transaction or visit holds
their token -- in place of the one before, for as long as the driver's transaction runs; a
message that comes before there is a transaction (the driver walks to the car, or was refused)
shows for `UNBOUND_MESSAGE_S` unless a transaction of that token starts meanwhile and keeps it.
A message in a format the display cannot render (SupportedFormats) is not shown.  Personal
messages are no DisplayMessages: they have no id or priority, so GetDisplayMessages does not
list them; what an EVSE's display shows now is its Display component's DataText (read-only,
empty when it shows no personal message and no cost).

Cost (I04, I12): the display of an EVSE with a transaction shows what it costs, on a line after
the personal message: the total the CSMS last sent with CostUpdated (block I tells it with a
`CostToShow`), else, for a transaction the station meters under a tariff, its running cost,
read from block I (`StationCore.cost_details`) when the display is read, so the amount is never
stale and costs nothing while nobody reads it.  Both show with the currency; the cost leaves
with the transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ...link import Answer
from ...ocpp import ErrorCode, RpcError
from ..config import StationConfig
from ..core import (
    AuthorizeAnswered,
    Block,
    CostToShow,
    IdToken,
    StationCore,
    TransactionEnded,
    TransactionEventAnswered,
    TransactionStarted,
    in_parts,
)
from ..device_model import VariableSpec
from ..evse import Evse
from ..id_tokens import token_key

__all__ = [
    "BLOCK",
    "CAPACITY",
    "ITEMS_PER_MESSAGE",
    "LANGUAGES",
    "UNBOUND_MESSAGE_S",
    "DisplayMessages",
]

#: How many messages the display holds (DisplayMessageCtrlr.DisplayMessages maxLimit).
CAPACITY = 20
#: Messages per NotifyDisplayMessages (DeviceDataCtrlr.ItemsPerMessage[GetDisplayMessages]).
ITEMS_PER_MESSAGE = 8
#: The languages the display offers (RFC 5646 primary subtags); the first is its default.
LANGUAGES = ("en", "de", "fr", "nl", "es", "it")

_CTRLR = "DisplayMessageCtrlr"
_FORMATS = {
    "2.1": ("ASCII", "HTML", "URI", "UTF8", "QRCODE"),
    "2.0.1": ("ASCII", "HTML", "URI", "UTF8"),
}
_STATES = {
    "2.1": ("Charging", "Faulted", "Idle", "Unavailable", "Suspended", "Discharging"),
    "2.0.1": ("Charging", "Faulted", "Idle", "Unavailable"),
}
_PRIORITIES = ("AlwaysFront", "InFront", "NormalCycle")
#: Seconds a personal message shows while no transaction of its driver keeps it.
UNBOUND_MESSAGE_S = 60.0


@dataclass(frozen=True, slots=True)
class _Stored:
    #: The MessageInfo as the CSMS set it, reported back unchanged.
    info: Mapping[str, Any]
    #: Unix time at which the message is removed; inf without an endDateTime.
    end_epoch_s: float

    @property
    def transaction_id(self) -> str | None:
        found = self.info.get("transactionId")
        return None if found is None else str(found)


@dataclass(frozen=True, slots=True)
class _Personal:
    """A driver's personal message on an EVSE's display."""

    text: str
    #: The key of the driver's IdToken.
    token: str
    #: The transaction that keeps it shown; None until there is one.
    transaction_id: str | None
    #: Unix time until which it shows without a transaction.
    until_epoch_s: float


@dataclass(frozen=True, slots=True)
class _Cost:
    """The total cost the CSMS sent for a transaction (CostUpdated), shown while it runs."""

    transaction_id: str
    total_cost: float
    currency: str


class DisplayMessages:
    """The messages one station holds, by id, and the personal message and the CSMS's total
    cost each EVSE's display shows, by EVSE id (made on the first accepted SetDisplayMessage,
    personal message or CostUpdated)."""

    __slots__ = ("_by_id", "costs", "personal")

    def __init__(self) -> None:
        self._by_id: dict[int, _Stored] = {}
        self.personal: dict[int, _Personal] = {}
        self.costs: dict[int, _Cost] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._by_id

    def drop_expired(self, now_epoch_s: float) -> None:
        """Remove the messages whose endDateTime has come."""
        expired = [key for key, stored in self._by_id.items() if stored.end_epoch_s <= now_epoch_s]
        for key in expired:
            del self._by_id[key]

    def live_count(self, now_epoch_s: float) -> int:
        """How many messages are stored and not yet expired (reading removes nothing)."""
        return sum(1 for stored in self._by_id.values() if stored.end_epoch_s > now_epoch_s)

    def store(self, info: Mapping[str, Any], end_epoch_s: float) -> None:
        self._by_id[int(info["id"])] = _Stored(info, end_epoch_s)

    def clear(self, message_id: int) -> bool:
        return self._by_id.pop(message_id, None) is not None

    def drop_transaction(self, transaction_id: str) -> None:
        """Transaction-bound messages leave with their transaction (O02)."""
        ended = [
            key for key, stored in self._by_id.items() if stored.transaction_id == transaction_id
        ]
        for key in ended:
            del self._by_id[key]

    def matching(
        self, ids: list[int] | None, priority: str | None, state: str | None
    ) -> list[Mapping[str, Any]]:
        """The MessageInfo of each message that meets every given criterion, by id."""
        wanted = None if ids is None else set(ids)
        found = []
        for message_id in sorted(self._by_id):
            info = self._by_id[message_id].info
            if wanted is not None and message_id not in wanted:
                continue
            if priority is not None and info["priority"] != priority:
                continue
            if state is not None and info.get("state") != state:
                continue
            found.append(info)
        return found


def _epoch_s(text: str) -> float:
    """Unix time of an OCPP date-time (the schema check has made sure it is one, with offset)."""
    return dt.datetime.fromisoformat(text.upper()).timestamp()


def _live_messages(station: StationCore) -> DisplayMessages | None:
    """The station's messages with the expired ones removed; None if it never held any."""
    messages = station.peek_block_state(BLOCK)
    if messages is not None:
        messages.drop_expired(station.clock.epoch_s())
    return messages


def _language_offered(tag: str) -> bool:
    return tag.split("-", 1)[0].lower() in LANGUAGES


def _answer(status: str, reason_code: str, info: str) -> Answer:
    return Answer(
        {"status": status, "statusInfo": {"reasonCode": reason_code, "additionalInfo": info}}
    )


# -- handlers -----------------------------------------------------------------------------------


def _unshowable(station: StationCore, info: Mapping[str, Any]) -> Answer | None:
    """The refusal of a message this display cannot show, or None if it can."""
    model = station.device_model
    if not model.boolean("DisplayMessageCtrlr", "Enabled"):
        return _answer("Rejected", "NotEnabled", "DisplayMessageCtrlr.Enabled is false")
    contents = [info["message"], *info.get("messageExtra", ())]
    formats = model.members("DisplayMessageCtrlr", "SupportedFormats")
    for content in contents:
        if content["format"] not in formats:
            return _answer(
                "NotSupportedMessageFormat",
                "UnsupportedParam",
                f"the display shows {','.join(formats)}, not {content['format']}",
            )
    priorities = model.members("DisplayMessageCtrlr", "SupportedPriorities")
    if info["priority"] not in priorities:
        return _answer(
            "NotSupportedPriority",
            "UnsupportedParam",
            f"the display supports the priorities {','.join(priorities)}",
        )
    states = model.members("DisplayMessageCtrlr", "SupportedStates")
    if "state" in info and info["state"] not in states:
        return _answer(
            "NotSupportedState",
            "UnsupportedParam",
            f"this station is never {info['state']}; it can be {','.join(states)}",
        )
    for content in contents:
        language = content.get("language")
        if language is not None and not _language_offered(language):
            # 2.0.1 has no LanguageNotSupported: the display cannot show it all the same.
            status = "LanguageNotSupported" if station.config.ocpp_version == "2.1" else "Rejected"
            return _answer(
                status,
                "UnsupportedParam",
                f"the display offers the languages {','.join(LANGUAGES)}",
            )
    return None


def _out_of_place(
    station: StationCore, info: Mapping[str, Any], end_epoch_s: float
) -> Answer | None:
    """The refusal of a message for a transaction, EVSE or time this station does not have."""
    transaction_id = info.get("transactionId")
    if transaction_id is not None and not any(
        evse.transaction is not None and evse.transaction.id == transaction_id
        for evse in station.evses
    ):
        return _answer(
            "UnknownTransaction", "TxNotFound", f"no transaction {transaction_id} is running here"
        )
    evse_id = info.get("display", {}).get("evse", {}).get("id", 0)
    if evse_id != 0 and station.evse(evse_id) is None:
        return _answer("Rejected", "UnknownEvse", f"this station has EVSEs 1..{len(station.evses)}")
    if end_epoch_s <= station.clock.epoch_s():
        return _answer("Rejected", "InvalidValue", "endDateTime has already passed")
    if "startDateTime" in info and end_epoch_s <= _epoch_s(info["startDateTime"]):
        return _answer("Rejected", "InvalidValue", "endDateTime is not after startDateTime")
    return None


def set_display_message(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    info = payload["message"]
    end_epoch_s = _epoch_s(info["endDateTime"]) if "endDateTime" in info else math.inf
    refusal = _unshowable(station, info) or _out_of_place(station, info, end_epoch_s)
    if refusal is not None:
        return refusal
    held = _live_messages(station)
    if held is not None and info["id"] not in held and len(held) >= CAPACITY:
        return _answer(
            "Rejected", "OutOfStorage", f"the display holds {CAPACITY} messages; clear one first"
        )
    station.block_state(BLOCK).store(info, end_epoch_s)
    return Answer({"status": "Accepted"})


def get_display_messages(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    ids = payload.get("id")
    if ids is not None and len(ids) > CAPACITY:
        raise RpcError(
            ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
            f"{len(ids)} ids in one GetDisplayMessages; DisplayMessages maxLimit is {CAPACITY}",
        )
    held = _live_messages(station)
    found = (
        [] if held is None else held.matching(ids, payload.get("priority"), payload.get("state"))
    )
    if not found:
        return Answer({"status": "Unknown"})
    request_id = payload["requestId"]
    per_message = station.device_model.integer(
        "DeviceDataCtrlr", "ItemsPerMessage", "GetDisplayMessages"
    )
    chunks = in_parts(found, per_message)

    async def notify() -> None:
        for index, chunk in enumerate(chunks):
            message = {
                "requestId": request_id,
                "messageInfo": chunk,
                "tbc": index < len(chunks) - 1,
            }
            if await station.call("NotifyDisplayMessages", message) is None:
                return

    return Answer({"status": "Accepted"}, then=notify)


def clear_display_message(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    held = _live_messages(station)
    cleared = held is not None and held.clear(payload["id"])
    return Answer({"status": "Accepted" if cleared else "Unknown"})


def _drop_transaction_messages(station: StationCore, event: TransactionEnded) -> None:
    held = station.peek_block_state(BLOCK)
    if held is not None:
        held.drop_transaction(event.transaction.id)
        shown = held.personal.get(event.evse.id)
        if shown is not None and shown.transaction_id == event.transaction.id:
            del held.personal[event.evse.id]
        cost = held.costs.get(event.evse.id)
        if cost is not None and cost.transaction_id == event.transaction.id:
            del held.costs[event.evse.id]


# -- personal messages --------------------------------------------------------------------------


def _showable(station: StationCore, message: Mapping[str, Any] | None) -> str | None:
    """The text of a MessageContent the display can render, else None."""
    if message is None:
        return None
    if message["format"] not in station.device_model.members(
        "DisplayMessageCtrlr", "SupportedFormats"
    ):
        return None
    return str(message["content"])


def _same_token(held: Mapping[str, Any] | None, id_token: IdToken) -> bool:
    return held is not None and token_key(held) == token_key(id_token)


def _driver_evse(station: StationCore, id_token: IdToken) -> Evse | None:
    """The EVSE where the driver of `id_token` is: the one whose transaction runs for that
    token, else the one their visit is at."""
    for evse in station.evses:
        transaction = evse.transaction
        if transaction is not None and _same_token(transaction.id_token, id_token):
            return evse
    for evse in station.evses:
        visit = evse.visit
        if visit is not None and _same_token(
            {"idToken": visit.id_token, "type": visit.id_token_type}, id_token
        ):
            return evse
    return None


async def _authorize_answered(station: StationCore, event: AuthorizeAnswered) -> None:
    text = _showable(station, event.id_token_info.get("personalMessage"))
    evse = None if text is None else _driver_evse(station, event.id_token)
    if text is None or evse is None:
        return
    transaction = evse.transaction
    station.block_state(BLOCK).personal[evse.id] = _Personal(
        text,
        token_key(event.id_token),
        None if transaction is None else transaction.id,
        station.clock.epoch_s() + UNBOUND_MESSAGE_S,
    )


def _transaction_answered(station: StationCore, event: TransactionEventAnswered) -> None:
    response = event.response
    message = response.get("updatedPersonalMessage")
    if message is None:
        info = response.get("idTokenInfo")
        message = None if info is None else info.get("personalMessage")
    text = _showable(station, message)
    evse = event.evse
    transaction = evse.transaction
    if text is None or transaction is None or transaction.id != event.transaction_id:
        return  # nothing to show, or the transaction ended meanwhile
    token = event.id_token or transaction.id_token
    station.block_state(BLOCK).personal[evse.id] = _Personal(
        text, "" if token is None else token_key(token), transaction.id, math.inf
    )


async def _transaction_started(station: StationCore, event: TransactionStarted) -> None:
    """A driver's transaction keeps the message they were shown on authorizing."""
    held = station.peek_block_state(BLOCK)
    shown = None if held is None else held.personal.get(event.evse.id)
    id_token = event.transaction.id_token
    if (
        held is None
        or shown is None
        or shown.transaction_id is not None
        or id_token is None
        or shown.token != token_key(id_token)
        or station.clock.epoch_s() >= shown.until_epoch_s
    ):
        return
    held.personal[event.evse.id] = _Personal(
        shown.text, shown.token, event.transaction.id, math.inf
    )


def _cost_shown(station: StationCore, event: CostToShow) -> None:
    """The CSMS's total for a running transaction (CostUpdated) replaces the one before."""
    transaction = event.evse.transaction
    if transaction is None or transaction.id != event.transaction_id:
        return  # the transaction ended meanwhile
    station.block_state(BLOCK).costs[event.evse.id] = _Cost(
        event.transaction_id, event.total_cost, event.currency
    )


def _personal_text(held: DisplayMessages | None, station: Any, evse: Evse) -> str:
    shown = None if held is None else held.personal.get(evse.id)
    if shown is None:
        return ""
    if shown.transaction_id is None:
        return shown.text if station.clock.epoch_s() < shown.until_epoch_s else ""
    transaction = evse.transaction
    return shown.text if transaction is not None and transaction.id == shown.transaction_id else ""


def _cost_text(held: DisplayMessages | None, station: Any, evse: Evse) -> str:
    """The cost line of an EVSE's display: the CSMS's last total, else the running cost of a
    transaction metered under a tariff; empty without a transaction or a cost."""
    transaction = evse.transaction
    if transaction is None:
        return ""
    cost = None if held is None else held.costs.get(evse.id)
    if cost is not None and cost.transaction_id == transaction.id:
        return f"Total cost: {cost.total_cost:.2f} {cost.currency}"
    details = station.cost_details(evse, transaction)
    if details is None:
        return ""
    total = details["totalCost"]
    return f"Running cost: {total['total']['inclTax']:.2f} {total['currency']}"


def _display_text(evse_id: int, station: Any) -> str:
    """Display.DataText of an EVSE: the personal message its display shows now, and the cost
    of its transaction on the next line."""
    held = station.peek_block_state(BLOCK)
    evse = station.evses[evse_id - 1]
    lines = (_personal_text(held, station, evse), _cost_text(held, station, evse))
    return "\n".join(line for line in lines if line)


# -- the variables this block owns --------------------------------------------------------------


def _message_count(station: Any) -> str:
    held = station.peek_block_state(BLOCK)
    return str(0 if held is None else held.live_count(station.clock.epoch_s()))


def _supported_states(config: StationConfig) -> tuple[str, ...]:
    """The states this station can be in: never Faulted; Discharging only with a bidirectional
    EVSE, and only in 2.1, which has that state."""
    states = ["Charging", "Idle", "Unavailable"]
    if config.ocpp_version == "2.1":
        states.append("Suspended")
        if any(evse.bidirectional for evse in config.evses):
            states.append("Discharging")
    return tuple(states)


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    version = config.ocpp_version
    yield VariableSpec(_CTRLR, "Available", "boolean", "true", "ReadOnly")
    # Acted on: with Enabled false, SetDisplayMessage is refused.
    yield VariableSpec(_CTRLR, "Enabled", "boolean", "true")
    yield VariableSpec(
        _CTRLR,
        "DisplayMessages",
        "integer",
        "0",
        "ReadOnly",
        max_limit=CAPACITY,
        reader=_message_count,
    )
    formats = ("ASCII", "URI", "UTF8") + (("QRCODE",) if version == "2.1" else ())
    yield VariableSpec(
        _CTRLR,
        "SupportedFormats",
        "MemberList",
        ",".join(formats),
        "ReadOnly",
        values_list=_FORMATS[version],
    )
    yield VariableSpec(
        _CTRLR,
        "SupportedPriorities",
        "MemberList",
        "InFront,NormalCycle",
        "ReadOnly",
        values_list=_PRIORITIES,
    )
    yield VariableSpec(
        _CTRLR,
        "SupportedStates",
        "MemberList",
        ",".join(_supported_states(config)),
        "ReadOnly",
        values_list=_STATES[version],
    )
    if version == "2.1":
        yield VariableSpec(_CTRLR, "QRCodeDisplayCapable", "boolean", "true", "ReadOnly")
    yield VariableSpec(
        _CTRLR, "Language", "OptionList", LANGUAGES[0], "ReadOnly", values_list=LANGUAGES
    )
    yield VariableSpec(
        "DeviceDataCtrlr",
        "ItemsPerMessage",
        "integer",
        str(ITEMS_PER_MESSAGE),
        "ReadOnly",
        variable_instance="GetDisplayMessages",
    )
    for evse_id in range(1, len(config.evses) + 1):
        yield VariableSpec(
            "Display",
            "DataText",
            "string",
            "",
            "ReadOnly",
            evse_id=evse_id,
            reader=functools.partial(_display_text, evse_id),
        )


BLOCK: Block[DisplayMessages] = Block(
    letter="O",
    name="display_messages",
    handlers={
        "SetDisplayMessage": set_display_message,
        "GetDisplayMessages": get_display_messages,
        "ClearDisplayMessage": clear_display_message,
    },
    follow_ups={"GetDisplayMessages": ("NotifyDisplayMessages",)},
    variables=_variables,
    reactions={
        TransactionEnded: _drop_transaction_messages,
        TransactionStarted: _transaction_started,
        TransactionEventAnswered: _transaction_answered,
        AuthorizeAnswered: _authorize_answered,
        CostToShow: _cost_shown,
    },
    new_state=DisplayMessages,
)
