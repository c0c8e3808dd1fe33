"""The three-tier model at run time: a station's EVSEs, their connectors, meters and visits.

An EVSE delivers energy to one EV at a time through one of its connectors.  While an EV is
plugged in, its `EvSession` (ev_models) knows the power and energy as piecewise-linear
functions of simulated time, so the meter registers are computed when read and an idle EVSE
costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..clock import Alarm

if TYPE_CHECKING:
    from fleetsim.ev_models import EvArrival, EvSession

__all__ = [
    "NOMINAL_PHASE_VOLTAGE_V",
    "Connector",
    "EndedMeterValues",
    "Evse",
    "RemoteStart",
    "ReservationHold",
    "Transaction",
    "is_socket_outlet",
]

#: Phase-to-neutral voltage of the simulated supply: what turns amperes into watts and back
#: (charging limits in A, current measurands, an ISO 15118 EV's currents).
NOMINAL_PHASE_VOLTAGE_V = 230.0


@dataclass(slots=True)
class Transaction:
    """One transaction of an EVSE: its id, the IdToken it runs for and its event numbering."""

    id: str
    started_s: float
    seq_no: int = 0
    charging_state: str | None = None
    id_token: dict[str, str] | None = None
    remote_start_id: int | None = None
    #: The connector the transaction's EV used (1 until an EV plugs in).
    connector_id: int = 1
    #: Energy.Active.Import.Register when the transaction started (Wh).
    start_register_wh: float = 0.0
    #: The register reading (Wh) at which the EVSE stops delivering energy to this transaction:
    #: set when the CSMS deauthorized its IdToken and TxCtrlr.StopTxOnInvalidId is false (E05).
    energy_cap_wh: float | None = None
    #: chargingPriority (-9..9) of the IdToken's idTokenInfo in a TransactionEvent answer.
    token_priority: int = 0
    #: TransactionEventResponse.chargingPriority: the CSMS's word for this transaction alone,
    #: which overrules the token's while the transaction runs.
    priority_override: int | None = None

    @property
    def charging_priority(self) -> int:
        """Who charges first when the site is constrained: higher first, 0 by default."""
        override = self.priority_override
        return self.token_priority if override is None else override

    #: The transaction's authorization ended (E06, E10) while TxStopPoint kept it running: the
    #: power path is open and stays open until the transaction ends.
    authorization_ended: bool = False
    #: The limits in force (OCPP 2.1 TransactionLimitType, E16) that the station enforces:
    #: maxEnergy (Wh from the start), maxTime (s from the start), maxSoC (%); None until set.
    limit: dict[str, float] | None = None
    #: The triggerReason of the limit last reported reached (EnergyLimitReached, ...), so it is
    #: reported once; None while no limit is reached.
    limit_reached: str | None = None
    #: (2.1) The V2X operation mode in force, once the station reported one in
    #: transactionInfo.operationMode (Q); None while it never left ChargingOnly.
    operation_mode: str | None = None
    #: The meter values its Ended event will carry besides the last one (TxEndedInterval of
    #: SampledDataCtrlr and AlignedDataCtrlr); None while there are none.
    ended_meter_values: EndedMeterValues | None = None

    def next_seq_no(self) -> int:
        seq_no = self.seq_no
        self.seq_no += 1
        return seq_no


class EndedMeterValues:
    """The samples a transaction keeps for its Ended event, at most `LIMIT` of them.

    Two series feed it: SampledDataCtrlr.TxEndedInterval's, numbered from the start (0 is the
    start itself), and AlignedDataCtrlr.TxEndedInterval's clock-aligned ones, numbered as they
    come.  Once more than `LIMIT` are kept, the stride doubles: samples whose number is not a
    multiple of it go, and only multiples are kept from then on.  A long transaction so keeps
    evenly spaced samples over its whole length, each on its series' grid.
    """

    __slots__ = ("_aligned_taken", "_kept", "_stride")

    #: A 24-hour transaction at 15-minute intervals keeps all its 96 samples.
    LIMIT = 128

    def __init__(self) -> None:
        #: (number in its series, MeterValueType), oldest first.
        self._kept: list[tuple[int, dict[str, Any]]] = []
        self._stride = 1
        self._aligned_taken = 0

    def add(self, meter_value: dict[str, Any], number: int | None = None) -> None:
        """Keep sample `number` of the sampled series, or with None the next clock-aligned
        one, unless the stride leaves it out."""
        if number is None:
            number = self._aligned_taken
            self._aligned_taken += 1
        if number % self._stride:
            return
        self._kept.append((number, meter_value))
        if len(self._kept) > self.LIMIT:
            self._stride *= 2
            self._kept = [kept for kept in self._kept if kept[0] % self._stride == 0]

    def meter_values(self) -> list[dict[str, Any]]:
        """The kept MeterValueTypes in time order."""
        return sorted((kept[1] for kept in self._kept), key=lambda value: value["timestamp"])


def is_socket_outlet(connector_type: str) -> bool:
    """Whether a connector of this ConnectorEnumType is a socket outlet (s309-1P-16A, sType2,
    ...): the driver brings the cable and the station locks it in.  The others (cType2, cCCS2,
    ...) have their cable fixed to the station, so there is no cable of the driver's to lock."""
    return connector_type.startswith("s")


