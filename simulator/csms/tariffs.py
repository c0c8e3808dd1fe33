"""The embedded CSMS's default tariff (OCPP 2.1, I07) and its check of the stations' costs.

With `embedded_csms.default_tariff` the CSMS sends the tariff to every OCPP 2.1 station after
its Accepted boot (SetDefaultTariff, evseId 0), so every transaction of the run is metered and
reports its running cost.  When a transaction's Ended event carries costDetails, the CSMS
prices the reported chargingPeriods again with the same arithmetic (`simulator.tariffs`) and the
tariffs it knows, and counts whether the totals agree (`CsmsStatistics.pushes`:
`cost_agreed`, `cost_disagreed`; a period under a tariff it did not send is `cost_unchecked`).
It reads the tariff's times of day and dates on the stations' wall clock, as they do
(`time_zone`, the scenario's `stations.time_zone`), so a tariff with an evening price agrees.
A 2.0.1 station has no tariffs and is sent nothing.  Nothing here raises into a connection.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..tariffs import periods_from_cost_details, price, station_zone
from .reactions import ON_ENDED, Selective
from .smart_charging import Reaction

if TYPE_CHECKING:
    from .csms import Csms

__all__ = ["DEFAULT_TARIFF_ID", "agrees", "default_tariff", "tariff_reactions"]

_log = logging.getLogger(__name__)
DEFAULT_TARIFF_ID = "fleetsim-default"
#: Totals this close (currency units) agree: each side rounds to cents.
_AGREE = 0.005


def default_tariff(
    *, currency: str, price_kwh: float, price_minute: float, idle_price_minute: float, fixed: float
) -> dict[str, Any]:
    """A TariffType with the prices given (those at 0 left out)."""
    tariff: dict[str, Any] = {"tariffId": DEFAULT_TARIFF_ID, "currency": currency}
    if price_kwh > 0:
        tariff["energy"] = {"prices": [{"priceKwh": price_kwh}]}
    if price_minute > 0:
        tariff["chargingTime"] = {"prices": [{"priceMinute": price_minute}]}
    if idle_price_minute > 0:
        tariff["idleTime"] = {"prices": [{"priceMinute": idle_price_minute}]}
    if fixed > 0:
        tariff["fixedFee"] = {"prices": [{"priceFixed": fixed}]}
    return tariff


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def agrees(
    tariffs: Mapping[str, Mapping[str, Any]],
    details: Mapping[str, Any],
    zone: dt.tzinfo = dt.UTC,
) -> bool | None:
    """Whether costDetails' total is what its periods cost under `tariffs`, their calendar
    conditions read in the station's time zone `zone`; None when a period is under a tariff
    not among them."""
    periods = periods_from_cost_details(details, _epoch)
    if not periods or any(p.tariff_id not in tariffs for p in periods):
        return None
    own = price(tariffs, periods, zone=zone)["total"]
    reported = details["totalCost"]["total"]
    return all(abs(float(reported.get(key, own[key])) - own[key]) <= _AGREE for key in ("exclTax",))


def tariff_reactions(
    tariff: Mapping[str, Any] | None, *, time_zone: str = "UTC"
) -> dict[str, Reaction]:
    """Reactions for `CsmsConfig.reactions`: set `tariff` after each boot of a 2.1 station and
    check the final cost of each Ended event, on the wall clock of `time_zone` (the stations'
    IANA zone); none without a tariff."""
    if tariff is None:
        return {}
    known = {tariff["tariffId"]: tariff}
    zone = station_zone(time_zone)

    async def set_after_boot(
        csms: Csms, station_id: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        if response.get("status") != "Accepted" or csms.station(station_id).version != "2.1":
            return
        try:
            answer = await csms.call_quietly(
                station_id, "SetDefaultTariff", {"evseId": 0, "tariff": dict(tariff)}
            )
        except Exception as exc:
            answer = None
            _log.warning("embedded CSMS: setting the tariff on %s failed: %r", station_id, exc)
        accepted = answer is not None and answer.get("status") == "Accepted"
        csms.count_push("default_tariff_set" if accepted else "default_tariff_failed")

    async def check_final_cost(
        csms: Csms, station_id: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        details = request.get("costDetails")
        if request.get("eventType") != "Ended" or details is None:
            return
        try:
            verdict = agrees(known, details, zone)
        except (KeyError, TypeError, ValueError) as exc:
            verdict = False
            _log.warning("embedded CSMS: unreadable costDetails from %s: %r", station_id, exc)
        outcome = {True: "cost_agreed", False: "cost_disagreed", None: "cost_unchecked"}[verdict]
        csms.count_push(outcome)

    return {
        "BootNotification": set_after_boot,
        "TransactionEvent": Selective(ON_ENDED, check_final_cost),
    }
