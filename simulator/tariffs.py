"""Tariff arithmetic of OCPP 2.1 (block I): what a transaction costs under a TariffType.

Both sides use it: a station's tariff block keeps a `CostMeter` per transaction that has a
tariff and reports its running and final cost as costDetails; the embedded CSMS prices the
chargingPeriods of that report again with `price` and the tariff it sent, and counts a
disagreement.  Pure functions of the tariff and the usage: no trio, no station, no clock.

A transaction's usage is cut into periods; a period starts wherever the price in force may
change (a time-of-day or date boundary of a condition, an energy step, a duration threshold, a
new tariff, charging starting or stopping) and holds the energy (Wh), the time energy flowed
and the idle time (s) of its span.  `price` evaluates each price list (energy, chargingTime,
idleTime) at the period's start -- the time of day and day of week in UTC, the usage before it
and its average charging power -- and takes the first price element whose conditions all hold;
the fixed fee is chosen at the start of the transaction.  A tariff is read once into a plan
(its prices as numbers, its taxes per stack), shared by every tariff of the same content.
Times of day, days of the week and dates of a condition are in local time, "the time in the
tariff as it is shown to the EV driver at the Charging Station" (the schema's words on
TariffConditionsType): every function that reads them takes the station's time zone (`zone`,
a `tzinfo`, UTC by default; `station_zone` makes one from the IANA name of the scenario's
`stations.time_zone`), so a tariff's 18:00 is 18:00 on the station's wall clock, summer time
included, while timestamps stay UTC.

Money: each component (fixed, energy, chargingTime, idleTime) is priced unrounded, then its
exclTax and inclTax are rounded half-up to cents; totals are the sums of the rounded
components, so the report adds up.  Taxes stack as the schema says: stack 0 is charged on the
net price, stack 1 on the price with stack 0's tax, and so on.  A tariff's minCost/maxCost
bound the total excluding tax (typeOfCost MinCost/MaxCost).  The limit arithmetic (E16 maxCost)
uses the unrounded total including tax.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson

__all__ = [
    "COMPONENTS",
    "CostMeter",
    "Period",
    "Usage",
    "conditions_hold",
    "fixed_conditions_hold",
    "next_boundary_s",
    "periods_from_cost_details",
    "price",
    "station_zone",
    "tariff_refusal",
]

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: The TariffType fields with time or energy prices, and the TotalCostType field of each.
COMPONENTS = (("energy", "energy"), ("chargingTime", "chargingTime"), ("idleTime", "idleTime"))
#: Conditions this arithmetic evaluates; a tariff with others (minCurrent, maxCurrent,
#: paymentBrand, paymentRecognition) is refused ConditionNotSupported.
SUPPORTED_CONDITIONS = frozenset(
    {
        "startTimeOfDay",
        "endTimeOfDay",
        "dayOfWeek",
        "validFromDate",
        "validToDate",
        "evseKind",
        "minEnergy",
        "maxEnergy",
        "minPower",
        "maxPower",
        "minTime",
        "maxTime",
        "minChargingTime",
        "maxChargingTime",
        "minIdleTime",
        "maxIdleTime",
        "customData",
    }
)
#: The conditions read on the wall clock (the others need no date).
_CALENDAR_CONDITIONS = (
    "startTimeOfDay",
    "endTimeOfDay",
    "dayOfWeek",
    "validFromDate",
    "validToDate",
)
_DAY_S = 86400.0
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Usage:
    """What a transaction used before some instant: its duration, energy, charging and idle
    time."""

    elapsed_s: float = 0.0
    energy_wh: float = 0.0
    charging_s: float = 0.0
    idle_s: float = 0.0


@dataclass(slots=True)
class Period:
    """A span of a transaction priced as one: from `start_s` (epoch seconds) to the next."""

    start_s: float
    tariff_id: str
    energy_wh: float = 0.0
    charging_s: float = 0.0
    idle_s: float = 0.0

    @property
    def power_w(self) -> float:
        """Average power while energy flowed (0 for an idle period)."""
        return self.energy_wh * 3600.0 / self.charging_s if self.charging_s > 0 else 0.0


def _minute_of_day(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


@functools.cache
def station_zone(name: str) -> dt.tzinfo:
    """The time zone of an IANA name (`Europe/Berlin`), one object per name; UTC for "UTC".
    Raises `ValueError` with a sentence naming the zone when the system knows no such zone."""
    if name == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"{name!r} is not an IANA time zone this system knows; write one such as "
            "Europe/Berlin or America/New_York, or UTC"
        ) from exc


def _local(epoch_s: float, zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_s, zone)


def _calendar_holds(conditions: Mapping[str, Any], at: dt.datetime) -> bool:
    """Time of day, day of week and date window of `conditions` at `at` (local time)."""
    days = conditions.get("dayOfWeek")
    if days is not None and DAYS[at.weekday()] not in days:
        return False
    day = at.date().isoformat()
    valid_from = conditions.get("validFromDate")
    if valid_from is not None and day < valid_from:
        return False
    valid_to = conditions.get("validToDate")
    if valid_to is not None and day >= valid_to:
        return False
    start_text, end_text = conditions.get("startTimeOfDay"), conditions.get("endTimeOfDay")
    if start_text is None and end_text is None:
        return True
    minute = at.hour * 60 + at.minute + at.second / 60.0
    start = 0 if start_text is None else _minute_of_day(start_text)
    end = 24 * 60 if end_text is None or end_text == "00:00" else _minute_of_day(end_text)
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end  # wraps past midnight


def conditions_hold(
    conditions: Mapping[str, Any] | None,
    at_s: float,
    usage: Usage,
    power_w: float,
    evse_kind: str,
    zone: dt.tzinfo = dt.UTC,
) -> bool:
    """Whether all of a TariffConditionsType's restrictions hold at epoch second `at_s`, after
    `usage`, at `power_w`, on an EVSE of `evse_kind` (AC, DC), its calendar conditions read in
    `zone`.  min is inclusive, max exclusive."""
    if not conditions:
        return True
    kind = conditions.get("evseKind")
    if kind is not None and kind != evse_kind:
        return False
    for name, value in (
        ("Energy", usage.energy_wh),
        ("Power", power_w),
        ("Time", usage.elapsed_s),
        ("ChargingTime", usage.charging_s),
        ("IdleTime", usage.idle_s),
    ):
        low = conditions.get("min" + name)
        if low is not None and value < low:
            return False
        high = conditions.get("max" + name)
        if high is not None and value >= high:
            return False
    if not any(name in conditions for name in _CALENDAR_CONDITIONS):
        return True
    return _calendar_holds(conditions, _local(at_s, zone))


def fixed_conditions_hold(
    conditions: Mapping[str, Any] | None,
    at_s: float,
    evse_kind: str,
    zone: dt.tzinfo = dt.UTC,
) -> bool:
    """Whether a TariffConditionsFixedType holds at the start of a transaction (epoch `at_s`,
    read in `zone`).
    A payment brand or recognition never matches: the stations take no ad-hoc payment here."""
    if not conditions:
        return True
    if "paymentBrand" in conditions or "paymentRecognition" in conditions:
        return False
    kind = conditions.get("evseKind")
    if kind is not None and kind != evse_kind:
        return False
    return _calendar_holds(conditions, _local(at_s, zone))


@dataclass(frozen=True, slots=True)
class _PriceList:
    """One price list of a tariff (energy, chargingTime or idleTime) as the arithmetic reads
    it: each element's conditions and price (priceKwh or priceMinute) and the percent of each
    tax stack, lowest stack first."""

    component: str
    conditions: tuple[Mapping[str, Any] | None, ...]
    prices: tuple[float, ...]
    taxes: tuple[float, ...]
    #: The price when the first element has no conditions (it then always applies).
    flat: float | None

    def first_holding(
        self, at_s: float, usage: Usage, power_w: float, evse_kind: str, zone: dt.tzinfo
    ) -> int:
        """The index of the first element whose conditions hold, -1 when none does."""
        for index, conditions in enumerate(self.conditions):
            if conditions_hold(conditions, at_s, usage, power_w, evse_kind, zone):
                return index
        return -1


@dataclass(frozen=True, slots=True)
class _Plan:
    """A tariff read once into the numbers its arithmetic uses.  Tariffs alike share one plan
    (`plan_of`), so the stations of a fleet with one default tariff all price with the same
    few objects."""

    currency: str
    #: The price lists in `COMPONENTS` order, None where the tariff has none.
    lists: tuple[_PriceList | None, _PriceList | None, _PriceList | None]
    #: (conditions, priceFixed) of each fixedFee element, and its tax stacks.
    fixed: tuple[tuple[Mapping[str, Any] | None, float], ...]
    fixed_taxes: tuple[float, ...]
    #: (typeOfCost, -1 for a minimum or 1 for a maximum, exclTax, inclTax or None) of
    #: minCost and maxCost, those with an exclTax.
    bounds: tuple[tuple[str, int, float, float | None], ...]


def _tax_stacks(tax_rates: Sequence[Mapping[str, Any]] | None) -> tuple[float, ...]:
    """The percent of each tax stack, lowest stack first: the taxes of a stack add up."""
    if not tax_rates:
        return ()
    return tuple(
        sum(float(rate["tax"]) for rate in tax_rates if int(rate.get("stack", 0)) == stack)
        for stack in sorted({int(rate.get("stack", 0)) for rate in tax_rates})
    )


def _read_plan(tariff: Mapping[str, Any]) -> _Plan:
    """The plan of `tariff` (its prices as floats, its taxes summed per stack)."""
    lists: list[_PriceList | None] = []
    for component, _ in COMPONENTS:
        part = tariff.get(component)
        if part is None:
            lists.append(None)
            continue
        field_name = "priceKwh" if component == "energy" else "priceMinute"
        elements = part["prices"]
        prices = tuple(float(element[field_name]) for element in elements)
        first_free = bool(elements) and not elements[0].get("conditions")
        lists.append(
            _PriceList(
                component,
                tuple(element.get("conditions") for element in elements),
                prices,
                _tax_stacks(part.get("taxRates")),
                prices[0] if first_free else None,
            )
        )
    fixed = tariff.get("fixedFee")
    bounds = []
    for bound, kind, beyond in (("minCost", "MinCost", -1), ("maxCost", "MaxCost", 1)):
        limit = tariff.get(bound)
        if limit is not None and "exclTax" in limit:
            incl = limit.get("inclTax")
            bounds.append(
                (kind, beyond, float(limit["exclTax"]), None if incl is None else float(incl))
            )
    return _Plan(
        tariff["currency"],
        (lists[0], lists[1], lists[2]),
        tuple(
            (element.get("conditions"), float(element["priceFixed"]))
            for element in (fixed["prices"] if fixed is not None else ())
        ),
        _tax_stacks(fixed.get("taxRates")) if fixed is not None else (),
        tuple(bounds),
    )


#: Plans by the text of their tariff; a few distinct tariffs run at once, so when there are
#: more than this the oldest are read again when next needed.
_PLANS_KEPT = 256
_plans: dict[bytes, _Plan] = {}


def plan_of(tariff: Mapping[str, Any]) -> _Plan:
    """The plan of `tariff`, shared with every tariff of the same content."""
    try:
        text = orjson.dumps(tariff, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # not JSON (a test's mapping type): read it for this use only
        return _read_plan(tariff)
    plan = _plans.get(text)
    if plan is None:
        if len(_plans) >= _PLANS_KEPT:
            del _plans[next(iter(_plans))]
        plan = _plans[text] = _read_plan(tariff)
    return plan


def price_key(
    tariff: Mapping[str, Any],
    at_s: float,
    usage: Usage,
    power_w: float,
    evse_kind: str,
    zone: dt.tzinfo = dt.UTC,
) -> tuple[int, int, int]:
    """Which element of each price list applies (-1: none): periods with the same key are
    priced alike and may be one period."""
    return _plan_key(plan_of(tariff), at_s, usage, power_w, evse_kind, zone)


def _plan_key(
    plan: _Plan, at_s: float, usage: Usage, power_w: float, evse_kind: str, zone: dt.tzinfo
) -> tuple[int, int, int]:
    energy, charging, idle = (
        -1 if prices is None else prices.first_holding(at_s, usage, power_w, evse_kind, zone)
        for prices in plan.lists
    )
    return (energy, charging, idle)


def _taxed(net: float, taxes: tuple[float, ...]) -> float:
    """`net` with its stacked taxes (`_tax_stacks`): each stack is charged on the price with
    the stacks below it."""
    amount = net
    for percent in taxes:
        amount += amount * percent / 100.0
    return amount


def _cents(value: float) -> float:
    """`value` rounded half up to the cent, as its decimal digits read (2.675 is 2.68)."""
    hundredths = value * 100.0
    nearest = round(hundredths)
    if -0.499999 < hundredths - nearest < 0.499999 and -1e9 < hundredths < 1e9:
        # Far from a half: the nearest cent is plain; n / 100 is the double Decimal gives.
        return nearest / 100.0
    return float(Decimal(repr(value)).quantize(_CENT, rounding=ROUND_HALF_UP))


#: No price yet: what a component's (exclTax, inclTax) sums start from.
_NOTHING_YET = (0.0, 0.0)


@dataclass(slots=True)
class _Sums:
    """A run of periods priced in order: per TotalCostType component, (exclTax, inclTax)
    summed unrounded, and the usage before the period that comes next."""

    parts: dict[str, tuple[float, float]]
    energy_wh: float = 0.0
    charging_s: float = 0.0
    idle_s: float = 0.0

    def add(
        self, plan: _Plan, period: Period, first_start_s: float, evse_kind: str, zone: dt.tzinfo
    ) -> None:
        """Price `period` under `plan`, its tariff's, on top."""
        _price_period(
            self.parts,
            self,
            plan,
            period.start_s,
            period.energy_wh,
            period.charging_s,
            period.idle_s,
            first_start_s,
            evse_kind,
            zone,
        )
        self.energy_wh += period.energy_wh
        self.charging_s += period.charging_s
        self.idle_s += period.idle_s