@dataclass(slots=True)
class Connector:
    id: int
    type: str
    operative: bool = True
    #: Availability the CSMS asked for while its EVSE had a transaction (ChangeAvailability
    #: Scheduled), applied when that transaction ends.
    scheduled_operative: bool | None = None
    #: The status the CSMS last heard (StatusNotification / NotifyEvent), None before any.
    reported_status: str | None = None
    #: Whether the plug retention lock of this socket holds the plug in now (block F keeps it:
    #: a captive cable has no such lock and stays False).
    locked: bool = False


@dataclass(frozen=True, slots=True)
class RemoteStart:
    """A RequestStartTransaction waiting for its EVSE's visit task."""

    id_token: str
    id_token_type: str
    remote_start_id: int
    #: The groupIdToken the request named, if any (it may claim a reservation for the group).
    group_id_token: str | None = None
    #: The TxProfile the request carried (K05), for the transaction the remote start begins.
    charging_profile: Mapping[str, Any] | None = None


class ReservationHold(Protocol):
    """A station's reservations as its EVSEs see them (block H).

    Asked when the world looks for a free EVSE and when the station derives a connector's
    status, so it must answer without waiting.  An EVSE points to one only while its station
    holds reservations.
    """

    def holds(self, evse: Evse) -> bool:
        """Whether `evse` is kept for a reservation now (its connectors report Reserved)."""
        ...

    def admits(self, evse: Evse, id_token: str | None, group_id_token: str | None = None) -> bool:
        """Whether a driver with `id_token` (of group `group_id_token`, when known) may take
        `evse`: it is kept for no reservation, or for one of theirs."""
        ...


@dataclass(slots=True)
class Evse:
    id: int
    max_power_w: float
    phases: int
    connectors: list[Connector]
    supply: str = "AC"
    bidirectional: bool = False
    operative: bool = True
    #: Availability the CSMS asked for while a transaction ran (ChangeAvailability Scheduled).
    scheduled_operative: bool | None = None
    #: The EV visit in progress: the driver is here or on the way, plugged in or not.
    visit: EvArrival | None = None
    #: The EV's charging physics while it is plugged in.
    session: EvSession | None = None
    plugged_connector: int | None = None
    transaction: Transaction | None = None
    remote_start: RemoteStart | None = None
    #: The station's reservations while it holds any (block H); None otherwise.
    reservations: ReservationHold | None = field(default=None, repr=False, compare=False)
    #: Meter registers (Wh) from before the current EV; the session adds its own energy.
    import_base_wh: float = 0.0
    export_base_wh: float = 0.0
    #: Energy of the current session already counted in the run's statistics.
    accounted_wh: float = 0.0
    #: The TxProfile id last reported to the CSMS with NotifyEVChargingSchedule.
    reported_schedule_id: int | None = None
    visits: int = 0
    #: The simulated second the visit task sleeps until (inf when not sleeping on time).
    wake_at_s: float = float("inf")
    #: Where the visit task sleeps between events (`ev_driver._wait_until`).
    alarm: Alarm = field(default_factory=Alarm, repr=False, compare=False)
    #: Called after the EVSE's power may have changed, while a variable monitor watches a
    #: value that follows it (block N); None otherwise, so an unwatched EVSE pays one test.
    power_watch: Callable[[Evse], None] | None = field(default=None, repr=False, compare=False)

    def power_may_have_changed(self) -> None:
        """Tell the monitors watching this EVSE, if any, that its power may have changed."""
        watch = self.power_watch
        if watch is not None:
            watch(self)

    @property
    def power_w(self) -> float:
        """Grid-side power now: positive into the EV, negative out of it (V2X)."""
        return self.session.power_w if self.session is not None else 0.0

    def register_wh(self, now_s: float) -> float:
        """Energy.Active.Import.Register at `now_s`."""
        if self.session is None:
            return self.import_base_wh
        return self.import_base_wh + self.session.imported_wh_at(now_s)

    def export_register_wh(self, now_s: float) -> float:
        """Energy.Active.Export.Register at `now_s`."""
        if self.session is None:
            return self.export_base_wh
        return self.export_base_wh + self.session.exported_wh_at(now_s)

    def unaccounted_wh(self, now_s: float) -> float:
        """Energy delivered since it was last counted; counting it moves the mark."""
        if self.session is None:
            return 0.0
        imported_wh = self.session.imported_wh_at(now_s)
        delta_wh = imported_wh - self.accounted_wh
        self.accounted_wh = imported_wh
        return delta_wh

    def is_free(self, id_token: str | None = None) -> bool:
        """No visit, no transaction, nothing waiting, no reservation but the driver's own: a
        new EV whose driver holds `id_token` may take this EVSE."""
        reservations = self.reservations
        return (
            self.operative
            and self.visit is None
            and self.transaction is None
            and self.remote_start is None
            and any(connector.operative for connector in self.connectors)
            and (reservations is None or reservations.admits(self, id_token))
        )

    def connector(self, connector_id: int) -> Connector | None:
        for connector in self.connectors:
            if connector.id == connector_id:
                return connector
        return None

    def wake(self) -> None:
        """Make the EVSE's visit task look at its state again (something changed it)."""
        self.alarm.wake()
