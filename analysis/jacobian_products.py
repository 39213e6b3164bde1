"""Products of the step Jacobians A_t + lambda B_t over growing lags, and their pure cell part.

An LSTM (hidden 128, original initialisation, one seed) reads a batch of copying-task inputs
(delay 100, sequences of delay + 20 = 120 steps). At the last step, the product of the k step Jacobians
ending there is formed for every lag k, for lambda in {0, 0.5, 1} (lambda = 1 - p: the expected
h-detach Jacobian; 1 is the plain one, 0 the pure cell part prod A_t), with Wh multiplied by each of
a few scales. Norms are the mean over the batch of each example's spectral norm.

Writes into --out: jacobian_products.png and jacobian_products.json.

Run from the repository root (after `pip install -e .`):

    python analysis/jacobian_products.py --out docs/figures            # full: about a minute
    python analysis/jacobian_products.py --out /tmp/quick --quick      # seconds
"""

from __future__ import annotations

import json
import os

import numpy as np


def build_parser():
    from _common import scale_parser

    p = scale_parser(__doc__, N=8)  # norms are averaged over the batch
    p.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.5, 1.0], help="h-edge factors")
    p.add_argument("--nlags", type=int, default=30, help="lags evaluated (evenly spaced in 1 .. delay + 20)")
    return p


def main(argv=None) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from _common import command_line, copying_problem

    import hdetach_np as hd
    from hdetach_np.paths.jacobians import jacobian_products
    from hdetach_np.paths.plots import plot_jacobian_products
    from hdetach_np.paths.suppression import scale_params

    args = build_parser().parse_args(argv)
    if args.quick:
        args.delay, args.N, args.H, args.nlags = 10, 2, 8, 8
    _, params, x, _ = copying_problem(args.seed, args.delay, args.N, args.H)
    L = x.shape[0]
    lags = np.unique(np.linspace(1, L, args.nlags).round().astype(int))
    out = {"command": command_line("jacobian_products.py", argv),
           "delay": args.delay, "L": L, "N": args.N, "H": args.H, "seed": args.seed, "runs": {}}
    fig, axes = plt.subplots(1, len(args.scales), figsize=(5 * len(args.scales), 4.2), squeeze=False)
    for m, s in enumerate(args.scales):
        cache = hd.lstm_forward(scale_params(params, s, "Wh"), x)[1]
        jp = jacobian_products(cache, lambdas=args.lambdas, lags=lags)
        out["runs"][f"scale={s:g}"] = jp.as_dict()
        ax = plot_jacobian_products(axes[0, m], jp, norm="spec")
        ax.set_title(f"Wh x {s:g}", fontsize="medium")
    fig.suptitle(f"Spectral norms of products of step Jacobians, copying inputs, delay={args.delay}, N={args.N}, "
                 f"H={args.H} (mean over the batch)", fontsize="medium")
    fig.tight_layout()
    os.makedirs(args.out, exist_ok=True)
    fig.savefig(os.path.join(args.out, "jacobian_products.png"), dpi=100)
    plt.close(fig)
    with open(os.path.join(args.out, "jacobian_products.json"), "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
    print(f"spectral norm of the product over the whole sequence (lag {lags[-1]:d})")
    for k, r in out["runs"].items():
        row = "  ".join(f"lambda={l:g}: {v[-1]:.3g}" for l, v in zip(r["lambdas"], r["spec"]))
        print(f"  {k:<10} cell part: {r['cell_spec'][-1]:.3g}  {row}")
    return out


if __name__ == "__main__":
    import _common

    _common.script_main(main)
