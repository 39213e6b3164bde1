"""Do a sweep's local worker processes outlive a driver killed with kill -9? Measured, with and without
the workers' own watch on their parent (hdetach_np.training.sweep.stopping._end_with_driver).

For each mode: start a driver process running a 4-run sweep (copying, runs of about 10 s) on 2 local
workers, wait --wait seconds, list the driver's child processes, SIGKILL the driver, and time how long
the children stay alive (up to --limit seconds; the ones left then are killed). "without watch" runs
the same sweep with the watch switched off (the workers run the body of the worker function, without
the watch, and joblib's initializer of the workers does nothing), which is how joblib's workers behave
on their own.

Run from the repository root (Linux: reads /proc):

    python benchmarks/check_orphans.py
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRIVER = """
import sys
sys.path.insert(0, {root!r})
from hdetach_np.training import sweep
from hdetach_np.training.sweep import execution
if {no_watch}:
    def execute_without_watch(*args):  # execute's body, without the watch on the parent (driver_pid)
        return execution._execute(*args[:6], None)
    # replaced where run_many reads them: the function it sends to the workers, and their initializer
    execution.execute = execute_without_watch
    execution._local_worker = lambda driver_pid: None
base = dict(task="copying", delay=2, hidden=8, n_train=200, n_valid=50, iterations_per_epoch=100, epochs=8,
            batch_size=10, one_hot=True, anneal_p=0)
sweep.run_sweep({out!r}, base, {{"seed": [0, 1, 2, 3]}}, workers=2, say=print)
"""


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wait", type=float, default=4.0, help="seconds between start and kill")
    p.add_argument("--limit", type=float, default=120.0, help="seconds to wait for the children to end")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for mode, no_watch in (("without watch", True), ("with watch", False)):
            code = DRIVER.format(root=str(ROOT), no_watch=no_watch, out=str(Path(tmp) / mode.replace(" ", "-")))
            proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(args.wait)
            kids = children(proc.pid)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            t0 = time.monotonic()
            while any(alive(k) for k in kids) and time.monotonic() - t0 < args.limit:
                time.sleep(0.05)
            left = [k for k in kids if alive(k)]
            if left:
                print(f"{mode}: {len(left)} of {len(kids)} child processes still alive "
                      f"{args.limit:.0f} s after the kill")
                for k in left:
                    os.kill(k, signal.SIGKILL)
            else:
                print(f"{mode}: all {len(kids)} child processes gone {time.monotonic() - t0:.2f} s after the kill")


if __name__ == "__main__":
    main()
