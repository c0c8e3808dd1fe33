"""`Csms`: the embedded CSMS, which serves each connected station with its own `RpcLink`.

The same object serves stations over WebSockets (`serve`, for the quickstart and `fleetsim
csms`) and over in-memory channels (`attach`, for tests and the `--fast` mode), so both run the
same answers and record the same state.  Each station's link validates every incoming message
against the schemas of the OCPP version it negotiated; what a station breaks is answered with
the CALLERROR OCPP-J prescribes, counted on that station, and touches no other station.

Waiting is event-driven (`waiting.py`).  `wait_connected`, `wait_disconnected` and
`wait_for_message` park on a `trio.Event` that the link's reader sets when the awaited thing
happens; nothing polls, and a CSMS with no waiter pays one empty-dict check per message.  None
of them has a timeout of its own: the caller bounds them with `trio.fail_after`, as it bounds
any trio wait.

Time in the answers (`currentTime`) comes from the `clock` given to the constructor, a function
returning Unix seconds: wall time by default, the fleet's simulated time when the fleet passes
`SimClock.epoch_s`, or a constant in tests that compare payloads.

The CSMS's own timers (`CsmsConfig.timers`: web payment rounds, dynamic schedule updates, AFRR
signals) start when the first station connects and run until the trio run ends.  They live in
a trio system task because nothing else lives that long: `serve` and `attach` are one per
listener or station, and a run's own nursery is the run's, not the CSMS's.  A timer that fails
is logged and counted (`timer_failures`), never raised: a system task that raises would end the
whole run.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from ..link import Answer, TextChannel
from ..ocpp import (
    OCPP_VERSIONS,
    CallErrorReceived,
    CallTimeout,
    LinkClosed,
    OcppVersion,
    RpcSession,
    schema_set,
)
from ..ocpp.actions import STATION_INITIATED
from ..transport import RpcLink
from .certificates import CertificateServices
from .observer import StationObserver
from .policy import CsmsConfig, Timer
from .reactions import wanted_by
from .responses import Responses
from .server import serve_websocket_csms
from .state import StationState
from .waiting import MessagePredicate, MessageWaiters, StationEvents

__all__ = ["Csms", "CsmsStatistics", "StationNotConnected", "UnknownStation"]

_log = logging.getLogger(__name__)
#: CSMS-initiated actions whose accepted values the CSMS keeps, to answer the station's
#: PullDynamicScheduleUpdate with (K28).
_DYNAMIC_ACTIONS = frozenset({"SetChargingProfile", "UpdateDynamicSchedule"})

#: How long closing a replaced or finished connection may take before it is abandoned.
_CLOSE_TIMEOUT_S = 2.0


class _StationLookupError(KeyError):
    """A KeyError whose message reads as a sentence (KeyError's own str() quotes it)."""

    def __init__(self, station_id: str, message: str) -> None:
        super().__init__(message)
        self.station_id = station_id

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownStation(_StationLookupError):
    """No station with this id has connected to (or been awaited at) the CSMS."""

    def __init__(self, station_id: str) -> None:
        super().__init__(station_id, f"station {station_id} has never connected to the CSMS")


class StationNotConnected(_StationLookupError):
    """The CSMS cannot reach a station that has no open connection."""

    def __init__(self, station_id: str, known: bool) -> None:
        why = "its connection is closed" if known else "it has never connected"
        super().__init__(
            station_id,
            f"station {station_id} is not connected to the CSMS ({why}); "
            f"await csms.wait_connected({station_id!r}) first",
        )


@dataclass(frozen=True, slots=True)
class CsmsStatistics:
    """Counters of the whole CSMS at one moment (`Csms.statistics()`)."""

    stations_known: int
    stations_connected: int
    connections_accepted: int
    #: Refused WebSocket handshakes by reason: `unauthorized` (401), `no_station_id` (404),
    #: `no_subprotocol` (accepted without one, then closed).
    handshakes_rejected: Mapping[str, int]
    #: Connections that ended with an unexpected error, each also logged.
    connection_errors: int
    messages_received: int
    #: What came of the CSMS's own pushes after a boot (`boot_pushes.py`), by outcome:
    #: `local_list_sent`, `local_list_current` (the station held the CSMS's version),
    #: `local_list_failed`, `display_message_set`, `display_message_failed`,
    #: `der_control_set`, `der_control_failed`; and of its own initiatives (web payments,
    #: priority charging, dynamic schedules, AFRR signals), named in their modules.
    pushes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    #: Timers (`CsmsConfig.timers`) that ended with an error, each also logged.
    timer_failures: int = 0


class Csms:
    """The embedded CSMS; see the module docstring.  In a nursery:

    csms = Csms(CsmsConfig(heartbeat_interval_s=60))
    port = await nursery.start(csms.serve, "127.0.0.1", 0)
    ...
    await csms.wait_for_message("CP0001", "BootNotification")
    """

    def __init__(
        self,
        config: CsmsConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        certificates: CertificateServices | None = None,
    ) -> None:
        self._config = config if config is not None else CsmsConfig()
        self._clock = clock
        self._responses = Responses(self._config, clock, certificates)
        #: The CSMS's CA: signs stations' requests, issues contract certificates, answers OCSP.
        self.certificates = self._responses.certificates
        #: The config's reactions, and the certificate ones for actions it does not name.
        self._reactions = {**self.certificates.reactions(), **self._config.reactions}
        self._stations: dict[str, StationState] = {}
        self._links: dict[str, RpcLink] = {}
        self._message_waiters = MessageWaiters()
        self._connected_events = StationEvents()
        self._disconnected_events = StationEvents()
        self._connections_accepted = 0
        self._handshakes_rejected: dict[str, int] = {}
        self._connection_errors = 0
        self._messages_received = 0
        self._reaction_failures = 0
        self._pushes: dict[str, int] = {}
        self._timers_started = False
        self._timer_failures = 0
        #: The Unix time simulated second 0 falls at (`CsmsConfig.run_start_epoch_s`, else the
        #: first connection's).
        self._run_start_epoch_s = self._config.run_start_epoch_s

    @property
    def config(self) -> CsmsConfig:
        return self._config

    # -- what tests read ------------------------------------------------------------------

    @property
    def stations(self) -> Mapping[str, StationState]:
        """Every station id seen so far, connected or not."""
        return self._stations

    def station(self, station_id: str) -> StationState:
        """The recorded state of one station; `UnknownStation` if it never showed up."""
        station = self._stations.get(station_id)
        if station is None:
            raise UnknownStation(station_id)
        return station

    def is_connected(self, station_id: str) -> bool:
        return station_id in self._links

    def statistics(self) -> CsmsStatistics:
        return CsmsStatistics(
            stations_known=len(self._stations),
            stations_connected=len(self._links),
            connections_accepted=self._connections_accepted,
            handshakes_rejected=dict(self._handshakes_rejected),
            connection_errors=self._connection_errors,
            messages_received=self._messages_received,
            pushes=dict(self._pushes),
            timer_failures=self._timer_failures,
        )

    def id_token_info(self, id_token: Mapping[str, Any]) -> Mapping[str, Any]:
        """The idTokenInfo this CSMS gives `id_token` (an IdTokenType) in an Authorize answer."""
        return self._responses.id_token_info(id_token)

    def count_push(self, outcome: str) -> None:
        """Count one outcome of the CSMS's own pushes (`CsmsStatistics.pushes`)."""
        self._pushes[outcome] = self._pushes.get(outcome, 0) + 1

    # -- time, for the CSMS's own initiatives ---------------------------------------------

    def now(self) -> float:
        """The CSMS's clock: Unix seconds (simulated in a run's own process)."""
        return self._clock()

    def run_second(self) -> float:
        """Simulated seconds since the run began (see `CsmsConfig.run_start_epoch_s`)."""
        start = self._run_start_epoch_s
        return 0.0 if start is None else self._clock() - start

    async def sleep_simulated(self, duration_s: float) -> None:
        """Sleep `duration_s` seconds of the CSMS's clock."""
        await trio.sleep(max(0.0, duration_s) / self._config.clock_speed)

    async def sleep_until_run_second(self, run_s: float) -> None:
        """Sleep until simulated second `run_s` of the run (at once if it has passed)."""
        await self.sleep_simulated(run_s - self.run_second())

    # -- serving --------------------------------------------------------------------------

    async def serve(
        self,
        host: str | None,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        reuse_port: bool = False,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept stations over WebSocket until cancelled; `nursery.start` returns the port.

        Port 0 picks a free port.  With `ssl_context` the server speaks TLS (security profiles
        2 and 3).  With `reuse_port` other processes may listen on the same port and share the
        stations (`processes.py`).  See `server.py` for how handshakes are decided.
        """
        await serve_websocket_csms(
            self,
            host,
            port,
            ssl_context=ssl_context,
            reuse_port=reuse_port,
            task_status=task_status,
        )

    async def attach(
        self, station_id: str, channel: TextChannel, version: OcppVersion = "2.1"
    ) -> None:
        """Serve one station over a connected channel until the channel closes.

        A station id has one connection at a time: when it connects again while the CSMS still
        holds an older connection (typically half-open after a network failure the CSMS has not
        noticed), the older one is closed and the new one serves, because the station is the
        one that knows its connection is new.
        """
        if version not in OCPP_VERSIONS:
            raise ValueError(f"version must be one of {OCPP_VERSIONS}, got {version!r}")
        station = self._station_for(station_id)
        config = self._config
        async with trio.open_nursery() as nursery:
            previous = self._links.get(station_id)
            if previous is not None:
                self._connection_closed(station, previous)
                nursery.start_soon(_close_link, previous)
            link = RpcLink(
                channel,
                RpcSession(
                    schema_set(version),
                    STATION_INITIATED,
                    validate_outgoing=config.validate_outgoing,
                ),
                partial(self._answer_call, station),
                spawn=nursery.start_soon,
                call_timeout_s=config.call_timeout_s,
                observer=StationObserver(station),
                peer_name=station_id,
                send_handler=partial(self._receive_send, station),
            )
            self._connection_opened(station, link, version)
            try:
                await link.run()
            finally:
                self._connection_closed(station, link)
                nursery.cancel_scope.cancel()
                await _close_link(link)

    # -- driving stations -----------------------------------------------------------------

    async def call(
        self,
        station_id: str,
        action: str,
        payload: Mapping[str, Any],
        *,
        timeout_s: float | None = None,
    ) -> Mapping[str, Any]:
        """Send a CSMS-initiated CALL to a connected station and return its response payload.

        Raises `StationNotConnected`, or what `RpcLink.call` raises: `CallErrorReceived` (a
        CALLERROR, or an answer that broke the schema), `CallTimeout`, `LinkClosed`; and
        `LocalProtocolError` when `payload` itself breaks the schema.  `timeout_s` defaults to
        `CsmsConfig.call_timeout_s`.
        """
        link = self._links.get(station_id)
        if link is None:
            raise StationNotConnected(station_id, station_id in self._stations)
        answer = await link.call(action, payload, timeout_s=timeout_s)
        if action in _DYNAMIC_ACTIONS and answer.get("status") == "Accepted":
            self._stations[station_id].remember_dynamic_schedule(action, payload)
        return answer

    async def disconnect(self, station_id: str) -> None:
        """Close a station's connection from the CSMS side, as a CSMS restart would."""
        link = self._links.get(station_id)
        if link is None:
            raise StationNotConnected(station_id, station_id in self._stations)
        await _close_link(link)

    # -- waiting --------------------------------------------------------------------------

    async def wait_connected(self, station_id: str) -> StationState:
        """Return once `station_id` has an open connection (at once if it has one now)."""
        while station_id not in self._links:
            await self._connected_events.event(station_id).wait()
        return self._stations[station_id]

    async def wait_disconnected(self, station_id: str) -> StationState:
        """Return once `station_id` has no open connection (at once if it has none now)."""
        while station_id in self._links:
            await self._disconnected_events.event(station_id).wait()
        return self._station_for(station_id)

    async def wait_for_message(
        self,
        station_id: str,
        action: str,
        predicate: MessagePredicate | None = None,
        *,
        since: int = 0,
    ) -> Mapping[str, Any]:
        """The payload of the first `action` message from the station that `predicate` accepts.

        Messages already kept count too, so a test need not race the station: `since` skips
        the station's first `since` messages -- pass `csms.station(id).messages_received`,
        read before causing the message, to wait for a new one.  With `record_messages` off
        only messages still to come can match.
        """
        station = self._station_for(station_id)
        for message in station.messages_since(since):
            if message.action == action and (predicate is None or predicate(message.payload)):
                return message.payload
        return await self._message_waiters.wait(station_id, action, predicate, since)

    # -- used by the server ---------------------------------------------------------------

    def count_rejected_handshake(self, reason: str) -> None:
        self._handshakes_rejected[reason] = self._handshakes_rejected.get(reason, 0) + 1

    def count_connection_error(self) -> None:
        self._connection_errors += 1

    # -- the links' handlers (per message: keep them cheap) -------------------------------

    def _answer_call(
        self, station: StationState, action: str, payload: Mapping[str, Any]
    ) -> Answer:
        self._take_in(station, action, payload)
        response = self._responses.answer(station, action, payload)
        if action == "BootNotification":
            station.record_boot_answer(response.get("status"))
        reaction = self._reactions.get(action)
        if reaction is None or not wanted_by(reaction, payload):
            return Answer(response)
        return Answer(response, then=partial(reaction, self, station.station_id, payload, response))

    async def call_quietly(
        self, station_id: str, action: str, payload: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        """`call`, for the CSMS's own reactions: a station that is gone, refuses or does not
        answer is counted in the station's state, never raised."""
        try:
            return await self.call(station_id, action, payload)
        except (StationNotConnected, CallErrorReceived, CallTimeout, LinkClosed):
            self._reaction_failures += 1
            return None

    def _receive_send(self, station: StationState, action: str, payload: Mapping[str, Any]) -> None:
        # The link does not guard its SEND handler the way it guards CALL handlers, and a SEND
        # cannot be answered with an error anyway: a failure here is counted, never raised.
        try:
            self._take_in(station, action, payload)
        except Exception as exc:
            station.internal_errors += 1
            _log.warning("embedded CSMS failed to take in %s from %s: %r", action, station, exc)

    def _take_in(self, station: StationState, action: str, payload: Mapping[str, Any]) -> None:
        station.record_request(action, payload)
        self._messages_received += 1
        if self._message_waiters:
            self._message_waiters.offer(
                station.station_id, station.messages_received - 1, action, payload
            )

    # -- bookkeeping ----------------------------------------------------------------------

    def _station_for(self, station_id: str) -> StationState:
        station = self._stations.get(station_id)
        if station is None:
            config = self._config
            station = self._stations[station_id] = StationState(
                station_id,
                record_messages=config.record_messages,
                max_messages=config.max_messages_per_station,
                max_transactions=config.max_transactions_per_station,
            )
        return station

    def _connection_opened(
        self, station: StationState, link: RpcLink, version: OcppVersion
    ) -> None:
        self._links[station.station_id] = link
        self._connections_accepted += 1
        station.record_connected(version)
        if self._config.timers and not self._timers_started:
            self._timers_started = True
            if self._run_start_epoch_s is None:
                self._run_start_epoch_s = self._clock()
            trio.lowlevel.spawn_system_task(self._run_timers, name="embedded CSMS timers")
        self._connected_events.fire(station.station_id)
        _log.debug("station %s connected (OCPP %s)", station.station_id, version)

    async def _run_timers(self) -> None:
        async with trio.open_nursery() as nursery:
            for timer in self._config.timers:
                nursery.start_soon(self._run_timer, timer)

    async def _run_timer(self, timer: Timer) -> None:
        try:
            await timer(self)
        except Exception as exc:
            self._timer_failures += 1
            _log.warning("embedded CSMS: a timer failed and stopped: %r", exc)

    def _connection_closed(self, station: StationState, link: RpcLink) -> None:
        """Forget `link` if it is still the station's connection; a replaced one already was."""
        station_id = station.station_id
        if self._links.get(station_id) is not link:
            return
        del self._links[station_id]
        station.record_disconnected()
        self._disconnected_events.fire(station_id)
        _log.debug("station %s disconnected", station_id)


async def _close_link(link: RpcLink) -> None:
    """Close a link's channel, shielded and bounded: a peer that never completes the closing
    handshake must not hold up the CSMS, nor a cancellation leave the socket open."""
    with trio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
        await link.aclose()
