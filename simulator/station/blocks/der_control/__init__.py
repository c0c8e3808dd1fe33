"""Block R, DER control: the grid-support settings a station holds and acts on (OCPP 2.1).

The CSMS sets DER controls with SetDERControl (R04): curves (VoltVar, FreqWatt, VoltWatt, the
ride-through and trip curves, ...) and settings (FreqDroop, LimitMaxDischarge, EnterService,
Gradients, fixed power factor or var), each a default or scheduled (startTime, duration), with
a priority (0 is the highest).  GetDERControl reads them back in ReportDERControl messages,
ClearDERControl removes them.  The controls that give active power act on the EVs through the
block's `shape_limit` (`acting`): curves cap the power at the grid's present frequency and
voltage, a must-trip curve crossed for its time stops the output until the station re-enters
service; NotifyDERStartStop tells the CSMS.  Grid events themselves are reported as before
(R05, `alarms`): NotifyDERAlarm in 2.1, a NotifyEvent in 2.0.1.

The block is a package: `store` holds the controls and decides which is in force, `curves` is
the arithmetic, `acting` changes the EVs' power and keeps the timer, `handlers` answers the
CSMS, `alarms` reports grid events.
"""

from __future__ import annotations

from ...core import Block, GridEvent
from .acting import shape_limit
from .alarms import der_alarm_payload, der_event_data
from .handlers import clear_der_control, get_der_control, grid_event, set_der_control, variables
from .store import DerControls

__all__ = ["BLOCK", "DerControls", "der_alarm_payload", "der_event_data"]

BLOCK: Block[DerControls] = Block(
    letter="R",
    name="der_control",
    handlers={
        "SetDERControl": set_der_control,
        "GetDERControl": get_der_control,
        "ClearDERControl": clear_der_control,
    },
    follow_ups={"GetDERControl": ("ReportDERControl",)},
    variables=variables,
    reactions={GridEvent: grid_event},
    new_state=DerControls,
    needs_state=True,
    shape_limit=shape_limit,
)