def _opening(plans: Mapping[str, _Plan], first: Period, evse_kind: str, zone: dt.tzinfo) -> _Sums:
    """The sums before any period: the fixed fee of the first period's tariff, the first of
    its elements that holds at the start."""
    parts: dict[str, tuple[float, float]] = {}
    plan = plans[first.tariff_id]
    for conditions, net in plan.fixed:
        if fixed_conditions_hold(conditions, first.start_s, evse_kind, zone):
            parts["fixed"] = (net, _taxed(net, plan.fixed_taxes))
            break
    return _Sums(parts)


def _price_period(
    parts: dict[str, tuple[float, float]],
    before: _Sums,
    plan: _Plan,
    start_s: float,
    energy_wh: float,
    charging_s: float,
    idle_s: float,
    first_start_s: float,
    evse_kind: str,
    zone: dt.tzinfo,
) -> None:
    """Add to `parts` the prices of a period from epoch `start_s` that used `energy_wh`,
    `charging_s` and `idle_s`, under `plan`: each list's price is the first element that
    holds at the start, after the usage `before` it and at the period's average power."""
    usage: Usage | None = None
    power_w = 0.0
    for prices in plan.lists:
        if prices is None:
            continue
        rate = prices.flat
        if rate is None:
            if usage is None:
                usage = Usage(
                    start_s - first_start_s, before.energy_wh, before.charging_s, before.idle_s
                )
                power_w = energy_wh * 3600.0 / charging_s if charging_s > 0 else 0.0
            index = prices.first_holding(start_s, usage, power_w, evse_kind, zone)
            if index < 0:
                continue
            rate = prices.prices[index]
        component = prices.component
        if component == "energy":
            net = energy_wh / 1000.0 * rate
        elif component == "chargingTime":
            net = charging_s / 60.0 * rate
        else:
            net = idle_s / 60.0 * rate
        gross = _taxed(net, prices.taxes) if prices.taxes else net
        summed = parts.get(component, _NOTHING_YET)
        parts[component] = (summed[0] + net, summed[1] + gross)


