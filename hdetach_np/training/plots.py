"""Training curves from run histories (see runs.py for the record layout).

Every function takes a matplotlib `ax`, draws on it and returns it; nothing here calls plt.show()
or writes files.

    from hdetach_np.training.runs import read_history
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    plot_runs({"p=0": read_history("runs/a"), "p=0.5": read_history("runs/b")}, axes)
"""

from __future__ import annotations

import numpy as np


def training_curve(history: list, key: str = "loss", smooth: int = 1):
    """(iterations, values) of a training-record field ("loss", "accuracy", "grad_norm"), with a
    trailing moving average over `smooth` records (1 = raw)."""
    recs = [r for r in history if key in r and "split" not in r and "paths" not in r and r.get(key) is not None]
    it = np.array([r["iteration"] for r in recs], dtype=float)
    v = np.array([r[key] for r in recs], dtype=float)
    if smooth > 1 and len(v):
        c = np.cumsum(np.insert(v, 0, 0.0))  # c[j] = sum of the first j values
        end = np.arange(1, len(v) + 1)
        start = np.maximum(end - smooth, 0)
        v = (c[end] - c[start]) / (end - start)  # mean of the last `smooth` values up to each point
    return it, v


def eval_curve(history: list, split: str = "valid", key: str = "accuracy"):
    """(iterations, values) of the evaluation records of one split."""
    recs = [r for r in history if r.get("split") == split and r.get(key) is not None]
    return (np.array([r["iteration"] for r in recs], dtype=float), np.array([r[key] for r in recs], dtype=float))


def plot_training_loss(ax, history: list, label=None, smooth: int = 50, log: bool | None = None, **kw):
    """Training loss against iteration, smoothed over `smooth` records. log=None: a log axis when
    the curve spans more than a factor of 10."""
    it, v = training_curve(history, "loss", smooth)
    ax.plot(it, v, label=label, **kw)
    if log is None:
        log = bool(len(v)) and (v > 0).all() and v.max() > 10 * v.min()
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss" + (f" (mean of {smooth})" if smooth > 1 else ""))
    return ax


def plot_eval(ax, history: list, key: str = "accuracy", split: str = "valid", label=None, **kw):
    """A validation (or test) metric at each evaluation, against iteration."""
    it, v = eval_curve(history, split, key)
    ax.plot(it, v, marker="o" if len(v) < 30 else None, markersize=3, label=label, **kw)
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"{split} {key}")
    return ax


def plot_grad_norm(ax, history: list, label=None, smooth: int = 50, **kw):
    """Gradient norm before clipping, smoothed, on a log axis."""
    it, v = training_curve(history, "grad_norm", smooth)
    ax.plot(it, v, label=label, **kw)
    if len(v) and (v > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("gradient norm (before clipping)")
    return ax


def chance_accuracy(task: str) -> float | None:
    """The accuracy of guessing: copying 1/8 (the recalled tokens take 8 values), MNIST 1/10;
    None for the adding task (a regression)."""
    return {"copying": 1 / 8, "pixel-mnist": 1 / 10, "permuted-mnist": 1 / 10}.get(task)


def run_title(cfg) -> str:
    """A one-line description of a run's config (a TrainConfig) for figure titles."""
    size = {"copying": f"delay {cfg.delay}", "adding": f"length {cfg.length}"}.get(
        cfg.task, f"{cfg.pixels_per_step} pixel(s) per step")
    detach = f"{cfg.detach}-detach p={cfg.p:g}" if cfg.p > 0 else "no detach"
    return f"{cfg.task}, {size}, hidden {cfg.hidden}, {cfg.optimizer} lr {cfg.lr:g}, {detach}"


def plot_runs(histories: dict, axes, smooth: int = 50):
    """Overlay several runs ({label: history}) on three axes: training loss, validation loss,
    validation accuracy (regression runs leave the last one empty). Returns `axes`."""
    for label, h in histories.items():
        plot_training_loss(axes[0], h, label=label, smooth=smooth)
        color = axes[0].lines[-1].get_color()
        plot_eval(axes[1], h, "loss", label=label, color=color)
        if len(eval_curve(h, "valid", "accuracy")[0]):
            plot_eval(axes[2], h, "accuracy", label=label, color=color)
    for ax in axes:
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small")
    return axes


def curves_figure(histories: dict, configs: dict, smooth: int = 50, paths: bool = False):
    """The figure of `hdetach-np plot`: runs ({label: history}, configs {label: TrainConfig}) overlaid.

    Panels: training loss; once a validation has run, validation loss and accuracy (with the chance
    level of the task); with `paths`, the logged cell/h-path gradient norms. The title describes the
    runs. Returns a matplotlib Figure (not attached to pyplot)."""
    from matplotlib.figure import Figure

    from ..paths.plots import plot_path_norms_history

    validated = any(len(eval_curve(h, "valid", "loss")[0]) for h in histories.values())
    n = (3 if validated else 1) + bool(paths)
    fig = Figure(figsize=(4.6 * n, 4.4), layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(1, n)))
    if validated:
        plot_runs(histories, axes[:3], smooth=smooth)
        for level in sorted({chance_accuracy(c.task) for c in configs.values()} - {None}):
            axes[2].axhline(level, color="gray", ls=":", lw=1, label=f"chance ({level:.3g})")
            axes[2].legend(fontsize="small")
    else:  # no validation yet: the training loss alone
        for label, h in histories.items():
            plot_training_loss(axes[0], h, label=label, smooth=smooth)
        axes[0].grid(True, alpha=0.3)
        axes[0].legend(fontsize="small")
    if paths:
        ax = axes[-1]
        for j, (label, h) in enumerate(histories.items()):
            if any("paths" in r for r in h):
                plot_path_norms_history(ax, h, **({"color": f"C{j}", "label": label} if len(histories) > 1 else {}))
        if not ax.lines:
            ax.text(0.5, 0.5, "no gradient-path norms logged\n(train with --log-paths-every K)",
                    ha="center", va="center", transform=ax.transAxes)
    titles = sorted({run_title(c) for c in configs.values()})
    title = "; ".join(titles) if 0 < len(titles) <= 2 else f"{len(histories)} runs"
    if not validated:
        title += " (no validation yet: it runs at the end of each epoch)"
    fig.suptitle(title, fontsize="medium")
    return fig
