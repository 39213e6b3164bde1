"""Where the runs of a sweep are while they train, read from their folders by a watching thread.

    with RunWatcher(Path("runs/demo/runs"), total=6000, say=print, every=30.0):
        run_sweep("runs/demo/runs", base, grid, workers=2)

`run_many` says one line when a run ends. The worker processes train on their own, so the driver
learns nothing while a run is under way. `RunWatcher` fills that gap from the files the workers
write: every `every` seconds it reads each run's history.jsonl and says where each run is.
`hdetach-np demo` uses it for its copying stage.
"""

from __future__ import annotations

import threading
from pathlib import Path

from .. import runs


class RunWatcher:
    """A context manager: while its block runs, a background thread says every `every` seconds
    where each run in the sweep folder `root` is.

    What it reads: every folder in `root` with a history.jsonl (runs.HISTORY), and in it the last
    validation record (split "valid"). A run with no validation record yet, or whose history cannot
    be read at that moment, is left out.
    What it says: one line through `say` (e.g. print), runs in name order, joined by "; ", such as
    "  p=0,seed=0 at iteration 400/6000 (valid accuracy 0.214); p=0.5,seed=0 at iteration 300/6000
    (valid accuracy 0.187)", where 6000 is `total` (the iterations of each run); no line while no
    run has a validation record. The first line comes `every` seconds after the block starts;
    leaving the block waits for the thread, so nothing is said after it.
    """

    def __init__(self, root, total: int, say, every: float = 30.0):
        self.root, self.total, self.say, self.every = Path(root), total, say, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="sweep-progress", daemon=True)

    def _loop(self):
        while not self.stop.wait(self.every):
            parts = []
            found = sorted(p for p in self.root.iterdir() if (p / runs.HISTORY).is_file()) if self.root.is_dir() else []
            for run in found:
                try:
                    evals = [r for r in runs.read_history(run) if r.get("split") == "valid"]
                except (OSError, ValueError):
                    continue
                if evals:
                    parts.append(f"{run.name} at iteration {evals[-1]['iteration']}/{self.total} "
                                 f"(valid accuracy {evals[-1]['accuracy']:.3f})")
            if parts:
                self.say("  " + "; ".join(parts))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
