"""The charging profiles one station holds (block K's state), and how the block finds them.

A station's block state is keyed by the block's name, so `profiles_of` and `peek_profiles` reach
the same store from every module of the block without importing the assembled `BLOCK`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...core import ActiveLimit, Block, StationCore

__all__ = ["ChargingProfiles", "Installed", "epoch_s", "peek_profiles", "profiles_of"]


@dataclass(slots=True)
class Installed:
    evse_id: int
    profile: Mapping[str, Any]
    installed_s: float
    #: Who set it (ChargingLimitSourceEnumType): CSO for what the CSMS sent; EMS, SO or Other
    #: for external constraints (K11-K14).
    source: str = "CSO"

    @property
    def id(self) -> int:
        return int(self.profile["id"])

    @property
    def purpose(self) -> str:
        return str(self.profile["chargingProfilePurpose"])

    @property
    def stack_level(self) -> int:
        return int(self.profile["stackLevel"])


def epoch_s(text: str) -> float:
    """Seconds since the epoch of an OCPP dateTime."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class ChargingProfiles:
    """The profiles one station holds (created on first use: most stations never get any)."""

    __slots__ = (
        "_installed",
        "generation",
        "limits",
        "offline_since_s",
        "priority_evse_ids",
        "selected_schedule_ids",
    )

    def __init__(self) -> None:
        self._installed: list[Installed] = []
        #: Counts the changes to the installed profiles (one more per install, clear, removal
        #: or dynamic update): what `limit.active_limit` keeps an answer for.
        self.generation = 0
        #: The last limit `limit.active_limit` computed, by EVSE id: (the generation and the
        #: station view it was computed from, the simulated second, the limit).  Valid until
        #: the limit's next_change_s while neither changed.
        self.limits: dict[int, tuple[int, object, float, ActiveLimit]] = {}
        #: EVSEs on which priority charging is active (K21-K22): their PriorityCharging
        #: profile, if any, rules instead of the transaction's.
        self.priority_evse_ids: set[int] = set()
        #: The chargingSchedule id an ISO 15118 EV picked among the schedules of its EVSE's
        #: TxProfile (2.1 allows up to three), by EVSE; without an entry the TxProfile's first
        #: rules.  A new TxProfile for the EVSE, or the transaction's end, forgets the pick.
        #: Whoever sets it wakes the EVSE.
        self.selected_schedule_ids: dict[int, int] = {}
        #: Simulated second the station went offline, None while online: a profile with a
        #: maxOfflineDuration (2.1) is invalid from that long after it until the station is
        #: back online.
        self.offline_since_s: float | None = None

    def __len__(self) -> int:
        return len(self._installed)

    def _replace(self, installed: list[Installed]) -> None:
        self._installed = installed
        self.changed()

    def changed(self) -> None:
        """An installed profile changed in place (a dynamic update): limits are computed anew."""
        self.generation += 1
        self.limits.clear()

    @property
    def installed(self) -> list[Installed]:
        """Every installed profile, oldest first (read, do not change)."""
        return self._installed

    def install(
        self, evse_id: int, profile: Mapping[str, Any], now_s: float, *, source: str = "CSO"
    ) -> None:
        """Add `profile`, replacing one with the same id, or with the same purpose, stack
        level and EVSE (K01.FR.05, K01.FR.06)."""
        purpose, level = profile["chargingProfilePurpose"], profile["stackLevel"]
        kept = [
            p
            for p in self._installed
            if p.id != profile["id"]
            and not (p.evse_id == evse_id and p.purpose == purpose and p.stack_level == level)
        ]
        kept.append(Installed(evse_id, profile, now_s, source))
        self._replace(kept)
        if purpose == "TxProfile":
            self.selected_schedule_ids.pop(evse_id, None)  # the EV picks among the new ones

    def clear(self, profile_id: int | None, criteria: Mapping[str, Any] | None) -> int:
        """Remove the profiles the CSMS names, by id or by criteria (all of them when it names
        none); return how many went.  External constraints are not the CSMS's to clear: they
        belong to whoever set them (K10)."""

        def matches(p: Installed) -> bool:
            if p.source != "CSO":
                return False  # an external system's limit is its to lift, not the CSMS's
            if profile_id is not None:
                return p.id == profile_id
            if criteria is None:
                return True
            if "evseId" in criteria and p.evse_id != criteria["evseId"]:
                return False
            if (
                "chargingProfilePurpose" in criteria
                and p.purpose != criteria["chargingProfilePurpose"]
            ):
                return False
            return not ("stackLevel" in criteria and p.stack_level != criteria["stackLevel"])

        kept = [p for p in self._installed if not matches(p)]
        removed = len(self._installed) - len(kept)
        self._replace(kept)
        return removed

    def clear_transaction(self, transaction_id: str) -> None:
        """TxProfiles end with their transaction (K01.FR.37)."""
        self._replace(
            [
                p
                for p in self._installed
                if not (
                    p.purpose == "TxProfile"
                    and p.profile.get("transactionId") in (None, transaction_id)
                )
            ]
        )

    def matching(self, evse_id: int | None, criteria: Mapping[str, Any]) -> list[Installed]:
        """The profiles GetChargingProfiles asks for: of EVSE `evse_id` (0: the station's
        own; None: all), matching every criterion given (K09)."""
        ids = criteria.get("chargingProfileId")
        found = []
        for p in self._installed:
            if evse_id is not None and p.evse_id != evse_id:
                continue
            if ids and p.id not in ids:
                continue
            if (
                "chargingProfilePurpose" in criteria
                and p.purpose != criteria["chargingProfilePurpose"]
            ):
                continue
            if "stackLevel" in criteria and p.stack_level != criteria["stackLevel"]:
                continue
            sources = criteria.get("chargingLimitSource")
            if sources and p.source not in sources:
                continue
            found.append(p)
        return found

    def for_evse(self, evse_id: int) -> list[Installed]:
        return [p for p in self._installed if p.evse_id in (evse_id, 0)]

    def by_id(self, profile_id: int) -> Installed | None:
        for p in self._installed:
            if p.id == profile_id:
                return p
        return None

    def invalid_after_offline(self, offline_s: float) -> list[Installed]:
        """The profiles that an offline period of `offline_s` made permanently invalid: those
        with invalidAfterOfflineDuration whose maxOfflineDuration it reached (2.1)."""
        return [
            p
            for p in self._installed
            if p.profile.get("invalidAfterOfflineDuration")
            and p.profile.get("maxOfflineDuration") is not None
            and offline_s >= p.profile["maxOfflineDuration"]
        ]

    def remove(self, gone: list[Installed]) -> None:
        """Remove these installed profiles."""
        self._replace([p for p in self._installed if all(p is not g for g in gone)])

    def remove_external(self, profile_id: int) -> bool:
        """Remove the profile an external system set (K13: its limit lifted); whether it was
        there.  ClearChargingProfile leaves such profiles alone."""
        kept = [p for p in self._installed if not (p.id == profile_id and p.source != "CSO")]
        removed = len(kept) != len(self._installed)
        self._replace(kept)
        return removed


#: The key of the block's per-station state: the same name as the assembled block.
STATE_KEY: Block[ChargingProfiles] = Block(
    letter="K", name="smart_charging", new_state=ChargingProfiles
)


def profiles_of(station: StationCore) -> ChargingProfiles:
    """The station's profiles, made on first use."""
    return station.block_state(STATE_KEY)


def peek_profiles(station: StationCore) -> ChargingProfiles | None:
    """The station's profiles if it ever held any (reading creates nothing)."""
    return station.peek_block_state(STATE_KEY)
