"""What a run tells its user: the live progress line, the end-of-run summary with its verdicts
(thresholds, why no station was accepted), and the JUnit report."""

from .junit import junit_report, write_junit
from .progress import ProgressLine
from .summary import (
    build_summary,
    conclude,
    no_station_accepted,
    publish,
    render_summary,
    write_summary_json,
)

__all__ = [
    "ProgressLine",
    "build_summary",
    "conclude",
    "junit_report",
    "no_station_accepted",
    "publish",
    "render_summary",
    "write_junit",
    "write_summary_json",
]
