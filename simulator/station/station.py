"""`Station`: one virtual charging station, its state and its life on and off the network.

A station lives through connections: it connects, boots (BootNotification until Accepted),
reports its connectors, delivers the transaction events it queued while offline, then beats
its heart until the connection drops or a Reset reboots it, and starts over with the back-off
of OCPPCommCtrlr's RetryBackOff variables.  Its EVSEs go on meanwhile: EVs arrive and charge
whether or not the CSMS is reachable, exactly as on a real site.  Only a reboot stops them:
for `config.reboot_s` the station is down, its EVSEs deliver no energy and its EVs wait (they
stay plugged in); then the blocks restore what a reboot keeps (`Restarted`), the EVs go on,
and the station connects and boots again.

What the station does in OCPP terms is up to its functional blocks (`blocks/`, merged by
`registry`): `Station.handle` dispatches each CSMS-initiated action to the block that claims
it (NotImplemented when none does), `emit` delivers station events to the blocks that react to
them, and the hooks of the station's own life -- registering on a new connection, staying
online, authorizing a driver, the charging limit of an EVSE -- are whatever block provides
them.  Blocks see the station only through `core.StationCore`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from ..clock import SimClock
from ..link import Answer, ConnectError, FollowUp, Link
from ..ocpp import CallErrorReceived, CallTimeout, ErrorCode, LinkClosed, RpcError
from .config import StationConfig
from .core import (
    NO_LIMIT,
    ActiveLimit,
    AdHocPayment,
    Block,
    Booted,
    ClientIdentity,
    ConnectionLost,
    Event,
    IdToken,
    Restarted,
    SiteHooks,
    TriggerTarget,
    VariableChanged,
)
from .device_model import DeviceModel, VariableKey
from .evse import Connector, Evse, Transaction
from .id_tokens import TokenInfo
from .registry import station_spec
from .transaction import deliver_transaction_event

if TYPE_CHECKING:
    from fleetsim.ev_models import EvArrival

    from ..stats import RunStats

__all__ = ["Connect", "Station"]

#: Opens a station's link: a WebSocket (`transport.open_station_link`) or a memory pair.
Connect = Callable[["Station"], AbstractAsyncContextManager[Link]]

S = TypeVar("S")


class Station:
    """One station; `await station.run(connect)` runs it until cancelled."""

    __slots__ = (
        "_backoff",
        "_block_states",
        "_boot_wake",
        "_draining",
        "_event_ids",
        "_last_error",
        "_nursery",
        "_reconnect_at_once",
        "_spec",
        "_synced_event",
        "_transaction_ids",
        "_up",
        "boot_reason",
        "client_identity",
        "clock",
        "config",
        "connection_profile",
        "device_model",
        "evses",
        "firmware_version",
        "id",
        "index",
        "link",
        "operative",
        "registration",
        "site",
        "state",
        "stats",
        "stats_booted_once",
        "synced",
        "tx_queue",
    )

    def __init__(
        self,
        station_id: str,
        index: int,
        config: StationConfig,
        clock: SimClock,
        stats: RunStats,
        site: SiteHooks | None = None,
    ) -> None:
        self.id = station_id
        self.index = index
        self.config = config
        self.clock = clock
        self.stats = stats
        #: The world around the station: its site, EV arrivals and the grid (world.py).
        self.site = site
        self._spec = shared = station_spec(config)
        self.device_model = DeviceModel(shared.device_model, owner=self, on_change=self._changed)
        self.evses = [
            Evse(
                evse_id,
                spec.max_power_w,
                spec.phases,
                [Connector(i, kind) for i, kind in enumerate(spec.connector_types, start=1)],
                supply=spec.supply,
                bidirectional=spec.bidirectional,
            )
            for evse_id, spec in enumerate(config.evses, start=1)
        ]
        self.operative = True
        #: Each block's per-station state, by block name; None until a block first asks.
        self._block_states: dict[str, Any] | None = None
        self.registration = "Unknown"
        self.boot_reason = "PowerUp"
        self.firmware_version = config.firmware_version
        self.state: str | None = None
        self.link: Link | None = None
        #: The network profile the station connects with (B10); None: the scenario's CSMS.
        self.connection_profile: Mapping[str, Any] | None = None
        #: The TLS client identity a certificate renewal gave the station; None: the scenario's.
        self.client_identity: ClientIdentity | None = None
        #: True once, on this connection, the station is Accepted, has reported its connectors
        #: and sent what it queued; only then do new messages go straight out.
        self.synced = False
        #: TransactionEvents not yet delivered, oldest first (a list: empty almost always, and
        #: an empty list costs a tenth of an empty deque, for every station of the fleet).
        self.tx_queue: list[dict[str, Any]] = []
        self.stats_booted_once = False
        self._draining = False
        #: Set while the station is down (rebooting): the event that it is up again.
        self._up: trio.Event | None = None
        #: The wait before reconnecting, which a reboot cuts short.
        self._backoff: trio.CancelScope | None = None
        #: Set by `drop_connection(reconnect_at_once=True)`: skip the next back-off wait.
        self._reconnect_at_once = False
        self._nursery: trio.Nursery | None = None
        self._boot_wake: trio.Event | None = None
        self._transaction_ids = 0
        self._event_ids = 0
        self._last_error: str | None = None
        self._synced_event: trio.Event | None = None

    def __repr__(self) -> str:
        return f"<Station {self.id} {self.state} {self.registration}>"

    @property
    def online(self) -> bool:
        """Whether a message sent now reaches the CSMS: synced, and the link still open."""
        link = self.link
        return self.synced and link is not None and not link.closed

    @property
    def down(self) -> bool:
        """Whether the station is down (rebooting) now: what an EV's task tests on every wake
        before it waits with `wait_up`, a test instead of a coroutine while the station is up."""
        return self._up is not None

    @property
    def running(self) -> bool:
        """Whether `run` has started (EVs can only arrive at a running station)."""
        return self._nursery is not None

    @property
    def security_profile(self) -> int:
        """The OCPP security profile of the connection the station opens (SecurityCtrlr)."""
        return self.config.security_profile

    @property
    def last_error(self) -> str | None:
        """Why the last connection attempt failed, in words a user can act on."""
        return self._last_error

    # -- running --------------------------------------------------------------------------

    async def run(
        self, connect: Connect, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the station: its EVSEs and its connection, until cancelled."""
        self.set_state("disconnected")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await self._keep_connected(connect)
        finally:
            self._nursery = None
            self.set_state(None)

    def spawn(self, follow_up: FollowUp) -> bool:
        """Start `follow_up` in the station's nursery (what follows an answer, an EV visit).

        Returns False, starting nothing, when the station is not running or is shutting down:
        whatever was to happen next no longer can.
        """
        if self._nursery is None:
            return False
        try:
            self._nursery.start_soon(follow_up)
        except RuntimeError:  # the nursery is closing: the station is being stopped
            return False
        return True

    def set_state(self, state: str | None) -> None:
        """Move to a connection/registration state (the `fleetsim_stations` gauge's label)."""
        if state != self.state:
            self.stats.station_state_changed(self.state, state)
            self.state = state

    async def _keep_connected(self, connect: Connect) -> None:
        failures = 0
        choose_profile = self._spec.registry.hooks.get("network_profile")
        while True:
            await self.wait_up()
            if choose_profile is not None:
                self.connection_profile = choose_profile(self, failures)
            self.set_state("connecting")
            try:
                async with connect(self) as link:
                    self.stats.connection_attempt("ok")
                    failures = 0
                    self._last_error = None
                    await self._online(link)
            except ConnectError as exc:
                self.stats.connection_attempt(exc.outcome)
                self._last_error = str(exc)
                failures += 1
            finally:
                was_online = self.synced
                self.link = None
                self.synced = False
                self.set_state("disconnected")
                if was_online:
                    self.post(ConnectionLost())
            if self._up is not None:
                continue  # rebooting: connect as soon as the station is up, without back-off
            if self._reconnect_at_once:
                self._reconnect_at_once = False
                continue  # a reconnect storm (faults on purpose): no back-off either
            with trio.CancelScope() as self._backoff:
                await self.clock.sleep(self._backoff_s(failures))
            self._backoff = None

    def _backoff_s(self, failures: int) -> float:
        """RetryBackOff: the minimum wait doubled per failure up to RepeatTimes, plus jitter.

        The jitter keeps a fleet from reconnecting in lockstep after a CSMS outage; it is drawn
        from (station, failure) so a run is reproducible.
        """
        dm = self.device_model
        minimum_s = dm.integer("OCPPCommCtrlr", "RetryBackOffWaitMinimum")
        range_s = dm.integer("OCPPCommCtrlr", "RetryBackOffRandomRange")
        repeat = dm.integer("OCPPCommCtrlr", "RetryBackOffRepeatTimes")
        doublings = min(max(failures - 1, 0), repeat)
        jitter = random.Random(f"{self.id}/{failures}").uniform(0, range_s)
        return float(minimum_s * 2**doublings + jitter)

    async def _online(self, link: Link) -> None:
        """Boot, report and heartbeat on `link` until it closes.

        The link's closing cancels this work through `on_closed`, rather than through a
        watcher task, to keep an idle station at as few tasks as possible.
        """
        self.link = link
        with trio.CancelScope() as scope:
            link.on_closed = scope.cancel
            if link.closed or self._up is not None:
                return  # closed at once, or opened while the station went down
            await self._operate(link)

    async def _operate(self, link: Link) -> None:
        hooks = self._spec.registry.hooks
        try:
            # The same signal `register` follows: only a station not yet Accepted (powered up,
            # rebooted, Pending or Rejected) sends a BootNotification on this connection.
            registered = self.registration != "Accepted"
            register = hooks.get("register")
            if register is not None:
                await register(self, link)
            self.synced = True
            if self._synced_event is not None:
                self._synced_event.set()
                self._synced_event = None
            await self.emit(Booted(registered))
            await self.drain_transaction_events()
            online = hooks.get("online")
            if online is not None:
                await online(self)
            else:
                await link.wait_closed()
        except LinkClosed:
            pass

    async def wait_synced(self) -> None:
        """Wait until the station is Accepted and has started reporting on this connection."""
        while not self.synced:
            if self._synced_event is None:
                self._synced_event = trio.Event()
            await self._synced_event.wait()

    def reboot(self, reason: str, *, down_s: float = 0.0) -> None:
        """Go down now and come up again after `down_s` plus `config.reboot_s` (B11-B13, E17);
        `down_s` is how long the power stays off in a power cut (faults on purpose).

        Down, the station has no connection and its EVSEs deliver no energy; its EVs stay
        plugged in and wait (`wait_up`).  Up again, it lets the blocks restore what a reboot
        keeps (`Restarted`), then the EVs go on and the station connects and boots, with
        `reason` in its BootNotification.
        """
        self.boot_reason = reason
        if self._up is not None:
            return  # already going down
        self._up = trio.Event()
        powered = self._stop_power()
        if self.link is not None:
            self.spawn(self.link.aclose)
        elif self._backoff is not None:
            self._backoff.cancel()
        self.spawn(partial(self._restart, powered, down_s))

    def drop_connection(self, *, reconnect_at_once: bool = False) -> bool:
        """Close the connection now, as a network failure would (faults on purpose); the
        station reconnects after its RetryBackOff wait, or with `reconnect_at_once` without
        it (a reconnect storm: a station waiting to reconnect then tries at once too).
        Returns whether there was a connection to close."""
        link = self.link
        if link is None or link.closed:
            if reconnect_at_once and self._backoff is not None:
                self._backoff.cancel()
            return False
        self._reconnect_at_once = reconnect_at_once
        # Without a closing handshake where the link can (a WebSocket's TCP connection just
        # ends, as in a network failure); otherwise as the station closes it.
        self.spawn(getattr(link, "abort", link.aclose))
        return True

    def _stop_power(self) -> frozenset[int]:
        """Open every EVSE's power path; the ids of those that were delivering energy."""
        now_s = self.clock.sim_now()
        powered = set()
        for evse in self.evses:
            session = evse.session
            if session is None or not session.enabled:
                continue
            session.set_enabled(False, now_s)
            self.stats.energy_delivered(evse.unaccounted_wh(now_s))
            powered.add(evse.id)
            if self.site is not None:
                self.site.power_changed(self, evse, now_s)
            if evse.power_watch is not None:
                evse.power_may_have_changed()
        return frozenset(powered)

    async def _restart(self, powered_evse_ids: frozenset[int], down_s: float = 0.0) -> None:
        """The reboot itself: down for `down_s` and `config.reboot_s`, then up with a new
        registration."""
        up = self._up
        try:
            await self.clock.sleep(down_s + self.config.reboot_s)
            self.registration = "Unknown"
            await self.emit(Restarted(powered_evse_ids))
        finally:
            self._up = None
            if up is not None:
                up.set()

    async def wait_up(self) -> None:
        """Return once the station is up (at once unless it is rebooting)."""
        up = self._up
        if up is not None:
            await up.wait()

    # -- talking to the CSMS ----------------------------------------------------------------

    def handle(self, action: str, payload: Mapping[str, Any]) -> Answer:
        """Answer one CSMS-initiated CALL (the link's handler)."""
        if self.registration == "Rejected":
            raise RpcError(
                ErrorCode.SECURITY_ERROR,
                "the CSMS rejected this station's BootNotification; it takes no requests until "
                "it is accepted",
            )
        handler = self._spec.registry.handlers.get(action)
        if handler is None:
            raise RpcError(
                ErrorCode.NOT_IMPLEMENTED, f"{action} is not implemented by fleetsim stations yet"
            )
        return handler(self, payload)

    async def call(
        self, action: str, payload: Mapping[str, Any], *, before_sync: bool = False
    ) -> Mapping[str, Any] | None:
        """Send a CALL that is not transaction-related; None when it could not be answered.

        Messages are only sent once the station is Accepted and synced (or, with
        `before_sync`, while the CSMS itself asked for them, as TriggerMessage may during
        Pending).  A CALLERROR or timeout has been counted by the link; the station goes on.
        """
        link = self.link
        if link is None or not (self.synced or before_sync):
            return None
        try:
            return await link.call(action, payload)
        except (CallErrorReceived, CallTimeout, LinkClosed):
            return None

    async def send(self, action: str, payload: Mapping[str, Any]) -> bool:
        """Send an unconfirmed SEND frame (OCPP 2.1: NotifyPeriodicEventStream); False when
        the station is not online, since a SEND has no offline queue and no answer."""
        link = self.link
        if link is None or not self.online:
            return False
        try:
            await link.send(action, payload)
        except LinkClosed:
            return False
        return True

    async def send_transaction_event(self, payload: dict[str, Any]) -> None:
        """Queue a TransactionEvent and deliver the queue if the station is online.

        Transaction events are never dropped for want of a connection: those made offline are
        marked `offline` and go out first after the next boot, in seqNo order, because the CSMS
        rebuilds the transaction from them (E11-E13).
        """
        if not self.online:
            payload["offline"] = True
            self.stats.transaction_event_queued_offline(payload["eventType"])
        self.tx_queue.append(payload)
        await self.drain_transaction_events()

    async def drain_transaction_events(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while self.tx_queue and self.online:
                link = self.link
                assert link is not None
                if not await deliver_transaction_event(self, link, self.tx_queue[0]):
                    if self.link is link:
                        return
                    # A new connection came up while this delivery waited between attempts;
                    # its own drain found this one running and left the queue to it.
                    continue
                del self.tx_queue[0]
        finally:
            self._draining = False

    # -- ids ------------------------------------------------------------------------------

    def next_transaction_id(self) -> str:
        self._transaction_ids += 1
        return f"{self.id}-{self._transaction_ids:06d}"

    def next_event_id(self) -> int:
        self._event_ids += 1
        return self._event_ids

    # -- state the device model and the blocks read ---------------------------------------

    def evse(self, evse_id: int) -> Evse | None:
        if 1 <= evse_id <= len(self.evses):
            return self.evses[evse_id - 1]
        return None

    def connector_status(self, evse_id: int, connector_id: int) -> str:
        """ConnectorStatusEnumType of one connector, derived from the station's state."""
        evse = self.evses[evse_id - 1]
        connector = evse.connectors[connector_id - 1]
        reservations = evse.reservations
        if (
            reservations is not None
            and self.operative
            and evse.operative
            and connector.operative
            and reservations.holds(evse)
        ):
            # Kept for a driver, even once that driver's EV is plugged in (G01.FR.09).
            return "Reserved"
        if evse.plugged_connector == connector_id:
            return "Occupied"
        if not (self.operative and evse.operative and connector.operative):
            return "Unavailable"
        if evse.plugged_connector is not None or evse.transaction is not None:
            # Another connector of this EVSE is in use, or a transaction waits for its EV.
            return "Occupied" if evse.transaction is not None else "Unavailable"
        return "Available"

    def evse_state(self, evse_id: int) -> str:
        evse = self.evses[evse_id - 1]
        reservations = evse.reservations
        if (
            reservations is not None
            and self.operative
            and evse.operative
            and reservations.holds(evse)
        ):
            return "Reserved"
        if evse.plugged_connector is not None or evse.transaction is not None:
            return "Occupied"
        if not (self.operative and evse.operative):
            return "Unavailable"
        return "Available"

    def availability_state(self) -> str:
        if not self.operative:
            return "Unavailable"
        if any(evse.plugged_connector is not None for evse in self.evses):
            return "Occupied"
        return "Available"

    def account_energy(self) -> None:
        """Count the energy delivered since each EVSE's last power change.

        Energy is counted when power changes; this brings the count up to now, for meter
        samples and for the summary of a run that ends mid-session.
        """
        now_s = self.clock.sim_now()
        for evse in self.evses:
            self.stats.energy_delivered(evse.unaccounted_wh(now_s))

    def transactions(self) -> list[Evse]:
        """The EVSEs that have a transaction running."""
        return [evse for evse in self.evses if evse.transaction is not None]

    # -- blocks ---------------------------------------------------------------------------

    async def emit(self, event: Event) -> None:
        """Deliver `event` to every block that reacts to it, in the registry's order."""
        for reaction in self._spec.registry.reactions.get(type(event), ()):
            pending = reaction(self, event)
            if pending is not None:
                await pending

    def post(self, event: Event) -> None:
        """`emit` from code that cannot wait (a handler, the world).  The reactions are called
        now; what they must wait for is awaited in order in a task of the station's nursery,
        which is only started when one of them has something to wait for."""
        reactions = self._spec.registry.reactions.get(type(event))
        if not reactions:
            return
        pending: list[Awaitable[None]] = []
        for reaction in reactions:
            waits = reaction(self, event)
            if waits is not None:
                pending.append(waits)
        if pending and not self.spawn(partial(_await_in_turn, pending)):
            for waits in pending:  # the station is stopping: nothing will run them
                close = getattr(waits, "close", None)
                if close is not None:
                    close()

    def block_state(self, block: Block[S]) -> S:
        """`block`'s state on this station, made by the block's `new_state` on first use."""
        states = self._block_states
        if states is None:
            states = self._block_states = {}
        try:
            found: S = states[block.name]
        except KeyError:
            found = states[block.name] = block.new_state()
        return found

    def peek_block_state(self, block: Block[S]) -> S | None:
        """`block`'s state if it has made any on this station (reading it creates nothing)."""
        states = self._block_states
        return None if states is None else states.get(block.name)

    def trigger(self, requested: str, target: TriggerTarget) -> Answer | None:
        """TriggerMessage's answer from the block that produces `requested`; None: no block."""
        produce = self._spec.registry.triggers.get(requested)
        return None if produce is None else produce(self, target)

    async def authorize(self, id_token: IdToken) -> bool:
        """Whether a driver's IdToken may charge now (block C; every token without one)."""
        authorize = self._spec.registry.hooks.get("authorize")
        return True if authorize is None else bool(await authorize(self, id_token))

    async def admit(self, evse: Evse, id_token: IdToken, group_id_token: str | None = None) -> bool:
        """Whether `evse` takes the driver presenting `id_token` (block H: not when it is kept
        for another driver's reservation; every driver when the station holds none)."""
        admit = self._spec.registry.hooks.get("admit")
        if admit is None or evse.reservations is None:
            return True
        return bool(await admit(self, evse, id_token, group_id_token))

    def use_reservation(self, evse: Evse, id_token: IdToken) -> int | None:
        """The reservation a transaction at `evse` uses now that it has `id_token` (block H)."""
        use = self._spec.registry.hooks.get("use_reservation")
        return None if use is None else use(self, evse, id_token)

    def local_id_token_info(self, id_token: IdToken) -> TokenInfo | None:
        """The local authorization list's entry for `id_token` (block D; None without one)."""
        lookup = self._spec.registry.hooks.get("local_id_token_info")
        if lookup is None:
            return None
        found: TokenInfo | None = lookup(self, id_token)
        return found

    def cached_id_token_info(self, id_token: IdToken, *, forget: bool = False) -> TokenInfo | None:
        """The authorization cache's entry for `id_token` as stored (block C; None without
        one), removed from the cache when `forget` (a customer's data cleared, N10)."""
        lookup = self._spec.registry.hooks.get("cached_id_token_info")
        if lookup is None:
            return None
        found: TokenInfo | None = lookup(self, id_token, forget)
        return found

    def charging_limit(self, evse: Evse) -> ActiveLimit:
        """What the charging profiles ask of `evse` now (block K; no limit without one), as
        the blocks that shape it (DER controls, V2X signals) make it."""
        # Every wake of an EV asks this: `_stateful_hook` is written out, one lookup per table.
        registry = self._spec.registry
        states = self._block_states
        limit: ActiveLimit = NO_LIMIT
        profiles = registry.hooks.get("charging_limit")
        if profiles is not None:
            needs_state = registry.hook_needs_state.get("charging_limit")
            if needs_state is None or (states is not None and needs_state in states):
                limit = profiles(self, evse)
        for needs_state, shape in registry.limit_shapers:
            if needs_state is None or (states is not None and needs_state in states):
                limit = shape(self, evse, limit)
        return limit

    def _stateful_hook(self, name: str) -> Any:
        """The hook `name`, or None when there is none or its block needs state this station
        does not have (`Block.needs_state`): then there is nothing for it to do here."""
        registry = self._spec.registry
        hook = registry.hooks.get(name)
        if hook is None:
            return None
        needs_state = registry.hook_needs_state.get(name)
        if needs_state is not None:
            states = self._block_states
            if states is None or needs_state not in states:
                return None
        return hook

    def transaction_cost(self, evse: Evse, transaction: Transaction) -> float | None:
        """The running cost of `transaction` now (block I), or None without a tariff."""
        cost = self._stateful_hook("transaction_cost")
        if cost is None:
            return None
        found: float | None = cost(self, evse, transaction)
        return found

    def cost_details(self, evse: Evse, transaction: Transaction) -> dict[str, Any] | None:
        """The costDetails of `transaction` now (block I), or None without a tariff.  Asked
        for every TransactionEvent on 2.1, so `_stateful_hook` is written out."""
        registry = self._spec.registry
        details = registry.hooks.get("cost_details")
        if details is None:
            return None
        needs_state = registry.hook_needs_state.get("cost_details")
        if needs_state is not None:
            states = self._block_states
            if states is None or needs_state not in states:
                return None
        found: dict[str, Any] | None = details(self, evse, transaction)
        return found

    def cost_reached_s(self, evse: Evse, transaction: Transaction, max_cost: float) -> float:
        """When `transaction`'s running cost reaches `max_cost` (block I); inf without one."""
        reached = self._stateful_hook("cost_reached_s")
        if reached is None:
            return math.inf
        found: float = reached(self, evse, transaction, max_cost)
        return found

    async def plug_and_charge(self, evse: Evse, arrival: EvArrival) -> IdToken | None:
        """A Plug & Charge EV's eMAID IdToken once its contract certificate is got, checked and
        authorized (block M); None when it may not charge or no block checks contracts."""
        check = self._spec.registry.hooks.get("plug_and_charge")
        if check is None:
            return None
        token: IdToken | None = await check(self, evse, arrival)
        return token

    async def pay_ad_hoc(self, evse: Evse, arrival: EvArrival) -> AdHocPayment | None:
        """How the driver of `arrival` paid at the payment terminal (C17-C18), or None when
        they present their own IdToken (no terminal, or not one who pays this way)."""
        pay = self._spec.registry.hooks.get("pay_ad_hoc")
        if pay is None:
            return None
        paid: AdHocPayment | None = await pay(self, evse, arrival)
        return paid

    def charging_profile_refusal(self, profile: Mapping[str, Any]) -> Answer | None:
        """Why block K would not install `profile` (its schedule, its stack level), or None;
        None without block K, whose absence means profiles are not installed at all."""
        refusal = self._spec.registry.hooks.get("charging_profile_refusal")
        if refusal is None:
            return None
        found: Answer | None = refusal(self, profile)
        return found

    async def stop_authority(self, transaction: Transaction, id_token: IdToken) -> str | None:
        """The stoppedReason with which `id_token` may stop `transaction` (block C decides: its
        own token, its group, a master pass), or None; without block C only the transaction's
        own token may stop it."""
        decide = self._spec.registry.hooks.get("stop_authority")
        if decide is None:
            same = transaction.id_token is not None and (
                transaction.id_token.get("idToken") == id_token.get("idToken")
            )
            return "Local" if same else None
        found: str | None = await decide(self, transaction, id_token)
        return found

    def holds_certificate(self, use: str) -> bool:
        """Whether block M's store holds a certificate of `use` valid now; False without it."""
        holds = self._spec.registry.hooks.get("holds_certificate")
        return holds is not None and bool(holds(self, use))

    def _changed(self, key: VariableKey) -> None:
        self.post(VariableChanged(key))

    def boot_wake_event(self) -> trio.Event:
        self._boot_wake = trio.Event()
        return self._boot_wake

    def wake_boot(self) -> bool:
        """Send the next BootNotification now (TriggerMessage during Pending)."""
        if self._boot_wake is None:
            return False
        self._boot_wake.set()
        return True


async def _await_in_turn(pending: list[Awaitable[None]]) -> None:
    """What posted reactions wait for, one after the other, in the registry's order."""
    for waits in pending:
        await waits
