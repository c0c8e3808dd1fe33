"""RPC errors of OCPP-J: which CALLERROR code a failure becomes, and why.

`RpcError` is raised wherever a payload or frame breaks the rules; whoever answers the CALL turns
it into a CALLERROR frame with the same code and description.  `CallErrorReceived` is the other
direction: the peer answered our CALL with a CALLERROR.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Mapping

__all__ = [
    "CallErrorReceived",
    "CallTimeout",
    "ErrorCode",
    "FrameError",
    "LinkClosed",
    "RpcError",
]


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

    `message_id` is set when the id could still be read, so the receiver can answer it with a
    CALLERROR; when it is None the frame cannot be answered and is counted and dropped.
    `action` is set when the frame was a CALL whose action could be read, `message_type` when
    the type number could be read.
    """

    def __init__(
        self,
        code: ErrorCode,
        description: str,
        message_id: str | None = None,
        action: str | None = None,
        message_type: int | None = None,
    ) -> None:
        super().__init__(code, description)
        self.message_id = message_id
        self.action = action
        self.message_type = message_type


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