def _unrounded(
    plans: Mapping[str, _Plan],
    periods: Sequence[Period],
    evse_kind: str,
    zone: dt.tzinfo,
) -> tuple[dict[str, tuple[float, float]], _Plan]:
    """Per TotalCostType component, (exclTax, inclTax) unrounded; and the last plan."""
    first = periods[0]
    sums = _opening(plans, first, evse_kind, zone)
    plan = plans[first.tariff_id]
    for period in periods:
        plan = plans[period.tariff_id]
        sums.add(plan, period, first.start_s, evse_kind, zone)
    return sums.parts, plan


def price(
    tariffs: Mapping[str, Mapping[str, Any]],
    periods: Sequence[Period],
    evse_kind: str = "AC",
    zone: dt.tzinfo = dt.UTC,
) -> dict[str, Any]:
    """The TotalCostType of `periods`, each priced by the tariff it names in `tariffs` with its
    calendar conditions read in `zone`; the fixed fee is the first period's tariff's,
    minCost/maxCost the last one's."""
    if not periods:
        raise ValueError("a cost needs at least one period")
    plans = {tariff_id: plan_of(tariffs[tariff_id]) for tariff_id in {p.tariff_id for p in periods}}
    parts, last = _unrounded(plans, periods, evse_kind, zone)
    return _total_cost(parts, last)


