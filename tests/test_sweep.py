"""Sweeps (hdetach_np.training.sweep, `hdetach-np sweep`): grids, reuse, resume after kill -9, never deleting,
the Dask backend; and the report's statistics (hdetach_np.training.report)."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scipy.stats import mannwhitneyu

from hdetach_np.cli import main
from hdetach_np.cli.sweep import parse_grid, parse_seeds
from hdetach_np.training import report, runs, sweep

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(task="copying", delay=2, hidden=8, n_train=200, n_valid=50, iterations_per_epoch=10, epochs=3,
            batch_size=10, one_hot=True, anneal_p=0)
GRID = {"p": [0.0, 0.5], "seed": [0, 1]}
NAMES = ["p=0,seed=0", "p=0.5,seed=0", "p=0,seed=1", "p=0.5,seed=1"]
CLI = ["sweep", "copying", "--delay", "2", "--hidden", "8", "--n-train", "200", "--n-valid", "50", "--batch-size", "10",
       "--one-hot", "--anneal-p", "0", "--grid", "p=0,0.5", "--seeds", "0-1"]


def quiet(_):
    return None


def histories(folder, names=NAMES):
    """{name: history without the wall-clock fields} of runs in a sweep folder."""
    return {n: [{k: v for k, v in r.items() if k != "seconds"} for r in runs.read_history(Path(folder) / n)]
            for n in names}


def test_grid_runs_names_order_and_bad_keys():
    plan = sweep.grid_runs(TINY, GRID)
    assert [r.name for r in plan] == NAMES  # seeds interleaved: every setting at seed 0 first
    assert plan[1].point == {"p": 0.5, "seed": 0} and plan[1].config["p"] == 0.5 and plan[1].config["delay"] == 2
    with pytest.raises(ValueError, match="grid key 'hiden' is not a config key"):
        sweep.grid_runs(TINY, {"hiden": [8]})
    with pytest.raises(ValueError, match="non-empty list"):
        sweep.grid_runs(TINY, {"p": []})
    with pytest.raises(ValueError, match="config p must be"):
        sweep.grid_runs(TINY, {"p": [2.0]})
    assert parse_seeds("0-2,7") == [0, 1, 2, 7] and parse_seeds("4") == [4]
    assert parse_grid(["p=0,0.25", "one-hot=true,false", "perm_seed=none,3"]) == \
        {"p": [0.0, 0.25], "one_hot": [True, False], "perm_seed": [None, 3]}
    for bad, match in (("0-", "expected seeds"), ("3-1", "larger one"), ("1,1", "twice")):
        with pytest.raises(ValueError, match=match):
            parse_seeds(bad)
    with pytest.raises(ValueError, match="not a int"):
        parse_grid(["hidden=8,x"])


def test_local_sweep_then_a_rerun_reuses_and_a_larger_grid_adds(tmp_path):
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    out = sweep.run_sweep(tmp_path / "sw", TINY, GRID, workers=2, say=quiet, command="test")
    assert handlers == {s: signal.getsignal(s) for s in handlers}, "the sweep's signal handlers stayed"
    assert list(out) == NAMES and {r["status"] for r in out.values()} == {"trained"}
    assert all(r["iteration"] == 30 and 0 <= r["best_accuracy"] <= 1 for r in out.values())
    manifest = sweep.read_manifest(tmp_path / "sw")
    assert manifest["grid"] == GRID and manifest["runs"]["p=0.5,seed=1"]["point"] == {"p": 0.5, "seed": 1}
    assert manifest["invocations"][0]["command"] == "test" and "numpy" in manifest["invocations"][0]["versions"]
    stamps = {n: (tmp_path / "sw" / n / runs.SUMMARY).stat().st_mtime_ns for n in NAMES}
    again = sweep.run_sweep(tmp_path / "sw", TINY, GRID, workers=2, say=quiet)
    assert {r["status"] for r in again.values()} == {"reused"}
    assert stamps == {n: (tmp_path / "sw" / n / runs.SUMMARY).stat().st_mtime_ns for n in NAMES}
    more = sweep.run_sweep(tmp_path / "sw", TINY, {"p": [0.0, 0.5], "seed": [0, 1, 2]}, workers=1, say=quiet)
    assert handlers == {s: signal.getsignal(s) for s in handlers}
    assert [more[n]["status"] for n in NAMES] == ["reused"] * 4
    assert more["p=0,seed=2"]["status"] == more["p=0.5,seed=2"]["status"] == "trained"
    assert len(sweep.read_manifest(tmp_path / "sw")["runs"]) == 6 and len(manifest["invocations"]) == 1


def test_a_foreign_folder_is_refused_and_left_as_it_was(tmp_path, capsys):
    small = dict(TINY, epochs=1, iterations_per_epoch=5)
    sweep.run_sweep(tmp_path / "sw", small, {"p": [0.0], "seed": [0]}, workers=1, say=quiet)
    mine = tmp_path / "sw" / "p=0.5,seed=0"
    mine.mkdir()
    (mine / "my_results.csv").write_text("a,b\n1,2\n")
    status = main(CLI + ["--epochs", "1", "--iterations-per-epoch", "5", "--out", str(tmp_path / "sw")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "p=0.5,seed=0 is in the way" in err[0] and "no config.json" in err[0]
    assert sorted(p.name for p in (tmp_path / "sw").iterdir()) == ["p=0,seed=0", "p=0.5,seed=0", "sweep.json"]
    assert len(sweep.read_manifest(tmp_path / "sw")["invocations"]) == 1  # refused before anything was written
    assert [p.name for p in mine.iterdir()] == ["my_results.csv"]
    assert (mine / "my_results.csv").read_text() == "a,b\n1,2\n"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="is not a sweep folder"):
        sweep.run_sweep(tmp_path / "other", TINY, GRID, say=quiet)


def test_a_finished_run_with_another_config_is_kept_or_moved_aside(tmp_path):
    grid = {"seed": [0]}
    sweep.run_sweep(tmp_path, TINY, grid, workers=1, say=quiet)
    (tmp_path / "seed=0" / "notes.txt").write_text("keep me")
    before = runs.read_history(tmp_path / "seed=0")
    lines = []
    kept = sweep.run_sweep(tmp_path, dict(TINY, n_valid=40), grid, workers=1, say=lines.append)
    assert kept["seed=0"]["status"] == "kept" and "differs in n_valid" in kept["seed=0"]["message"]
    assert any("seed=0: kept" in s for s in lines)
    assert runs.read_history(tmp_path / "seed=0") == before and (tmp_path / "seed=0" / "notes.txt").is_file()
    moved = sweep.run_sweep(tmp_path, dict(TINY, n_valid=40), grid, workers=1, say=quiet, replace=True)
    assert moved["seed=0"]["status"] == "trained" and "seed=0.replaced-1" in moved["seed=0"]["message"]
    assert (tmp_path / "seed=0.replaced-1" / "notes.txt").read_text() == "keep me"
    assert runs.read_history(tmp_path / "seed=0.replaced-1") == before
    assert runs.read_json(tmp_path / "seed=0" / runs.CONFIG)["n_valid"] == 40


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_divergence_is_recorded_and_the_sweep_goes_on(tmp_path):
    base = dict(task="adding", length=5, hidden=4, n_valid=20, iterations_per_epoch=5, epochs=2, batch_size=4,
                optimizer="sgd", clip=0.0, anneal_p=0)
    out = sweep.run_sweep(tmp_path, base, {"lr": [1e30, 1e-3]}, workers=1, say=quiet)
    assert out["lr=1e+30"]["status"] == "diverged" and "non-finite" in out["lr=1e+30"]["message"]
    assert out["lr=0.001"]["status"] == "trained"
    again = sweep.run_sweep(tmp_path, base, {"lr": [1e30, 1e-3]}, workers=1, say=quiet)
    assert again["lr=1e+30"]["status"] == "diverged" and again["lr=0.001"]["status"] == "reused"


def test_a_run_folder_locked_by_a_live_process_is_busy_until_it_dies(tmp_path):
    sweep.run_sweep(tmp_path, dict(TINY, epochs=1, iterations_per_epoch=5), {"seed": [1]}, workers=1, say=quiet)
    run = tmp_path / "seed=0"
    code = (f"import time; from hdetach_np.training import runs; runs.lock_run_folder({str(run)!r}); "
            "print(1, flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "1"
        with pytest.raises(runs.RunFolderBusy, match="in use by another process"):
            runs.lock_run_folder(run)
        out = sweep.run_sweep(tmp_path, dict(TINY, epochs=1, iterations_per_epoch=5), {"seed": [0]}, workers=1,
                              say=quiet)
        assert out["seed=0"]["status"] == "busy" and not any(run.iterdir())
    finally:
        holder.kill()  # kill -9: the lock goes with the process
        holder.wait()
    with runs.lock_run_folder(run) as lock:
        assert lock.locked


def complete(run):
    """Whether the run folder holds a finished run (its summary says complete)."""
    return (run / runs.SUMMARY).is_file() and runs.read_json(run / runs.SUMMARY)["complete"]


def _children(pid):
    """Pids whose parent is `pid` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table in /proc (Linux)")
