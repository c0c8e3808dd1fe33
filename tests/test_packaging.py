"""Installed, fleetsim is one namespace, `fleetsim`, and nothing else at the top of site-packages.

The repository keeps its code in the folders `cli/`, `simulator/`, `ev_models/` and
`grid_models/`; pyproject.toml maps them to `fleetsim.cli`, `fleetsim.simulator`, ... and lists
every package.  These tests build the wheel from the checkout, read what it holds, and run the
command line from the wheel alone, away from the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("cli", "simulator", "ev_models", "grid_models")


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _package_folders() -> dict[str, Path]:
    """`fleetsim.simulator.csms` -> simulator/csms/, for every folder holding code or data."""
    folders = {}
    for top in FOLDERS:
        for folder in [ROOT / top, *(ROOT / top).rglob("*")]:
            if not folder.is_dir() or folder.name == "__pycache__":
                continue
            if any(path.is_file() and path.suffix != ".pyc" for path in folder.iterdir()):
                dotted = ".".join(folder.relative_to(ROOT).parts)
                folders[f"fleetsim.{dotted}"] = folder
    return folders


def test_pyproject_lists_every_package_under_the_namespace() -> None:
    setuptools = _pyproject()["tool"]["setuptools"]  # type: ignore[index]
    assert setuptools["package-dir"] == {f"fleetsim.{top}": top for top in FOLDERS}
    listed = set(setuptools["packages"])
    found = set(_package_folders())
    assert not found - listed, f"add to pyproject.toml's packages: {sorted(found - listed)}"
    assert not listed - found, f"no such folder: {sorted(listed - found)}"
    assert _pyproject()["project"]["scripts"] == {"fleetsim": "fleetsim.cli.main:main"}  # type: ignore[index]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the checkout's packaged files with the venv's setuptools."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for top in FOLDERS:
        shutil.copytree(ROOT / top, source / top, ignore=shutil.ignore_patterns("__pycache__"))
    built = tmp_path_factory.mktemp("dist")
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    result = subprocess.run(
        [*pip_wheel, str(source), "--wheel-dir", str(built)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = built.glob("ocpp_fleetsim-*.whl")
    return path


def test_the_wheel_holds_the_namespace_and_nothing_beside_it(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"fleetsim"}
    expected = {
        f"fleetsim/{path.relative_to(ROOT).as_posix()}"
        for top in FOLDERS
        for path in (ROOT / top).rglob("*")
        if path.is_file() and path.suffix in (".py", ".yaml")
    }
    assert expected - set(names) == set(), "files left out of the wheel"
    assert "fleetsim/ev_models/data/catalogue.yaml" in names


@pytest.mark.slow
def test_the_command_line_runs_from_the_wheel_alone(wheel: Path, tmp_path: Path) -> None:
    """Unpacked into a folder of its own and run from elsewhere, the wheel validates a scenario,
    reading its EV catalogue from the package data; the modules come from the wheel, not the
    checkout."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import sys\n"
        "import fleetsim.cli.main, fleetsim.ev_models\n"
        "print(sys.modules['fleetsim.cli.main'].__file__)\n"
        "print(len(fleetsim.ev_models.load_catalogue()))\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=elsewhere,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    module_file, models = result.stdout.split()
    assert Path(module_file).is_relative_to(site)
    assert int(models) > 10
    validated = subprocess.run(
        [sys.executable, "-m", "fleetsim.cli", "validate", str(ROOT / "scenarios/depot-24h.yaml")],
        cwd=elsewhere,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
