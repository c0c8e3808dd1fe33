"""Who arrives at a site, when, in which EV, with what charge, and when they leave.

Arrivals at a site form a non-homogeneous Poisson process whose rate is constant within each
local hour and follows the site kind's 24-value profile.  `ArrivalProcess.next_arrival` samples
it exactly: it draws one unit exponential and walks the hours, integrating the rate until the
integral reaches that draw, so there is neither a thinning loop nor a fixed time step, and a
quiet night costs as many steps as it has hours.

Every draw comes from the process's own generator in a fixed order per arrival (exponential,
model, start SoC, target SoC, minimum SoC, departure, IdToken, token-first, ISO 15118 use, then
the IdToken's type when there are several, and whether the driver ends the transaction with
their token when only some do), so a seed and the same sequence of `after_s` calls give the
same arrivals whatever else the run does; the last two draws are made only when configured,
so adding neither changes no existing run.

The profiles are hand-made shapes that follow published charging-session studies; each one's
comment gives its basis.  They are meant to put load at the right hours, not to fit a data set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from .catalogue import EvModel
from .id_tokens import id_token_value, pool_id_token

__all__ = ["SITE_PROFILES", "ArrivalProcess", "EvArrival", "SiteKind", "SiteProfile"]

SiteKind = Literal["depot", "workplace", "public", "highway"]

_DAY_S = 86_400.0
_HOUR_S = 3_600.0


@dataclass(frozen=True, slots=True)
class SiteProfile:
    """What a kind of site sees: arrival hours and the needs of the EVs that come.

    `hourly_weights` are 24 relative arrival weights by local hour.  The start SoC is a beta
    draw scaled into `soc_start`; the target and minimum SoC are uniform in their ranges.  A
    stay ends either after a uniform `dwell_s`, or, for overnight sites, at a uniform instant of
    the first `departure_window_h` (local hours) that begins at least `min_dwell_s` after the
    arrival.
    """

    kind: str
    hourly_weights: tuple[float, ...]
    soc_start: tuple[float, float]
    soc_start_beta: tuple[float, float]
    target_soc: tuple[float, float]
    min_soc: tuple[float, float]
    dwell_s: tuple[float, float] | None = None
    departure_window_h: tuple[float, float] | None = None
    min_dwell_s: float = 3_600.0
    supply: Literal["AC", "DC"] = "AC"
    basis: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        weights = self.hourly_weights
        if len(weights) != 24 or any(not (w >= 0) for w in weights) or sum(weights) <= 0:
            raise ValueError(
                f"site profile {self.kind!r}: hourly_weights needs 24 weights >= 0 with a "
                f"positive sum, got {weights!r}"
            )
        for name in ("soc_start", "target_soc", "min_soc"):
            low, high = getattr(self, name)
            if not (0.0 <= low <= high <= 1.0):
                raise ValueError(
                    f"site profile {self.kind!r}: {name} must be (low, high) with "
                    f"0 <= low <= high <= 1, got {(low, high)!r}"
                )
        if min(self.soc_start_beta) <= 0:
            raise ValueError(
                f"site profile {self.kind!r}: soc_start_beta parameters must be positive, "
                f"got {self.soc_start_beta!r}"
            )
        if (self.dwell_s is None) == (self.departure_window_h is None):
            raise ValueError(
                f"site profile {self.kind!r}: give either dwell_s or departure_window_h"
            )
        if self.dwell_s is not None and not (0 < self.dwell_s[0] <= self.dwell_s[1]):
            raise ValueError(
                f"site profile {self.kind!r}: dwell_s must be (low, high) with "
                f"0 < low <= high, got {self.dwell_s!r}"
            )
        if self.departure_window_h is not None:
            start_h, end_h = self.departure_window_h
            if not (0 <= start_h < end_h <= 24):
                raise ValueError(
                    f"site profile {self.kind!r}: departure_window_h must be (start, end) "
                    f"local hours with 0 <= start < end <= 24, got {self.departure_window_h!r}"
                )

    def with_overrides(
        self,
        *,
        dwell_s: tuple[float, float] | None = None,
        soc_start: tuple[float, float] | None = None,
        target_soc: tuple[float, float] | None = None,
    ) -> SiteProfile:
        """This profile with some ranges replaced; None keeps the profile's own.

        A dwell range replaces a departure window.  A start-SoC range keeps the beta shape
        and rescales it into the new range.
        """
        changes: dict[str, object] = {}
        if dwell_s is not None:
            changes.update(dwell_s=tuple(dwell_s), departure_window_h=None)
        if soc_start is not None:
            changes["soc_start"] = tuple(soc_start)
        if target_soc is not None:
            changes["target_soc"] = tuple(target_soc)
        return replace(self, **changes) if changes else self  # type: ignore[arg-type]


def _hours(weights: dict[int, float]) -> tuple[float, ...]:
    """24 hourly weights from {local hour: weight}; the other hours get none."""
    return tuple(float(weights.get(hour, 0.0)) for hour in range(24))


def _weights(text: str) -> tuple[float, ...]:
    """24 hourly weights written as numbers separated by spaces, hour 0 first."""
    return tuple(float(word) for word in text.split())


SITE_PROFILES: dict[str, SiteProfile] = {
    # Fleet depots charge overnight.  The DfT's Electric Chargepoint Analysis 2017 found home
    # plug-ins peaking between 17:00 and 18:59 (as summarised by Cornwall Insight); a depot sees
    # the same end-of-shift return, so arrivals fall in 17:00-21:00 with the peak at 18:00 and
    # departures in 05:00-08:00 for the morning shift.
    "depot": SiteProfile(
        kind="depot",
        hourly_weights=_hours({17: 3.0, 18: 4.0, 19: 2.0, 20: 1.0}),
        soc_start=(0.10, 0.80),
        soc_start_beta=(2.5, 3.0),
        target_soc=(0.80, 1.00),
        min_soc=(0.20, 0.40),
        departure_window_h=(5.0, 8.0),
        min_dwell_s=4 * _HOUR_S,
        basis="DfT Electric Chargepoint Analysis 2017 (domestic peak 17:00-18:59)",
    ),
    # Workplaces: arrivals 07:00-10:00 peaking at 08:00, the hour the DfT 2017 analysis found
    # public-sector fast chargers busiest; stays of a working day (6-9 h), as in the workplace
    # sessions of INL's EV Project and ChargePoint America study ("Plugged In", 2015).
    "workplace": SiteProfile(
        kind="workplace",
        hourly_weights=_hours({7: 3.0, 8: 5.0, 9: 2.0}),
        soc_start=(0.20, 0.80),
        soc_start_beta=(3.0, 3.0),
        target_soc=(0.80, 1.00),
        min_soc=(0.30, 0.50),
        dwell_s=(6 * _HOUR_S, 9 * _HOUR_S),
        basis="DfT Electric Chargepoint Analysis 2017 (public-sector peak 08:00); INL EV Project",
    ),
    # Public destination charging (shops, streets, car parks): a daytime plateau from late
    # morning to early evening with little at night, the pattern reported for Amsterdam's
    # public network (HvA, 405,000 sessions 2012-2014) and German public points (TUM, 2021);
    # stays of 30 min to 3 h.
    "public": SiteProfile(
        kind="public",
        hourly_weights=_weights(
            "0.3 0.2 0.1 0.1 0.1 0.2 0.5 1.2 2.2 3.0 3.4 3.6 "
            "3.6 3.5 3.4 3.5 3.6 3.4 3.0 2.4 1.8 1.2 0.8 0.5"
        ),
        soc_start=(0.10, 0.80),
        soc_start_beta=(2.0, 2.5),
        target_soc=(0.70, 1.00),
        min_soc=(0.20, 0.40),
        dwell_s=(0.5 * _HOUR_S, 3 * _HOUR_S),
        basis="HvA Amsterdam public charging analysis; TUM German charging-point usage (2021)",
    ),
    # Highway DC: peaks around noon and 17:00.  The DfT 2017 analysis found local-authority
    # rapid chargers busiest at 12:00; the evening peak is the drive home.  Stays of 20-45 min
    # follow the median 28-36 min DC charge times measured by Mahlberg et al. (World Electric
    # Vehicle Journal 14(11):308, 2023) and the 42 min DOE average at paid DC chargers; drivers
    # stop near 80 % where the curves flatten.
    "highway": SiteProfile(
        kind="highway",
        hourly_weights=_weights(
            "0.3 0.2 0.15 0.15 0.2 0.4 0.8 1.5 2.2 2.8 3.3 3.8 "
            "4.2 4.0 3.6 3.6 4.0 4.3 3.8 3.0 2.2 1.5 0.9 0.5"
        ),
        soc_start=(0.05, 0.50),
        soc_start_beta=(2.0, 5.0),
        target_soc=(0.75, 0.85),
        min_soc=(0.20, 0.40),
        dwell_s=(20 * 60.0, 45 * 60.0),
        supply="DC",
        basis="DfT 2017 (rapid peak 12:00); Mahlberg et al. 2023; DOE VTO paid DCFC sessions",
    ),
}


@dataclass(frozen=True, slots=True)
class EvArrival:
    """One EV visit: when it comes (simulated seconds since the run's start) and what it wants."""

    arrival_s: float
    model: EvModel
    soc_start: float
    target_soc: float
    min_soc: float
    departure_s: float
    id_token: str
    id_token_type: str
    id_token_first: bool
    uses_iso15118_20: bool
    #: The driver ends the transaction by presenting their IdToken before unplugging (E07).
    stops_with_id_token: bool = False
    #: Plug & Charge: the EV identifies itself with a contract certificate over ISO 15118 (its
    #: IdToken is the contract's eMAID); the driver presents nothing.
    plug_and_charge: bool = False


class ArrivalProcess:
    """The EVs that come to one site; one generator, used by nothing else.

    `arrivals_per_day` is the mean over a day; the site profile spreads it over local hours
    (`start_epoch_s` is the epoch at simulated second 0, `tz_offset_s` the site's UTC offset).
    `id_tokens` is (pattern with `{index}`, count, type).  `iso15118_share` is the share of
    ISO 15118-20 capable EVs that use it; `min_soc`, when given, replaces the profile's
    minimum-SoC range for every EV.  `id_token_types`, when given, are (type, share) pairs:
    each driver's token is of a type drawn by share, numbered from the same pool, in that
    type's format (`id_tokens.id_token_value`), instead of the pattern's.
    `stop_with_id_token_share` is the share of drivers who end the transaction with their
    token before they unplug.  `plug_and_charge_share` is the share of the EVs that use ISO
    15118 which identify themselves with a contract certificate (Plug & Charge) instead of
    their driver's token; their IdToken is an eMAID.
    """

    def __init__(
        self,
        profile: SiteProfile,
        models: Sequence[tuple[EvModel, float]],
        arrivals_per_day: float,
        rng: np.random.Generator,
        start_epoch_s: float,
        tz_offset_s: int = 0,
        id_tokens: tuple[str, int, str] = ("TOKEN{index:05d}", 1000, "ISO14443"),
        id_token_first_share: float = 0.3,
        *,
        iso15118_share: float = 1.0,
        min_soc: float | None = None,
        id_token_types: Sequence[tuple[str, float]] | None = None,
        stop_with_id_token_share: float = 0.0,
        plug_and_charge_share: float = 0.0,
    ) -> None:
        if not models:
            raise ValueError("an arrival process needs at least one (EvModel, share) pair")
        shares = np.array([share for _, share in models], dtype=float)
        if (shares < 0).any() or not shares.sum() > 0:
            raise ValueError(f"model shares must be >= 0 with a positive sum, got {list(shares)}")
        if not (math.isfinite(arrivals_per_day) and arrivals_per_day >= 0):
            raise ValueError(f"arrivals_per_day must be a number >= 0, got {arrivals_per_day!r}")
        pattern, count, token_type = id_tokens
        if count < 1:
            raise ValueError(f"the IdToken pool needs at least one token, got count={count!r}")
        try:
            pattern.format(index=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"IdToken pattern {pattern!r} must format with {{index}}, e.g. 'TOKEN{{index:05d}}'"
            ) from exc
        for name, value in (
            ("id_token_first_share", id_token_first_share),
            ("iso15118_share", iso15118_share),
            ("stop_with_id_token_share", stop_with_id_token_share),
            ("plug_and_charge_share", plug_and_charge_share),
        ):
            if not (0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if min_soc is not None and not (0.0 <= min_soc <= 1.0):
            raise ValueError(f"min_soc must be in [0, 1], got {min_soc!r}")
        self.profile = profile
        self.models = tuple(model for model, _ in models)
        self._cumulative = np.cumsum(shares / shares.sum())
        self.arrivals_per_day = float(arrivals_per_day)
        weights = np.asarray(profile.hourly_weights, dtype=float)
        self._rate_per_s = tuple(
            float(r) for r in self.arrivals_per_day * weights / weights.sum() / _HOUR_S
        )
        self._rng = rng
        self._origin_s = float(start_epoch_s) + tz_offset_s
        self._id_pattern, self._id_count, self._id_type = pattern, int(count), token_type
        self._id_first_share = float(id_token_first_share)
        self._iso_share = float(iso15118_share)
        self._min_soc = min_soc
        self._stop_share = float(stop_with_id_token_share)
        self._pnc_share = float(plug_and_charge_share)
        self._token_types: tuple[str, ...] = ()
        self._type_cumulative = np.ones(1)
        if id_token_types is not None:
            type_shares = np.array([share for _, share in id_token_types], dtype=float)
            if not len(type_shares) or (type_shares <= 0).any():
                raise ValueError(
                    f"id_token_types needs (type, share) pairs with shares > 0, got "
                    f"{list(id_token_types)!r}"
                )
            for token_type, _ in id_token_types:
                id_token_value(token_type, 1)  # a type no driver carries raises here
            self._token_types = tuple(token_type for token_type, _ in id_token_types)
            self._type_cumulative = np.cumsum(type_shares / type_shares.sum())

    def next_arrival(self, after_s: float) -> EvArrival | None:
        """The first EV to arrive after simulated second `after_s`; None if none ever will."""
        if self.arrivals_per_day <= 0:
            return None
        rng = self._rng
        arrival_s = self._time_of_integral(after_s, float(rng.exponential(1.0)))
        profile = self.profile
        model_index = int(np.searchsorted(self._cumulative, rng.random(), side="right"))
        model = self.models[min(model_index, len(self.models) - 1)]
        low, high = profile.soc_start
        soc_start = low + (high - low) * float(rng.beta(*profile.soc_start_beta))
        target_soc = max(soc_start, float(rng.uniform(*profile.target_soc)))
        drawn_min_soc = float(rng.uniform(*profile.min_soc))
        min_soc = drawn_min_soc if self._min_soc is None else self._min_soc
        departure_s = self._departure(arrival_s, float(rng.random()))
        token_index = int(rng.integers(1, self._id_count + 1))
        id_token_first = bool(rng.random() < self._id_first_share)
        uses_iso15118_20 = bool(rng.random() < self._iso_share) and model.iso15118_20
        token_type = self._id_type
        id_token = pool_id_token(self._id_pattern, token_index)
        if self._token_types:
            pick = 0
            if len(self._token_types) > 1:
                pick = int(np.searchsorted(self._type_cumulative, rng.random(), side="right"))
            token_type = self._token_types[min(pick, len(self._token_types) - 1)]
            id_token = pool_id_token(self._id_pattern, token_index, token_type)
        stop_share = self._stop_share
        stops_with_id_token = stop_share >= 1.0 or (
            stop_share > 0.0 and bool(rng.random() < stop_share)
        )
        # Drawn only when asked for, so that runs without Plug & Charge draw as before.
        pnc_share = self._pnc_share
        plug_and_charge = uses_iso15118_20 and (
            pnc_share >= 1.0 or (pnc_share > 0.0 and bool(rng.random() < pnc_share))
        )
        if plug_and_charge:
            token_type = "eMAID"
            id_token = pool_id_token(self._id_pattern, token_index, token_type)
            id_token_first = False
        return EvArrival(
            arrival_s=arrival_s,
            model=model,
            soc_start=soc_start,
            target_soc=target_soc,
            min_soc=min_soc,
            departure_s=departure_s,
            id_token=id_token,
            id_token_type=token_type,
            id_token_first=id_token_first,
            uses_iso15118_20=uses_iso15118_20,
            stops_with_id_token=stops_with_id_token,
            plug_and_charge=plug_and_charge,
        )

    def _time_of_integral(self, after_s: float, target: float) -> float:
        """The time at which the rate's integral from `after_s` reaches `target`.

        Walks local hours; whole days are skipped at once (a day integrates to
        `arrivals_per_day`), so a large draw costs at most two days of hours.
        """
        per_day = self.arrivals_per_day
        remaining = target
        local_s = self._origin_s + after_s
        hour_index = math.floor(local_s / _HOUR_S)
        start_local_s = local_s
        while True:
            hour_end_local_s = (hour_index + 1) * _HOUR_S
            rate = self._rate_per_s[hour_index % 24]
            if rate > 0:
                needed_s = remaining / rate
                if start_local_s + needed_s < hour_end_local_s:
                    return start_local_s + needed_s - self._origin_s
                remaining -= rate * (hour_end_local_s - start_local_s)
            hour_index += 1
            start_local_s = hour_end_local_s
            if hour_index % 24 == 0 and remaining > per_day:
                days = math.ceil(remaining / per_day) - 1
                remaining -= days * per_day
                hour_index += 24 * days
                start_local_s = hour_index * _HOUR_S

    def _departure(self, arrival_s: float, u: float) -> float:
        profile = self.profile
        if profile.dwell_s is not None:
            low, high = profile.dwell_s
            return arrival_s + low + (high - low) * u
        assert profile.departure_window_h is not None
        start_h, end_h = profile.departure_window_h
        local_s = self._origin_s + arrival_s
        window_s = math.floor(local_s / _DAY_S) * _DAY_S + start_h * _HOUR_S
        while window_s < local_s + profile.min_dwell_s:
            window_s += _DAY_S
        return window_s + (end_h - start_h) * _HOUR_S * u - self._origin_s
