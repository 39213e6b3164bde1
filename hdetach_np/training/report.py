"""Summaries of many runs: distributions over seeds, tests between settings, median curves.

    from hdetach_np.training.report import sweep_report
    rep = sweep_report("runs/copy-T10")       # writes SWEEP/report.md, report.json, report.png
    rep["groups"]["p=0.25"]["final_accuracy"]  # {"n", "n_missing", "min", "q1", "median", "q3", "max"}

A group is every run of a sweep with the same grid values except the seed. Per group: median,
quartiles and min-max over seeds of the final and best validation accuracy and of the first
iteration reaching 50%, 90% and 99% validation accuracy. A seed that never reached a level counts
as slower than every seed that did, so a quantile that falls on such seeds is "not reached".

Each group is compared with the first one (the reference) by a two-sided Mann-Whitney U test
(`scipy.stats.mannwhitneyu`), with two effect sizes that say the same thing on two scales: the
common-language effect size CL = U / (n1 n2), the probability that a seed of the group has a larger
value than a seed of the reference (ties count half), and the rank-biserial correlation r = 2 CL - 1
in [-1, 1]. With 5 seeds per group the smallest possible two-sided p-value is 2/252 = 0.008, with
10 it is 2/184,756 = 1.1e-5. The p-value is exact when no value repeats; with ties (seeds that never
reached a level, accuracies of exactly 1) it comes from the normal approximation with tie and
continuity corrections.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from . import runs

THRESHOLDS = (0.5, 0.9, 0.99)


# ---------------------------------------------------------------------------------------------
# One history
# ---------------------------------------------------------------------------------------------


def first_reach(history: list, thresholds=THRESHOLDS, split: str = "valid") -> dict:
    """{threshold: the first iteration whose `split` accuracy is >= threshold, or None}."""
    evals = [(r["iteration"], r["accuracy"]) for r in history
             if r.get("split") == split and r.get("accuracy") is not None]
    return {th: next((it for it, a in evals if a >= th), None) for th in thresholds}


def final_eval(history: list, split: str = "valid") -> dict | None:
    """The last evaluation record of a split (loss, accuracy, iteration), or None."""
    recs = [r for r in history if r.get("split") == split]
    return recs[-1] if recs else None


def best_eval(history: list, split: str = "valid") -> dict | None:
    """The evaluation record of a split with the highest accuracy (first one on ties), or None."""
    recs = [r for r in history if r.get("split") == split and r.get("accuracy") is not None]
    return max(recs, key=lambda r: r["accuracy"]) if recs else None


def run_metrics(history: list, thresholds=THRESHOLDS, split: str = "valid") -> dict:
    """final_accuracy, best_accuracy and it_to_<threshold> (None when absent or not reached); for a
    task with a test split (MNIST), also test_accuracy_at_best: the test accuracy of the model of
    the best validation accuracy (the training loop evaluates the test split only then, so it is
    the last test record; the paper's MNIST measure)."""
    fin, best = final_eval(history, split), best_eval(history, split)
    out = {"final_accuracy": fin.get("accuracy") if fin else None, "best_accuracy": best["accuracy"] if best else None}
    out.update({f"it_to_{th:g}": it for th, it in first_reach(history, thresholds, split).items()})
    test = final_eval(history, "test")
    if test is not None:
        out["test_accuracy_at_best"] = test.get("accuracy")
    return out


# ---------------------------------------------------------------------------------------------
# Distributions over seeds
# ---------------------------------------------------------------------------------------------


def spread(values) -> dict:
    """Median, min, max and count of the values that are not None; `n_missing` counts the Nones
    (e.g. runs that never reached a threshold). Median is None when fewer than half the values exist,
    since then the median is itself 'not reached'."""
    d = distribution(values)
    return {k: d[k] for k in ("n", "n_missing", "median", "min", "max")}


def distribution(values) -> dict:
    """n (values present), n_missing (Nones), min and max of the present values, and the quartiles
    q1, median, q3 of all values with None counted as larger than every present value (a quantile
    that falls on a None is None: 'not reached'). Quantiles interpolate linearly (numpy's default)."""
    values = list(values)
    vals = sorted(float(v) for v in values if v is not None)
    out = {"n": len(vals), "n_missing": len(values) - len(vals),
           "min": vals[0] if vals else None, "max": vals[-1] if vals else None}
    full = vals + [math.inf] * out["n_missing"]  # sorted
    for name, q in (("q1", 0.25), ("median", 0.5), ("q3", 0.75)):
        out[name] = _quantile(full, q) if full else None
    return out


def _quantile(ordered: list, q: float):
    """numpy's default (linear) quantile of sorted values that may end in inf; None if it is inf."""
    h = (len(ordered) - 1) * q
    lo = math.floor(h)
    g = h - lo
    v = ordered[lo] if g == 0 else ordered[lo] + (ordered[lo + 1] - ordered[lo]) * g
    return v if math.isfinite(v) else None


def compare(a, b) -> dict:
    """Two-sided Mann-Whitney U test of values `a` against `b` (None = larger than every value, as
    'not reached'); U is the statistic of `a`. Effect sizes: cl = U / (n_a n_b), the probability
    that a value of `a` exceeds one of `b` (ties count half), and rank_biserial = 2 cl - 1. The
    p-value is exact when no value repeats, else from the normal approximation with tie correction
    ("method" says which)."""
    from scipy.stats import mannwhitneyu

    x = [math.inf if v is None else float(v) for v in a]
    y = [math.inf if v is None else float(v) for v in b]
    if not x or not y:
        return {"n_a": len(x), "n_b": len(y), "U": None, "p_value": None, "cl": None, "rank_biserial": None,
                "method": None}
    if len(set(x + y)) == 1:  # every value equal: no evidence either way
        u, p, method = len(x) * len(y) / 2, 1.0, "all equal"
    else:
        # exact null distribution when no value repeats; with ties (e.g. several seeds 'not reached',
        # or accuracies of exactly 1) the normal approximation with tie and continuity corrections
        method = "exact" if len(set(x + y)) == len(x) + len(y) else "asymptotic"
        res = mannwhitneyu(x, y, alternative="two-sided", method=method)
        u, p = float(res.statistic), float(res.pvalue)
    cl = u / (len(x) * len(y))
    return {"n_a": len(x), "n_b": len(y), "U": u, "p_value": p, "cl": cl, "rank_biserial": 2 * cl - 1,
            "method": method}


def band_curve(histories: list, split: str = "valid", key: str = "accuracy") -> dict:
    """{"iteration", "median", "q1", "q3", "min", "max"} arrays of an evaluation metric over runs
    evaluated at the same iterations (runs that stopped early cut the curves to the shortest)."""
    from .plots import eval_curve

    curves = [eval_curve(h, split, key) for h in histories]
    n = min((len(c[0]) for c in curves), default=0)
    if n == 0:
        return {k: np.zeros(0) for k in ("iteration", "median", "q1", "q3", "min", "max")}
    v = np.stack([c[1][:n] for c in curves])  # (runs, evaluations)
    q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75], axis=0)
    return {"iteration": curves[0][0][:n], "median": med, "q1": q1, "q3": q3, "min": v.min(0), "max": v.max(0)}


