"""Block P, data transfer (P01-P02): vendor-specific messages.

fleetsim stations know no vendor extensions, so any other vendor gets UnknownVendorId, as the
basic implementation set asks; their own vendor id gets UnknownMessageId for a message id and
Accepted for a bare DataTransfer, which CSMS teams use as a ping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..link import Answer

if TYPE_CHECKING:
    from .station import Station

__all__ = ["HANDLERS"]


def data_transfer(station: Station, payload: Mapping[str, Any]) -> Answer:
    if payload["vendorId"] != station.config.vendor:
        return Answer({"status": "UnknownVendorId"})
    if payload.get("messageId") is not None:
        return Answer({"status": "UnknownMessageId"})
    return Answer({"status": "Accepted"})


HANDLERS = {"DataTransfer": data_transfer}
