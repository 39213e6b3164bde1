"""Copying over many seeds: convergence and transfer of vanilla and h-detach, read from a sweep folder.

Reads a sweep folder made by `hdetach-np sweep` (hdetach_np/training/sweep/), such as the 30 runs of

    hdetach-np sweep copying --grid p=0,0.25,0.5 --seeds 0-9 --log-paths-every 100 --workers 2 --out runs/copying-seeds

(the laptop preset's copying setting: delay 10, hidden 128, one-hot input, Adam lr 3e-3, batch 100,
clipping 1.0, 15,000 iterations). A group is every run with the same grid values except the seed
(p=0, p=0.25, p=0.5); the reference of the comparisons is the first group with p=0 (vanilla), else
the first group; with --against KEY=VALUE each group is compared with the group equal to it
except KEY=VALUE instead, as for the input sweep

    hdetach-np sweep copying --grid one_hot=true,false --grid delay=10,20 --seeds 0-4 --out runs/copying-input
    python analysis/copying_seeds.py --sweep runs/copying-input --against one_hot=true --name copying_input --out OUT

(scalar input against one-hot at each delay). Only complete runs count (summary.json says
complete and the run reached its config's iterations); the others are listed per group ("p=0.25:
4 of 10 seeds complete"), so a sweep still running gives an honest partial table.

- Convergence (hdetach_np.training.report): per group, the first iteration reaching 50%, 90% and
  99% validation accuracy, the final and the best validation accuracy (median, quartiles, min-max,
  seeds that reached each level), and each group against the reference: two-sided Mann-Whitney U
  test, common-language effect size CL and rank-biserial r.
- Transfer: each complete run's best model evaluated at delays --factors x its trained delay on --n
  fresh sequences per delay (`hdetach_np.training.transfer_copying`, generator seeded 555, one BLAS
  thread per process, --workers processes); per group and delay the median (min-max) over seeds,
  and against the reference the Mann-Whitney p-value and r.

Writes into --out: NAME.png, NAME.json (everything, per seed too, with the sweep's base config,
grid and commands) and NAME.md, NAME given by --name (default copying_seeds).

Run from the repository root (after `pip install -e .`):

    python analysis/copying_seeds.py --sweep runs/copying-seeds --out docs/figures/experiments
    python analysis/copying_seeds.py --out /tmp/quick --quick     # a tiny sweep of its own in OUT/sweep, seconds
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

FACTORS = (1, 2, 4, 10, 20)
TRANSFER_SEED = 555  # the generator of the transfer sequences, as in analysis/transfer_copying.py


def build_parser():
    import argparse

    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        allow_abbrev=False,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--sweep", default=None, help="the sweep folder (required unless --quick)")
    p.add_argument("--out", required=True, help="output folder for the figure, JSON and markdown tables")
    p.add_argument("--name", default="copying_seeds", help="file name of the outputs: NAME.png, NAME.json, NAME.md")
    p.add_argument("--n", type=int, default=2000, help="sequences per transfer delay")
    p.add_argument(
        "--factors",
        type=int,
        nargs="+",
        default=list(FACTORS),
        help="transfer delays as multiples of the trained delay",
    )
    p.add_argument(
        "--against",
        metavar="KEY=VALUE",
        default=None,
        help="compare each group with the group equal to it except KEY=VALUE, e.g. one_hot=true in a grid over "
        "one_hot and delay (default: every group against vanilla, the first group with p=0)",
    )
    p.add_argument("--workers", type=int, default=2, help="processes for the transfer evaluations (and --quick's runs)")
    p.add_argument("--quick", action="store_true", help="train a tiny sweep in OUT/sweep and analyse it (seconds)")
    return p


# ---------------------------------------------------------------------------------------------
# The runs of a sweep folder
# ---------------------------------------------------------------------------------------------


def read_sweep(sweep_dir, against: tuple | None = None) -> dict:
    """The complete runs of a sweep folder by group, and what is missing.

    Returns {"manifest": sweep.json, "groups": {label: [{"name", "seed", "dir", "config", "seconds",
    "history"}]} (complete runs only, reference group first, groups without a complete run left
    out), "references": {label: the label it is compared with}, "reference": the one label all
    are compared with, or None, "status": {label: {"planned", "complete": [seeds], "incomplete":
    [{"seed", "name", "state"}]}} (every group of the manifest)}. against: (KEY, VALUE) pairs each
    group with the group that differs only in KEY = VALUE (report.reference_groups); default every
    group against vanilla (the first group with p = 0), else against the first group.
    ValueError when the folder is not a sweep folder or has no complete run."""
    from hdetach_np.training import report
    from hdetach_np.training.config import TrainConfig
    from hdetach_np.training.sweep import folder_state, read_manifest

    sweep = Path(sweep_dir)
    try:
        manifest = read_manifest(sweep)
    except FileNotFoundError as err:
        raise ValueError(f"{err}; give a folder made by `hdetach-np sweep`") from None
    with_history = {r["name"]: r for rs in report.sweep_groups(sweep).values() for r in rs}
    groups, status, points = {}, {}, {}
    for name, entry in manifest["runs"].items():
        label, seed = report.group_label(entry["point"]), entry["point"].get("seed")
        cfg = TrainConfig.from_dict(entry["config"])
        st = status.setdefault(label, {"planned": 0, "complete": [], "incomplete": []})
        st["planned"] += 1
        summary = _summary(sweep / name)
        run = with_history.get(name)
        if run is not None and summary.get("complete") and summary.get("iteration", 0) >= cfg.total_iterations:
            if cfg.task != "copying":
                raise ValueError(f"run {name} of {sweep} has task {cfg.task!r}; this analysis needs a copying sweep")
            st["complete"].append(seed)
            points[label] = {k: v for k, v in entry["point"].items() if k != "seed"}
            groups.setdefault(label, []).append(
                {
                    "name": name,
                    "seed": seed,
                    "dir": sweep / name,
                    "config": cfg.to_dict(),
                    "seconds": float(summary.get("seconds", 0.0)),
                    "history": run["history"],
                }
            )
        else:
            last = max((r["iteration"] for r in run["history"]), default=0) if run else 0
            state = _incomplete_state(folder_state(sweep / name, entry["config"]), last, cfg.total_iterations)
            st["incomplete"].append({"seed": seed, "name": name, "state": state})
    if not groups:
        n = sum(s["planned"] for s in status.values())
        raise ValueError(f"the sweep {sweep} has no complete run yet (0 of {n}); wait for the sweep or resume it")
    if against is None:
        vanilla = [label for label, rs in groups.items() if rs[0]["config"]["p"] == 0]
        reference = vanilla[0] if vanilla else next(iter(groups))
        groups = {reference: groups[reference], **{k: v for k, v in groups.items() if k != reference}}
        references = {label: reference for label in groups if label != reference}
    else:
        references = report.reference_groups(points, against)
        reference = report.shared_reference(references)
    return {"manifest": manifest, "groups": groups, "references": references, "reference": reference, "status": status}


def _summary(run_dir: Path) -> dict:
    from hdetach_np.training import runs

    try:
        return runs.read_json(run_dir / runs.SUMMARY)
    except (OSError, ValueError):
        return {}


def _incomplete_state(state: tuple[str, str], last: int, total: int) -> str:
    """A few words on a run that is not complete, from sweep.folder_state's (state, detail)."""
    kind, detail = state
    if kind == "new":
        return "not started"
    if kind == "other":
        return f"its folder holds another config (differs in {detail})"
    if kind == "foreign":
        return detail
    if kind == "diverged":
        return f"diverged at iteration {last}"
    return f"at iteration {last} of {total} (running or stopped)"