def plot_median_band(ax, groups: dict, split: str = "valid", key: str = "accuracy", thresholds=()):
    """One line per group ({label: [history per seed]}): the median over seeds, a dark band between
    the quartiles and a light band between min and max. Returns ax."""
    for label, histories in groups.items():
        b = band_curve(histories, split, key)
        (line,) = ax.plot(b["iteration"], b["median"], lw=2, label=f"{label} (median of {len(histories)})")
        ax.fill_between(b["iteration"], b["q1"], b["q3"], color=line.get_color(), alpha=0.3, lw=0)
        ax.fill_between(b["iteration"], b["min"], b["max"], color=line.get_color(), alpha=0.1, lw=0)
    for th in thresholds:
        ax.axhline(th, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"{split} {key} (median, quartiles, min-max over seeds)")
    ax.grid(True, alpha=0.3)
    if groups:
        ax.legend(fontsize="small")
    return ax


# ---------------------------------------------------------------------------------------------
# Tables and files
# ---------------------------------------------------------------------------------------------


def fmt(v, digits: int = 0) -> str:
    """A table cell: '-' for None, otherwise the number with `digits` decimals."""
    if v is None:
        return "-"
    return f"{v:.{digits}f}"


def fmt_p(p) -> str:
    """A p-value cell: three decimals, or two significant digits below 0.001 ('1.1e-05'); '-' for None."""
    if p is None:
        return "-"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def markdown_table(header, rows) -> str:
    """A GitHub markdown table from a header list and rows of cells (converted with str)."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def jsonable(o):
    """`o` with Paths as strings, numpy scalars as Python numbers and non-finite floats as None."""
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, np.ndarray):
        return jsonable(o.tolist())
    if isinstance(o, np.generic):
        return jsonable(o.item())
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def write_outputs(out_dir, stem: str, data: dict, table_md: str, fig=None, dpi: int = 100, say=print) -> dict:
    """Write OUT/stem.json, OUT/stem.md and (if a figure is given, then closed) OUT/stem.png; say
    what was written and return the paths. These are files of the toolkit's own: rewritten each time."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "md": out / f"{stem}.md"}
    paths["json"].write_text(json.dumps(jsonable(data), indent=1) + "\n")
    paths["md"].write_text(table_md)
    if fig is not None:
        paths["png"] = out / f"{stem}.png"
        fig.savefig(paths["png"], dpi=dpi)
        import matplotlib.pyplot as plt

        plt.close(fig)
    say("wrote " + ", ".join(str(p) for p in paths.values()))
    return paths


