"""`FrameTrace`: every frame of every station as JSON lines, for `--trace PATH`.

One line a frame: `{"time": "...", "station": "CP0001", "direction": "sent", "frame": [...]}`.
`time` is the simulated OCPP time at which the frame crossed the link.  A received frame that is
not valid JSON is written as a string under `text` instead of `frame`, so the trace keeps what
the CSMS really sent.  Passwords a frame carries (SetVariables of
SecurityCtrlr.BasicAuthPassword, a network profile's basicAuthPassword) are written as
`"<redacted>"`: a trace is shared to debug a run, a password must not travel with it.
"""

from __future__ import annotations

from typing import IO, Any, Callable

import orjson

__all__ = ["REDACTED", "FrameTrace"]

REDACTED = "<redacted>"
#: What a frame that may carry a password contains (checked before parsing, so the other
#: frames are written as they came).
_PASSWORD_MARK = "asicAuthPassword"
_PASSWORD_MARK_BYTES = _PASSWORD_MARK.encode()


def _redacted(value: Any) -> Any:
    """`value` (a parsed frame or part of one) with every password replaced by REDACTED."""
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if not isinstance(value, dict):
        return value
    result = {key: _redacted(item) for key, item in value.items()}
    if "basicAuthPassword" in result:
        result["basicAuthPassword"] = REDACTED
    variable = result.get("variable")
    if (
        isinstance(variable, dict)
        and variable.get("name") == "BasicAuthPassword"
        and "attributeValue" in result
    ):
        result["attributeValue"] = REDACTED
    return result


class FrameTrace:
    def __init__(self, stream: IO[bytes], timestamp: Callable[[], str]) -> None:
        self._stream = stream
        self._timestamp = timestamp

    def write(self, station_id: str, direction: str, text: str | bytes) -> None:
        record: dict[str, object] = {
            "time": self._timestamp(),
            "station": station_id,
            "direction": direction,
        }
        try:
            frame = orjson.loads(text)
            marked = (
                _PASSWORD_MARK in text if isinstance(text, str) else _PASSWORD_MARK_BYTES in text
            )
            record["frame"] = _redacted(frame) if marked else orjson.Fragment(text)
        except orjson.JSONDecodeError:
            record["text"] = text if isinstance(text, str) else text.decode("utf-8", "replace")
        self._stream.write(orjson.dumps(record) + b"\n")

    def close(self) -> None:
        self._stream.close()
