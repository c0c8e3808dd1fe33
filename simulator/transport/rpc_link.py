"""`RpcLink`: a `Link` made of an `RpcSession` driven over any `TextChannel`.

The channel is a station's WebSocket (`websocket.StationWebSocket`), a trio-websocket connection
of the embedded CSMS (`channel.WebSocketChannel`), or one end of an in-memory pair
(`memory.memory_channel_pair`); the link reads frames from it in one task (`run`), answers
incoming CALLs through its handler, and matches answers to its own CALLs.  `CallDeadlines` times
out the CALLs of many links from one task.  The interface and the rules for handlers are in
`simulator/link.py`.
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Any, Callable, Mapping

import outcome
import trio

from ..link import CallHandler, FollowUp, SendHandler, TextChannel
from ..ocpp import (
    BadFrame,
    CallAnswered,
    CallErrorReceived,
    CallRejected,
    CallTimeout,
    ErrorCode,
    FrameError,
    IncomingCall,
    IncomingSend,
    InvalidAnswer,
    LateAnswer,
    LinkClosed,
    ResultRejected,
    RpcError,
    RpcSession,
)
from ..stats import LinkObserver, NullObserver
from .turns import FairTurn

__all__ = ["CallDeadlines", "LinkFault", "RpcLink"]


class LinkFault:
    """What a fault on purpose makes one station's links do (`simulator/faults.py` sets it).

    A link without one pays a single attribute check where a fault could act (answering a
    CSMS CALL, starting a CALL of its own), and nothing else.  `count(kind)` is told of each
    answer delayed (`slow`) or withheld (`stuck`).
    """

    __slots__ = ("answer_delay_s", "count", "keep_last_call", "last_call", "never_answer")

    def __init__(self, count: Callable[[str], None]) -> None:
        self.count = count
        #: Answer each CSMS CALL this many trio seconds late; None: at once.
        self.answer_delay_s: float | None = None
        #: Answer no CSMS CALL at all.
        self.never_answer = False
        #: Keep the text of the last CALL sent, so that it can be sent again with its id.
        self.keep_last_call = False
        self.last_call: str | None = None


class CallDeadlines:
    """Times out the CALLs of many links from one task, instead of a cancel scope per CALL.

    A trio cancel scope with a deadline costs more per CALL than all of fleetsim's own
    bookkeeping, so a fleet shares this sweeper: a CALL registers its deadline (a dictionary
    store) and the sweeper, waking every `resolution_s` while any CALL is in flight, fails the
    ones whose deadline has passed.  A CALL therefore times out between its timeout and its
    timeout plus `resolution_s`.  With nothing in flight the sweeper sleeps without waking.
    """

    def __init__(self, resolution_s: float = 0.5) -> None:
        self.resolution_s = resolution_s
        self._pending: dict[RpcLink, float] = {}
        self._idle: trio.Event | None = None

    def add(self, link: RpcLink, deadline: float) -> None:
        self._pending[link] = deadline
        if self._idle is not None:
            self._idle.set()
            self._idle = None

    def discard(self, link: RpcLink) -> None:
        self._pending.pop(link, None)

    async def run(self) -> None:
        """Sweep until cancelled."""
        pending = self._pending
        while True:
            if not pending:
                self._idle = trio.Event()
                await self._idle.wait()
            await trio.sleep(self.resolution_s)
            now = trio.current_time()
            for link in [link for link, deadline in pending.items() if deadline <= now]:
                del pending[link]
                link._deliver(None)


class RpcLink:
    """An `RpcSession` over a `TextChannel`; call `run()` in a task to read incoming frames.

    `call_timeout_s` is in trio seconds (it bounds a wait on the network, which does not speed
    up with simulated time).  `spawn` starts follow-ups; `peer_name` names the station in the
    trace; `on_closed`, if set, is called once when the connection goes.

    A CALL is the hot path of every load run, so its waiting is done with trio's low-level
    primitives: the caller parks its own task and the reader reschedules it with the answer,
    with no lock, event or context manager allocated while only one CALL is in flight.
    """

    __slots__ = (
        "_answer",
        "_call_turn",
        "_channel",
        "_closed",
        "_closed_event",
        "_deadlines",
        "_handler",
        "_now",
        "_observer",
        "_send_handler",
        "_session",
        "_spawn",
        "_waiting_task",
        "call_timeout_s",
        "fault",
        "on_closed",
        "peer_name",
    )

    def __init__(
        self,
        channel: TextChannel,
        session: RpcSession,
        handler: CallHandler,
        *,
        spawn: Callable[[FollowUp], object],
        call_timeout_s: float = 30.0,
        observer: LinkObserver | None = None,
        peer_name: str = "",
        send_handler: SendHandler | None = None,
        deadlines: CallDeadlines | None = None,
    ) -> None:
        self._channel = channel
        self._session = session
        self._deadlines = deadlines
        self._handler = handler
        self._send_handler = send_handler
        self._spawn = spawn
        self._observer: LinkObserver = observer or NullObserver()
        self.call_timeout_s = call_timeout_s
        self.peer_name = peer_name
        self.on_closed: Callable[[], None] | None = None
        #: Held while a CALL of ours is outstanding; others queue, first come first served,
        #: because OCPP-J allows one outstanding CALL per direction.
        self._call_turn = FairTurn()
        self._waiting_task: trio.lowlevel.Task | None = None
        self._answer: object = None
        self._closed = False
        self._closed_event: trio.Event | None = None
        #: The trio run's clock's `current_time`, bound when the reader starts (`run`):
        #: `trio.current_time()` in one call instead of three, twice per round trip.
        self._now: Callable[[], float] | None = None
        #: A fault on purpose acting on this link (`LinkFault`); None almost always.
        self.fault: LinkFault | None = None

    @property
    def call_in_flight(self) -> bool:
        """Whether a CALL of ours awaits its answer (read at scrape time, never per message)."""
        return self._call_turn.held

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def session(self) -> RpcSession:
        return self._session

    async def wait_closed(self) -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        if self._closed_event is None:
            self._closed_event = trio.Event()
        await self._closed_event.wait()

    async def aclose(self) -> None:
        self._mark_closed()
        await self._channel.aclose()

    def _mark_closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._closed_event is not None:
            self._closed_event.set()
        if self._call_turn.held:
            self._deliver(LinkClosed(f"{self.peer_name}: connection closed"))
        if self.on_closed is not None:
            self.on_closed()

    def _deliver(self, answer: object) -> None:
        """Hand the answer to the CALL in flight: wake its task, or leave the answer for it."""
        task = self._waiting_task
        if task is not None:
            self._waiting_task = None
            trio.lowlevel.reschedule(task, outcome.Value(answer))
        else:
            self._answer = answer

    def _abort_wait(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self._waiting_task = None
        return trio.lowlevel.Abort.SUCCEEDED

    async def _write(self, text: str) -> None:
        # Counted (and traced) when handed to the channel, before the send can yield, so the
        # trace shows a CALL before its answer and counts match the trace line for line.
        observer = self._observer
        if observer.trace is not None:
            observer.trace.write(self.peer_name, "sent", text)
        observer.frame_sent()
        try:
            await self._channel.send_text(text)
        except LinkClosed:
            self._mark_closed()
            raise

    # -- station-initiated (our) CALLs ------------------------------------------------------

    async def call(
        self, action: str, payload: Mapping[str, Any], *, timeout_s: float | None = None
    ) -> Mapping[str, Any]:
        """Send a CALL and return its CALLRESULT payload.

        Raises `CallErrorReceived` (a CALLERROR, or an answer that broke the schema, reported as
        its OCPP-J code), `CallTimeout`, or `LinkClosed`.
        """
        timeout = self.call_timeout_s if timeout_s is None else timeout_s
        observer = self._observer
        session = self._session
        turn = self._call_turn
        if turn.held:
            await turn.wait()
        else:
            turn.held = True
        try:
            if self._closed:
                raise LinkClosed(f"{self.peer_name}: connection closed")
            now = self._now
            sent_at = trio.current_time() if now is None else now()
            text = session.start_call(action, payload, sent_at)
            if self.fault is not None and self.fault.keep_last_call:
                self.fault.last_call = text
            self._answer = None
            try:
                await self._write(text)
                answer = self._answer
                if answer is None:
                    deadlines = self._deadlines
                    if deadlines is None:
                        answer = await self._wait_answer(sent_at + timeout)
                    else:
                        # The fleet's shared sweeper times the wait out (`CallDeadlines`):
                        # waited for here, without a coroutine of its own per round trip.
                        deadlines.add(self, sent_at + timeout)
                        try:
                            self._waiting_task = trio.lowlevel.current_task()
                            answer = await trio.lowlevel.wait_task_rescheduled(self._abort_wait)
                        finally:
                            deadlines.discard(self)
            finally:
                self._answer = None
                if session.call_outstanding is not None:
                    # No answer came: a timeout, a closed link, or our own cancellation.
                    session.abandon_call()
        except LinkClosed:
            observer.call_done(action, "closed", None)
            raise
        finally:
            turn.release()
        if answer is None:
            observer.call_done(action, "timeout", None)
            raise CallTimeout(action, timeout)
        if isinstance(answer, CallAnswered):
            observer.call_done(action, "ok", answer.round_trip_s)
            return answer.payload
        if isinstance(answer, CallRejected):
            observer.call_done(action, "callerror", answer.round_trip_s)
            observer.callerror_received(action, answer.code)
            raise CallErrorReceived(action, answer.code, answer.description)
        if isinstance(answer, InvalidAnswer):
            observer.call_done(action, "invalid", answer.round_trip_s)
            observer.csms_violation(action, answer.error.code.value)
            raise CallErrorReceived(action, answer.error.code.value, answer.error.description)
        observer.call_done(action, "closed", None)
        assert isinstance(answer, LinkClosed)
        raise answer

    async def _wait_answer(self, deadline: float) -> object:
        """The answer the reader delivers, or None when `deadline` passes first: a link
        without a shared sweeper times its own wait out, with a cancel scope."""
        with trio.CancelScope(deadline=deadline):
            self._waiting_task = trio.lowlevel.current_task()
            return await trio.lowlevel.wait_task_rescheduled(self._abort_wait)
        return None

    async def send(self, action: str, payload: Mapping[str, Any]) -> None:
        """Send an unconfirmed SEND frame (OCPP 2.1)."""
        if self._closed:
            raise LinkClosed(f"{self.peer_name}: connection closed")
        await self._write(self._session.start_send(action, payload))
        self._observer.call_done(action, "sent", None)

    # -- the reader ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Read frames until the channel closes; then wake a waiting CALL with `LinkClosed`."""
        channel = self._channel
        session = self._session
        observer = self._observer
        now = self._now = trio.lowlevel.current_clock().current_time
        try:
            while True:
                text = await channel.receive_text()
                observer.frame_received()
                if observer.trace is not None:
                    observer.trace.write(self.peer_name, "received", text)
                event = session.receive_text(text, now())
                if isinstance(event, IncomingCall):
                    await self._answer_call(event)
                elif isinstance(event, (CallAnswered, CallRejected)):
                    self._deliver(event)
                elif isinstance(event, InvalidAnswer):
                    self._deliver(event)
                    error = event.error
                    observer.malformed_frame(
                        error.kind if isinstance(error, FrameError) else "schema"
                    )
                    if event.reply is not None:
                        await self._write(event.reply)
                elif isinstance(event, IncomingSend):
                    if self._send_handler is not None:
                        try:
                            self._send_handler(event.action, event.payload)
                        except Exception as exc:
                            # SEND gets no answer; a failing handler is counted, the reader
                            # goes on.
                            observer.internal_error(exc)
                elif isinstance(event, BadFrame):
                    # Every broken frame is counted by kind; every one that could be a CALL is
                    # answered (to id "-1" when its id cannot be read), and the reader goes on.
                    observer.csms_violation(event.action, event.error.code.value)
                    observer.malformed_frame(event.kind)
                    if event.reply is None or not event.id_readable:
                        observer.frame_dropped("unreadable")
                    if event.reply is not None:
                        if event.action is not None:
                            observer.incoming_done(event.action, "invalid")
                        await self._write(event.reply)
                elif isinstance(event, LateAnswer):
                    observer.frame_dropped("late")
                elif isinstance(event, ResultRejected):
                    observer.csms_violation(None, event.code)
                # Let go of the frame now, while it is warm in the cache, rather than when the
                # next one comes: a fleet's thousands of other frames later.
                del text, event
        except LinkClosed:
            pass
        finally:
            self._mark_closed()

    async def _answer_call(self, call: IncomingCall, *, delayed: bool = False) -> None:
        if self.fault is not None and not delayed and self._withhold_answer(call, self.fault):
            return
        try:
            answer = self._handler(call.action, call.payload)
            text = self._session.answer(call, answer.payload)
        except RpcError as exc:
            self._observer.incoming_done(call.action, "callerror")
            await self._write(self._session.answer_error(call.message_id, exc))
            return
        except Exception as exc:
            # A handler failed or built an answer that breaks the schema: a fleetsim bug. The
            # CSMS gets an InternalError instead of an invalid payload or silence, and the
            # reader goes on with the next frame.
            self._observer.incoming_done(call.action, "callerror")
            self._observer.internal_error(exc)
            error = RpcError(ErrorCode.INTERNAL_ERROR, f"{call.action}: {exc}")
            await self._write(self._session.answer_error(call.message_id, error))
            return
        self._observer.incoming_done(call.action, "ok")
        await self._write(text)
        if answer.then is not None:
            self._spawn(answer.then)

    # -- faults on purpose (`LinkFault`; see simulator/faults.py) ---------------------------

    def _withhold_answer(self, call: IncomingCall, fault: LinkFault) -> bool:
        """Whether `fault` keeps `call` from being answered now: never (stuck) or later (slow,
        in a task of its own so that the reader goes on reading)."""
        if fault.never_answer:
            fault.count("stuck")
            return True
        delay_s = fault.answer_delay_s
        if delay_s is None:
            return False
        fault.count("slow")
        self._spawn(partial(self._answer_late, call, delay_s))
        return True

    async def _answer_late(self, call: IncomingCall, delay_s: float) -> None:
        await trio.sleep(delay_s)
        if self._closed:
            return
        with contextlib.suppress(LinkClosed):
            await self._answer_call(call, delayed=True)

    async def abort(self) -> None:
        """Close as a network failure would: without the WebSocket closing handshake where the
        channel can (`StationWebSocket.abort`), else as `aclose` does."""
        self._mark_closed()
        abort = getattr(self._channel, "abort", None)
        await (abort() if abort is not None else self._channel.aclose())

    async def send_raw(self, text: str) -> None:
        """Send `text` as it is, between CALLs of ours (a malformed frame, a CALL sent again
        with its id): counted and traced like any frame.  Raises `LinkClosed`."""
        turn = self._call_turn
        if turn.held:
            await turn.wait()
        else:
            turn.held = True
        try:
            if self._closed:
                raise LinkClosed(f"{self.peer_name}: connection closed")
            await self._write(text)
        finally:
            turn.release()
