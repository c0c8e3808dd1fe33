"""The `faults` section: conditions the fleet produces on purpose, on a timeline of simulated
time, so that a CSMS meets them in a load test rather than in production.

Each entry names a `kind` and when it happens: `at` a simulated moment (`"08:00"`, the first
08:00 at or after the start in the start's time zone; `"+90m"` or a number of seconds after
the start; or a date and time with a zone) and, for faults that last, `for` a duration
(`"10m"`, `"1h30m"`, or seconds).  `share` is the share of the stations it hits, chosen from
the scenario's seed and each station's id, so a rerun (and every shard of a sharded fleet)
hits the same stations.  Faults that come at a rate give `rate_per_station_hour`: so many
times per chosen station and simulated hour, at random moments drawn from the seed.

`simulator/faults.py` turns this section into timed actions; the command line adds entries
with `--drop`, `--drop-rate`, `--partition`, `--storm`, `--malformed-rate` and
`--duplicate-id-rate` (`fault_from_flag`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .base import MODEL_CONFIG, invalid, invalid_fields

__all__ = [
    "ClockDriftFault",
    "DropFault",
    "DuplicateIdFault",
    "FAULT_FLAGS",
    "FaultSpec",
    "MalformedFault",
    "PartitionFault",
    "PowerCutFault",
    "SlowFault",
    "StormFault",
    "StuckFault",
    "at_s",
    "duration_s",
    "fault_from_flag",
]

#: `for` is a Python keyword: the field is `for_` in code and `for` in the file.
_FAULT_CONFIG = ConfigDict(
    **MODEL_CONFIG, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
)

_DURATION = re.compile(
    r"^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?"
    r"(?:(\d+(?:\.\d+)?)s)?$"
)
_TIME_OF_DAY = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?$")
_DURATION_UNITS_S = (86400.0, 3600.0, 60.0, 1.0)


def duration_s(value: float | str) -> float:
    """Seconds of a duration written as a number of seconds or as `1h30m`, `10m`, `90s`, `2d`.

    Raises ValueError with a sentence that shows the accepted forms.
    """
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value:g}")
        return float(value)
    text = value.strip()
    match = _DURATION.match(text)
    if not text or match is None or not any(match.groups()):
        raise ValueError(
            f"{value!r} is not a duration; write seconds (600) or a number with units "
            "d, h, m, s in that order (10m, 1h30m, 90s)"
        )
    return sum(
        float(part) * unit
        for part, unit in zip(match.groups(), _DURATION_UNITS_S, strict=True)
        if part is not None
    )


def _check_at(value: float | str) -> None:
    """Raise ValueError unless `value` is a form `at_s` understands."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"at cannot be before the start, got {value:g} s")
        return
    text = value.strip()
    if text.startswith("+"):
        duration_s(text[1:])
        return
    if _TIME_OF_DAY.match(text):
        return
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            duration_s(text)
        except ValueError:
            pass
        else:
            raise ValueError(
                f"{value!r} is not a moment; for an offset from the start write +{text}"
            ) from None
        raise ValueError(
            f"{value!r} is not a moment; write a time of day (08:00), an offset from the start "
            "(+90m, or a number of seconds), or a date and time with a zone "
            "(2026-01-15T08:00:00Z)"
        ) from None
    if moment.utcoffset() is None:
        raise ValueError(f"{value!r} has no time zone; add Z for UTC or an offset (+01:00)")


def at_s(value: float | str | None, start: dt.datetime) -> float:
    """Simulated seconds after `start` of the moment `value` (None: the start itself).

    A time of day is the first such time at or after the start, in the start's time zone; a
    date and time before the start counts as the start.
    """
    if value is None:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    text = value.strip()
    if text.startswith("+"):
        return duration_s(text[1:])
    match = _TIME_OF_DAY.match(text)
    if match is not None:
        hours, minutes, seconds = (int(part or 0) for part in match.groups())
        moment = start.replace(hour=hours, minute=minutes, second=seconds, microsecond=0)
        if moment < start:
            moment += dt.timedelta(days=1)
        return (moment - start).total_seconds()
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return max(0.0, (moment - start).total_seconds())


def _at(description: str, *, required: bool) -> Any:
    return Field(
        ... if required else None,
        description=(
            f'{description}: a time of day ("08:00", quoted in YAML; the first one at or after '
            "the start, in the start's time zone), an offset from the start (+90m, or seconds), "
            "or a date and time with a zone." + ("" if required else " Null: from the start.")
        ),
    )