def status_lines(status: dict) -> list[str]:
    """'p=0.25: 4 of 10 seeds complete; seeds 4, 5 not started' per group."""
    lines = []
    for label, st in status.items():
        line = f"{label}: {len(st['complete'])} of {st['planned']} seeds complete"
        by_state = {}
        for r in st["incomplete"]:
            by_state.setdefault(r["state"], []).append(str(r["seed"]))
        parts = [f"seed{'s' if len(s) > 1 else ''} {', '.join(s)} {state}" for state, s in by_state.items()]
        lines.append(line + ("; " + "; ".join(parts) if parts else ""))
    return lines


# ---------------------------------------------------------------------------------------------
# Transfer to longer delays
# ---------------------------------------------------------------------------------------------


def transfer_run(run_dir, delays: list, n: int) -> list:
    """Accuracy of a run's best model at each delay (one BLAS thread in this process)."""
    from hdetach_np.training import blas_threads, transfer_copying

    blas_threads(1)
    return [e["accuracy"] for e in transfer_copying(run_dir, delays, n=n, seed=TRANSFER_SEED, which="best")]


def transfer_all(groups: dict, factors, n: int, workers: int) -> dict:
    """{label: {seed: [accuracy per factor]}} of every run, `workers` processes at once."""
    from joblib import Parallel, delayed

    todo = [(label, r) for label, rs in groups.items() for r in rs]
    jobs = (delayed(transfer_run)(str(r["dir"]), [f * r["config"]["delay"] for f in factors], n) for _, r in todo)
    accs = Parallel(n_jobs=min(workers, len(todo)))(jobs)
    out = {label: {} for label in groups}
    for (label, r), acc in zip(todo, accs):
        out[label][r["seed"]] = acc
    return out


