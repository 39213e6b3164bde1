"""Subcommand `plot` of the `hdetach-np` command line: loss and accuracy curves of run folders.

`register(sub)` adds it to the top-level parser (after `train`, `eval` and `transfer`).
"""

from __future__ import annotations

from pathlib import Path

from .._validate import check_int
from ..training.config import TrainConfig


def register(sub) -> None:
    """Add `plot` to the subcommands `sub`."""
    p = sub.add_parser("plot", help="plot loss and accuracy curves of one or more runs",
                       description="Overlay the training loss, validation loss and validation accuracy of runs "
                       "(and, with --paths, the logged cell/h-path gradient norms) in one PNG/PDF/SVG.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="image file (default: RUN/curves.png for one run, curves.png for several)")
    p.add_argument("--labels", nargs="+", default=None, help="legend labels, one per run (default: folder names)")
    p.add_argument("--smooth", type=int, default=50,
                   help="moving average over this many training records (default: 50)")
    p.add_argument("--paths", action="store_true", help="add a panel of cell/h-path gradient norms (default: off)")
    p.add_argument("--band", action="store_true",
                   help="draw the validation accuracy as median and bands (quartiles, min-max): one per group of a "
                   "sweep folder (runs equal but for the seed), or one for all the run folders given (default: off)")
    p.set_defaults(func=_run_plot)


def _run_plot(args) -> int:
    import matplotlib

    matplotlib.use("Agg")

    from .._atomic import atomic_write
    from ..training.plots import curves_figure
    from ..training.runs import read_history, read_json

    check_int("--smooth", args.smooth, 1)
    if args.band:
        return _plot_band(args)
    if args.labels is not None and len(args.labels) != len(args.runs):
        raise ValueError(f"--labels needs one label per run: {len(args.runs)} run(s), {len(args.labels)} label(s)")
    labels = args.labels or [Path(r).resolve().name for r in args.runs]
    histories = {lab: read_history(r) for lab, r in zip(labels, args.runs)}
    configs = {lab: TrainConfig.from_dict(read_json(Path(r) / "config.json")) for lab, r in zip(labels, args.runs)
               if (Path(r) / "config.json").is_file()}
    fig = curves_figure(histories, configs, smooth=args.smooth, paths=args.paths)
    if args.out:
        out = Path(args.out)
    else:
        out = Path(args.runs[0]) / "curves.png" if len(args.runs) == 1 else Path("curves.png")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give an image file name such as {out / 'curves.png'}")
    fmt = out.suffix.lstrip(".").lower() or "png"
    atomic_write(out, lambda f: fig.savefig(f, format=fmt, dpi=120))  # never a half-written image
    print(f"wrote {out}")
    return 0


def _plot_band(args) -> int:
    from matplotlib.figure import Figure

    from ..training.report import plot_median_band, sweep_groups
    from ..training.runs import read_history
    from ..training.sweep import MANIFEST

    groups, single = {}, []
    for r in args.runs:
        if (Path(r) / MANIFEST).is_file():
            prefix = f"{Path(r).resolve().name}: " if len(args.runs) > 1 else ""
            groups.update({prefix + k: [x["history"] for x in v] for k, v in sweep_groups(r).items()})
        else:
            single.append(read_history(r))
    if single:
        groups[args.labels[0] if args.labels else "runs"] = single
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    plot_median_band(fig.subplots(), groups)
    first = Path(args.runs[0])
    out = Path(args.out) if args.out else (first / "band.png" if (first / MANIFEST).is_file() and len(args.runs) == 1
                                           else Path("band.png"))
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0
