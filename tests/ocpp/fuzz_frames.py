"""Hypothesis strategies for OCPP-J frames, good and bad, and the oracle their answers must meet.

Shared by the property-based tests of the RPC layer (`tests/ocpp/test_rpc_fuzz.py`) and of a
running station (`tests/transport/test_station_fuzz.py`).  The frames mix valid ones, valid ones
mutated one element or a few characters at a time, random JSON, random text and random bytes,
with message ids of every JSON type and of every length around the 36-character limit.

The oracle reads the received text with the standard library's `json`, not with the parser
under test, to say which message id the answer must carry.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from fleetsim.simulator.ocpp import CallError, CallResult, ErrorCode, Frame, parse


def fuzz_settings(max_examples: int) -> settings:
    """The settings of every fuzz test: `max_examples` examples, reproducible in CI
    (`derandomize`), no per-example deadline (the machine may be busy), no example database
    carrying state from one run to the next."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


KNOWN_CODES = frozenset(code.value for code in ErrorCode)
T0 = "2026-01-15T06:00:00Z"

#: Valid frames the CSMS may send a station, and answers of every kind.
GET_VARIABLES = {
    "getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    ]
}
VALID_ARRAYS: list[list[Any]] = [
    [2, "g1", "GetVariables", GET_VARIABLES],
    [2, "0f8fad5b-d9cb-469f-a165-70867728950e", "GetVariables", GET_VARIABLES],
    [2, "h1", "Heartbeat", {}],  # valid framing, but a station never receives a Heartbeat
    [2, "c1", "ClearCache", {}],
    [3, "1", {"currentTime": T0}],
    [3, "2", {}],
    [4, "1", "InternalError", "database is down", {}],
    [5, "1", "FormatViolation", "unknown field", {}],
    [6, "s1", "NotifyPeriodicEventStream", {"id": 1, "pending": 0, "basetime": T0, "data": []}],
]

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=6,
)
#: Message ids of every type, and strings of every length up to well past 36.
MESSAGE_IDS = st.one_of(
    st.text(min_size=0, max_size=50),
    st.text(alphabet="ab-1", min_size=35, max_size=38),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
MESSAGE_TYPES = st.one_of(
    st.integers(min_value=-1, max_value=8), st.sampled_from(["2", 2.0, True, None, [2]])
)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@st.composite
def mutated_array(draw: st.DrawFn) -> str:
    """A valid frame with one element replaced, removed or added."""
    array = list(draw(st.sampled_from(VALID_ARRAYS)))
    how = draw(st.sampled_from(["id", "type", "element", "drop", "add"]))
    if how == "id":
        array[1] = draw(MESSAGE_IDS)
    elif how == "type":
        array[0] = draw(MESSAGE_TYPES)
    elif how == "element":
        array[draw(st.integers(0, len(array) - 1))] = draw(JSON_VALUES)
    elif how == "drop":
        del array[draw(st.integers(0, len(array) - 1))]
    else:
        array.insert(draw(st.integers(0, len(array))), draw(JSON_VALUES))
    return _dumps(array)


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    """A valid frame's text cut short, or with characters inserted or deleted."""
    text = _dumps(draw(st.sampled_from(VALID_ARRAYS)))
    at = draw(st.integers(0, len(text)))
    how = draw(st.sampled_from(["cut", "insert", "delete"]))
    if how == "cut":
        return text[:at]
    if how == "insert":
        return text[:at] + draw(st.text(min_size=1, max_size=3)) + text[at:]
    return text[:at] + text[at + draw(st.integers(1, 4)) :]


#: Any text or bytes a peer could send in one WebSocket message.
FRAMES: st.SearchStrategy[str | bytes] = st.one_of(
    st.sampled_from([_dumps(array) for array in VALID_ARRAYS]),
    mutated_array(),
    mutated_array(),
    mutated_text(),
    JSON_VALUES.map(_dumps),
    st.text(max_size=60),
    st.binary(max_size=60),
)


def variants(text: str | bytes) -> list[str | bytes]:
    """`text` and three frames made from it without drawing again: cut at a half and at two
    thirds (a frame cut short in the network), and twice in a row (two frames in one message).
    Drawing a frame costs far more than throwing it, so each drawn frame is thrown four times.
    """
    length = len(text)
    return [text, text[: length // 2], text[: 2 * length // 3], text + text]


#: How much of a frame that is not JSON the parser reads for its type and id.
HEAD_CHARS = 300
#: What the parser may read of a frame's head when the rest is not JSON: `[<type>, "<id>",`.
_JSON_SPACE = "[ \t\n\r]*"
_HEAD = re.compile(
    rf"{_JSON_SPACE}\[{_JSON_SPACE}([0-9]{{1,3}}){_JSON_SPACE},{_JSON_SPACE}"
    rf'"([^"\\\x00-\x1f]{{0,255}})"{_JSON_SPACE}[,\]]'
)


def readable_head(text: str | bytes) -> tuple[Any, Any] | None:
    """(message type, message id) as the standard library reads them, or None when the text
    is not a JSON array of at least two elements."""
    try:
        # Strict UTF-8 first: `json.loads` would also take bytes in UTF-16 or UTF-32.
        value = json.loads(text.decode() if isinstance(text, bytes) else text)
    except (ValueError, RecursionError):
        return None
    if type(value) is not list or len(value) < 2:
        return None
    return value[0], value[1]


def usable_id(message_id: Any) -> bool:
    return type(message_id) is str and 0 < len(message_id) <= 36


def check_answer(received: str | bytes, answer: str) -> Frame:
    """Assert that `answer`, sent in reply to `received`, is a valid OCPP-J frame: a CALLRESULT,
    or a CALLERROR with a code OCPP-J defines, to the received frame's message id when it could
    be read and to "-1" when it could not; return it.

    An id that could be read but breaks OCPP-J itself (empty, over 36 characters) is echoed as
    it came, so the sender can match the answer; the rest of that answer must still be valid.
    """
    array = json.loads(answer)
    echoed_invalid_id = (
        type(array) is list and len(array) > 1 and type(array[1]) is str and not usable_id(array[1])
    )
    if echoed_invalid_id:
        frame = parse(json.dumps([array[0], "x", *array[2:]]))
        frame = dataclasses.replace(frame, message_id=array[1])
    else:
        frame = parse(answer)  # raises if the answer itself is not a valid frame
    assert isinstance(frame, (CallResult, CallError)), answer
    head = readable_head(received)
    if isinstance(frame, CallResult):
        assert head is not None and head[0] == 2 and usable_id(head[1]), (received, answer)
        assert frame.message_id == head[1]
        return frame
    assert frame.code in KNOWN_CODES, answer
    assert len(frame.description) <= 255
    assert frame.details == {}
    if head is not None:
        expected = head[1] if type(head[1]) is str else "-1"
        assert frame.message_id == expected, (received, answer)
        if not usable_id(head[1]):
            assert frame.code == ("FormatViolation" if expected != "-1" else "RpcFrameworkError")
    elif frame.message_id != "-1":
        # Not JSON, but the frame's head showed its id: it is echoed.
        text = received if isinstance(received, str) else received.decode("utf-8", "replace")
        match = _HEAD.match(text[:HEAD_CHARS])
        assert match is not None and match.group(2) == frame.message_id, (received, answer)
        assert frame.code == "FormatViolation"
    else:
        assert frame.code == "RpcFrameworkError", answer
    return frame


def may_go_unanswered(received: str | bytes) -> bool:
    """Whether `received` may get no answer: an answer (CALLRESULT, CALLERROR,
    CALLRESULTERROR) or a SEND, as far as its type can be read; those are never answered."""
    head = readable_head(received)
    if head is not None:
        return type(head[0]) is int and head[0] in (3, 4, 5, 6)
    text = received if isinstance(received, str) else received.decode("utf-8", "replace")
    match = _HEAD.match(text[:HEAD_CHARS])
    if match is not None:
        return int(match.group(1)) in (3, 4, 5, 6)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return False
    # A short array whose type can be read, e.g. [6].
    return type(value) is list and len(value) == 1 and value[0] in (3, 4, 5, 6)
