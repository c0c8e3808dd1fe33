"""What a fleet process loads at start: not the X.509 library, which only certificate work needs.

`cryptography` costs every process that imports it about 12 MB of memory, which a fleet of
10,000 stations would see as 1.2 KB per station; the certificate code imports it where it handles
a certificate.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_fleet_process_starts_without_the_x509_library() -> None:
    probe = (
        "import sys; import fleetsim.cli.main, fleetsim.simulator.run, fleetsim.simulator.csms; "
        "import fleetsim.simulator.station.registry; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'cryptography'); "
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == "", f"cryptography loaded at start: {result.stdout.strip()}"