def _total_cost(parts: Mapping[str, Sequence[float]], last: _Plan) -> dict[str, Any]:
    """The TotalCostType of unrounded `parts`, in the currency and within the minCost/maxCost
    of `last`, the plan of the last period's tariff."""
    total: dict[str, Any] = {"currency": last.currency, "typeOfCost": "NormalCost"}
    excl = incl = 0.0
    for name, (net, gross) in parts.items():
        # Untaxed, gross is net: its cents are the same (rounding is a function of the value).
        rounded_net = _cents(net)
        rounded_gross = rounded_net if gross == net else _cents(gross)
        total[name] = {"exclTax": rounded_net, "inclTax": rounded_gross}
        excl += rounded_net
        incl += rounded_gross
    rounded_excl = _cents(excl)
    incl = rounded_excl if incl == excl else _cents(incl)
    excl = rounded_excl
    for kind, beyond, bound_excl, bound_incl in last.bounds:
        if (excl - bound_excl) * beyond > 0:
            ratio = incl / excl if excl else 1.0
            excl = bound_excl
            incl = bound_incl if bound_incl is not None else _cents(bound_excl * ratio)
            total["typeOfCost"] = kind
    total["total"] = {"exclTax": excl, "inclTax": incl}
    return total


def _raw_total(
    plans: Mapping[str, _Plan],
    periods: Sequence[Period],
    evse_kind: str,
    zone: dt.tzinfo,
) -> float:
    """The unrounded total including tax, within minCost/maxCost."""
    parts, last = _unrounded(plans, periods, evse_kind, zone)
    incl = sum(gross for _, gross in parts.values())
    excl = sum(net for net, _ in parts.values())
    for _, beyond, bound_excl, bound_incl in last.bounds:
        if (excl - bound_excl) * beyond > 0:
            incl = bound_incl if bound_incl is not None else bound_excl
    return incl