# ---------------------------------------------------------------------------------------------
# The report of a sweep folder
# ---------------------------------------------------------------------------------------------

METRICS = ("final_accuracy", "best_accuracy") + tuple(f"it_to_{th:g}" for th in THRESHOLDS) + ("test_accuracy_at_best",)
METRIC_TEXT = {"final_accuracy": "final valid acc.", "best_accuracy": "best valid acc.",
               "test_accuracy_at_best": "test acc. at best valid",
               **{f"it_to_{th:g}": f"iterations to {th:.0%}" for th in THRESHOLDS}}


def group_label(point: dict) -> str:
    """The group of a sweep's grid point: its values except the seed ('p=0.25'), or 'all' when
    only the seed varies."""
    from .sweep import run_name

    rest = {k: v for k, v in point.items() if k != "seed"}
    return run_name(rest) if rest else "all"


def sweep_groups(sweep_dir) -> dict:
    """{group label: [{"name", "point", "seed", "history"}]} of a sweep folder's runs that have a
    history and the config the manifest lists for them, grouped by their grid values except the
    seed (label 'all' when only seeds vary), in the manifest's order."""
    from .sweep import folder_state, read_manifest

    sweep = Path(sweep_dir)
    groups = {}
    for name, entry in read_manifest(sweep)["runs"].items():
        point = entry["point"]
        if folder_state(sweep / name, entry["config"])[0] in ("new", "other", "foreign"):
            continue
        if not (sweep / name / runs.HISTORY).is_file():
            continue
        label = group_label(point)
        groups.setdefault(label, []).append({"name": name, "point": point, "seed": point.get("seed"),
                                             "history": runs.read_history(sweep / name)})
    return groups


def reference_groups(points: dict, against: tuple | None = None) -> dict:
    """{group label: label of the group it is compared with} for groups {label: grid point without
    the seed}, e.g. {"one_hot=true,delay=10": {"one_hot": True, "delay": 10}, ...}.

    against None: every group after the first against the first. against (KEY, VALUE): each group
    whose KEY differs from VALUE against the group with the same point but KEY = VALUE (values as
    the manifest stores them, e.g. ("one_hot", True) or ("p", 0.0)), so that a grid over two keys
    compares within the same value of the other; the groups with KEY = VALUE are references. Raises
    ValueError when KEY is not a grid key or a group has no matching reference."""
    labels = list(points)
    if against is None:
        return {label: labels[0] for label in labels[1:]}
    key, value = against
    if any(key not in point for point in points.values()):
        raise ValueError(f"against {key}={value!r}: {key} is not a grid key of this sweep; "
                         f"its grid keys: {', '.join(sorted({k for pt in points.values() for k in pt})) or 'none'}")
    out = {}
    for label, point in points.items():
        if point[key] == value:
            continue
        ref = group_label(dict(point, **{key: value}))
        if ref not in points:
            raise ValueError(f"against {key}={value!r}: group {label} has no group with {key}={value!r} to be "
                             f"compared with (expected a group {ref}); the sweep's groups: {', '.join(labels)}")
        out[label] = ref
    return out


def shared_reference(references: dict) -> str | None:
    """The one group every compared group is tested against ({label: reference label}), or None
    when there are several references or none."""
    shared = set(references.values())
    return shared.pop() if len(shared) == 1 else None


