"""The `fleetsim` command line: parse flags, load the scenario, call the engine, pick an exit code.

Everything a command does beyond that belongs in `simulator/`, so that tests and other programs
can do the same without a terminal.
"""

from .exit_codes import ExitCode
from .main import app, main

__all__ = ["ExitCode", "app", "main"]