def _for(description: str, *, required: bool) -> Any:
    return Field(
        ... if required else None,
        alias="for",
        description=(
            f"{description}: seconds, or a duration with units (10m, 1h30m, 90s)."
            + ("" if required else " Null: until the run ends.")
        ),
    )


_SHARE = Field(
    default=1.0,
    gt=0,
    le=1,
    description=(
        "Share of the stations (0..1) it hits, chosen from the seed and each station's id: a "
        "rerun, and every shard of the fleet, hits the same ones."
    ),
)


def _rate(required: bool) -> Any:
    return Field(
        ... if required else None,
        gt=0,
        description=(
            "Times per chosen station and simulated hour, at random moments drawn from the seed"
            + ("." if required else "; null: once, at `at`.")
        ),
    )


class _Fault(BaseModel):
    model_config = _FAULT_CONFIG

    @field_validator("at", check_fields=False)
    @classmethod
    def _at_is_a_moment(cls, value: float | str | None) -> float | str | None:
        if value is not None:
            try:
                _check_at(value)
            except ValueError as exc:
                raise invalid(str(exc)) from None
        return value

    @field_validator("for_", check_fields=False)
    @classmethod
    def _for_is_a_duration(cls, value: float | str | None) -> float | str | None:
        if value is not None:
            try:
                seconds = duration_s(value)
            except ValueError as exc:
                raise invalid(str(exc)) from None
            if seconds <= 0:
                raise invalid(f"for must be longer than 0 s, got {value!r}")
        return value

    def at_s(self, start: dt.datetime) -> float:
        """When it begins, in simulated seconds after `start`."""
        return at_s(getattr(self, "at", None), start)

    def for_s(self) -> float | None:
        """How long it lasts in simulated seconds; None: until the run ends."""
        value = getattr(self, "for_", None)
        return None if value is None else duration_s(value)


class DropFault(_Fault):
    """Close connections: a share of them at one moment, or at a rate. The stations reconnect
    after their RetryBackOff wait (OCPPCommCtrlr.RetryBackOff*)."""

    kind: Literal["drop"] = Field(description="drop: close stations' connections.")
    at: float | str | None = _at("When (the window's start, with a rate)", required=False)
    for_: float | str | None = _for("With a rate: how long drops go on", required=False)
    share: float = _SHARE
    rate_per_station_hour: float | None = _rate(required=False)

    @model_validator(mode="after")
    def _once_or_at_a_rate(self) -> Self:
        if self.rate_per_station_hour is None and self.at is None:
            raise invalid_fields(
                [
                    (
                        ("at",),
                        "a drop needs at (when to close the connections) or "
                        "rate_per_station_hour (how often)",
                        None,
                    )
                ]
            )
        if self.rate_per_station_hour is None and self.for_ is not None:
            raise invalid_fields(
                [
                    (
                        ("for",),
                        "a single drop has no duration; remove for, or give "
                        "rate_per_station_hour to drop connections at a rate during it",
                        self.for_,
                    )
                ]
            )
        return self


class PartitionFault(_Fault):
    """A share of the stations cannot reach the CSMS for a window: their connections close and
    every attempt to reconnect fails until it ends. They go on charging offline, queue their
    TransactionEvents (offline: true) and reconnect by RetryBackOff afterwards."""

    kind: Literal["partition"] = Field(description="partition: stations cut off for a window.")
    at: float | str = _at("When the window begins", required=True)
    for_: float | str = _for("How long it lasts", required=True)
    share: float = _SHARE


class StormFault(_Fault):
    """A reconnect storm: the connections of a share of the stations (all by default) close at
    one moment and every one of them reconnects at once, without a back-off wait."""

    kind: Literal["storm"] = Field(description="storm: stations reconnect all at once.")
    at: float | str = _at("When", required=True)
    share: float = _SHARE


class SlowFault(_Fault):
    """Stations answer the CSMS's CALLs only after a delay during a window."""

    kind: Literal["slow"] = Field(description="slow: stations answer CSMS calls late.")
    at: float | str | None = _at("When the window begins", required=False)
    for_: float | str | None = _for("How long it lasts", required=False)
    share: float = _SHARE
    delay_s: float = Field(
        gt=0,
        description=(
            "Wall seconds a station waits before answering each CSMS CALL (like "
            "csms.call_timeout_s, it does not speed up with simulated time)."
        ),
    )


class StuckFault(_Fault):
    """Stations never answer the CSMS's CALLs during a window: the CSMS sees its timeouts."""

    kind: Literal["stuck"] = Field(description="stuck: stations never answer CSMS calls.")
    at: float | str | None = _at("When the window begins", required=False)
    for_: float | str | None = _for("How long it lasts", required=False)
    share: float = _SHARE


