"""The five OCPP-J frame types, and how they are read from and written to WebSocket text.

A frame is a JSON array whose first element is the message type number:

    CALL             [2, messageId, action, payload]
    CALLRESULT       [3, messageId, payload]
    CALLERROR        [4, messageId, errorCode, errorDescription, errorDetails]
    CALLRESULTERROR  [5, messageId, errorCode, errorDescription, errorDetails]   (OCPP 2.1)
    SEND             [6, messageId, action, payload]                            (OCPP 2.1)

`parse` checks the structure only; payloads are checked against the schemas by `schemas.py`.
A frame that breaks the structure raises `FrameError` with the code the receiver answers with,
what kind of breakage it was, and the message id when it could still be read (without one the
answer goes to id "-1").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import orjson

from .errors import ErrorCode, FrameError

__all__ = [
    "CALL",
    "CALLERROR",
    "CALLRESULT",
    "CALLRESULTERROR",
    "SEND",
    "Call",
    "CallError",
    "CallResult",
    "CallResultError",
    "Frame",
    "MAX_MESSAGE_ID_LENGTH",
    "Send",
    "dump",
    "parse",
]

CALL = 2
CALLRESULT = 3
CALLERROR = 4
CALLRESULTERROR = 5
SEND = 6

#: OCPP-J: "The message ID ... maximum of 36 characters, to allow for GUIDs".
MAX_MESSAGE_ID_LENGTH = 36


@dataclass(frozen=True, slots=True)
class Call:
    message_id: str
    action: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CallResult:
    message_id: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CallError:
    message_id: str
    code: str
    description: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallResultError:
    message_id: str
    code: str
    description: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Send:
    message_id: str
    action: str
    payload: Mapping[str, Any]


Frame = Call | CallResult | CallError | CallResultError | Send


def dump(frame: Frame) -> str:
    """The WebSocket text of `frame` (OCPP-J is sent in text frames, never binary)."""
    if isinstance(frame, Call):
        array: list[Any] = [CALL, frame.message_id, frame.action, frame.payload]
    elif isinstance(frame, CallResult):
        array = [CALLRESULT, frame.message_id, frame.payload]
    elif isinstance(frame, CallError):
        array = [CALLERROR, frame.message_id, frame.code, frame.description, frame.details]
    elif isinstance(frame, CallResultError):
        array = [CALLRESULTERROR, frame.message_id, frame.code, frame.description, frame.details]
    elif isinstance(frame, Send):
        array = [SEND, frame.message_id, frame.action, frame.payload]
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"not an OCPP-J frame: {frame!r}")
    return orjson.dumps(array).decode()


def parse(text: str | bytes) -> Frame:
    """Read one frame from WebSocket text; raise `FrameError` when it is not a valid frame.

    The checks of a well-formed frame are the few a CALL needs anyway; working out what exactly
    is wrong with a broken one happens only after it failed them.
    """
    try:
        array = orjson.loads(text)
    except ValueError as exc:  # orjson.JSONDecodeError, also for text that is not UTF-8
        raise _unreadable_json(text, str(exc)) from None
    if type(array) is not list or len(array) < 2:
        raise _not_a_frame(array)
    message_type = array[0]
    message_id = array[1]
    if (
        type(message_id) is not str
        or not message_id
        or len(message_id) > MAX_MESSAGE_ID_LENGTH
        or type(message_type) is not int
    ):
        raise _bad_header(message_type, message_id)
    try:
        if message_type in (CALL, SEND):
            return _parse_action_frame(array, message_id, message_type)
        if message_type == CALLRESULT:
            return _parse_result_frame(array, message_id)
        if message_type in (CALLERROR, CALLRESULTERROR):
            return _parse_error_frame(array, message_id, message_type)
    except FrameError as exc:
        exc.message_type = message_type
        raise
    raise FrameError(
        ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED,
        f"message type {message_type} is not one of 2 (CALL), 3, 4, 5 or 6 (SEND)",
        message_id,
        message_type=message_type,
        kind="unknown_message_type",
    )


#: The start of a frame, as far as it can be read without a JSON parser: `[<type>, "<id>",`,
#: within the first `_HEAD_CHARS` characters.  An id with escapes is not read this way (it is
#: rare, and "-1" is then the honest answer).
_HEAD_CHARS = 300
_JSON_SPACE = "[ \t\n\r]*"
_FRAME_HEAD = re.compile(
    rf"{_JSON_SPACE}\[{_JSON_SPACE}([0-9]{{1,3}}){_JSON_SPACE},{_JSON_SPACE}"
    rf'"([^"\\\x00-\x1f]{{0,255}})"{_JSON_SPACE}[,\]]'
)


def _unreadable_json(text: str | bytes, reason: str) -> FrameError:
    """The error for text that is not JSON.  When the frame's head still shows a message type
    and an id (`[2, "n1", "Heartbeat", {` cut short), the id is read from there, so the sender
    gets its CALLERROR (FormatViolation) at once instead of waiting for its timeout."""
    head = text[:_HEAD_CHARS]
    if isinstance(head, bytes):
        head = head.decode("utf-8", "replace")
    match = _FRAME_HEAD.match(head)
    if match is None:
        return FrameError(
            ErrorCode.RPC_FRAMEWORK_ERROR,
            f"the message is not valid JSON and its message id cannot be read: {reason}",
            kind="not_json",
        )
    return FrameError(
        ErrorCode.FORMAT_VIOLATION,
        f"the message is not valid JSON: {reason}",
        match.group(2),
        message_type=int(match.group(1)),
        kind="not_json",
    )


def _not_a_frame(value: Any) -> FrameError:
    if type(value) is not list:
        return FrameError(
            ErrorCode.RPC_FRAMEWORK_ERROR,
            f"an OCPP-J frame is a JSON array, this message is a JSON {_json_type(value)}",
            kind="not_array",
        )
    message_type = value[0] if value and type(value[0]) is int else None
    return FrameError(
        ErrorCode.RPC_FRAMEWORK_ERROR,
        f"an OCPP-J frame is a JSON array of 3 to 5 elements, this one has {len(value)}",
        message_type=message_type,
        kind="bad_message_id",
    )


def _bad_header(message_type: Any, message_id: Any) -> FrameError:
    """What is wrong with a frame's type number or message id (one of them is).

    An id that is a string can be read even when it breaks OCPP-J (empty, or longer than 36
    characters): the CALLERROR echoes it, FormatViolation, because the CALLERROR's id is what
    lets the sender match the answer to what it sent.  An id that is no string at all cannot
    be read: RpcFrameworkError, to id "-1".
    """
    readable_type = message_type if type(message_type) is int else None
    if type(message_id) is not str:
        return FrameError(
            ErrorCode.RPC_FRAMEWORK_ERROR,
            f"the message id is a JSON {_json_type(message_id)}, not a string of 1 to 36 "
            "characters",
            message_type=readable_type,
            kind="bad_message_id",
        )
    if not message_id:
        return FrameError(
            ErrorCode.FORMAT_VIOLATION,
            "the message id is an empty string, not a string of 1 to 36 characters",
            message_id,
            message_type=readable_type,
            kind="bad_message_id",
        )
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        return FrameError(
            ErrorCode.FORMAT_VIOLATION,
            f"the message id has {len(message_id)} characters, at most 36 are allowed",
            message_id,
            message_type=readable_type,
            kind="message_id_too_long",
        )
    return FrameError(
        ErrorCode.RPC_FRAMEWORK_ERROR,
        f"the message type is a JSON {_json_type(message_type)}, not an integer",
        message_id,
        kind="bad_message_type",
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _parse_action_frame(array: list[Any], message_id: str, message_type: int) -> Call | Send:
    name = "CALL" if message_type == CALL else "SEND"
    action = array[2] if len(array) > 2 else None
    if not isinstance(action, str) or not action:
        raise FrameError(
            ErrorCode.RPC_FRAMEWORK_ERROR, f"the {name} has no action name", message_id
        )
    if len(array) != 4:
        raise FrameError(
            ErrorCode.RPC_FRAMEWORK_ERROR,
            f"a {name} has 4 elements, this one has {len(array)}",
            message_id,
            action,
        )
    payload = array[3]
    if not isinstance(payload, dict):
        raise FrameError(
            ErrorCode.FORMAT_VIOLATION,
            f"the {action} payload is not a JSON object",
            message_id,
            action,
            kind="bad_payload",
        )
    if message_type == CALL:
        return Call(message_id, action, payload)
    return Send(message_id, action, payload)


def _parse_result_frame(array: list[Any], message_id: str) -> CallResult:
    if len(array) != 3:
        raise FrameError(
            ErrorCode.RPC_FRAMEWORK_ERROR,
            f"a CALLRESULT has 3 elements, this one has {len(array)}",
            message_id,
        )
    payload = array[2]
    if not isinstance(payload, dict):
        raise FrameError(
            ErrorCode.FORMAT_VIOLATION,
            "the CALLRESULT payload is not a JSON object",
            message_id,
            kind="bad_payload",
        )
    return CallResult(message_id, payload)


def _parse_error_frame(
    array: list[Any], message_id: str, message_type: int
) -> CallError | CallResultError:
    name = "CALLERROR" if message_type == CALLERROR else "CALLRESULTERROR"
    if len(array) != 5:
        raise FrameError(
            ErrorCode.RPC_FRAMEWORK_ERROR,
            f"a {name} has 5 elements, this one has {len(array)}",
            message_id,
        )
    _, _, code, description, details = array
    if not isinstance(code, str) or not isinstance(description, str):
        raise FrameError(
            ErrorCode.FORMAT_VIOLATION,
            f"the {name} error code and description must be strings",
            message_id,
        )
    if not isinstance(details, dict):
        raise FrameError(
            ErrorCode.FORMAT_VIOLATION,
            f"the {name} details are not a JSON object",
            message_id,
            kind="bad_payload",
        )
    if message_type == CALLERROR:
        return CallError(message_id, code, description, details)
    return CallResultError(message_id, code, description, details)
