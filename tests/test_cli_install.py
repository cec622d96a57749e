"""`pip install .` into a fresh virtual environment, then the console script as a user runs it:
`btc-depth --version`, `btc-depth sell 1 --source sim`, and `python -m main`, from a directory that is
not the checkout (so nothing is imported from the source tree by accident).

The checkout is copied first (tracked and new files, no caches or build output), so the build leaves
nothing behind in the work tree. pip fetches the build backend and the four runtime packages from the
package index as any user's `pip install .` does. Skipped only where a venv cannot be made."""
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".pytest_cache", "build", "*.egg-info", ".venv",
                                "venv")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("install")
    source = base / "src"
    shutil.copytree(ROOT, source, ignore=IGNORE)
    env_dir = base / "venv"
    try:
        venv.EnvBuilder(with_pip=True).create(env_dir)
    except Exception as exc:  # noqa: BLE001 - no ensurepip / no venv module here: nothing to test with
        pytest.skip(f"cannot create a virtual environment here: {exc}")
    bin_dir = env_dir / ("Scripts" if sys.platform == "win32" else "bin")
    result = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet",
                             "--disable-pip-version-check", str(source)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return bin_dir, base


def test_the_console_script_says_its_version(installed):
    bin_dir, base = installed
    from data_manager import __version__

    result = subprocess.run([str(bin_dir / "btc-depth"), "--version"], cwd=base, capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stdout) == (0, f"btc-depth {__version__}\n")


def test_the_console_script_answers_from_the_simulator(installed):
    bin_dir, base = installed
    result = subprocess.run([str(bin_dir / "btc-depth"), "sell", "1", "--source", "sim", "--brief"], cwd=base,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("SELL 1 BTC") and "cheapest split after fees" in result.stdout


def test_python_dash_m_runs_the_same_entry_and_ships_the_schema(installed):
    bin_dir, base = installed
    result = subprocess.run([str(bin_dir / "python"), "-m", "main", "--help"], cwd=base, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "exit codes" in result.stdout
    found = subprocess.run([str(bin_dir / "python"), "-c",
                            "import importlib.resources as r; print(r.files('l2_manager').joinpath('schema.json')"
                            ".is_file())"], cwd=base, capture_output=True, text=True, timeout=60)
    assert found.stdout.strip() == "True"