class ClockDriftFault(_Fault):
    """The clocks of a share of the stations drift: the timestamps they send run ahead (or
    behind) by so many seconds per simulated day, from `at` on."""

    kind: Literal["clock_drift"] = Field(description="clock_drift: stations' clocks drift.")
    at: float | str | None = _at("When the drift begins", required=False)
    share: float = _SHARE
    drift_s_per_day: float = Field(
        description=(
            "Seconds the station's clock gains per simulated day (negative: loses); at most a "
            "day per day."
        ),
    )

    @field_validator("drift_s_per_day")
    @classmethod
    def _drifts(cls, value: float) -> float:
        if value == 0 or abs(value) > 86400:
            raise invalid(
                f"drift_s_per_day must be non-zero and at most 86400 either way, got {value:g}"
            )
        return value


class PowerCutFault(_Fault):
    """A power cut at a site: every station of the site goes down (no energy, no connection)
    and boots again with reason PowerUp when the power comes back; OCPP 2.1 stations resume
    their transactions (E17), OCPP 2.0.1 ones end them with stoppedReason PowerLoss."""

    kind: Literal["power_cut"] = Field(description="power_cut: a site loses its power.")
    site: str = Field(min_length=1, description="Name of the site (from sites) that goes dark.")
    at: float | str = _at("When the power goes", required=True)
    for_: float | str = _for("How long it stays off", required=True)


class MalformedFault(_Fault):
    """Stations send frames that are not valid OCPP-J (broken JSON, not an array, an unknown
    message type, a message id that is not a string, a payload that breaks the schema), so
    the CSMS's error handling gets exercised. The kinds take turns."""

    kind: Literal["malformed"] = Field(description="malformed: invalid frames to the CSMS.")
    at: float | str | None = _at("When the window begins", required=False)
    for_: float | str | None = _for("How long it lasts", required=False)
    share: float = _SHARE
    rate_per_station_hour: float = _rate(required=True)


class DuplicateIdFault(_Fault):
    """Stations send their previous CALL again, with the same message id, as a station that
    missed the answer and retried would."""

    kind: Literal["duplicate_id"] = Field(
        description="duplicate_id: a CALL sent again with the id it had."
    )
    at: float | str | None = _at("When the window begins", required=False)
    for_: float | str | None = _for("How long it lasts", required=False)
    share: float = _SHARE
    rate_per_station_hour: float = _rate(required=True)


FaultSpec = Annotated[
    DropFault
    | PartitionFault
    | StormFault
    | SlowFault
    | StuckFault
    | ClockDriftFault
    | PowerCutFault
    | MalformedFault
    | DuplicateIdFault,
    Field(discriminator="kind"),
]

#: The command-line flags that add faults, and the grammar of each one's value.
FAULT_FLAGS = {
    "drop": "SHARE@AT (0.1@+30m: a tenth of the connections close 30 minutes in)",
    "drop_rate": "RATE (drops per station and simulated hour, the whole run)",
    "partition": "SHARE@AT+FOR (20%@08:00+10m: a fifth of the stations cut off for 10 minutes)",
    "storm": "SHARE@AT (1@09:00: every station reconnects at once at 09:00)",
    "malformed_rate": "RATE (invalid frames per station and simulated hour)",
    "duplicate_id_rate": "RATE (CALLs re-sent with their id, per station and simulated hour)",
}


def _share(text: str) -> float:
    text = text.strip()
    if text.endswith("%"):
        return float(text[:-1]) / 100
    return float(text)


def fault_from_flag(flag: str, value: str) -> dict[str, object]:
    """The `faults` entry a command-line flag (a key of `FAULT_FLAGS`) describes.

    Raises ValueError with a sentence naming the flag and its grammar.
    """
    option = "--" + flag.replace("_", "-")
    grammar = FAULT_FLAGS[flag]
    try:
        if flag.endswith("_rate"):
            kind = flag.removesuffix("_rate")
            return {"kind": kind, "rate_per_station_hour": float(value)}
        share_text, at_sign, when = value.partition("@")
        if not at_sign or not when:
            raise ValueError("no @")
        entry: dict[str, object] = {"kind": flag, "share": _share(share_text)}
        if flag == "partition":
            at_text, plus, for_text = when.rpartition("+")
            if not plus or not at_text or not for_text:
                raise ValueError("no +FOR")
            entry |= {"at": at_text, "for": for_text}
        else:
            entry["at"] = when
        return entry
    except ValueError:
        raise ValueError(f"{option} {value}: write {grammar}") from None