def transfer_summary(acc: dict, references) -> dict:
    """Per group ({label: {seed: [accuracy per factor]}}): median, min and max over seeds per
    factor; per compared group: report.compare against its reference per factor. references:
    {label: reference label}, or one label that every other group is compared with."""
    from hdetach_np.training.report import compare, shared_reference

    if isinstance(references, str):
        references = {label: references for label in acc if label != references}
    out = {
        "groups": {},
        "comparisons": {},
        "references": dict(references),
        "reference": shared_reference(references),
    }
    for label, per_seed in acc.items():
        a = np.array(list(per_seed.values()), dtype=float)  # (seeds, factors)
        out["groups"][label] = {"per_seed": per_seed, "median": np.median(a, 0), "min": a.min(0), "max": a.max(0)}
    for label, ref_label in references.items():
        a = np.array(list(acc[label].values()), dtype=float)
        ref = np.array(list(acc[ref_label].values()), dtype=float)
        out["comparisons"][label] = [compare(a[:, k], ref[:, k]) for k in range(a.shape[1])]
    return out


def transfer_table(summary: dict, factors, delay_of: dict) -> str:
    """Markdown: per group, per factor 'median (min-max)', and for the groups other than the
    reference 'p, r' of the comparison."""
    from hdetach_np.training.report import fmt_p, markdown_table

    delays = set(delay_of.values())
    header = ["group", "seeds"] + [
        f"delay {f * next(iter(delays))} ({f}x)" if len(delays) == 1 else f"{f}x trained delay" for f in factors
    ]
    rows = []
    for label, g in summary["groups"].items():
        comp = summary["comparisons"].get(label)
        cells = []
        for k in range(len(factors)):
            cell = f"{g['median'][k]:.3f} ({g['min'][k]:.3f}-{g['max'][k]:.3f})"
            if comp is not None:
                cell += f"; p {fmt_p(comp[k]['p_value'])}, r {comp[k]['rank_biserial']:+.2f}"
                if summary["reference"] is None:
                    cell += f" against {summary['references'][label]}"
            cells.append(cell)
        rows.append([label, len(g["per_seed"])] + cells)
    against = f"`{summary['reference']}`" if summary["reference"] else "the group named in its cells"
    return markdown_table(header, rows) + (
        "\nAccuracy on the 10 recalled tokens of the best model of each run: median (min-max) over seeds. "
        f"p, r: each group against {against}, two-sided Mann-Whitney U test over seeds and "
        "rank-biserial r = 2 CL - 1 (r > 0: the group is more accurate); p exact without ties, else the "
        "normal approximation with tie correction.\n"
    )


