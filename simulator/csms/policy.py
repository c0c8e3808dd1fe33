"""What the embedded CSMS decides, as data: boot answers, accepted tokens, vendors, passwords.

Everything a test or the CLI may want to vary is a field of `CsmsConfig`, so one CSMS serves the
quickstart (accept everything), a station test that needs a Pending boot (B02) or a Rejected one
(B03), and a load run that must not keep every message in memory.  Anything the fields cannot
express goes in `CsmsConfig.response_overrides`: a function that builds (or refuses, by raising
`RpcError`) the answer to one action.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "AcceptAfter",
    "AlwaysAnswer",
    "BootDecision",
    "BootPolicy",
    "BootStatus",
    "CsmsConfig",
    "DynamicValues",
    "ResponseOverride",
    "Timer",
]

BootStatus = Literal["Accepted", "Pending", "Rejected"]
_BOOT_STATUSES = ("Accepted", "Pending", "Rejected")

#: Builds the response payload to one action from (station id, request payload); raise
#: `RpcError` to answer with a CALLERROR instead.
ResponseOverride = Callable[[str, Mapping[str, Any]], Mapping[str, Any]]
#: One of the CSMS's own clocks (a web payment round, a dynamic schedule update, AFRR
#: signals): runs for as long as the CSMS does, from its first station's connection on.  It is
#: given the `Csms` (typed Any, as `reactions` are: this module comes before csms.py).
Timer = Callable[[Any], Awaitable[None]]
#: The values (a ChargingScheduleUpdateType) a rule gives a Dynamic profile at a Unix time.
DynamicValues = Callable[[float], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class BootDecision:
    """The CSMS's answer to one BootNotification.

    `retry_interval_s` is what the `interval` field carries when the status is not Accepted: the
    minimum wait before the station boots again (B02, B03).  An Accepted boot carries the
    heartbeat interval instead, which is the CSMS's setting, not the policy's.
    """

    status: BootStatus
    retry_interval_s: int = 10

    def __post_init__(self) -> None:
        if self.status not in _BOOT_STATUSES:
            raise ValueError(f"status must be one of {_BOOT_STATUSES}, got {self.status!r}")
        if self.retry_interval_s < 0:
            raise ValueError(f"retry_interval_s must be >= 0, got {self.retry_interval_s}")


class BootPolicy(Protocol):
    """Decides a BootNotification; `boot_number` counts this station's boots from 1."""

    def __call__(self, station_id: str, boot_number: int) -> BootDecision: ...


@dataclass(frozen=True, slots=True)
class AlwaysAnswer:
    """Give every boot of every station the same answer (default: Accepted)."""

    status: BootStatus = "Accepted"
    retry_interval_s: int = 10

    def __call__(self, station_id: str, boot_number: int) -> BootDecision:
        return BootDecision(self.status, self.retry_interval_s)


@dataclass(frozen=True, slots=True)
class AcceptAfter:
    """Answer `status` to each station's first `boots` BootNotifications, Accepted afterwards.

    `AcceptAfter(2)` makes every station go through two Pending boots before it is accepted,
    which is what a station test of B02 needs; `AcceptAfter(1, status="Rejected")` covers B03.
    """

    boots: int
    status: Literal["Pending", "Rejected"] = "Pending"
    retry_interval_s: int = 10

    def __post_init__(self) -> None:
        if self.boots < 0:
            raise ValueError(f"boots must be >= 0, got {self.boots}")

    def __call__(self, station_id: str, boot_number: int) -> BootDecision:
        if boot_number <= self.boots:
            return BootDecision(self.status, self.retry_interval_s)
        return BootDecision("Accepted")


