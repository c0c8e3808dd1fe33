"""Run the fleetsim of a given checkout: this one, or an earlier commit's beside it.

Installed, fleetsim's code folders are the packages `fleetsim.cli`, `fleetsim.simulator`,
`fleetsim.ev_models` and `fleetsim.grid_models` (pyproject.toml's `package-dir`); in a checkout
they are plain folders, and the editable install maps the namespace to one checkout only.  So
that a benchmark runs the code of the checkout it names, whatever is installed, `environment`
links that checkout's folders under `ROOT/.namespace/fleetsim/` and puts `ROOT/.namespace` first
on PYTHONPATH, which the run's own child processes (`--workers`) inherit.  A checkout from before
the namespace runs as `python -m cli` from its root, as it did then.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

FOLDERS = ("cli", "simulator", "ev_models", "grid_models")


def uses_namespace(root: Path) -> bool:
    """True when `root` installs its folders under `fleetsim` (its pyproject maps them)."""
    pyproject = root / "pyproject.toml"
    return pyproject.exists() and '"fleetsim.cli" = "cli"' in pyproject.read_text()


def command(root: Path) -> list[str]:
    """The start of the command line that runs `fleetsim` from `root`."""
    return [sys.executable, "-m", "fleetsim.cli" if uses_namespace(root) else "cli"]


def environment(root: Path, **extra: str) -> dict[str, str]:
    """The environment for a process that must run `root`'s fleetsim."""
    path = [str(root)]
    if uses_namespace(root):
        namespace = root / ".namespace" / "fleetsim"
        namespace.mkdir(parents=True, exist_ok=True)
        for folder in FOLDERS:
            link = namespace / folder
            if not link.is_symlink():
                link.symlink_to(root / folder, target_is_directory=True)
        path.insert(0, str(namespace.parent))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), **extra}
