"""The package as users get it: a built wheel, installed into a fresh virtual environment,
runs the command line with every bundled preset inside it.

The venv is new and pip installs the wheel into it with the constraints; the dependencies
it resolves are found already installed, in the project's environment that a path file
adds, so the test needs no second 700 MB torch. What it checks is what a wheel can get
wrong: its metadata, the files it ships and the entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

import backprop_tui
from backprop_tui.engine import bundled_presets

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin folder of a fresh venv with the project's wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp / "dist"), str(ROOT)], check=True, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("backprop_tui-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"backprop_tui/presets/{name}.toml" for name in bundled_presets()} <= names
    assert "backprop_tui/ui/app.tcss" in names

    venv.create(tmp / "venv", with_pip=False)
    python = tmp / "venv" / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # the dependencies, after the venv's own site-packages (where the wheel goes)
    Path(site, "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # with the constraints, as the README installs: pip finds every dependency already there
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "-c", str(ROOT / "constraints.txt"), str(wheel)], check=True, cwd=tmp)
    return tmp / "venv" / "bin"


def _run(bin_dir: Path, *args: str) -> str:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([str(bin_dir / "backprop-tui"), *args], capture_output=True, text=True,
                            cwd=bin_dir.parent, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_installed_wheel_is_the_one_that_runs(installed):
    where = subprocess.run([str(installed / "python"), "-c", "import backprop_tui; print(backprop_tui.__file__)"],
                           check=True, capture_output=True, text=True, cwd=installed.parent).stdout
    assert where.startswith(str(installed.parent)) and not where.startswith(str(ROOT))


def test_version_presets_and_show_from_the_wheel(installed):
    assert _run(installed, "--version").split() == ["backprop-tui", backprop_tui.__version__]
    listed = _run(installed, "presets")
    assert all(name in listed for name in bundled_presets())
    shown = json.loads(_run(installed, "show", "scalar_chain", "--format", "json"))
    nodes = {node["name"]: node for node in shown["nodes"]}
    assert shown["output"] == "f" and nodes["f"]["value"] == 81.0 and nodes["x"]["grad"] == 216.0
