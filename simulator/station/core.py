"""What a functional block sees of a station, and how a block declares itself.

A functional block (B provisioning, C authorization, K smart charging, ...) is one module of
`simulator/station/blocks/` that exports one `Block` value: the CSMS-initiated actions it
answers, what TriggerMessage can make it send, the device-model variables it owns, the
station events it reacts to, its per-station state and, for the few hooks the station's own
life needs (registering with the CSMS, staying online, authorizing a driver, what the local
authorization list says of a token, the charging limit of an EVSE), the function that provides
them.  `registry.Registry` merges the blocks once per process and checks that no action,
trigger, variable or hook is claimed twice.

Blocks are written against `StationCore`, a narrow protocol that `Station` satisfies, never
against `Station` itself, and never against each other: what one block must know of what
another did arrives as an event (`TransactionEnded`, `VariableChanged`, ...), emitted by
whoever made it happen and delivered to every block that declared a reaction to it, in the
registry's order.  Per-block state lives in a station's one state table, created the first
time the block asks, so a station that never receives a charging profile holds none.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ..link import Answer, FollowUp, Link
from .device_model import DeviceModel, VariableKey, VariableSpec
from .evse import Evse, Transaction
from .id_tokens import TokenInfo

if TYPE_CHECKING:
    from fleetsim.ev_models import EvArrival, EvSession
    from fleetsim.grid_models import DerEvent

    from ..clock import SimClock
    from ..stats import RunStats
    from .config import StationConfig
    from .evse import RemoteStart

__all__ = [
    "NO_LIMIT",
    "ActiveLimit",
    "AdHocPayment",
    "AuthorizeAnswered",
    "Block",
    "Booted",
    "ClientIdentity",
    "ChargingPriorityAnswered",
    "ConnectionLost",
    "ConnectorStatusChanged",
    "CostToShow",
    "Event",
    "ExternalLimitChanged",
    "GridEvent",
    "Handler",
    "IdToken",
    "LimitShaper",
    "Reaction",
    "Restarted",
    "ScheduleSelected",
    "SecurityEventOccurred",
    "SiteHooks",
    "StationCore",
    "TransactionEnded",
    "TransactionEventAnswered",
    "TransactionStarted",
    "Trigger",
    "TriggerTarget",
    "TxProfileGiven",
    "VariableChanged",
    "in_parts",
    "refused",
]

#: An OCPP IdTokenType: {"idToken": ..., "type": ...}.
IdToken = dict[str, str]


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """The certificate chain (leaf first) and private key, as PEM, a station presents in the
    TLS handshake under security profile 3; a certificate renewal (A02/A03) replaces it."""

    chain_pem: bytes
    key_pem: bytes = field(repr=False)


# -- what the charging profiles ask of an EVSE ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActiveLimit:
    """What the installed charging profiles ask of one EVSE now (block K's answer)."""

    limit_w: float | None = None
    discharge_limit_w: float | None = None
    setpoint_w: float | None = None
    operation_mode: str = "ChargingOnly"
    #: (frequency Hz, power W) points of a LocalFrequency curve.
    freq_watt_curve: tuple[tuple[float, float], ...] = ()
    #: Simulated second at which the answer may change (a period boundary); inf if never.
    next_change_s: float = math.inf
    profile_id: int | None = None
    #: The schedule of the TxProfile in force: the one an ISO 15118 EV picked (else the first).
    tx_schedule: Mapping[str, Any] | None = None
    #: Every chargingSchedule of that TxProfile (2.1: up to three), among which the EV picks.
    tx_schedules: tuple[Mapping[str, Any], ...] = ()
    #: The chargingSchedulePeriod in force as the CSMS sent it (its V2X fields: setpoints,
    #: curves, baseline), None when no profile of the EVSE's own is in force.
    period: Mapping[str, Any] | None = None


NO_LIMIT = ActiveLimit()


@dataclass(frozen=True, slots=True)
class AdHocPayment:
    """How a driver who pays at the station's payment terminal fared (C17-C18): the
    DirectPayment IdToken (its idToken the payment's pspRef) the transaction runs for, and
    whether it may charge; `id_token` None when the card was declined."""

    id_token: IdToken | None
    authorized: bool


# -- station events -------------------------------------------------------------------------------


class Event:
    """Something that happened to a station; blocks declare reactions by event class."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Booted(Event):
    """The CSMS accepted the station on this connection; new messages may go out.

    `registered` is True when a BootNotification was accepted on this connection (the station
    powered up or rebooted): a CSMS starts its view of the station afresh then, so whatever it
    heard before no longer counts.  After a plain reconnect it is False.
    """

    registered: bool = False


@dataclass(frozen=True, slots=True)
class Restarted(Event):
    """The station is up again after a reboot, before it reconnects.

    While it was down its EVSEs delivered no energy and its EVs waited; `powered_evse_ids`
    names the EVSEs whose power path was closed when it went down.  Blocks restore here what a
    reboot keeps (E17: the transactions a Reset ImmediateAndResume resumes).
    """

    powered_evse_ids: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class ConnectorStatusChanged(Event):
    """Something a connector's status is derived from changed (an EV plugged in or left,
    availability changed, a transaction began or ended)."""


@dataclass(frozen=True, slots=True)
class TransactionStarted(Event):
    evse: Evse
    transaction: Transaction


@dataclass(frozen=True, slots=True)
class TransactionEnded(Event):
    """Emitted after the Ended TransactionEvent was queued or delivered."""

    evse: Evse
    transaction: Transaction
    stopped_reason: str


@dataclass(frozen=True, slots=True)
class TransactionEventAnswered(Event):
    """The CSMS answered a TransactionEvent with something for the station: idTokenInfo about
    the IdToken the event carried (C10, C12, E05), or (2.1) an updatedPersonalMessage (O).

    Emitted only for such answers: every other answer costs its delivery a dictionary lookup
    or two.
    """

    evse: Evse
    transaction_id: str
    #: The IdToken the event carried, which idTokenInfo is about; None when the event carried
    #: none (the answer then matters for its updatedPersonalMessage only).
    id_token: IdToken | None
    response: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChargingPriorityAnswered(Event):
    """The CSMS answered a TransactionEvent with a chargingPriority for the transaction but no
    idTokenInfo (an answer with idTokenInfo is a `TransactionEventAnswered`, which carries the
    whole answer)."""

    evse: Evse
    transaction_id: str
    charging_priority: int


@dataclass(frozen=True, slots=True)
class AuthorizeAnswered(Event):
    """The CSMS answered an Authorize with an idTokenInfo the rest of the station may show: a
    personalMessage for the driver (C01, O), or (2.1) the energy transfer modes it allows (Q01).

    Emitted (and awaited) before the station acts on the answer, and only for answers that
    carry a personalMessage or an allowedEnergyTransfer, so a plain Authorize costs nothing
    more.
    """

    id_token: IdToken
    id_token_info: Mapping[str, Any]
    #: (2.1) The energy transfer modes the CSMS allows this IdToken (Q01), when it named them;
    #: an answer that does is announced even without a personalMessage.
    allowed_energy_transfer: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class CostToShow(Event):
    """The CSMS sent the total cost of a running transaction for its driver to see (CostUpdated,
    I04): block I tells the display (block O) the amount, in `currency`."""

    evse: Evse
    transaction_id: str
    total_cost: float
    currency: str


@dataclass(frozen=True, slots=True)
class TxProfileGiven(Event):
    """The CSMS gave a TxProfile for a transaction outside SetChargingProfile: with the
    RequestStartTransaction that began it (K05, F01.FR.10).  The profile is as the CSMS sent it,
    without a transactionId; the smart charging block installs it for `transaction`."""

    evse: Evse
    transaction: Transaction
    profile: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ScheduleSelected(Event):
    """An ISO 15118 EV picked chargingSchedule `schedule_id` of TxProfile `profile_id` (K15,
    K18), as it reports in NotifyEVChargingSchedule; the smart charging block makes the
    EVSE's limit follow that schedule."""

    evse: Evse
    profile_id: int
    schedule_id: int


