"""`RpcSession`: one side of an OCPP-J conversation, without sockets or clocks.

Text goes in through `receive_text` and comes back out of `start_call`, `answer`, `answer_error`
and `start_send`; what the text meant comes back as one event per frame.  The session matches
answers to CALLs by message id, keeps OCPP-J's rule of one outstanding CALL per direction, and
validates payloads against the schemas of its OCPP version.  It is told the time (`now`) by its
caller, so the round-trip time of each CALL is measured here, and tests need no clock at all.

A CALL whose answer did not come in time is `abandon_call`-ed by the caller; if the answer
arrives later anyway it becomes `LateAnswer`, never the answer to the next CALL.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import UNREADABLE_MESSAGE_ID, ErrorCode, FrameError, RpcError
from .frames import (
    CALLERROR,
    CALLRESULT,
    CALLRESULTERROR,
    SEND,
    Call,
    CallError,
    CallResult,
    CallResultError,
    Send,
    dump,
    parse,
)
from .schemas import SchemaSet

__all__ = [
    "BadFrame",
    "CallAnswered",
    "CallRejected",
    "Event",
    "IncomingCall",
    "IncomingSend",
    "InvalidAnswer",
    "LateAnswer",
    "LocalProtocolError",
    "ResultRejected",
    "RpcSession",
]


class LocalProtocolError(Exception):
    """We were about to break OCPP-J ourselves (a second outstanding CALL, an invalid payload)."""


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """The peer asks us to do something; answer with `answer` or `answer_error`."""

    message_id: str
    action: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class IncomingSend:
    """An unconfirmed message from the peer (OCPP 2.1 SEND); it gets no answer."""

    message_id: str
    action: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """Our outstanding CALL got a valid CALLRESULT."""

    message_id: str
    action: str
    payload: Mapping[str, Any]
    round_trip_s: float


@dataclass(frozen=True, slots=True)
class CallRejected:
    """Our outstanding CALL got a CALLERROR."""

    message_id: str
    action: str
    code: str
    description: str
    round_trip_s: float


@dataclass(frozen=True, slots=True)
class InvalidAnswer:
    """Our outstanding CALL got a CALLRESULT whose payload breaks the schema.

    `reply` is the CALLRESULTERROR to send back (OCPP 2.1), or None where the version has none.
    """

    message_id: str
    action: str
    error: RpcError
    round_trip_s: float
    reply: str | None


@dataclass(frozen=True, slots=True)
class LateAnswer:
    """An answer whose id matches no outstanding CALL: it came after its timeout, or never
    belonged to a CALL of ours."""

    message_id: str
    abandoned: bool


@dataclass(frozen=True, slots=True)
class ResultRejected:
    """The peer reports, with a CALLRESULTERROR, that our CALLRESULT was wrong."""

    message_id: str
    code: str
    description: str


@dataclass(frozen=True, slots=True)
class BadFrame:
    """The peer sent something that breaks OCPP-J or the schema.

    `reply` is the CALLERROR to send back, or None when the frame gets no answer (a SEND, or
    a broken answer: answering those could ping-pong).  `kind` names the breakage (one of
    `MALFORMED_FRAME_KINDS`); `id_readable` is False when the frame's message id could not be
    read, so that its reply, if any, goes to id "-1" and the sender cannot match it.
    """

    error: RpcError
    action: str | None
    reply: str | None
    kind: str = "schema"
    id_readable: bool = True


Event = (
    IncomingCall
    | IncomingSend
    | CallAnswered
    | CallRejected
    | InvalidAnswer
    | LateAnswer
    | ResultRejected
    | BadFrame
)

_ABANDONED_IDS_KEPT = 16


class RpcSession:
    """One endpoint's view of an OCPP-J connection.

    `incoming_actions` are the actions the peer may CALL us with: a known action outside it is
    answered NotSupported, an action the schemas do not know NotImplemented.  With
    `validate_outgoing=False` our own payloads are not checked (load runs); incoming payloads
    always are.
    """

    __slots__ = (
        "_abandoned",
        "_ids",
        "_outstanding",
        "_schemas",
        "_supports_2_1_frames",
        "incoming_actions",
        "validate_outgoing",
    )

    def __init__(
        self,
        schemas: SchemaSet,
        incoming_actions: frozenset[str],
        *,
        validate_outgoing: bool = True,
        first_message_id: int = 1,
    ) -> None:
        self._schemas = schemas
        self._supports_2_1_frames = schemas.version != "2.0.1"
        self.incoming_actions = incoming_actions
        self.validate_outgoing = validate_outgoing
        self._ids = itertools.count(first_message_id)
        # (message id, action, time sent) of our one outstanding CALL.
        self._outstanding: tuple[str, str, float] | None = None
        self._abandoned: deque[str] = deque(maxlen=_ABANDONED_IDS_KEPT)

    @property
    def call_outstanding(self) -> str | None:
        """The action of our CALL that awaits an answer, if any."""
        return self._outstanding[1] if self._outstanding else None

    # -- what we send ---------------------------------------------------------------------

    def start_call(self, action: str, payload: Mapping[str, Any], now: float) -> str:
        """The text of a new CALL; its answer will come back from `receive_text`."""
        if self._outstanding is not None:
            raise LocalProtocolError(
                f"cannot CALL {action} while {self._outstanding[1]} awaits its answer: "
                "OCPP-J allows one outstanding CALL per direction"
            )
        if self.validate_outgoing:
            self._validate_own(action, "Request", payload)
        message_id = str(next(self._ids))
        self._outstanding = (message_id, action, now)
        return dump(Call(message_id, action, payload))

    def start_send(self, action: str, payload: Mapping[str, Any]) -> str:
        """The text of an unconfirmed SEND (OCPP 2.1 only)."""
        if not self._supports_2_1_frames:
            raise LocalProtocolError(f"OCPP {self._schemas.version} has no SEND frame")
        if self.validate_outgoing:
            self._validate_own(action, "Request", payload)
        return dump(Send(str(next(self._ids)), action, payload))

    def abandon_call(self) -> str | None:
        """Give up on the outstanding CALL (its timeout passed); returns its action."""
        if self._outstanding is None:
            return None
        message_id, action, _ = self._outstanding
        self._abandoned.append(message_id)
        self._outstanding = None
        return action

    def answer(self, call: IncomingCall, payload: Mapping[str, Any]) -> str:
        """The CALLRESULT text for `call`."""
        if self.validate_outgoing:
            self._validate_own(call.action, "Response", payload)
        return dump(CallResult(call.message_id, payload))

    def answer_error(self, message_id: str, error: RpcError) -> str:
        """The CALLERROR text for the CALL with `message_id`."""
        return dump(CallError(message_id, error.code.value, error.description, error.details))

    def _validate_own(self, action: str, kind: Any, payload: Mapping[str, Any]) -> None:
        try:
            self._schemas.validate(action, kind, payload)
        except RpcError as exc:
            raise LocalProtocolError(
                f"refusing to send an invalid {action}{kind}: {exc.description}"
            ) from exc

    # -- what we receive ------------------------------------------------------------------

    def receive_text(self, text: str | bytes, now: float) -> Event:
        """What one received WebSocket message means."""
        try:
            frame = parse(text)
        except FrameError as exc:
            return self._bad_frame(exc, now)
        if isinstance(frame, Call):
            return self._receive_call(frame)
        if isinstance(frame, CallResult):
            return self._receive_result(frame, now)
        if isinstance(frame, CallError):
            return self._receive_error(frame, now)
        if not self._supports_2_1_frames:
            error = RpcError(
                ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED,
                f"OCPP {self._schemas.version} has no message type "
                f"{'CALLRESULTERROR (5)' if isinstance(frame, CallResultError) else 'SEND (6)'}",
            )
            reply = self.answer_error(frame.message_id, error)
            return BadFrame(error, None, reply, "unknown_message_type")
        if isinstance(frame, Send):
            try:
                self._check_incoming(frame.action, frame.payload)
            except RpcError as exc:
                return BadFrame(exc, frame.action, None, _kind_of(exc))
            return IncomingSend(frame.message_id, frame.action, frame.payload)
        return ResultRejected(frame.message_id, frame.code, frame.description)

    def _bad_frame(self, exc: FrameError, now: float) -> Event:
        """What a frame that `parse` refused means; only ever called for a broken frame."""
        message_type = exc.message_type
        message_id = exc.message_id
        if message_type in (CALLRESULT, CALLERROR):
            # A broken answer is never answered with a CALLERROR (that could ping-pong), but
            # it does end the CALL it answers, so the caller need not wait for its timeout.
            if message_id is None:
                return BadFrame(exc, None, None, exc.kind, id_readable=False)
            matched = self._match(message_id)
            if matched is None:
                return BadFrame(exc, None, None, exc.kind)
            action, sent_at = matched
            return InvalidAnswer(message_id, action, exc, now - sent_at, None)
        if message_type in (SEND, CALLRESULTERROR):
            return BadFrame(exc, exc.action, None, exc.kind, id_readable=message_id is not None)
        # A CALL, a type this version lacks, or a frame whose type cannot be told: answered,
        # to id "-1" when its own id cannot be read (OCPP-J, CALLERROR).
        if message_id is None:
            reply = self.answer_error(UNREADABLE_MESSAGE_ID, exc)
            return BadFrame(exc, exc.action, reply, exc.kind, id_readable=False)
        return BadFrame(exc, exc.action, self.answer_error(message_id, exc), exc.kind)

    def _check_incoming(self, action: str, payload: Mapping[str, Any]) -> None:
        if action not in self.incoming_actions:
            if action in self._schemas.actions:
                raise RpcError(ErrorCode.NOT_SUPPORTED, f"{action} is not sent in this direction")
            raise RpcError(
                ErrorCode.NOT_IMPLEMENTED, f"{action} is not an OCPP {self._schemas.version} action"
            )
        self._schemas.validate(action, "Request", payload)

    def _receive_call(self, frame: Call) -> Event:
        try:
            self._check_incoming(frame.action, frame.payload)
        except RpcError as exc:
            reply = self.answer_error(frame.message_id, exc)
            return BadFrame(exc, frame.action, reply, _kind_of(exc))
        return IncomingCall(frame.message_id, frame.action, frame.payload)

    def _match(self, message_id: str) -> tuple[str, float] | None:
        outstanding = self._outstanding
        if outstanding is None or outstanding[0] != message_id:
            return None
        self._outstanding = None
        return outstanding[1], outstanding[2]

    def _receive_result(self, frame: CallResult, now: float) -> Event:
        matched = self._match(frame.message_id)
        if matched is None:
            return LateAnswer(frame.message_id, frame.message_id in self._abandoned)
        action, sent_at = matched
        try:
            self._schemas.validate(action, "Response", frame.payload)
        except RpcError as exc:
            reply = None
            if self._supports_2_1_frames:
                reply = dump(CallResultError(frame.message_id, exc.code.value, exc.description, {}))
            return InvalidAnswer(frame.message_id, action, exc, now - sent_at, reply)
        return CallAnswered(frame.message_id, action, frame.payload, now - sent_at)

    def _receive_error(self, frame: CallError, now: float) -> Event:
        matched = self._match(frame.message_id)
        if matched is None:
            return LateAnswer(frame.message_id, frame.message_id in self._abandoned)
        action, sent_at = matched
        return CallRejected(frame.message_id, action, frame.code, frame.description, now - sent_at)


def _kind_of(error: RpcError) -> str:
    """The `MALFORMED_FRAME_KINDS` entry of a well-formed frame the session refused."""
    if error.code is ErrorCode.NOT_IMPLEMENTED:
        return "unknown_action"
    if error.code is ErrorCode.NOT_SUPPORTED:
        return "wrong_direction"
    return "schema"
