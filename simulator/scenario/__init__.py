"""The scenario file: what a run simulates, as pydantic models, and how YAML becomes one.

A scenario is the whole input of a run apart from a few command-line flags, so everything here is
validated before a single station connects: a typo found after ten thousand stations have booted
wastes a load test.  Every model forbids unknown keys (a misspelt optional key would otherwise be
ignored silently) and is frozen, because the fleet shares one scenario across all stations.

Errors point at the file, the line and the field: `load_scenario` parses the YAML once, keeps the
node tree for its line marks, and maps each pydantic error location (`stations.evses[1].phases`)
back to the line that holds it.  An unknown key is reported on its own line; a missing key, or a
problem with a whole section, on the line of the key that opens the section, because that is
where a reader adds or fixes it.

The field descriptions are the reference documentation: `fleetsim schema` prints them as a JSON
Schema that editors use for completion and hover help.

One module per section of the file: `csms`, `stations`, `sites`, `ev_fleet`, `grid`,
`embedded_csms` and `thresholds`; `root` holds `Scenario` itself, with the top-level run settings
and the rules that span sections. Around them: `base` (the model config every model shares, and how
validators report problems), `patterns` (the `{index}` format strings of ids and tokens), `ranges`
(the intervals sessions draw from), `errors` (`ScenarioError` and the wording of pydantic's
errors), `loader` (YAML with line marks) and `schema` (the JSON Schema).
"""

from .csms import CsmsSettings
from .embedded_csms import EmbeddedCsmsSettings
from .errors import ScenarioError
from .ev_fleet import EvFleetSettings, IdTokenPool
from .firmware import FirmwareRolloutSettings, FirmwareSettings
from .grid import DerEventSpec, FrequencyEventSpec, GridSettings
from .loader import load_scenario
from .ranges import Range, SocRange
from .root import Scenario
from .schema import scenario_json_schema
from .sites import SiteKind, SiteSpec
from .stations import ConnectorStatusReport, ConnectorType, EvseSpec, StationsSettings, TxStartPoint
from .thresholds import ThresholdSpec

__all__ = [
    "ConnectorStatusReport",
    "ConnectorType",
    "CsmsSettings",
    "DerEventSpec",
    "EmbeddedCsmsSettings",
    "EvFleetSettings",
    "EvseSpec",
    "FirmwareRolloutSettings",
    "FirmwareSettings",
    "FrequencyEventSpec",
    "GridSettings",
    "IdTokenPool",
    "Range",
    "Scenario",
    "ScenarioError",
    "SiteKind",
    "SiteSpec",
    "SocRange",
    "StationsSettings",
    "ThresholdSpec",
    "TxStartPoint",
    "load_scenario",
    "scenario_json_schema",
]