@dataclass(frozen=True, slots=True)
class ConnectionLost(Event):
    """The station's connection to the CSMS, on which it was registered, closed: it is
    offline from this simulated second until the next `Booted`.  Posted (not awaited) by the
    station as the connection ends."""


@dataclass(frozen=True, slots=True)
class VariableChanged(Event):
    """The CSMS set a device-model variable (SetVariables accepted it)."""

    key: VariableKey


@dataclass(frozen=True, slots=True)
class SecurityEventOccurred(Event):
    """A security event of the OCPP list happened (FirmwareUpdated, InvalidFirmwareSignature,
    ...); block A reports it in a SecurityEventNotification, queued while the station is
    offline (A04.FR.02).  `timestamp` is when it happened, not when it is sent."""

    kind: str
    timestamp: str
    tech_info: str = ""


@dataclass(frozen=True, slots=True)
class GridEvent(Event):
    """A DER event at the station's grid connection began or, with `ended`, ended."""

    event: DerEvent
    ended: bool


@dataclass(frozen=True, slots=True)
class ExternalLimitChanged(Event):
    """An external system -- the site's energy management (K11-K14) -- set or changed the limit
    on the station's total power to `limit_w`, or with None lifted it."""

    limit_w: float | None
    #: The ChargingLimitSourceEnumType the station reports: EMS, SO or Other.
    source: str = "EMS"
    is_grid_critical: bool = False