def test_a_sweep_killed_mid_way_resumes_to_the_results_of_an_uninterrupted_one(tmp_path, capsys):
    # runs long enough (a few thousand tiny iterations) that one cannot finish between the check and the kill
    args = CLI + ["--epochs", "100", "--iterations-per-epoch", "40", "--checkpoint-every", "5", "--workers", "2"]
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "hdetach_np"] + args + ["--out", str(cut)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill once a run finished and another has a checkpoint but no summary
        done = [n for n in NAMES if (cut / n / runs.SUMMARY).is_file()]
        partial = [n for n in NAMES if (cut / n / runs.CHECKPOINT).is_file() and n not in done]
        # a run not yet halfway (its history less than half a finished run's): it cannot finish while the
        # workers notice that their driver is gone
        early = [n for n in partial if done and (cut / n / runs.HISTORY).is_file()
                 and (cut / n / runs.HISTORY).stat().st_size < 0.5 * (cut / done[0] / runs.HISTORY).stat().st_size]
        if early:
            workers = _children(proc.pid)
            os.kill(proc.pid, signal.SIGKILL)
            break
        assert proc.poll() is None, "the sweep ended before it could be killed mid-way"
        time.sleep(0.02)
    else:
        pytest.fail("no finished and no partial run within 120 s")
    proc.wait()
    t0 = time.monotonic()
    while any(_alive(w) for w in workers) and time.monotonic() - t0 < 20:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "worker processes outlived their killed driver by 20 s"
    # a worker whose driver died stops at its current iteration with a checkpoint (and a summary, not complete)
    cut_short = [n for n in NAMES if (cut / n / runs.CHECKPOINT).is_file() and not complete(cut / n)]
    assert cut_short, "every run with a checkpoint had finished when the driver was killed"
    capsys.readouterr()
    assert main(args + ["--out", str(cut)]) == 0
    said = capsys.readouterr().out
    assert all(f"{n}: resumed" in said for n in cut_short) and f"{done[0]}: " not in said  # reused silently
    states = {n: json.loads((cut / n / runs.SUMMARY).read_text())["complete"] for n in NAMES}
    assert all(states.values())
    assert histories(cut) == histories(tmp_path / "whole")  # bit for bit, wall-clock fields aside


def test_the_dask_backend_gives_the_results_of_the_local_one(tmp_path, monkeypatch):
    distributed = pytest.importorskip("dask.distributed", reason="dask[distributed] is not installed")
    sweep.run_sweep(tmp_path / "local", TINY, GRID, workers=2, say=quiet)
    with distributed.LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        lines = []
        out = sweep.run_sweep(tmp_path / "dask", TINY, GRID, scheduler=cluster.scheduler_address, say=lines.append)
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)  # Dask's own variable
        by_env = []
        sweep.run_sweep(tmp_path / "env", TINY, {"seed": [0]}, say=by_env.append)
    assert {r["status"] for r in out.values()} == {"trained"}
    assert "on the Dask cluster at tcp://127.0.0.1:" in lines[0]
    assert histories(tmp_path / "dask") == histories(tmp_path / "local")
    assert f"on the Dask cluster at {cluster.scheduler_address}" in by_env[0]