def plot_transfer(ax, summary: dict, delay_of: dict, factors, title: str):
    """Accuracy against evaluation delay (log x): median line and min-max band per group, each
    seed a faint dot (groups nudged apart sideways), chance 1/8 dotted. Returns ax."""
    n_groups = len(summary["groups"])
    for g, (label, s) in enumerate(summary["groups"].items()):
        x = np.array([f * delay_of[label] for f in factors], dtype=float)
        (line,) = ax.plot(x, s["median"], marker="o", ms=5, lw=2, label=f"{label} (median of {len(s['per_seed'])})")
        ax.fill_between(x, s["min"], s["max"], color=line.get_color(), alpha=0.12, lw=0)
        nudge = 1 + 0.06 * (g - (n_groups - 1) / 2)
        for acc in s["per_seed"].values():
            ax.plot(x * nudge, acc, ls="none", marker="o", ms=3, alpha=0.4, mew=0, color=line.get_color(), zorder=3)
    ax.axhline(1 / 8, color="grey", ls=":", lw=1, label="chance (1/8)")
    ax.set_xscale("log")
    ticks = sorted({f * d for d in delay_of.values() for f in factors})
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("delay at evaluation (log scale)")
    ax.set_ylabel("accuracy on the 10 recalled tokens")
    ax.set_title(title, fontsize="medium")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


# ---------------------------------------------------------------------------------------------
# The script
# ---------------------------------------------------------------------------------------------


def setting_text(cfg: dict, varied=()) -> str:
    """The trained copying setting in words, from a run's config: 'delay 10, hidden 128, ...'; the
    keys in `varied` (the sweep's grid keys other than p and the seed) as 'delay: see the groups'."""
    from hdetach_np.training.config import TrainConfig

    c = TrainConfig.from_dict(cfg)
    parts = {
        "delay": f"delay {c.delay}",
        "hidden": f"hidden {c.hidden}",
        "one_hot": f"{'one-hot' if c.one_hot else 'scalar'} input",
        "lr": f"{c.optimizer.capitalize() if c.optimizer == 'adam' else c.optimizer} lr {c.lr:g}",
        "batch_size": f"batch {c.batch_size}",
        "clip": f"clip {c.clip:g}",
        "total_iterations": f"{c.total_iterations:,} iterations",
    }
    for key in varied:
        if key in parts:
            parts[key] = f"{'input' if key == 'one_hot' else key.replace('_', ' ')}: see the groups"
    return ", ".join(parts.values())


def seeds_text(groups: dict) -> str:
    """'10 seeds per group' or 'seeds per group: p=0 10, p=0.25 4'."""
    counts = {label: len(rs) for label, rs in groups.items()}
    if len(set(counts.values())) == 1:
        n = next(iter(counts.values()))
        return f"{n} seed{'s' if n > 1 else ''} per group"
    return "seeds per group: " + ", ".join(f"{k} {v}" for k, v in counts.items())