# -- the world around the station ---------------------------------------------------------------


class SiteHooks(Protocol):
    """What a station's EVs need from the world around them (simulator/world.py)."""

    def new_session(self, station: StationCore, evse: Evse, arrival: EvArrival) -> EvSession: ...
    def power_changed(self, station: StationCore, evse: Evse, now_s: float) -> None: ...
    def session_ended(
        self, station: StationCore, evse: Evse, arrival: EvArrival, now_s: float
    ) -> None: ...
    def remote_arrival(
        self, station: StationCore, evse: Evse, remote: RemoteStart
    ) -> EvArrival: ...
    def follow_frequency(
        self, station: StationCore, evse: Evse, limit: ActiveLimit, subscribe: bool, now_s: float
    ) -> float | None: ...
    def visit_ended(self, station: StationCore, evse: Evse) -> None: ...
    def grid_frequency_hz(self) -> float:
        """The grid frequency at the site now (the Frequency measurand)."""
        ...

    def grid_excursions(self) -> tuple[DerEvent, ...]:
        """The scripted DER events in effect at the site now (what DER controls act on)."""
        ...

    @property
    def remote_start_plugin_delay_s(self) -> float | None: ...


# -- the station as a block sees it ---------------------------------------------------------------

S = TypeVar("S")
T = TypeVar("T")


