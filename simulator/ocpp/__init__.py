"""OCPP-J 2.1 and 2.0.1 without I/O: frames, schemas, RPC sessions and their errors.

Nothing here imports trio or station code (`tests/test_layering.py` checks), so the protocol can
be tested with plain strings and reused by the station, the transport and the embedded CSMS.
"""

from .actions import CSMS_INITIATED, SEND_ONLY, STATION_INITIATED
from .errors import (
    MALFORMED_FRAME_KINDS,
    UNREADABLE_MESSAGE_ID,
    CallErrorReceived,
    CallTimeout,
    ErrorCode,
    FrameError,
    LinkClosed,
    RpcError,
)
from .frames import Call, CallError, CallResult, CallResultError, Frame, Send, dump, parse
from .rpc import (
    BadFrame,
    CallAnswered,
    CallRejected,
    Event,
    IncomingCall,
    IncomingSend,
    InvalidAnswer,
    LateAnswer,
    LocalProtocolError,
    ResultRejected,
    RpcSession,
)
from .schemas import OCPP_VERSIONS, OcppVersion, SchemaSet, schema_set, subprotocol_for

__all__ = [
    "BadFrame",
    "CSMS_INITIATED",
    "Call",
    "CallAnswered",
    "CallError",
    "CallErrorReceived",
    "CallRejected",
    "CallResult",
    "CallResultError",
    "CallTimeout",
    "ErrorCode",
    "Event",
    "Frame",
    "FrameError",
    "IncomingCall",
    "IncomingSend",
    "InvalidAnswer",
    "LateAnswer",
    "LinkClosed",
    "LocalProtocolError",
    "MALFORMED_FRAME_KINDS",
    "OCPP_VERSIONS",
    "OcppVersion",
    "ResultRejected",
    "RpcError",
    "RpcSession",
    "SEND_ONLY",
    "STATION_INITIATED",
    "SchemaSet",
    "Send",
    "UNREADABLE_MESSAGE_ID",
    "dump",
    "parse",
    "schema_set",
    "subprotocol_for",
]
