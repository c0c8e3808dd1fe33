"""The five OCPP-J frame types, and how they are read from and written to WebSocket text.

A frame is a JSON array whose first element is the message type number:

    CALL             [2, messageId, action, payload]
    CALLRESULT       [3, messageId, payload]
    CALLERROR        [4, messageId, errorCode, errorDescription, errorDetails]
    CALLRESULTERROR  [5, messageId, errorCode, errorDescription, errorDetails]   (OCPP 2.1)
    SEND             [6, messageId, action, payload]                            (OCPP 2.1)

`parse` checks the structure only; payloads are checked against the schemas by `schemas.py`.
A frame that breaks the structure raises `FrameError` with the code the receiver answers with,
and with the message id when it could still be read (a frame without one cannot be answered).
"""

from __future__ import annotations

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
    """Read one frame from WebSocket text; raise `FrameError` when it is not a valid frame."""
    try:
        array = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise FrameError(ErrorCode.RPC_FRAMEWORK_ERROR, f"not valid JSON: {exc}") from None
    if not isinstance(array, list) or len(array) < 2:
        raise FrameError(
            ErrorCode.RPC_FRAMEWORK_ERROR, "an OCPP-J frame is a JSON array of 3 to 5 elements"
        )
    message_id = array[1]
    if not isinstance(message_id, str) or not message_id:
        raise FrameError(ErrorCode.RPC_FRAMEWORK_ERROR, "the message id is not a non-empty string")
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise FrameError(
            ErrorCode.RPC_FRAMEWORK_ERROR,
            f"the message id has {len(message_id)} characters, at most 36 are allowed",
        )
    message_type = array[0]
    if type(message_type) is not int:
        raise FrameError(
            ErrorCode.RPC_FRAMEWORK_ERROR, "the message type is not an integer", message_id
        )
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
    )


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
            ErrorCode.FORMAT_VIOLATION, "the CALLRESULT payload is not a JSON object", message_id
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
            ErrorCode.FORMAT_VIOLATION, f"the {name} details are not a JSON object", message_id
        )
    if message_type == CALLERROR:
        return CallError(message_id, code, description, details)
    return CallResultError(message_id, code, description, details)