@dataclass(frozen=True, slots=True)
class CsmsConfig:
    """How the embedded CSMS answers and what it records; every field has a working default."""

    #: The `interval` of an Accepted BootNotification: seconds between Heartbeats.
    heartbeat_interval_s: int = 300
    boot_policy: BootPolicy = field(default_factory=AlwaysAnswer)
    #: idTokens answered Accepted (compared case-insensitively, as OCPP 2.1 says idTokens are);
    #: others get Unknown.  None accepts every token.
    accepted_id_tokens: Collection[str] | None = None
    #: Share (0 to 1) of transactions whose IdToken the CSMS answers Invalid in
    #: TransactionEvent, as a back office that blocked the card would (E05).  Which ones is
    #: decided by the transaction id, so a run is reproducible.
    deauthorize_share: float = 0.0
    #: Share (0 to 1) of accepted IdTokens whose idTokenInfo carries `charging_priority`, in
    #: Authorize and TransactionEvent answers.  Which ones is decided by the idToken, so a
    #: driver keeps their rank over a run and between runs.
    priority_share: float = 0.0
    #: The chargingPriority (-9..9, higher charges first) those tokens get.
    charging_priority: int = 5
    #: DataTransfer vendorIds answered Accepted; any other gets UnknownVendorId.
    data_transfer_vendor_ids: Collection[str] = ()
    #: HTTP Basic auth (security profile 1/2): one password for every station, a password per
    #: station id (a station not in the mapping is refused), or None to ask for none.
    basic_auth_passwords: str | Mapping[str, str] | None = field(default=None, repr=False)
    #: Keep each station's received messages for tests to read; a load run turns this off.
    record_messages: bool = True
    #: The most recent messages kept per station when `record_messages` is on.
    max_messages_per_station: int = 10_000
    #: Transactions remembered per station; the oldest ended ones are forgotten first.
    max_transactions_per_station: int = 1_000
    #: How long `Csms.call` waits for a station's answer, in trio seconds.
    call_timeout_s: float = 30.0
    #: Check the CSMS's own payloads against the schema before sending them.  An override that
    #: builds an invalid answer then reaches the station as an InternalError, not as bad data.
    validate_outgoing: bool = True
    #: Answers to use instead of the built-in ones, by action.
    response_overrides: Mapping[str, ResponseOverride] = field(default_factory=dict)
    #: What the CSMS does after answering an action, by action (see smart_charging.py).
    reactions: Mapping[str, Any] = field(default_factory=dict)
    #: The CSMS sends a V2X TxProfile for a bidirectional EV's charging needs (a reaction of
    #: smart_charging.py), so it answers such needs Accepted -- a profile will come -- while
    #: their EVSE has a transaction running for the profile to belong to.
    steers_bidirectional_evs: bool = False
    #: The CSMS's own timers (`Timer`), one per feature that needs one; none costs nothing.
    timers: tuple[Timer, ...] = ()
    #: Simulated seconds per trio second of the clock the CSMS is given: a run's `speed`, 1
    #: for wall time.  The timers sleep in trio time, so they divide by it.
    clock_speed: float = 1.0
    #: The Unix time at which simulated second 0 of the run falls: timers that act at a
    #: second of the run (AFRR signals) count from it.  None counts from the moment the first
    #: station connects.
    run_start_epoch_s: float | None = None
    #: Dynamic profiles whose values follow a rule, by profile id: a PullDynamicScheduleUpdate
    #: of one that the CSMS set on the station is answered with the rule's values at that
    #: moment (K28), not with the values last sent.
    dynamic_values: Mapping[int, DynamicValues] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.heartbeat_interval_s, bool) or not isinstance(
            self.heartbeat_interval_s, int
        ):
            raise TypeError(
                f"heartbeat_interval_s must be a whole number of seconds (OCPP sends an "
                f"integer), got {self.heartbeat_interval_s!r}"
            )
        if self.heartbeat_interval_s < 0:
            raise ValueError(f"heartbeat_interval_s must be >= 0, got {self.heartbeat_interval_s}")
        if not 0.0 <= self.deauthorize_share <= 1.0:
            raise ValueError(f"deauthorize_share must be in [0, 1], got {self.deauthorize_share}")
        if not 0.0 <= self.priority_share <= 1.0:
            raise ValueError(f"priority_share must be in [0, 1], got {self.priority_share}")
        if not -9 <= self.charging_priority <= 9:
            raise ValueError(f"charging_priority must be in -9..9, got {self.charging_priority}")
        if self.max_messages_per_station < 0:
            raise ValueError(
                f"max_messages_per_station must be >= 0, got {self.max_messages_per_station}"
            )
        if self.max_transactions_per_station < 1:
            raise ValueError(
                "max_transactions_per_station must be >= 1, "
                f"got {self.max_transactions_per_station}"
            )
        if not self.clock_speed > 0:
            raise ValueError(f"clock_speed must be > 0, got {self.clock_speed}")
        if not self.call_timeout_s > 0:
            raise ValueError(f"call_timeout_s must be > 0, got {self.call_timeout_s}")
        if isinstance(self.accepted_id_tokens, str):
            raise TypeError(
                "accepted_id_tokens must be a collection of tokens, not one string; "
                f"write [{self.accepted_id_tokens!r}]"
            )
        if isinstance(self.data_transfer_vendor_ids, str):
            raise TypeError(
                "data_transfer_vendor_ids must be a collection of vendor ids, not one string; "
                f"write [{self.data_transfer_vendor_ids!r}]"
            )