class StationCore(Protocol):
    """The part of a station that blocks may use."""

    id: str
    index: int
    config: StationConfig
    clock: SimClock
    stats: RunStats
    device_model: DeviceModel
    evses: list[Evse]
    site: SiteHooks | None
    #: TransactionEvents not yet delivered, oldest first (the offline queue, E11-E14).
    tx_queue: list[dict[str, Any]]
    #: Registration status from the last BootNotification answer (Unknown before any).
    registration: str
    #: False while the whole station is out of service (ChangeAvailability on EVSE 0).
    operative: bool
    #: Why the station boots next: PowerUp, RemoteReset, ...
    boot_reason: str
    #: True once the counter of booted stations has counted this one.
    stats_booted_once: bool
    #: The connectionData of the network profile (B09/B10) the station connects with now;
    #: None for the CSMS the scenario names.
    connection_profile: Mapping[str, Any] | None
    #: The TLS client certificate and key the station connects with (security profile 3);
    #: None: the scenario's, or none.
    client_identity: ClientIdentity | None
    #: The firmware the station runs (BootNotification's firmwareVersion); block L installs
    #: new firmware.
    firmware_version: str
    #: The open link to the CSMS, or None; a block that changes how the station connects (A01,
    #: a new password) closes it so that the station reconnects.
    link: Link | None

    @property
    def online(self) -> bool: ...
    @property
    def down(self) -> bool: ...
    @property
    def running(self) -> bool: ...
    @property
    def synced(self) -> bool: ...
    @property
    def security_profile(self) -> int: ...

    # -- state of the three-tier model
    def evse(self, evse_id: int) -> Evse | None: ...
    def connector_status(self, evse_id: int, connector_id: int) -> str: ...
    def evse_state(self, evse_id: int) -> str: ...
    def availability_state(self) -> str: ...
    def transactions(self) -> list[Evse]: ...

    # -- talking to the CSMS
    async def call(
        self, action: str, payload: Mapping[str, Any], *, before_sync: bool = False
    ) -> Mapping[str, Any] | None: ...
    async def send(self, action: str, payload: Mapping[str, Any]) -> bool: ...
    async def send_transaction_event(self, payload: dict[str, Any]) -> None: ...
    def next_event_id(self) -> int: ...
    def next_transaction_id(self) -> str: ...

    # -- life
    def spawn(self, follow_up: FollowUp) -> bool: ...
    def set_state(self, state: str | None) -> None: ...
    def reboot(self, reason: str) -> None: ...
    async def wait_up(self) -> None: ...
    def boot_wake_event(self) -> Any: ...
    def wake_boot(self) -> bool: ...

    # -- blocks
    async def emit(self, event: Event) -> None: ...
    def post(self, event: Event) -> None: ...
    def block_state(self, block: Block[S]) -> S: ...
    def peek_block_state(self, block: Block[S]) -> S | None: ...
    def trigger(self, requested: str, target: TriggerTarget) -> Answer | None: ...
    async def authorize(self, id_token: IdToken) -> bool: ...
    async def admit(
        self, evse: Evse, id_token: IdToken, group_id_token: str | None = None
    ) -> bool: ...
    def use_reservation(self, evse: Evse, id_token: IdToken) -> int | None: ...
    def local_id_token_info(self, id_token: IdToken) -> TokenInfo | None: ...
    def cached_id_token_info(
        self, id_token: IdToken, *, forget: bool = False
    ) -> TokenInfo | None: ...
    def charging_limit(self, evse: Evse) -> ActiveLimit: ...
    def transaction_cost(self, evse: Evse, transaction: Transaction) -> float | None: ...
    def cost_details(self, evse: Evse, transaction: Transaction) -> dict[str, Any] | None: ...
    def cost_reached_s(self, evse: Evse, transaction: Transaction, max_cost: float) -> float: ...
    async def pay_ad_hoc(self, evse: Evse, arrival: EvArrival) -> AdHocPayment | None: ...
    async def plug_and_charge(self, evse: Evse, arrival: EvArrival) -> IdToken | None: ...
    def charging_profile_refusal(self, profile: Mapping[str, Any]) -> Answer | None: ...
    async def stop_authority(self, transaction: Transaction, id_token: IdToken) -> str | None: ...
    def holds_certificate(self, use: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class TriggerTarget:
    """Where a TriggerMessage points: the EVSEs (all, or the one named) and maybe a connector."""

    evses: list[Evse]
    connector_id: int | None = None
    #: True when the request named an EVSE (not all of them).
    specific: bool = False


#: Answers one CSMS-initiated CALL at once; what follows the answer goes in `Answer.then`.
Handler = Callable[[StationCore, Mapping[str, Any]], Answer]
#: Produces one `requestedMessage` of TriggerMessage: the answer, and the message as `then`.
Trigger = Callable[[StationCore, TriggerTarget], Answer]
#: Reshapes what the charging profiles ask of an EVSE (a DER curve at the present voltage, a
#: V2X signal): takes the limit so far and returns it, or a new one.
LimitShaper = Callable[[StationCore, Evse, ActiveLimit], ActiveLimit]
#: A block's reaction to a station event, called in the registry's order.  A reaction that has
#: nothing to wait for is a plain function returning None; one that must wait (send a message)
#: returns what to await -- an `async def` does so always, a plain function only when it has
#: something to do, so that an event most blocks ignore costs no task and no coroutine.
Reaction = Callable[[StationCore, Any], Awaitable[None] | None]

_NOTHING: Mapping[Any, Any] = MappingProxyType({})


def in_parts(items: Sequence[T], per_message: int) -> list[Sequence[T]]:
    """`items` cut into the parts of a report sent over several messages (`tbc` on all but the
    last); at least one part, empty when there are no items."""
    return [items[i : i + per_message] for i in range(0, len(items), per_message)] or [items[:0]]


def refused(reason_code: str, info: str, status: str = "Rejected") -> Answer:
    """An answer refusing a request: `status` with a statusInfo that says why."""
    return Answer(
        {"status": status, "statusInfo": {"reasonCode": reason_code, "additionalInfo": info}}
    )


def _no_state() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Block(Generic[S]):
    """One functional block, as the registry merges it.

    `variables` lists the device-model variables the block owns (every writable one must be
    read by code that acts on it: `tests/station/test_honest_variables.py`).  A trigger sends
    the message it is named after.  `new_state`
    makes the block's per-station state the first time `StationCore.block_state(block)` asks.
    The hooks (`register`, `online`, `authorize`, `local_id_token_info`,
    `cached_id_token_info`, `admit`, `use_reservation`, `charging_limit`,
    `charging_profile_refusal`, `stop_authority`, `network_profile`, `transaction_cost`,
    `cost_details`, `cost_reached_s`, `pay_ad_hoc`, `plug_and_charge`, `holds_certificate`) may
    each be provided by one block only;
    `shape_limit` by any number of blocks.
    """

    letter: str
    name: str
    handlers: Mapping[str, Handler] = field(default_factory=lambda: _NOTHING)
    #: The messages the station sends after answering an action Accepted, by action (the
    #: per-block contract test waits for each of them).
    follow_ups: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _NOTHING)
    triggers: Mapping[str, Trigger] = field(default_factory=lambda: _NOTHING)
    variables: Callable[[StationConfig], Iterable[VariableSpec]] | None = None
    reactions: Mapping[type[Event], Reaction] = field(default_factory=lambda: _NOTHING)
    new_state: Callable[[], S] = _no_state  # type: ignore[assignment]
    #: Registers the station on a new connection (BootNotification until Accepted).
    register: Callable[[StationCore, Link], Awaitable[None]] | None = None
    #: Runs while the station is online and synced (the heartbeat), until the link closes.
    online: Callable[[StationCore], Awaitable[None]] | None = None
    #: Whether a driver's IdToken may charge now.
    authorize: Callable[[StationCore, IdToken], Awaitable[bool]] | None = None
    #: Whether an EVSE takes the driver who presents an IdToken there (of a group, when the
    #: request named one): False when it is kept for another driver's reservation.
    admit: Callable[[StationCore, Evse, IdToken, str | None], Awaitable[bool]] | None = None
    #: The id of the reservation a transaction that gains an IdToken at an EVSE uses, if any
    #: (its TransactionEvent carries it), or None.
    use_reservation: Callable[[StationCore, Evse, IdToken], int | None] | None = None
    #: What the local authorization list says of an IdToken now: its entry, or None when the
    #: list is off, has no entry for it or the entry has expired.
    local_id_token_info: Callable[[StationCore, IdToken], TokenInfo | None] | None = None
    #: What the authorization cache holds about an IdToken (its entry as stored, expired or
    #: not; None without one), and, with `forget`, removes it (N09, N10: a customer's data).
    cached_id_token_info: Callable[[StationCore, IdToken, bool], TokenInfo | None] | None = None
    #: What the charging profiles ask of an EVSE now.
    charging_limit: Callable[[StationCore, Evse], ActiveLimit] | None = None
    #: Why the station would not install a charging profile whatever it is for (its schedule,
    #: its stack level): the refusal to answer with, or None when it would.
    charging_profile_refusal: Callable[[StationCore, Mapping[str, Any]], Answer | None] | None = (
        None
    )
    #: Whether a driver presenting an IdToken may stop a transaction (E07, C09, C16): the
    #: stoppedReason it ends with ("Local" for the transaction's own token or one of its
    #: group, "MasterPass" for a master pass), or None when the token may not stop it.
    stop_authority: Callable[[StationCore, Transaction, IdToken], Awaitable[str | None]] | None = (
        None
    )
    #: The network profile to connect with after that many failed attempts in a row (B10):
    #: its connectionData, or None for the CSMS the scenario names.
    network_profile: Callable[[StationCore, int], Mapping[str, Any] | None] | None = None
    #: The running cost of a transaction now, in the tariff's currency (block I); None when
    #: no tariff applies to it.
    transaction_cost: Callable[[StationCore, Evse, Transaction], float | None] | None = None
    #: The costDetails of a TransactionEvent of a transaction (OCPP 2.1, block I): its
    #: running cost so far; None when no tariff applies to it.
    cost_details: Callable[[StationCore, Evse, Transaction], dict[str, Any] | None] | None = None
    #: The simulated second at which a transaction's running cost reaches a maxCost limit at
    #: the present power and prices (E16, block I); inf when it never will or has no tariff.
    cost_reached_s: Callable[[StationCore, Evse, Transaction, float], float] | None = None
    #: A driver arriving at an EVSE who may pay at the station's payment terminal instead of
    #: presenting an IdToken (C17-C18): how the payment went, or None when the driver does
    #: not pay this way (no terminal, or they carry their own IdToken).
    pay_ad_hoc: Callable[[StationCore, Evse, EvArrival], Awaitable[AdHocPayment | None]] | None = (
        None
    )
    #: A Plug & Charge EV's contract certificate, got, checked and authorized (C07, M): the
    #: eMAID IdToken its transaction runs for, or None when it may not charge.
    plug_and_charge: Callable[[StationCore, Evse, EvArrival], Awaitable[IdToken | None]] | None = (
        None
    )
    #: Whether the station's certificate store holds a certificate of a use
    #: (CSMSRootCertificate, ChargingStationCertificate) that is valid now (block M): what a
    #: higher security profile needs before the station accepts it (A05).
    holds_certificate: Callable[[StationCore, str], bool] | None = None
    #: Applied after `charging_limit`, by every block that has one, in the registry's order:
    #: what the block's own state (DER controls, V2X signals) makes of the profiles' limit.
    #: Not a hook: several blocks may shape the limit.
    shape_limit: LimitShaper | None = None
    #: True when this block's `charging_limit`, cost hooks (`transaction_cost`,
    #: `cost_details`, `cost_reached_s`) and `shape_limit` have nothing to do on a station
    #: where the block has made no state (no profile, tariff or DER control): the station then
    #: skips them without a call.  They run on every wake of an EV and every transaction
    #: event, so a fleet that does not use a block pays nothing for it.
    needs_state: bool = False

    @property
    def hooks(self) -> dict[str, Any]:
        """The hooks this block provides, by name."""
        found = {
            "register": self.register,
            "online": self.online,
            "authorize": self.authorize,
            "admit": self.admit,
            "use_reservation": self.use_reservation,
            "local_id_token_info": self.local_id_token_info,
            "cached_id_token_info": self.cached_id_token_info,
            "charging_limit": self.charging_limit,
            "charging_profile_refusal": self.charging_profile_refusal,
            "stop_authority": self.stop_authority,
            "network_profile": self.network_profile,
            "transaction_cost": self.transaction_cost,
            "cost_details": self.cost_details,
            "cost_reached_s": self.cost_reached_s,
            "pay_ad_hoc": self.pay_ad_hoc,
            "plug_and_charge": self.plug_and_charge,
            "holds_certificate": self.holds_certificate,
        }
        return {name: hook for name, hook in found.items() if hook is not None}