def quick_sweep(out, workers: int, command: str) -> Path:
    """A tiny copying sweep (p = 0, 0.25, 0.5; seeds 0-2; the --quick config of analysis/_common.py)
    trained, or reused, in OUT/sweep."""
    import _common as ex

    from hdetach_np.training.sweep import run_sweep

    sweep = Path(out) / "sweep"
    grid = {"p": [0.0, 0.25, 0.5], "seed": [0, 1, 2]}
    run_sweep(
        sweep,
        ex.COPYING_QUICK,
        grid,
        command=command,
        workers=workers,
        say=lambda s: None,
        progress=False,
    )
    return sweep


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    if args.quick == (args.sweep is not None):
        raise ValueError("give --sweep SWEEP (a folder made by `hdetach-np sweep`) or --quick, not both or neither")
    if not args.name or any(c in args.name for c in "/\\") or args.name.startswith("."):
        raise ValueError(f"--name must be a plain file name without folders, got {args.name!r}")
    for name, value, lo in (("--n", args.n, 1), ("--workers", args.workers, 1)):
        if value < lo:
            raise ValueError(f"{name} must be >= {lo}, got {value}")
    if any(f < 1 for f in args.factors):
        raise ValueError(f"--factors must be integers >= 1, got {args.factors}")
    import matplotlib

    matplotlib.use("Agg")
    import _common as ex
    import matplotlib.pyplot as plt

    from hdetach_np.cli.sweep import parse_against
    from hdetach_np.training.report import plot_median_band, report_markdown, summarize_groups

    t0 = time.perf_counter()
    cmd = ex.command_line("copying_seeds.py", argv)
    sweep = quick_sweep(args.out, args.workers, cmd) if args.quick else Path(args.sweep)
    n = 50 if args.quick else args.n
    found = read_sweep(sweep, parse_against(args.against))
    groups, references = found["groups"], found["references"]
    first = next(iter(groups))
    delay_of = {label: rs[0]["config"]["delay"] for label, rs in groups.items()}

    convergence = summarize_groups(groups, references=references)
    acc = transfer_all(groups, args.factors, n, args.workers)
    transfer = transfer_summary(acc, references)

    setting, seeds = (
        setting_text(groups[first][0]["config"], varied=found["manifest"].get("grid", {})),
        seeds_text(groups),
    )
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.2))
    plot_median_band(axes[0], {k: [r["history"] for r in rs] for k, rs in groups.items()}, thresholds=ex.THRESHOLDS)
    axes[0].set_ylim(0, 1.02)
    axes[0].set_ylabel("validation accuracy")
    for level in ex.THRESHOLDS:
        axes[0].annotate(
            f"{level:.0%}",
            (1, level),
            xycoords=("axes fraction", "data"),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize="small",
            color="grey",
        )
    axes[0].set_title(f"validation accuracy: median, quartiles, min-max over seeds\n{seeds}", fontsize="medium")
    plot_transfer(
        axes[1],
        transfer,
        delay_of,
        args.factors,
        f"best model of each run at longer delays ({n} sequences per delay)\n"
        f"median, band min-max, dots: the seeds; {seeds}",
    )
    fig.suptitle(f"Copying, {setting} (sweep {sweep})", fontsize="medium")
    fig.tight_layout()

    manifest = found["manifest"]
    sweep_commands = [inv.get("command") for inv in manifest.get("invocations", [])]
    runs_info = {label: [{k: r[k] for k in ("name", "seed", "seconds")} for r in rs] for label, rs in groups.items()}
    train_seconds = round(sum(r["seconds"] for rs in groups.values() for r in rs), 1)
    lines = status_lines(found["status"])
    md = "\n".join(
        [
            f"# Copying over seeds: sweep {sweep}\n\nSetting: copying task, {setting}.\n",
            "Complete runs (only these enter the tables):\n\n" + "".join(f"- {line}\n" for line in lines),
            "## Convergence\n\n" + report_markdown(convergence),
            f"## Transfer to longer delays\n\n{n} sequences per delay (generator seeded {TRANSFER_SEED}).\n",
            transfer_table(transfer, args.factors, delay_of),
            f"Training time of these runs (their summary.json, summed): {train_seconds / 3600:.2f} h "
            f"({train_seconds:.0f} s); "
            f"this analysis: {time.perf_counter() - t0:.0f} s.\n",
            f"Command: `{cmd}`\n",
            "Sweep made by: " + "; ".join(f"`{c}`" for c in dict.fromkeys(sweep_commands)) + "\n",
        ]
    )
    data = {
        "command": cmd,
        "sweep": str(sweep),
        "sweep_base": manifest.get("base"),
        "sweep_grid": manifest.get("grid"),
        "sweep_commands": sweep_commands,
        "setting": setting,
        "config": groups[first][0]["config"],
        "reference": found["reference"],
        "references": references,
        "status": found["status"],
        "status_lines": lines,
        "runs": runs_info,
        "convergence": convergence,
        "transfer": {
            "factors": list(args.factors),
            "delays": {k: [f * d for f in args.factors] for k, d in delay_of.items()},
            "n": n,
            "seed": TRANSFER_SEED,
            **transfer,
        },
        "train_seconds_total": train_seconds,
        "wall_seconds_this_call": round(time.perf_counter() - t0, 1),
    }
    ex.write_outputs(args.out, args.name, data, md, fig, dpi=110)
    print("\n".join(lines))
    return data


if __name__ == "__main__":
    import _common

    _common.script_main(main)
