"""The CSMS-initiated actions a station answers: the union of the blocks' `HANDLERS`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..link import Answer
from . import availability, data_transfer, provisioning, remote_control, smart_charging

if TYPE_CHECKING:
    from .station import Station

__all__ = ["HANDLERS"]

Handler = Callable[["Station", Mapping[str, Any]], Answer]

HANDLERS: dict[str, Handler] = {
    **provisioning.HANDLERS,
    **availability.HANDLERS,
    **remote_control.HANDLERS,
    **data_transfer.HANDLERS,
    **smart_charging.HANDLERS,
}
