"""Temporal credit on the copying task: what reaches each earlier step, through which path.

An LSTM (hidden 128, original initialisation, one seed) reads a batch of the copying task (delay
100, sequences of delay + 20 = 120 steps). The loss is the cross-entropy on the last 10 steps, where the
10 tokens must be recalled. For the recurrent weights Wh multiplied by each of a few scales, and for
the plain and the expected h-detach (p = 0.5) gradients, the script records against the lag from
the last step: ||dL/dc_t|| and each step's term in the LSTM weight gradient, split into the cell
path and the h path. The input steps (the 10 tokens, lags delay + 10 .. delay + 19) are shaded.

Writes into --out: temporal_credit.png and temporal_credit.json (per-lag norms, and for the input
steps the cell share of their weight-gradient terms).

Run from the repository root (after `pip install -e .`):

    python analysis/temporal_credit.py --out docs/figures            # full: well under a minute
    python analysis/temporal_credit.py --out /tmp/quick --quick      # seconds
"""

from __future__ import annotations

import json
import os

import numpy as np


def build_parser():
    from _common import scale_parser

    p = scale_parser(__doc__, N=50)
    p.add_argument("--p", type=float, default=0.5, help="h-detach probability of the expected gradient")
    return p


def main(argv=None) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from _common import command_line, copying_problem

    import hdetach_np as hd
    from hdetach_np.paths import h_detach_lambda, temporal_credit
    from hdetach_np.paths.plots import plot_credit_vs_lag
    from hdetach_np.paths.suppression import scale_params
    from hdetach_np.tasks import COPY_CLASSES, COPY_TOKENS

    args = build_parser().parse_args(argv)
    if args.quick:
        args.delay, args.N, args.H = 12, 8, 16
    rng, params, x, y = copying_problem(args.seed, args.delay, args.N, args.H)
    readout = hd.init_linear(args.H, COPY_CLASSES, rng, dtype=np.float64)
    L = x.shape[0]
    recall = np.zeros(L, dtype=bool)
    recall[-COPY_TOKENS:] = True  # the loss on the recall steps
    input_lags = (L - 1) - np.arange(COPY_TOKENS)  # lags of the 10 token steps from the last step

    out = {"command": command_line("temporal_credit.py", argv),
           "delay": args.delay, "L": L, "N": args.N, "H": args.H, "seed": args.seed, "p": args.p, "runs": {}}
    fig, axes = plt.subplots(2, len(args.scales), figsize=(5 * len(args.scales), 7.5), squeeze=False)
    for m, s in enumerate(args.scales):
        cache = hd.lstm_forward(scale_params(params, s, "Wh"), x)[1]
        logits, lcache = hd.linear_forward(readout, cache.hs)
        _, dlogits = hd.softmax_cross_entropy(logits, y, steps=recall)
        dhs = hd.linear_backward(dlogits, lcache).h
        for name, h_scale in (("plain", None), (f"p={args.p:g}", h_detach_lambda(L, args.p))):
            tc = temporal_credit(dhs, cache, h_scale=h_scale)
            w = {q: np.asarray(tc.weights[q]["all"]) for q in ("total", "cell", "h")}
            inp = {q: float(w[q][input_lags].sum()) for q in w}
            out["runs"][f"scale={s:g}/{name}"] = {
                "credit": tc.as_dict(groups=("all", "Wx", "Wh", "b"), digits=4),
                "input_steps": {
                    "sum_of_weight_term_norms": inp,
                    "cell_share": inp["cell"] / inp["total"] if inp["total"] > 0 else None,
                    "cell_over_h": inp["cell"] / inp["h"] if inp["h"] > 0 else None,
                },
            }
            if name == "plain":
                for row, quantity in enumerate(("dc", "weights")):
                    ax = plot_credit_vs_lag(axes[row, m], tc, quantity=quantity, group="all")
                    ax.axvspan(input_lags.min(), input_lags.max(), color="gold", alpha=0.3, lw=0)
                    what = "||dL/dc_t||" if quantity == "dc" else "step-t term of the LSTM gradient"
                    ax.set_title(f"Wh x {s:g}: " + what, fontsize="medium")
    fig.suptitle(f"Copying task, loss on the recall steps, delay={args.delay}, N={args.N}, H={args.H} "
                 f"(shaded: the input token steps)", fontsize="medium")
    fig.tight_layout()
    os.makedirs(args.out, exist_ok=True)
    fig.savefig(os.path.join(args.out, "temporal_credit.png"), dpi=100)
    plt.close(fig)
    with open(os.path.join(args.out, "temporal_credit.json"), "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
    print("input token steps: sum over the 10 steps of the norms of their weight-gradient terms")
    print(f"  {'run':<22} {'total':>10} {'cell':>10} {'h':>10} {'cell/total':>11}")
    for k, r in out["runs"].items():
        i = r["input_steps"]["sum_of_weight_term_norms"]
        share = r["input_steps"]["cell_share"] or float("nan")
        print(f"  {k:<22} {i['total']:10.3g} {i['cell']:10.3g} {i['h']:10.3g} {share:11.3g}")
    return out


if __name__ == "__main__":
    import _common

    _common.script_main(main)
