"""RPC errors of OCPP-J: which CALLERROR code a failure becomes, and why.

`RpcError` is raised wherever a payload or frame breaks the rules; whoever answers the CALL turns
it into a CALLERROR frame with the same code and description.  `CallErrorReceived` is the other
direction: the peer answered our CALL with a CALLERROR.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Mapping

__all__ = [
    "MALFORMED_FRAME_KINDS",
    "UNREADABLE_MESSAGE_ID",
    "CallErrorReceived",
    "CallTimeout",
    "ErrorCode",
    "FrameError",
    "LinkClosed",
    "RpcError",
]


#: The message id of a CALLERROR answering a message whose own id cannot be read (OCPP-J 2.0.1
#: and 2.1, Part 4, CALLERROR: "When also the MessageId cannot be read, the CALLERROR SHALL
#: contain "-1" as MessageId").
UNREADABLE_MESSAGE_ID = "-1"

#: What can be wrong with a received frame, for counting (a metric label, so a short fixed list):
#: not_json: the text is not JSON (or not UTF-8); not_array: JSON, but not an array;
#: bad_message_id: no id, or one that is not a non-empty string; message_id_too_long: an id of
#: more than 36 characters; bad_message_type: the type is not an integer; unknown_message_type:
#: a type number this OCPP version does not have; bad_structure: the wrong number of elements,
#: or no action name; bad_payload: a payload or error details that are not a JSON object;
#: unknown_action: an action the version does not know; wrong_direction: an action only the
#: other side may send; schema: a payload that breaks the action's JSON schema.
MALFORMED_FRAME_KINDS = (
    "not_json",
    "not_array",
    "bad_message_id",
    "message_id_too_long",
    "bad_message_type",
    "unknown_message_type",
    "bad_structure",
    "bad_payload",
    "unknown_action",
    "wrong_direction",
    "schema",
)


class ErrorCode(StrEnum):
    """The CALLERROR codes OCPP-J 2.0.1/2.1 define (Part 4, RPC framework)."""

    FORMAT_VIOLATION = "FormatViolation"
    GENERIC_ERROR = "GenericError"
    INTERNAL_ERROR = "InternalError"
    MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"
    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    PROTOCOL_ERROR = "ProtocolError"
    RPC_FRAMEWORK_ERROR = "RpcFrameworkError"
    SECURITY_ERROR = "SecurityError"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"


class RpcError(Exception):
    """A failure that the side which received a CALL answers with a CALLERROR."""

    def __init__(
        self, code: ErrorCode, description: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code.value}: {description}")
        self.code = code
        # OCPP-J limits errorDescription to 255 characters.
        self.description = description[:255]
        self.details: Mapping[str, Any] = details or {}


class FrameError(RpcError):
    """A frame that cannot be read as OCPP-J.

    `message_id` is set when the id could still be read, so the receiver can answer with a
    CALLERROR to it; when it is None the answer goes to message id "-1", as OCPP-J says for a
    message whose id cannot be read.  `action` is set when the frame was a CALL whose action
    could be read, `message_type` when the type number could be read.  `kind` names what was
    wrong, from the short fixed list `MALFORMED_FRAME_KINDS`, for counting.
    """

    def __init__(
        self,
        code: ErrorCode,
        description: str,
        message_id: str | None = None,
        action: str | None = None,
        message_type: int | None = None,
        *,
        kind: str = "bad_structure",
    ) -> None:
        super().__init__(code, description)
        self.message_id = message_id
        self.action = action
        self.message_type = message_type
        self.kind = kind


class CallErrorReceived(Exception):
    """The peer answered our CALL with a CALLERROR (or a CALLRESULTERROR)."""

    def __init__(self, action: str, code: str, description: str) -> None:
        super().__init__(f"{action} was answered with CALLERROR {code}: {description}")
        self.action = action
        self.code = code
        self.description = description


class CallTimeout(Exception):
    """No answer to a CALL arrived within its timeout."""

    def __init__(self, action: str, timeout_s: float) -> None:
        super().__init__(f"no answer to {action} within {timeout_s:g} s")
        self.action = action
        self.timeout_s = timeout_s


class LinkClosed(Exception):
    """The connection under a link is gone; nothing more can be sent or received on it."""
