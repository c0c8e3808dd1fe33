"""Ad hoc payment (OCPP 2.1, C17-C25): a payment terminal on the station, and web payments.

**Card at the station's terminal (C17, C18, C20-C22).**  A station whose scenario gives it a
payment terminal (`StationConfig.payment`) lets a share of its arriving drivers pay by card
instead of presenting an IdToken (the station's `pay_ad_hoc` hook, which the EV driver asks
first).  The terminal has the payment service provider hold PaymentCtrlr.AuthorizationAmount on
a credit or debit card, or a prepaid card's balance (C17), and gets back a reference, the
pspRef, which becomes the transaction's IdToken, of type DirectPayment.  With
PaymentCtrlr.AuthorizeDirectPayment the station asks the CSMS about it (Authorize, as for any
token); without it the payment itself authorizes the driver.  The held amount is the
transaction's maximum cost: the station keeps it as the transaction's maxCost limit (E16,
enforced there where tariffs enforce maxCost) and, itself, stops the energy when the running
cost (`StationCore.transaction_cost`, block I) reaches it -- energy flow halts at maxCost (C23
without incremental authorization); with EnergyTransfer among the stop points that ends the
transaction.  When the transaction has ended, the station settles its cost with the provider
and tells the CSMS: NotifySettlement with the pspRef, the transaction, the settled amount (the
transaction's cost) and time, Settled -- or Canceled with amount 0 when no energy was delivered
and nothing cost anything (C20), or Failed for the scenario's `settlement_failure_share` (C22,
without receipt).  A receipt URL goes with a settled payment when PaymentCtrlr.ReceiptServerUrl
is set and the CSMS does not make the receipts (ReceiptByCSMS); with SettlementByCSMS the CSMS
settles with the provider itself and the station sends nothing.

A terminal cannot price a session without a tariff: when `transaction_cost` says no tariff
applies, the terminal refuses the card (counted as `no_tariff` in
`RunStats.payments_by_outcome`) and the driver identifies with their own IdToken instead --
fleetsim invents no price.  A card the provider declines (`decline_share`) leaves the driver
without a transaction.

**Company receipts (VatNumberValidation).**  A share of card payers give a company VAT number
before paying; the station asks the CSMS to validate it, and a settlement of an Accepted number
carries vatNumber and the company (vatCompany) the CSMS named.

**Web payment (C25).**  A driver scans the station's QR code and pays on a web page; the CSMS
tells the station with NotifyWebPaymentStarted that a web payment for an EVSE has begun and
how many seconds it may take.  The station shows the EVSE as awaiting it
(WebPaymentsCtrlr.Active of that EVSE reads true) until a transaction starts there -- the
CSMS's RequestStartTransaction with the payment's DirectPayment IdToken -- or the timeout
passes, after which it expects nothing more (counted `web_timeout`).  An EVSE with a
transaction, or out of service, cannot take the web payer and shows nothing.  The request
names an EVSE the station has, or it is answered with a CALLERROR; the response has no status
to refuse with.

OCPP 2.0.1 has none of this: a 2.0.1 station has no terminal, no PaymentCtrlr and never sends
NotifySettlement or VatNumberValidation.  Left out: C19 (a card payment cancelled before a
transaction: fleetsim's card payers always plug in), C23 (incremental authorization), C24 (a
stand-alone terminal is the CSMS's remote start), blocking local starts during a web payment,
and the card details of the IdToken's additionalInfo.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Awaitable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from ...link import Answer
from ...ocpp import ErrorCode, RpcError
from ..config import StationConfig
from ..core import (
    ActiveLimit,
    AdHocPayment,
    Block,
    StationCore,
    TransactionEnded,
    TransactionStarted,
)
from ..device_model import VariableSpec
from ..evse import Evse, Transaction

if TYPE_CHECKING:
    from fleetsim.ev_models import EvArrival

__all__ = ["BLOCK", "CardPayment", "PaymentState", "web_payment_pending"]

#: Simulated seconds after a card transaction's first look at its cost at which the station
#: looks again, when it cannot yet tell how fast the cost grows.
FIRST_LOOK_S = 60.0
#: A cost this close to the held amount counts as reaching it.
_EPS_COST = 1e-6
#: Cost so small counts as nothing (C20: cancelled, not settled).
_NOTHING_COST = 1e-9
_NO_ENERGY_LIMIT_W = 0.0


@dataclass(slots=True)
class CardPayment:
    """A driver's card payment at one EVSE, from the terminal's approval to the settlement."""

    psp_ref: str
    #: The amount held on the card (or a prepaid card's balance): the transaction's maxCost.
    held: float
    prepaid: bool
    vat_number: str | None = None
    #: The company the CSMS named for an Accepted VAT number (an AddressType).
    vat_company: Mapping[str, Any] | None = None
    #: (simulated second, cost) of the last look at the running cost, to tell when the cost
    #: will reach the held amount.
    looked_s: float | None = None
    looked_cost: float = 0.0
    #: How fast the cost grew between the last two looks (per simulated second).
    rate_per_s: float | None = None
    #: The cost reached the held amount (a prepaid card's balance is spent).
    exhausted: bool = False


@dataclass(slots=True)
class PaymentState:
    """What one station's payment block keeps: card payments by EVSE id, the web payments
    under way by EVSE id (the simulated second each one's timeout passes), and the number of
    the next payment reference."""

    cards: dict[int, CardPayment] = field(default_factory=dict)
    web: dict[int, float] = field(default_factory=dict)
    next_reference: int = 1


def _share(value: str, share: float) -> bool:
    """Whether `value` falls in `share` (0..1): a hash, so a run is reproducible."""
    return share > 0 and zlib.crc32(value.encode()) < share * 2**32


def web_payment_pending(station: StationCore, evse_id: int) -> bool:
    """Whether EVSE `evse_id` awaits the start of a web payment's transaction (C25)."""
    state = station.peek_block_state(BLOCK)
    if state is None:
        return False
    ends_s = state.web.get(evse_id)
    return ends_s is not None and station.clock.sim_now() < ends_s


# -- card payment at the terminal -------------------------------------------------------------


async def _pay_ad_hoc(station: StationCore, evse: Evse, arrival: EvArrival) -> AdHocPayment | None:
    config = station.config.payment
    if config is None or station.config.ocpp_version != "2.1":
        return None
    driver = f"{arrival.id_token}@{arrival.arrival_s:.3f}"
    if not _share(driver, config.card_share):
        return None
    model = station.device_model
    if not model.boolean("PaymentCtrlr", "Enabled"):
        return None  # the terminal is switched off: the driver uses their own IdToken
    probe = Transaction("", station.clock.sim_now())
    if station.transaction_cost(evse, probe) is None:
        station.stats.payment("no_tariff")
        return None  # nothing prices the session: the terminal cannot take a card
    if _share(f"decline:{driver}", config.decline_share):
        station.stats.payment("declined")
        return AdHocPayment(None, False)
    state = station.block_state(BLOCK)
    reference = state.next_reference
    state.next_reference += 1
    prepaid = _share(f"prepaid:{driver}", config.prepaid_share)
    held = float(model.get("PaymentCtrlr", "AuthorizationAmount"))
    if prepaid:
        held = config.prepaid_balance
    payment = CardPayment(f"PSP-{station.id}-{reference:06d}", held, prepaid)
    if _share(f"vat:{driver}", config.vat_number_share):
        await _validate_vat_number(station, evse, payment, reference)
    id_token = {"idToken": payment.psp_ref, "type": "DirectPayment"}
    authorized = True
    if model.boolean("PaymentCtrlr", "AuthorizeDirectPayment"):
        authorized = await station.authorize(id_token)
    if authorized:
        state.cards[evse.id] = payment
    else:
        station.stats.payment("not_authorized")
    return AdHocPayment(id_token, authorized)


def vat_number_of(reference: int) -> str:
    """A company VAT number a driver gives (Dutch format: NL, nine digits, B, two digits)."""
    return f"NL{reference % 1_000_000_000:09d}B01"


async def _validate_vat_number(
    station: StationCore, evse: Evse, payment: CardPayment, reference: int
) -> None:
    """The driver asks for a company receipt: the CSMS validates the VAT number, and the
    settlement carries it, with the company, only when the CSMS accepted it."""
    vat_number = vat_number_of(reference)
    answer = await station.call("VatNumberValidation", {"vatNumber": vat_number, "evseId": evse.id})
    if answer is None or answer.get("status") != "Accepted":
        return
    payment.vat_number = vat_number
    company = answer.get("company")
    if company is not None:
        payment.vat_company = company


def _paid_by_card(station: StationCore, evse: Evse, transaction: Transaction) -> CardPayment | None:
    state = station.peek_block_state(BLOCK)
    if state is None:
        return None
    payment = state.cards.get(evse.id)
    token = transaction.id_token
    if payment is None or token is None or token.get("idToken") != payment.psp_ref:
        return None
    return payment


def _shape_limit(station: StationCore, evse: Evse, limit: ActiveLimit) -> ActiveLimit:
    """Energy stops when a card transaction's cost reaches the held amount; until then the
    limit changes when, at the pace the cost grew since the last look, it will."""
    state = station.peek_block_state(BLOCK)
    if state is None or not state.cards:
        return limit
    transaction = evse.transaction
    if transaction is None:
        return limit
    payment = _paid_by_card(station, evse, transaction)
    if payment is None:
        return limit
    limits = transaction.limit
    if limits is None or limits.get("maxCost") != payment.held:
        transaction.limit = {**(limits or {}), "maxCost": payment.held}
    cost = station.transaction_cost(evse, transaction)
    if cost is None:
        return limit
    now_s = station.clock.sim_now()
    if cost >= payment.held - _EPS_COST:
        if not payment.exhausted:
            payment.exhausted = True
            if payment.prepaid:
                station.stats.payment("prepaid_exhausted")
        return replace(limit, limit_w=_NO_ENERGY_LIMIT_W, setpoint_w=None)
    looked_s = payment.looked_s
    if looked_s is None:
        payment.looked_s, payment.looked_cost = now_s, cost
    elif now_s > looked_s:
        payment.rate_per_s = (cost - payment.looked_cost) / (now_s - looked_s)
        payment.looked_s, payment.looked_cost = now_s, cost
    rate_per_s = payment.rate_per_s
    if rate_per_s is None:
        reach_s = now_s + FIRST_LOOK_S
    elif rate_per_s > 0:
        reach_s = now_s + (payment.held - cost) / rate_per_s
    else:
        reach_s = math.inf  # the cost stands still; a change of power wakes the EVSE anyway
    if reach_s < limit.next_change_s:
        return replace(limit, next_change_s=reach_s)
    return limit


def _settle(station: StationCore, event: TransactionEnded) -> Awaitable[None] | None:
    """A transaction paid by card has ended: settle it (any other costs nothing here)."""
    payment = _paid_by_card(station, event.evse, event.transaction)
    if payment is None:
        return None
    return _settle_card(station, event.evse, event.transaction, payment)


async def _settle_card(
    station: StationCore, evse: Evse, transaction: Transaction, payment: CardPayment
) -> None:
    """Settle the transaction's cost with the provider and tell the CSMS (C20-C22), unless
    the CSMS settles itself (PaymentCtrlr.SettlementByCSMS)."""
    state = station.block_state(BLOCK)
    del state.cards[evse.id]
    model = station.device_model
    cost = station.transaction_cost(evse, transaction) or 0.0
    amount = round(min(cost, payment.held), 2)
    config = station.config.payment
    failure_share = 0.0 if config is None else config.settlement_failure_share
    payload: dict[str, Any] = {
        "transactionId": transaction.id,
        "pspRef": payment.psp_ref,
        "settlementAmount": amount,
        "settlementTime": station.clock.timestamp(),
    }
    if cost <= _NOTHING_COST:
        payload["status"], payload["settlementAmount"] = "Canceled", 0.0
        outcome = "canceled"
    elif _share(f"settle:{payment.psp_ref}", failure_share):
        payload["status"] = "Failed"
        payload["statusInfo"] = "the payment service provider could not be reached"
        outcome = "settlement_failed"
    else:
        payload["status"] = "Settled"
        outcome = "settled"
        server = model.get("PaymentCtrlr", "ReceiptServerUrl")
        if server and not model.boolean("PaymentCtrlr", "ReceiptByCSMS"):
            payload["receiptId"] = payment.psp_ref[-50:]
            payload["receiptUrl"] = f"{server.rstrip('/')}/{payment.psp_ref}"
        if payment.vat_number is not None:
            payload["vatNumber"] = payment.vat_number
            if payment.vat_company is not None:
                payload["vatCompany"] = dict(payment.vat_company)
    station.stats.payment(outcome)
    if model.boolean("PaymentCtrlr", "SettlementByCSMS"):
        return  # the CSMS settles with the provider directly (C21)
    await station.call("NotifySettlement", payload)


# -- web payment (C25) ---------------------------------------------------------------------


def _notify_web_payment_started(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    evse_id = int(payload["evseId"])
    evse = station.evse(evse_id)
    if evse is None:
        raise RpcError(
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
            f"the station has no EVSE {evse_id} for a web payment to start a transaction on",
        )
    timeout_s = max(0, int(payload["timeout"]))
    if evse.transaction is not None or not evse.operative:
        return Answer({})  # the EVSE cannot take the web payer: nothing to wait for
    state = station.block_state(BLOCK)
    ends_s = station.clock.sim_now() + timeout_s
    state.web[evse_id] = ends_s

    async def expire() -> None:
        await trio.sleep(station.clock.trio_duration(timeout_s))
        if state.web.get(evse_id) == ends_s:
            del state.web[evse_id]
            station.stats.payment("web_timeout")

    return Answer({}, then=expire)


def _web_payment_begun(station: StationCore, event: TransactionStarted) -> None:
    """A transaction started at an EVSE awaiting a web payment: the wait is over."""
    state = station.peek_block_state(BLOCK)
    if state is not None and state.web.pop(event.evse.id, None) is not None:
        station.stats.payment("web_started")


# -- device model ----------------------------------------------------------------------------


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    if config.ocpp_version != "2.1":
        return
    for evse_id in range(1, len(config.evses) + 1):
        yield VariableSpec(
            "WebPaymentsCtrlr",
            "Active",
            "boolean",
            "false",
            mutability="ReadOnly",
            evse_id=evse_id,
            reader=partial(_web_payment_shown, evse_id=evse_id),
            supports_monitoring=False,
        )
    payment = config.payment
    if payment is None:
        return
    terminal = "PaymentCtrlr"
    yield VariableSpec(terminal, "Enabled", "boolean", "true")
    yield VariableSpec(terminal, "AuthorizeDirectPayment", "boolean", "true")
    yield VariableSpec(
        terminal, "AuthorizationAmount", "decimal", f"{payment.authorization_amount:g}", min_limit=0
    )
    yield VariableSpec(terminal, "SettlementByCSMS", "boolean", "false")
    yield VariableSpec(terminal, "ReceiptByCSMS", "boolean", "false")
    yield VariableSpec(terminal, "ReceiptServerUrl", "string", "")
    yield VariableSpec(terminal, "Connected", "boolean", "true", mutability="ReadOnly")
    yield VariableSpec(terminal, "Available", "boolean", "true", mutability="ReadOnly")


def _web_payment_shown(station: StationCore, evse_id: int) -> str:
    """WebPaymentsCtrlr.Active of an EVSE, read live."""
    return "true" if web_payment_pending(station, evse_id) else "false"


BLOCK: Block[PaymentState] = Block(
    letter="C",
    name="payment",
    handlers={"NotifyWebPaymentStarted": _notify_web_payment_started},
    variables=_variables,
    reactions={TransactionStarted: _web_payment_begun, TransactionEnded: _settle},
    new_state=PaymentState,
    pay_ad_hoc=_pay_ad_hoc,
    # The shaper acts on a held card payment only: stations without one skip it.
    needs_state=True,
    shape_limit=_shape_limit,
)
