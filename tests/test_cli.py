import subprocess
import sys

from hdetach_np.cli import main


def test_check_command_passes(capsys):
    assert main(["check", "--T", "3", "--H", "3"]) == 0
    out = capsys.readouterr().out
    assert "32 passed, 0 failed" in out and "FAIL" not in out


def test_check_bad_size(capsys):
    assert main(["check", "--T", "0"]) == 2
    assert "--T must be an integer >= 1, got 0" in capsys.readouterr().err


def test_check_bad_p(capsys):
    assert main(["check", "--p", "2"]) == 2
    assert "p must be in [0, 1], got 2.0" in capsys.readouterr().err


def test_module_entry_point_and_usage_error():
    r = subprocess.run([sys.executable, "-m", "hdetach_np", "nosuchcommand"], capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice" in r.stderr