def summarize_groups(groups: dict, thresholds=THRESHOLDS, references: dict | None = None) -> dict:
    """Per group: the runs' metrics (run_metrics) and their distribution over seeds; per compared
    group: the Mann-Whitney comparison of each metric with its reference group. references:
    {label: reference label} (see reference_groups); default every group after the first against
    the first."""
    if references is None:
        references = reference_groups({label: {} for label in groups})
    reference = shared_reference(references) if references else next(iter(groups), None)
    out = {"groups": {}, "comparisons": {}, "references": dict(references), "reference": reference}
    per_group = {}
    for label, rs in groups.items():
        per_run = [{"name": r["name"], "seed": r["seed"], **run_metrics(r["history"], thresholds)} for r in rs]
        per_group[label] = per_run
        metrics = [k for k in per_run[0] if k not in ("name", "seed")] if per_run else []
        out["groups"][label] = {"runs": per_run, **{m: distribution(p[m] for p in per_run) for m in metrics}}
    for label, ref_label in references.items():
        per_run, ref = per_group[label], per_group[ref_label]
        metrics = [k for k in per_run[0] if k not in ("name", "seed")] if per_run else []
        out["comparisons"][label] = {m: compare([p[m] for p in per_run], [p[m] for p in ref]) for m in metrics}
    return out


def report_markdown(summary: dict, title: str = "") -> str:
    """The summary as markdown: one table of distributions, one of comparisons."""
    def cell(d, digits):
        if d["n"] == 0:
            return f"not reached (0/{d['n'] + d['n_missing']})"
        text = f"{fmt(d['median'], digits)} [{fmt(d['q1'], digits)}, {fmt(d['q3'], digits)}] " \
               f"({fmt(d['min'], digits)}-{fmt(d['max'], digits)})"
        return text + (f", {d['n']}/{d['n'] + d['n_missing']} reached" if d["n_missing"] else "")

    shown = [m for m in METRICS if all(m in g for g in summary["groups"].values())]  # test acc.: MNIST only
    rows = [[label, len(g["runs"])] + [cell(g[m], 3 if "accuracy" in m else 0) for m in shown]
            for label, g in summary["groups"].items()]
    table = markdown_table(["group", "seeds"] + [METRIC_TEXT[m] for m in shown], rows)
    text = (f"# {title}\n\n" if title else "") + table
    text += ("\nMedian [quartiles] (min-max) over seeds. Iterations: the first evaluation at or above the level; "
             "a seed that never reached it counts as slower than all, so '-' marks a quantile that falls on such "
             "seeds.\n")
    if summary["comparisons"]:
        references = summary.get("references") or {k: summary["reference"] for k in summary["comparisons"]}
        one_reference = shared_reference(references) is not None
        rows = []
        for label, comp in summary["comparisons"].items():
            for m in shown:
                c = comp[m]
                rows.append([label] + ([] if one_reference else [references[label]])
                            + [METRIC_TEXT[m], fmt(c["U"], 1), fmt_p(c["p_value"]), c["method"] or "-",
                               fmt(c["cl"], 2), fmt(c["rank_biserial"], 2)])
        against = f"`{shared_reference(references)}`" if one_reference else "its reference (column 'against')"
        text += (f"\nEach group against {against}: two-sided Mann-Whitney U test over seeds; "
                 "CL = U / (n1 n2), the probability that a seed of the group has the larger value (ties count "
                 "half); rank-biserial r = 2 CL - 1. Larger is better for accuracy, smaller for iterations. "
                 "p is exact when no value repeats, else (ties) from the normal approximation with tie "
                 "correction.\n\n")
        text += markdown_table(["group"] + ([] if one_reference else ["against"])
                               + ["metric", "U", "p", "p from", "CL", "r"], rows)
    return text


def sweep_report(sweep_dir, out_dir=None, say=print, against: tuple | None = None) -> dict:
    """Summarise a sweep folder and write report.md, report.json and report.png (median validation
    accuracy with bands over seeds) into `out_dir` (default: the sweep folder). against: (KEY, VALUE)
    pairs each group with the group that differs only in KEY = VALUE (see reference_groups); default
    every group against the first. Returns the summary."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    sweep = Path(sweep_dir)
    groups = sweep_groups(sweep)
    if not groups:
        raise ValueError(f"the sweep {sweep} has no run with a history yet; run the sweep first")
    points = {label: {k: v for k, v in rs[0]["point"].items() if k != "seed"} for label, rs in groups.items()}
    summary = summarize_groups(groups, references=reference_groups(points, against))
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    plot_median_band(fig.subplots(), {k: [r["history"] for r in rs] for k, rs in groups.items()}, thresholds=THRESHOLDS)
    md = report_markdown(summary, title=f"Sweep {sweep.resolve().name}")
    write_outputs(out_dir if out_dir is not None else sweep, "report", summary, md, fig, dpi=120, say=say)
    return summary
