"""`FrameTrace`: every frame of every station as JSON lines, for `--trace PATH`.

One line a frame: `{"time": "...", "station": "CP0001", "direction": "sent", "frame": [...]}`.
`time` is the simulated OCPP time at which the frame crossed the link.  A received frame that is
not valid JSON is written as a string under `text` instead of `frame`, so the trace keeps what
the CSMS really sent.
"""

from __future__ import annotations

from typing import IO, Callable

import orjson

__all__ = ["FrameTrace"]


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
            orjson.loads(text)
            record["frame"] = orjson.Fragment(text)
        except orjson.JSONDecodeError:
            record["text"] = text if isinstance(text, str) else text.decode("utf-8", "replace")
        self._stream.write(orjson.dumps(record) + b"\n")

    def close(self) -> None:
        self._stream.close()