def test_the_report_statistics_on_hand_made_histories(tmp_path):
    def hist(accs):
        return [{"iteration": 10 * (k + 1), "split": "valid", "loss": 1 - a, "accuracy": a} for k, a in enumerate(accs)]

    ref = [hist([0.2, 0.6, 0.95]), hist([0.1, 0.3, 0.4]), hist([0.5, 0.92, 0.99])]
    new = [hist([0.6, 0.95, 1.0]), hist([0.55, 0.9, 0.991]), hist([0.3, 0.7, 0.97]), hist([0.92, 0.99, 1.0])]
    groups = {"p=0": [{"name": f"a{k}", "seed": k, "history": h} for k, h in enumerate(ref)],
              "p=0.5": [{"name": f"b{k}", "seed": k, "history": h} for k, h in enumerate(new)]}
    s = report.summarize_groups(groups)
    g = s["groups"]["p=0"]
    assert [r["final_accuracy"] for r in g["runs"]] == [0.95, 0.4, 0.99]
    assert g["final_accuracy"] == {"n": 3, "n_missing": 0, "min": 0.4, "max": 0.99, "q1": 0.675, "median": 0.95,
                                   "q3": 0.97}
    assert [r["it_to_0.9"] for r in g["runs"]] == [30, None, 20]
    assert g["it_to_0.9"] == {"n": 2, "n_missing": 1, "min": 20.0, "max": 30.0, "q1": 25.0, "median": 30.0, "q3": None}
    assert g["it_to_0.99"] == {"n": 1, "n_missing": 2, "min": 30.0, "max": 30.0, "q1": None, "median": None,
                               "q3": None}  # [30, never, never]: q1 lies between 30 and a seed that never reached
    for m in ("final_accuracy", "best_accuracy", "it_to_0.5", "it_to_0.9"):
        a = [r[m] for r in s["groups"]["p=0.5"]["runs"]]
        b = [r[m] for r in g["runs"]]
        c = s["comparisons"]["p=0.5"][m]
        values = [math.inf if v is None else v for v in a + b]
        assert c["method"] == ("exact" if len(set(values)) == len(values) else "asymptotic")
        want = mannwhitneyu([math.inf if v is None else v for v in a], [math.inf if v is None else v for v in b],
                            alternative="two-sided", method=c["method"])
        assert c["U"] == want.statistic and c["p_value"] == pytest.approx(want.pvalue, rel=1e-12)
        inf = [math.inf if v is None else v for v in a], [math.inf if v is None else v for v in b]
        wins = sum((x > y) + 0.5 * (x == y) for x in inf[0] for y in inf[1])  # CL by counting pairs
        assert c["cl"] == pytest.approx(wins / 12, abs=1e-15)
        assert c["rank_biserial"] == pytest.approx(2 * wins / 12 - 1, abs=1e-15)
    # by hand: finals (1.0, 0.991, 0.97, 1.0) against (0.95, 0.4, 0.99): 3 + 3 + 2 + 3 pairs won
    final = s["comparisons"]["p=0.5"]["final_accuracy"]
    assert final["U"] == 11.0 and final["cl"] == pytest.approx(11 / 12) and final["rank_biserial"] == pytest.approx(5 / 6)
    md = report.report_markdown(s)
    assert "| p=0.5 | 4 |" in md and "Mann-Whitney" in md


