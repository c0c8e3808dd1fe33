"""Charging profiles while the station is offline, and when it is back (2.1: K01's
maxOfflineDuration and invalidAfterOfflineDuration; Q11-Q12 for a V2X operation mode).

A profile stays in force offline, as every profile does (K06), unless it has a
maxOfflineDuration: that many seconds after the connection dropped it becomes invalid for as long
as the station stays offline, and the profile below it rules -- a V2X TxProfile gives way to
the TxDefaultProfile under it, or to charging under the station's own limits, so an EV no longer
discharges on a setpoint nobody can revise.  The composite computes this from
`ChargingProfiles.offline_since_s` (the moment is a limit change, so the EV's visit task wakes
at exactly then, and reports the new operation mode in a TransactionEvent queued with the
others).  Back online, such a profile rules again -- and the EV reports that operation mode --
unless its invalidAfterOfflineDuration is true and the station was offline at least its
maxOfflineDuration: then it is gone for good, and the CSMS must send a new one.
"""

from __future__ import annotations

from ...core import Booted, ConnectionLost, StationCore
from .profiles import ChargingProfiles, peek_profiles

__all__ = ["back_online", "went_offline"]


def _has_offline_validity(profiles: ChargingProfiles) -> bool:
    return any("maxOfflineDuration" in p.profile for p in profiles.installed)


def _wake_all(station: StationCore) -> None:
    for evse in station.evses:
        evse.wake()


def went_offline(station: StationCore, event: ConnectionLost) -> None:
    """Remember when the station went offline; wake the EVSEs whose profiles care."""
    profiles = peek_profiles(station)
    if profiles is None:
        return
    profiles.offline_since_s = station.clock.sim_now()
    if _has_offline_validity(profiles):
        _wake_all(station)


def back_online(station: StationCore, event: Booted) -> None:
    """Online again: profiles that were invalid offline rule again, except those an offline
    period that long invalidated for good, which go."""
    profiles = peek_profiles(station)
    if profiles is None or profiles.offline_since_s is None:
        return
    offline_s = station.clock.sim_now() - profiles.offline_since_s
    profiles.offline_since_s = None
    if not _has_offline_validity(profiles):
        return
    profiles.remove(profiles.invalid_after_offline(offline_s))
    _wake_all(station)
