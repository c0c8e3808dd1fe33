"""What a run tells its user: the live progress line and the end-of-run summary."""

from .progress import ProgressLine
from .summary import build_summary, render_summary, write_summary_json

__all__ = ["ProgressLine", "build_summary", "render_summary", "write_summary_json"]
