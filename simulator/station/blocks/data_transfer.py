"""Block P, data transfer (P01-P02): vendor-specific messages.

fleetsim stations know no vendor extensions, so any other vendor gets UnknownVendorId, as the
basic implementation set asks; their own vendor id gets UnknownMessageId for a message id and
Accepted for a bare DataTransfer, which CSMS teams use as a ping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...link import Answer
from ..core import Block, StationCore

__all__ = ["BLOCK"]


def data_transfer(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    if payload["vendorId"] != station.config.vendor:
        return Answer({"status": "UnknownVendorId"})
    if payload.get("messageId") is not None:
        return Answer({"status": "UnknownMessageId"})
    return Answer({"status": "Accepted"})


BLOCK: Block[None] = Block(
    letter="P", name="data_transfer", handlers={"DataTransfer": data_transfer}
)
