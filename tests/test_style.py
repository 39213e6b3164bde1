"""Conventions: `ruff check .` is clean (rules in pyproject.toml), and the package ships its type
marker. The ruff test is skipped, with the reason, when ruff is not installed (it is in the test extra)."""

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    pytest.importorskip("ruff", reason='ruff is not installed: pip install -e ".[test]"')
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, ("ruff check . found problems (`ruff check --fix .` fixes some):\n"
                                  f"{proc.stdout}{proc.stderr}")


def test_package_ships_its_py_typed_marker():
    assert (ROOT / "hdetach_np" / "py.typed").is_file()
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    assert "py.typed" in cfg.get("options.package_data", "hdetach_np", fallback="")
