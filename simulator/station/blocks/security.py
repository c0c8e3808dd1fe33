"""Block A, security: what the station tells a CSMS about how it connects.

SecurityCtrlr reports the security profile of the connection the station really opens (1:
HTTP Basic auth over ws://, 2: TLS over wss://), the organization of its certificates and how
many it holds (none: the station keeps no certificate store).  All are read-only facts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..config import StationConfig
from ..core import Block
from ..device_model import VariableSpec

__all__ = ["BLOCK"]


def _security_profile(station: Any) -> str:
    return str(station.security_profile)


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    security = "SecurityCtrlr"
    yield VariableSpec(
        security, "SecurityProfile", "integer", "", "ReadOnly", reader=_security_profile
    )
    yield VariableSpec(security, "OrganizationName", "string", config.vendor, "ReadOnly")
    yield VariableSpec(security, "CertificateEntries", "integer", "0", "ReadOnly")


BLOCK: Block[None] = Block(letter="A", name="security", variables=_variables)