def test_the_p_value_is_exact_without_ties_at_ten_seeds_and_corrected_with_them():
    faster = report.compare(list(range(10)), [v + 10.5 for v in range(10)])  # every seed of a below every seed of b
    assert faster["method"] == "exact" and faster["U"] == 0 and faster["rank_biserial"] == -1
    assert faster["p_value"] == pytest.approx(2 / math.comb(20, 10), rel=1e-9)  # 1.1e-5: the smallest possible
    tied = report.compare([1.0] * 6 + [0.9, 0.8, 0.95, 0.97], [0.5, 0.6, 0.7, 0.8, 0.9, 0.91, 0.92, 0.93, 1.0, None])
    assert tied["method"] == "asymptotic" and 0 < tied["p_value"] < 1
    assert report.fmt_p(faster["p_value"]) == "1.1e-05" and report.fmt_p(0.0432) == "0.043" and report.fmt_p(None) == "-"


def test_report_command_writes_markdown_json_and_png(tmp_path, capsys):
    sweep.run_sweep(tmp_path, TINY, GRID, workers=2, say=quiet)
    assert main(["report", str(tmp_path)]) == 0
    assert "| p=0.5 | 2 |" in capsys.readouterr().out
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "report.json").read_text())
    assert set(data["groups"]) == {"p=0", "p=0.5"} and data["reference"] == "p=0"
    assert "final valid acc." in (tmp_path / "report.md").read_text()


def test_plot_draws_a_sweep_as_median_and_bands(tmp_path, capsys):
    sweep.run_sweep(tmp_path, TINY, GRID, workers=1, say=quiet)
    assert main(["plot", str(tmp_path), "--band"]) == 0
    assert (tmp_path / "band.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = tmp_path / "two.png"
    assert main(["plot", str(tmp_path / NAMES[0]), str(tmp_path / NAMES[2]), "--band", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_grid_file_in_toml_and_json_with_flags_on_top(tmp_path, capsys):
    spec = {"seeds": "0-1", "base": dict(TINY, epochs=1, iterations_per_epoch=5), "grid": {"p": [0.0, 0.5]}}
    (tmp_path / "grid.json").write_text(json.dumps(spec))
    toml = "seeds = \"0-1\"\n[base]\n" + "".join(
        f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}\n" for k, v in spec["base"].items()) + \
        "[grid]\np = [0.0, 0.5]\n"
    (tmp_path / "grid.toml").write_text(toml)
    assert main(["sweep", "--grid-file", str(tmp_path / "grid.json"), "--out", str(tmp_path / "a"), "--workers", "1"]) == 0
    if sys.version_info >= (3, 11):
        assert main(["sweep", "--grid-file", str(tmp_path / "grid.toml"), "--out", str(tmp_path / "b"), "--workers", "1"]) == 0
        assert histories(tmp_path / "a") == histories(tmp_path / "b")
        assert sweep.read_manifest(tmp_path / "b")["grid"] == GRID
    assert main(["sweep", "--grid-file", str(tmp_path / "grid.json"), "--hidden", "4", "--out", str(tmp_path / "c"),
                 "--workers", "1"]) == 0
    assert runs.read_json(tmp_path / "c" / NAMES[0] / runs.CONFIG)["hidden"] == 4  # flags override the file
    capsys.readouterr()
    assert main(["sweep", "--grid-file", str(tmp_path / "grid.json"), "--grid", "p=0.1", "--out", str(tmp_path / "d")]) == 2
    assert "give it once" in capsys.readouterr().err