def _conditions_of(tariff: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = []
    for component, _ in COMPONENTS:
        part = tariff.get(component)
        if part is not None:
            found += [e["conditions"] for e in part["prices"] if e.get("conditions")]
    return found


def energy_steps_wh(tariff: Mapping[str, Any]) -> list[float]:
    """The energies (Wh from the start) at which an energy condition of `tariff` flips."""
    steps = {
        float(value)
        for conditions in _conditions_of(tariff)
        for name in ("minEnergy", "maxEnergy")
        if (value := conditions.get(name)) is not None
    }
    return sorted(steps)


def _next_minute_of_day_s(after_s: float, minute: int, zone: dt.tzinfo) -> float:
    """The first epoch second after `after_s` at which the wall clock of `zone` shows `minute`
    (minutes after midnight); a day with a summer-time change has 23 or 25 hours."""
    day = _local(after_s, zone).date()
    hour, minute_of_hour = divmod(minute, 60)
    for _ in range(3):
        candidate = dt.datetime(
            day.year, day.month, day.day, hour, minute_of_hour, tzinfo=zone
        ).timestamp()
        if candidate > after_s:
            return candidate
        day += dt.timedelta(days=1)
    return after_s + _DAY_S  # pragma: no cover - a local day always comes within two


def next_boundary_s(
    tariff: Mapping[str, Any],
    after_s: float,
    started_s: float,
    usage: Usage,
    charging: bool,
    zone: dt.tzinfo = dt.UTC,
    conditions_of_tariff: Sequence[Mapping[str, Any]] | None = None,
) -> float:
    """The first epoch second after `after_s` at which a time-bound condition of `tariff` may
    flip: a time of day or midnight (day of week, dates) on `zone`'s wall clock, a duration
    threshold (reached at the present charging or idle state); inf when none.  Energy and
    power are not time-bound.  `conditions_of_tariff`: the tariff's conditions, when the
    caller keeps them."""
    found = math.inf
    if conditions_of_tariff is None:
        conditions_of_tariff = _conditions_of(tariff)
    for conditions in conditions_of_tariff:
        for name in ("startTimeOfDay", "endTimeOfDay"):
            text = conditions.get(name)
            if text is not None:
                found = min(found, _next_minute_of_day_s(after_s, _minute_of_day(text), zone))
        if any(k in conditions for k in ("dayOfWeek", "validFromDate", "validToDate")):
            found = min(found, _next_minute_of_day_s(after_s, 0, zone))
        for name, used_s, runs in (
            ("Time", after_s - started_s, True),
            ("ChargingTime", usage.charging_s, charging),
            ("IdleTime", usage.idle_s, not charging),
        ):
            if not runs:
                continue
            for bound in ("min" + name, "max" + name):
                threshold = conditions.get(bound)
                if threshold is not None and threshold > used_s:
                    found = min(found, after_s + (threshold - used_s))
    return found


def tariff_refusal(tariff: Mapping[str, Any], max_elements: int) -> tuple[str, str] | None:
    """(status, why) when a station cannot take `tariff`: more price elements in a list than
    `max_elements` (TooManyElements) or a condition it does not evaluate
    (ConditionNotSupported); None when it can."""
    for name in ("energy", "chargingTime", "idleTime", "fixedFee"):
        part = tariff.get(name)
        if part is not None and len(part["prices"]) > max_elements:
            return (
                "TooManyElements",
                f"{name} has {len(part['prices'])} prices; at most {max_elements}",
            )
    for conditions in _conditions_of(tariff):
        unknown = sorted(set(conditions) - SUPPORTED_CONDITIONS)
        if unknown:
            return "ConditionNotSupported", f"conditions {', '.join(unknown)} are not supported"
    fixed = tariff.get("fixedFee")
    for element in fixed["prices"] if fixed is not None else ():
        conditions = element.get("conditions") or {}
        for name in ("paymentBrand", "paymentRecognition"):
            if name in conditions:
                return "ConditionNotSupported", f"{name} is not supported: no ad-hoc payment"
    return None


def periods_from_cost_details(details: Mapping[str, Any], epoch_of: Any) -> list[Period]:
    """The periods of a costDetails' chargingPeriods (dimensions Energy, ChargingTime,
    IdleTIme); `epoch_of` turns a timestamp into epoch seconds."""
    periods = []
    for entry in details.get("chargingPeriods", ()):
        volumes = {d["type"]: float(d["volume"]) for d in entry.get("dimensions", ())}
        periods.append(
            Period(
                epoch_of(entry["startPeriod"]),
                entry.get("tariffId", ""),
                volumes.get("Energy", 0.0),
                volumes.get("ChargingTime", 0.0),
                volumes.get("IdleTIme", 0.0),
            )
        )
    return periods


@dataclass(slots=True)
class CostMeter:
    """The usage of one transaction under its tariff(s), advanced at events.

    `advance` closes the span since the last call: energy flowed during it as `charging` said
    at that call (the station advances whenever a TransactionEvent reports a new charging
    state, so the flag holds over each span).  A span is split where an energy step of the
    tariff falls inside it (time shared in proportion); consecutive spans priced alike are
    one period.  Calendar conditions are read in `zone`, the station's time zone.
    """

    tariff: Mapping[str, Any]
    started_s: float
    mark_wh: float
    evse_kind: str = "AC"
    charging: bool = False
    zone: dt.tzinfo = dt.UTC
    mark_s: float = 0.0
    tariffs: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    periods: list[Period] = field(default_factory=list)
    energy_wh: float = 0.0
    charging_s: float = 0.0
    idle_s: float = 0.0
    _key: tuple[str, tuple[int, int, int]] | None = None
    #: The tariff's conditions and energy steps, read once per tariff rather than per event;
    #: for a tariff without conditions, the one price key it has.
    _conditions: list[Mapping[str, Any]] = field(default_factory=list)
    _steps_wh: list[float] = field(default_factory=list)
    _constant_key: tuple[int, int, int] | None = None
    #: Nothing in the tariff depends on time or energy: the price never changes by itself
    #: (`next_change_s` is inf).
    timeless: bool = False
    #: The plans of `tariffs`, by tariff id; `_plan` and `_tariff_id` are the current tariff's.
    _plans: dict[str, _Plan] = field(default_factory=dict)
    _plan: _Plan | None = None
    _tariff_id: str = ""
    _stamps: dict[float, str] = field(default_factory=dict)
    #: The closed periods priced once for `cost_details`; None until it is asked, and again
    #: after a tariff change (a tariff id may then name other prices).
    _closed: _Closed | None = None

    def __post_init__(self) -> None:
        self.mark_s = self.started_s
        self._read_tariff()

    def _read_tariff(self) -> None:
        tariff = self.tariff
        self._tariff_id = tariff["tariffId"]
        self.tariffs[self._tariff_id] = tariff
        plan = self._plan = self._plans[self._tariff_id] = plan_of(tariff)
        self._conditions = _conditions_of(tariff)
        self._steps_wh = energy_steps_wh(tariff)
        self.timeless = not self._conditions and not self._steps_wh
        self._constant_key = None
        if not self._conditions:
            self._constant_key = _plan_key(plan, self.started_s, Usage(), 0.0, "AC", dt.UTC)

    def _price_key(self, at_s: float, power_w: float) -> tuple[int, int, int]:
        if self._constant_key is not None:
            return self._constant_key
        assert self._plan is not None
        return _plan_key(self._plan, at_s, self.usage, power_w, self.evse_kind, self.zone)

    @property
    def usage(self) -> Usage:
        return Usage(self.mark_s - self.started_s, self.energy_wh, self.charging_s, self.idle_s)

    def advance(self, now_s: float, register_wh: float, charging: bool) -> None:
        """Account for the span up to epoch `now_s` (meter at `register_wh`); energy flows from
        now on when `charging`."""
        span_s = now_s - self.mark_s
        used_wh = max(0.0, register_wh - self.mark_wh)
        if span_s > 0 or used_wh > 0 or not self.periods:
            if not self._steps_wh:  # no energy step to split the span at
                self._add(span_s, used_wh)
            else:
                cuts = [
                    step - self.energy_wh
                    for step in self._steps_wh
                    if self.energy_wh < step < self.energy_wh + used_wh
                ]
                done_wh = 0.0
                for cut_wh in [*cuts, used_wh]:
                    part_wh = cut_wh - done_wh
                    share = part_wh / used_wh if used_wh > 0 else 1.0
                    self._add(span_s * share, part_wh)
                    done_wh = cut_wh
        self.mark_wh = register_wh
        self.charging = charging

    def _add(self, span_s: float, energy_wh: float) -> None:
        start_s = self.mark_s
        charging_s = span_s if self.charging else 0.0
        periods = self.periods
        # With one price key for the whole tariff, a period once opened under it goes on.
        if self._constant_key is None or self._key is None or not periods:
            tariff_id = self._tariff_id
            prices_key = self._constant_key
            if prices_key is None:
                power_w = energy_wh * 3600.0 / charging_s if charging_s > 0 else 0.0
                prices_key = self._price_key(start_s, power_w)
            key = (tariff_id, prices_key)
            if self._key is None and periods and periods[-1].tariff_id == tariff_id:
                self._key = key  # the period a tariff change opened
            if key != self._key or not periods:
                periods.append(Period(start_s, tariff_id))
                self._key = key
        period = periods[-1]
        period.energy_wh += energy_wh
        period.charging_s += charging_s
        period.idle_s += span_s - charging_s
        self.energy_wh += energy_wh
        self.charging_s += charging_s
        self.idle_s += span_s - charging_s
        self.mark_s = start_s + span_s

    def change_tariff(self, tariff: Mapping[str, Any]) -> None:
        """Price from the last `advance` on with `tariff` (ChangeTransactionTariff, I11)."""
        self.tariff = tariff
        self._read_tariff()
        # The new tariff's first period starts now, even before it has any usage.
        self.periods.append(Period(self.mark_s, tariff["tariffId"]))
        self._key = None
        self._closed = None

    def total_cost(self) -> dict[str, Any]:
        """TotalCostType of the usage so far."""
        return price(
            self.tariffs,
            self.periods or [Period(self.started_s, self._tariff_id)],
            self.evse_kind,
            self.zone,
        )

    def running_total(self) -> float:
        """The total including tax so far, unrounded (for E16 maxCost)."""
        periods = self.periods or [Period(self.started_s, self._tariff_id)]
        return _raw_total(self._plans, periods, self.evse_kind, self.zone)

    def rate_per_s(self, power_w: float) -> float:
        """What a second costs from now on, including tax, at `power_w` while energy flows."""
        key = self._price_key(self.mark_s, power_w if self.charging else 0.0)
        assert self._plan is not None
        rate = 0.0
        for prices, index in zip(self._plan.lists, key, strict=True):
            if prices is None or index < 0:
                continue
            price_of_element = prices.prices[index]
            component = prices.component
            if component == "energy":
                net = max(0.0, power_w) / 3_600_000.0 * price_of_element if self.charging else 0.0
            elif component == "chargingTime":
                net = price_of_element / 60.0 if self.charging else 0.0
            else:
                net = 0.0 if self.charging else price_of_element / 60.0
            rate += _taxed(net, prices.taxes)
        return rate

    def next_change_s(self, power_w: float) -> float:
        """When the price in force may change next: a time-bound boundary, or the next energy
        step at `power_w`; inf when never."""
        if self.timeless:
            return math.inf  # nothing in the tariff depends on time or energy
        found = next_boundary_s(
            self.tariff,
            self.mark_s,
            self.started_s,
            self.usage,
            self.charging,
            self.zone,
            self._conditions,
        )
        if self.charging and power_w > 0:
            for step in self._steps_wh:
                if step > self.energy_wh:
                    found = min(found, self.mark_s + (step - self.energy_wh) * 3600.0 / power_w)
                    break
        return found

    def _charging_period(
        self,
        start_s: float,
        tariff_id: str,
        energy_wh: float,
        charging_s: float,
        idle_s: float,
        timestamp_of: Any,
    ) -> dict[str, Any]:
        """A ChargingPeriodType of the report; its start is formatted once (each report lists
        every period so far)."""
        text = self._stamps.get(start_s)
        if text is None:
            text = self._stamps[start_s] = timestamp_of(start_s)
        return {
            "startPeriod": text,
            "tariffId": tariff_id,
            "dimensions": [
                {"type": "Energy", "volume": energy_wh},
                {"type": "ChargingTime", "volume": charging_s},
                {"type": "IdleTIme", "volume": idle_s},
            ],
        }

    def cost_details(self, timestamp_of: Any) -> dict[str, Any]:
        """CostDetailsType of the usage so far; `timestamp_of` formats an epoch second.

        Priced from the volumes as reported (rounded to 3 decimals), so whoever prices the
        report again agrees.  A period once closed never changes, so the closed ones are
        priced once (`_closed`) and each report prices only the open one on top: the same
        sums, in the same order, as pricing every period anew."""
        periods = self.periods
        if not periods:  # nothing used yet: one empty period
            lone = [Period(self.started_s, self._tariff_id)]
            entries = [
                self._charging_period(self.started_s, self._tariff_id, 0.0, 0.0, 0.0, timestamp_of)
            ]
            total_cost = price(self.tariffs, lone, self.evse_kind, self.zone)
        else:
            closed = self._closed
            if closed is None:
                closed = self._closed = _Closed(
                    _opening(self._plans, periods[0], self.evse_kind, self.zone), []
                )
            first_start_s = periods[0].start_s
            reported = closed.periods
            sums = closed.sums
            while len(reported) < len(periods) - 1:
                period = _as_reported(periods[len(reported)])
                reported.append(period)
                sums.add(
                    self._plans[period.tariff_id], period, first_start_s, self.evse_kind, self.zone
                )
            entries = (
                [
                    self._charging_period(
                        p.start_s, p.tariff_id, p.energy_wh, p.charging_s, p.idle_s, timestamp_of
                    )
                    for p in reported
                ]
                if reported
                else []
            )
            # The open period is the current tariff's (`_add` and `change_tariff` open
            # periods under it), so its plan is `_plan`.
            assert self._plan is not None
            last = periods[-1]
            start_s = last.start_s
            energy_wh = round(last.energy_wh, 3)
            charging_s = round(last.charging_s, 3)
            idle_s = round(last.idle_s, 3)
            parts = dict(sums.parts)
            _price_period(
                parts,
                sums,
                self._plan,
                start_s,
                energy_wh,
                charging_s,
                idle_s,
                first_start_s,
                self.evse_kind,
                self.zone,
            )
            total_cost = _total_cost(parts, self._plan)
            entries.append(
                self._charging_period(
                    start_s, last.tariff_id, energy_wh, charging_s, idle_s, timestamp_of
                )
            )
        return {
            "chargingPeriods": entries,
            "totalCost": total_cost,
            "totalUsage": {
                "energy": round(self.energy_wh, 3),
                "chargingTime": round(self.mark_s - self.started_s),
                "idleTime": round(self.idle_s),
            },
        }


@dataclass(slots=True)
class _Closed:
    """A meter's closed periods as reported (volumes rounded) and their prices summed."""

    sums: _Sums
    periods: list[Period]


def _as_reported(period: Period) -> Period:
    """`period` with its volumes rounded as a costDetails reports them."""
    return Period(
        period.start_s,
        period.tariff_id,
        round(period.energy_wh, 3),
        round(period.charging_s, 3),
        round(period.idle_s, 3),
    )
