"""What the embedded CSMS pushes to a station after accepting its boot: the drivers' local
authorization list (D01, D02) and a welcome message for its display (O01).

A back office that wants its drivers to charge while a station is offline keeps a local list
on every station.  After each Accepted BootNotification it asks the station which version of
the list it holds (GetLocalListVersion); when that is not the CSMS's version -- a new station,
one that missed an update, or one whose list is disabled and so reports 0 -- it sends the list
whole: a Full update with the first `items_per_message` entries, then Differential updates with
the rest, each with the next version, so the last one leaves the station at the CSMS's version
(the number of messages).  A station that already holds it, as after a Reset (the list
survives a reboot), costs one round trip and is sent nothing.

How many entries go in one message is the CSMS's setting: at most the station's
LocalAuthListCtrlr.ItemsPerMessage, 100 for fleetsim's stations (and the Entries maxLimit, 256,
bounds the list).  The CSMS does not read them from each station first: the list and its
versions are then the same for every station, and a station that holds less answers Failed
(TooManyElements, OutOfStorage), which is counted like any other failure.

Every answer is checked.  A station that refuses, does not answer or is gone is counted in
`CsmsStatistics.pushes` (`local_list_failed`, `display_message_failed`) and left as it is: the
next boot tries again.  Nothing here raises into the connection that booted.

Each entry's idTokenInfo is what the CSMS answers an Authorize of that token
(`Csms.id_token_info`), so a driver's chargingPriority or refusal is the same offline through the
list as online.  Tokens of the types OCPP 2.1 added (EVCCID, VIN) are left out of the list a
2.0.1 station gets, whose schema has no such types.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..ocpp import OcppVersion
from .reactions import Selective, wanted_by
from .smart_charging import Reaction

if TYPE_CHECKING:
    from .csms import Csms

__all__ = ["DisplayMessagePush", "LocalListPush", "boot_push_reactions", "combine_reactions"]

_log = logging.getLogger(__name__)

#: IdToken types OCPP 2.1 added to 2.0.1's IdTokenEnumType.
_OCPP_21_ONLY_TYPES = frozenset({"DirectPayment", "EVCCID", "NEMA", "VIN"})


@dataclass(frozen=True, slots=True)
class LocalListPush:
    """The local list the CSMS keeps on every station: its IdTokens (`{"idToken", "type"}`)
    and how many entries go in one SendLocalList."""

    id_tokens: Sequence[Mapping[str, str]]
    items_per_message: int = 100
    #: The SendLocalList requests by OCPP version, built on first use (they need the CSMS's
    #: idTokenInfo) and shared by every station of that version.
    _requests: dict[str, list[dict[str, Any]]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.items_per_message < 1:
            raise ValueError(f"items_per_message must be >= 1, got {self.items_per_message}")

    @property
    def version(self) -> int:
        """The CSMS's version of the list: the number of messages that carry it."""
        return max(1, -(-len(self.id_tokens) // self.items_per_message))

    def requests(self, csms: Csms, ocpp_version: OcppVersion) -> list[dict[str, Any]]:
        """The SendLocalList payloads that install the whole list, in order: Full at version
        1, then Differential at 2, 3, ... up to `version`."""
        built = self._requests.get(ocpp_version)
        if built is not None:
            return built
        tokens = [
            token
            for token in self.id_tokens
            if ocpp_version == "2.1" or token["type"] not in _OCPP_21_ONLY_TYPES
        ]
        size = self.items_per_message
        built = []
        for number in range(1, self.version + 1):
            chunk = tokens[(number - 1) * size : number * size]
            payload: dict[str, Any] = {
                "versionNumber": number,
                "updateType": "Full" if number == 1 else "Differential",
            }
            if chunk:
                payload["localAuthorizationList"] = [
                    {"idToken": dict(token), "idTokenInfo": dict(csms.id_token_info(token))}
                    for token in chunk
                ]
            built.append(payload)
        self._requests[ocpp_version] = built
        return built


@dataclass(frozen=True, slots=True)
class DisplayMessagePush:
    """A message the CSMS sets on every station's display after boot (SetDisplayMessage): a
    welcome or the tariff, in the normal cycle of the display's own messages."""

    text: str
    language: str = "en"
    message_id: int = 1
    priority: Literal["InFront", "NormalCycle"] = "NormalCycle"

    def request(self) -> dict[str, Any]:
        return {
            "message": {
                "id": self.message_id,
                "priority": self.priority,
                "message": {"format": "UTF8", "language": self.language, "content": self.text},
            }
        }


def boot_push_reactions(
    *, local_list: LocalListPush | None = None, display_message: DisplayMessagePush | None = None
) -> dict[str, Reaction]:
    """The reactions to install in `CsmsConfig.reactions` for these pushes: one, to
    BootNotification, or none when there is nothing to push (a boot then costs nothing)."""
    if local_list is None and display_message is None:
        return {}

    async def push_after_boot(
        csms: Csms, station_id: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        if response.get("status") != "Accepted":
            return
        if local_list is not None:
            await _guarded(
                csms, station_id, "local_list", _push_local_list(csms, station_id, local_list)
            )
        if display_message is not None:
            await _guarded(
                csms,
                station_id,
                "display_message",
                _set_display_message(csms, station_id, display_message),
            )

    return {"BootNotification": push_after_boot}


def combine_reactions(*tables: Mapping[str, Reaction]) -> dict[str, Reaction]:
    """One reactions table from several: `CsmsConfig.reactions` holds one reaction per action,
    so where two tables react to the same action, their reactions run one after the other, in
    the order of the tables."""
    combined: dict[str, Reaction] = {}
    for table in tables:
        for action, reaction in table.items():
            earlier = combined.get(action)
            combined[action] = reaction if earlier is None else _in_turn(earlier, reaction)
    return combined


def _in_turn(first: Reaction, then: Reaction) -> Reaction:
    async def both(
        csms: Csms, station_id: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        if wanted_by(first, request):
            await first(csms, station_id, request, response)
        if wanted_by(then, request):
            await then(csms, station_id, request, response)

    if isinstance(first, Selective) and isinstance(then, Selective):
        first_wants, then_wants = first.wants, then.wants
        return Selective(lambda request: first_wants(request) or then_wants(request), both)
    return both


async def _guarded(csms: Csms, station_id: str, push: str, work: Awaitable[None]) -> None:
    """Run one push; whatever goes wrong in it (a request the station's schema refuses, a
    bug) is counted as that push's failure and logged, never raised into the connection."""
    try:
        await work
    except Exception as exc:
        csms.count_push(f"{push}_failed")
        _log.warning("embedded CSMS: pushing the %s to %s failed: %r", push, station_id, exc)


async def _push_local_list(csms: Csms, station_id: str, push: LocalListPush) -> None:
    held = await csms.call_quietly(station_id, "GetLocalListVersion", {})
    if held is None:
        csms.count_push("local_list_failed")
        return
    if held["versionNumber"] == push.version:
        csms.count_push("local_list_current")
        return
    ocpp_version = csms.station(station_id).version or "2.1"
    for payload in push.requests(csms, ocpp_version):
        answer = await csms.call_quietly(station_id, "SendLocalList", payload)
        if answer is None or answer["status"] != "Accepted":
            csms.count_push("local_list_failed")
            _log.debug(
                "embedded CSMS: %s refused version %d of the local list: %r",
                station_id,
                payload["versionNumber"],
                answer,
            )
            return
    csms.count_push("local_list_sent")


async def _set_display_message(csms: Csms, station_id: str, push: DisplayMessagePush) -> None:
    answer = await csms.call_quietly(station_id, "SetDisplayMessage", push.request())
    if answer is not None and answer["status"] == "Accepted":
        csms.count_push("display_message_set")
        return
    csms.count_push("display_message_failed")
    _log.debug("embedded CSMS: %s refused the display message: %r", station_id, answer)
