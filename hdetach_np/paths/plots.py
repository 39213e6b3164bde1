"""Plots. Every function takes a matplotlib `ax` first, draws on it and returns it; none calls
plt.show() or writes files. Scripts choose the backend (use "Agg" for files and tests).

Sections:
- gradient paths: the cell-path share against the weight scale, component norms against the lag,
  Jacobian-product norms against the lag, component norms over training iterations.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_choice
from .split import PARTS, check_group

PART_STYLE = {
    "total": {"color": "black", "label": "total"},
    "cell": {"color": "tab:blue", "label": "cell path"},
    "h": {"color": "tab:red", "label": "h path"},
}
PART_LINESTYLE = {"total": ":", "cell": "-", "h": "--"}  # when one color marks a run
VARIANT_COLORS = ("black", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink")
GROUP_COLORS = ("tab:cyan", "tab:blue", "tab:olive", "tab:gray", "tab:red", "tab:green")


def _check_ax(ax):
    if not hasattr(ax, "plot"):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")


# ---------------------------------------------------------------------------------------------
# Gradient paths
# ---------------------------------------------------------------------------------------------


def plot_ratio_vs_scale(ax, result, kind: str = "cell/total", group: str = "all", variants=None,
                        band: str = "minmax"):
    """Norm ratio (`kind`: "cell/total", "cell/h" or "h/total") against the weight scale (log x,
    log y), one line per variant ("plain", "p=0.25", ...) of a SuppressionResult: the mean over
    seeds, with a band over seeds (band="minmax", "std" or None)."""
    _check_ax(ax)
    check_choice("band", band, ("minmax", "std", None))
    variants = result.variants if variants is None else tuple(variants)
    s = result.scales
    for m, v in enumerate(variants):
        r = result.ratio(kind, group, v)  # (seeds, scales)
        color = VARIANT_COLORS[m % len(VARIANT_COLORS)]
        label = "plain gradient" if v == "plain" else f"expected h-detach, {v}"
        mean = np.mean(r, axis=0)
        ax.plot(s, mean, "o-", color=color, label=label, ms=3)
        if band == "minmax" and r.shape[0] > 1:
            ax.fill_between(s, r.min(axis=0), r.max(axis=0), color=color, alpha=0.15, lw=0)
        elif band == "std" and r.shape[0] > 1:
            sd = np.std(r, axis=0)
            ax.fill_between(s, np.maximum(mean - sd, 1e-300), mean + sd, color=color, alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"weight scale s ({'Wh' if result.config.weights == 'Wh' else 'Wx, Wh, b'} multiplied by s)")
    num, den = kind.split("/")
    ax.set_ylabel(f"||g_{num}|| / ||g_{den}||  ({group})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_group_ratios_vs_scale(ax, result, groups=("Wh.i", "Wh.f", "Wh.o", "Wh.g"), kind: str = "cell/total",
                               variant: str = "plain"):
    """One line per parameter group (e.g. the gate blocks of Wh): the mean over seeds of a norm
    ratio against the weight scale (log x, log y), for one variant of a SuppressionResult."""
    _check_ax(ax)
    s = result.scales
    for m, g in enumerate(groups):
        r = result.ratio(kind, g, variant)
        ax.plot(s, np.mean(r, axis=0), "o-", ms=3, color=GROUP_COLORS[m % len(GROUP_COLORS)], label=g)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("weight scale s")
    num, den = kind.split("/")
    ax.set_ylabel(f"||g_{num}|| / ||g_{den}||  ({'plain gradient' if variant == 'plain' else variant})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_norms_vs_scale(ax, result, group: str = "all", variant: str = "plain", parts=PARTS):
    """||g_total||, ||g_cell||, ||g_h|| of one group against the weight scale (log x, log y): the
    geometric mean over seeds, for one variant of a SuppressionResult."""
    _check_ax(ax)
    check_choice("variant", variant, result.variants)
    s = result.scales
    for q in parts:
        check_choice("part", q, PARTS)
        check_group(group, result.norms[variant][q])
        y = np.asarray(result.norms[variant][q][group], dtype=float)  # (seeds, scales)
        with np.errstate(divide="ignore"):
            gm = np.exp(np.mean(np.log(y), axis=0))
        ax.plot(s, np.where(gm > 0, gm, np.nan), "o-", ms=3, **PART_STYLE[q])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("weight scale s")
    ax.set_ylabel(f"gradient norm ({group}, {'plain' if variant == 'plain' else variant})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_credit_vs_lag(ax, credit, quantity: str = "dc", group: str = "all", parts=PARTS,
                       yscale: str = "log"):
    """Norms of what reaches step t = ref_step - lag, by path, against the lag.

    quantity: "dh" (dL/dh_t), "dc" (dL/dc_t), "da" (dL/da_t) or "weights" (step t's term in the
    gradient of `group`). yscale: "log" or "symlog" (zeros stay visible on symlog)."""
    _check_ax(ax)
    check_choice("quantity", quantity, ("dh", "dc", "da", "weights"))
    check_choice("yscale", yscale, ("log", "symlog", "linear"))
    for q in parts:
        check_choice("part", q, PARTS)
        if quantity == "weights":
            check_group(group, credit.weights[q])
            y = credit.weights[q][group]
        else:
            y = getattr(credit, quantity)[q]
        y = np.asarray(y, dtype=float)
        if yscale == "log":
            y = np.where(y > 0, y, np.nan)
        ax.plot(credit.lags, y, **PART_STYLE[q], lw=1.2)
    if yscale == "symlog":
        curves = [credit.weights[q][group] if quantity == "weights" else getattr(credit, quantity)[q] for q in parts]
        pos = np.concatenate([np.asarray(c, float) for c in curves])
        pos = pos[pos > 0]
        ax.set_yscale("symlog", linthresh=float(pos.min()) if pos.size else 1e-12)
    else:
        ax.set_yscale(yscale)
    names = {"dh": "||dL/dh_t||", "dc": "||dL/dc_t||", "da": "||dL/da_t||", "weights": f"||step-t term of g({group})||"}
    ax.set_xlabel(f"lag (steps before step {credit.ref_step})")
    ax.set_ylabel(names[quantity])
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_jacobian_products(ax, products, norm: str = "spec", parts=("full", "cell", "h")):
    """Norms of products of step Jacobians against the lag (log y) from a JacobianProducts:
    "full" (one line per lambda), "cell" (the product of the A_t alone) and "h" (the rest, per
    lambda > 0). norm: "spec" (spectral) or "fro" (Frobenius); the mean over the batch."""
    _check_ax(ax)
    check_choice("norm", norm, ("spec", "fro"))
    for p in parts:
        check_choice("part", p, ("full", "cell", "h"))
    lags = products.lags
    full, h = getattr(products, norm), getattr(products, f"h_{norm}")
    for m, lam in enumerate(products.lambdas):
        color = VARIANT_COLORS[(m + 1) % len(VARIANT_COLORS)]
        if "full" in parts and not (lam == 0 and "cell" in parts):  # lambda = 0 IS the cell part
            ax.plot(lags, full[m], "-", color=color, label=f"prod (A + {lam:g} B)")
        if "h" in parts and lam > 0:
            ax.plot(lags, np.where(h[m] > 0, h[m], np.nan), ":", color=color, label=f"h part, lambda={lam:g}")
    if "cell" in parts:
        c = getattr(products, f"cell_{norm}")
        ax.plot(lags, np.where(c > 0, c, np.nan), "--", color=PART_STYLE["cell"]["color"], lw=2,
                label="cell part: prod A")
    ax.set_yscale("log")
    ax.set_xlabel(f"lag k (product of the k step Jacobians ending at step {products.end_step})")
    ax.set_ylabel(("spectral" if norm == "spec" else "Frobenius") + " norm")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_path_norms_history(ax, records, group: str = "all", parts=PARTS, ratio: bool = False, label=None, **kw):
    """Gradient-path norms over training iterations (log y).

    records: a list of {"iteration": int, "norms": PathGrads.norms() dict}, or a training history
    (its records with "paths", logged with log_paths_every > 0). ratio=False draws ||g_part|| of
    `group` for each part; ratio=True draws ||g_cell|| / ||g_total|| and ||g_cell|| / ||g_h||.
    label: a prefix for the legend entries (to overlay runs); kw go to `ax.plot` (e.g. color=,
    the parts are then told apart by line style)."""
    _check_ax(ax)
    if any(isinstance(r, dict) and "paths" in r for r in records):
        records = [r["paths"] for r in records if "paths" in r]
    if not records:
        raise ValueError("records is empty; expected a list of {'iteration': int, 'norms': {...}}")
    for r in records:
        if not isinstance(r, dict) or "iteration" not in r or "norms" not in r:
            raise ValueError(f"each record must be a dict with 'iteration' and 'norms', got {r!r:.80}")
    check_group(group, records[0]["norms"]["total"])
    it = np.array([r["iteration"] for r in records])
    order = np.argsort(it, kind="stable")
    it = it[order]
    get = lambda q: np.array([records[k]["norms"][q][group] for k in order], dtype=float)
    prefix = f"{label}: " if label else ""
    if ratio:
        with np.errstate(divide="ignore", invalid="ignore"):
            ax.plot(it, get("cell") / get("total"),
                    **{"color": "tab:blue", **kw, "label": prefix + "||g_cell|| / ||g_total||"})
            ax.plot(it, get("cell") / get("h"), **{"color": "tab:purple", "ls": "--" if "color" in kw else "-", **kw,
                                                  "label": prefix + "||g_cell|| / ||g_h||"})
        ax.set_ylabel(f"norm ratio ({group})")
    else:
        for q in parts:
            check_choice("part", q, PARTS)
            y = get(q)
            style = {**PART_STYLE[q], **({"ls": PART_LINESTYLE[q]} if "color" in kw else {}), **kw}
            style["label"] = prefix + PART_STYLE[q]["label"]
            ax.plot(it, np.where(y > 0, y, np.nan), **style)
        ax.set_ylabel(f"gradient norm ({group})")
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


__all__ = ["plot_credit_vs_lag", "plot_group_ratios_vs_scale", "plot_norms_vs_scale", "plot_jacobian_products",
           "plot_path_norms_history", "plot_ratio_vs_scale"]
