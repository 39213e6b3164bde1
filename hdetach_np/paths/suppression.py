"""The weight-scale sweep: how the cell-path share of the gradient changes with the weight scale.

The paper's central claim (section 3): the h-path terms are products with the recurrent weights, so
as the weights grow they dominate the gradient and the cell-path part is suppressed; h-detach,
which weights every h-edge by lambda = 1 - p in expectation, gives the cell path a larger share.

For each seed, an LSTM is drawn with the original initialisation, then its recurrent weights Wh
(`weights="Wh"`) or all its parameters Wx, Wh, b (`weights="all"`) are multiplied by each scale s
of a log grid. On inputs from a task (the copying task by default) the loss is the readout's
softmax cross-entropy, and the gradient is split exactly (`gradient_paths`) for the plain gradient
and for the expected h-detach gradient g(1 - p) at each p. Reported per parameter group and gate:
||g_cell|| / ||g_total|| and ||g_cell|| / ||g_h||, their mean and spread over seeds.

    from hdetach_np.paths.suppression import SuppressionConfig, suppression_sweep
    res = suppression_sweep(SuppressionConfig(scales=(0.5, 1, 2, 4), seeds=(0, 1)))
    res.summary("cell/total", "all")   # {"plain": {"mean": [...], "std": [...], ...}, "p=0.25": ...}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .._validate import check_choice, check_probability, float_dtype
from ..linear import init_linear, linear_backward, linear_forward
from ..losses import softmax_cross_entropy
from ..lstm import LSTMParams, init_lstm
from ..sequence import lstm_forward
from ..tasks import COPY_CLASSES, copying_data
from .records import json_floats
from .split import PARTS, check_group, gradient_paths, h_detach_lambda, param_groups

WEIGHTS = ("Wh", "all")
TASKS = ("copying", "uniform")
RATIOS = ("cell/total", "cell/h", "h/total")


@dataclass(frozen=True)
class SuppressionConfig:
    """Settings of a weight-scale sweep (frozen; `from_dict` rejects unknown keys).

    scales: positive factors on the weights (a log grid). seeds: one LSTM, readout and batch each.
    weights: "Wh" (recurrent weights only) or "all" (Wx, Wh and b). task: "copying" (copying
    delay `delay`, sequences of delay + 20 steps, loss at every step) or "uniform" (`delay` steps of
    U(0, 1) inputs, a random label among 10, loss at the last step: pixel-MNIST-like statistics). N: batch size;
    H: hidden size; ps: h-detach probabilities for the expected gradient g(1 - p); dtype: float64
    or float32; init: the `init_lstm` scheme.
    """

    scales: tuple = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    seeds: tuple = (0, 1, 2)
    weights: str = "Wh"
    task: str = "copying"
    delay: int = 100
    N: int = 50
    H: int = 128
    ps: tuple = (0.25, 0.5)
    dtype: str = "float64"
    init: str = "original"

    def __post_init__(self):
        scales = tuple(float(s) for s in np.atleast_1d(self.scales))
        if not scales:
            raise ValueError("scales must hold at least one scale, got none")
        for s in scales:
            if not np.isfinite(s) or s <= 0:
                raise ValueError(f"every weight scale must be a finite number > 0, got {s!r}")
        object.__setattr__(self, "scales", scales)
        seeds = tuple(np.atleast_1d(self.seeds).tolist())
        if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
            raise ValueError(f"seeds must be non-negative integers, got {self.seeds!r}")
        object.__setattr__(self, "seeds", seeds)
        ps = self.ps if isinstance(self.ps, (tuple, list)) else (self.ps,)
        object.__setattr__(self, "ps", tuple(check_probability("p", p) for p in ps))
        check_choice("weights", self.weights, WEIGHTS)
        check_choice("task", self.task, TASKS)
        for name in ("delay", "N", "H"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        float_dtype(self.dtype, "dtype")

    @classmethod
    def from_dict(cls, d: dict) -> SuppressionConfig:
        """A config from `as_dict`; the key "T" of configs saved before it was named `delay` still loads."""
        if "T" in d:
            if "delay" in d:
                raise ValueError(f"give the delay once: the key \"T\" is the old name of \"delay\", got both "
                                 f"(T={d['T']!r}, delay={d['delay']!r})")
            d = {("delay" if k == "T" else k): v for k, v in d.items()}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown SuppressionConfig key(s) {unknown}; expected some of {sorted(known)}")
        return cls(**d)

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


def scale_params(params: LSTMParams, s: float, weights: str = "Wh") -> LSTMParams:
    """Multiply Wh (weights="Wh") or Wx, Wh and b (weights="all") by s > 0. Returns new params."""
    check_choice("weights", weights, WEIGHTS)
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"the weight scale must be a finite number > 0, got {s!r}")
    dt = params.dtype.type
    if weights == "Wh":
        return LSTMParams(params.Wx.copy(), params.Wh * dt(s), params.b.copy())
    return LSTMParams(params.Wx * dt(s), params.Wh * dt(s), params.b * dt(s))


def task_batch(task: str, N: int, delay: int, rng: np.random.Generator, dtype):
    """Inputs x (L, N, 1), targets (L, N), number of classes K and the loss steps of a task.

    L = delay + 20 for "copying" (delay: the copying delay), L = delay for "uniform"."""
    check_choice("task", task, TASKS)
    if task == "copying":
        x, y = copying_data(N, delay, rng, dtype=dtype)
        return x, y, COPY_CLASSES, "all"
    x = rng.random((delay, N, 1)).astype(dtype)
    y = rng.integers(0, 10, size=(delay, N))
    return x, y, 10, "last"


@dataclass(frozen=True, eq=False)
class SuppressionResult:
    """`norms[variant][part][group]`: (n_seeds, n_scales) arrays; variant "plain" or "p=<p>",
    part "total" | "cell" | "h", group as in `param_groups`. loss: (n_seeds, n_scales)."""

    config: SuppressionConfig
    norms: dict
    loss: np.ndarray = field(repr=False)

    @property
    def scales(self) -> np.ndarray:
        return np.asarray(self.config.scales)

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(self.norms)

    def ratio(self, kind: str = "cell/total", group: str = "all", variant: str = "plain") -> np.ndarray:
        """(n_seeds, n_scales) norm ratios: kind "cell/total", "cell/h" or "h/total"."""
        check_choice("ratio kind", kind, RATIOS)
        check_choice("variant", variant, self.variants)
        n = self.norms[variant]
        check_group(group, n["total"])
        num, den = kind.split("/")
        with np.errstate(divide="ignore", invalid="ignore"):
            return n[num][group] / n[den][group]

    def summary(self, kind: str = "cell/total", group: str = "all") -> dict:
        """{variant: {"mean", "std", "min", "max", "median", "geomean"}: lists over scales} across
        seeds (the ratios span orders of magnitude: the geometric mean is the typical value)."""
        out = {}
        for v in self.variants:
            r = self.ratio(kind, group, v)
            with np.errstate(invalid="ignore", divide="ignore"):  # inf ratios (a zero h part): nan spreads
                out[v] = {"mean": np.mean(r, 0).tolist(), "std": np.std(r, 0).tolist(),
                          "min": np.min(r, 0).tolist(), "max": np.max(r, 0).tolist(),
                          "median": np.median(r, 0).tolist(), "geomean": np.exp(np.mean(np.log(r), 0)).tolist()}
        return out

    def as_dict(self, groups=None, raw_groups=None, digits: int = 7) -> dict:
        """JSON-ready (`digits` significant digits): config, scales, loss, ratio summaries over seeds for
        `groups` (default: "all", "Wx", "Wh", "b", the four gate blocks of Wh and "readout") and
        the raw norms (seeds x scales) of `raw_groups` (default "all", "Wx", "Wh", "b")."""
        groups = groups or ("all", "Wx", "Wh", "b", "Wh.i", "Wh.f", "Wh.o", "Wh.g", "readout")
        raw_groups = raw_groups or ("all", "Wx", "Wh", "b")
        for g in (*groups, *raw_groups):
            check_group(g, self.norms["plain"]["total"])
        summ = lambda k, g: {v: {s: json_floats(x, digits) for s, x in d.items()}
                             for v, d in self.summary(k, g).items()}
        return {
            "config": self.config.as_dict(),
            "scales": self.scales.tolist(),
            "loss": json_floats(self.loss, digits),
            "norms": {v: {q: {g: json_floats(d[g], digits) for g in raw_groups} for q, d in n.items()}
                      for v, n in self.norms.items()},
            "ratios": {k: {g: summ(k, g) for g in groups} for k in ("cell/total", "cell/h")},
        }


def suppression_sweep(config: SuppressionConfig | None = None, progress: bool = False) -> SuppressionResult:
    """Run the weight-scale sweep described in the module docstring. Returns SuppressionResult."""
    cfg = SuppressionConfig() if config is None else config
    if not isinstance(cfg, SuppressionConfig):
        raise TypeError(f"config must be a SuppressionConfig, got {type(cfg).__name__}")
    dt = float_dtype(cfg.dtype)
    groups = param_groups(readout=True)
    variants = ("plain",) + tuple(f"p={p:g}" for p in cfg.ps)
    S, M = len(cfg.seeds), len(cfg.scales)
    norms = {v: {q: {g: np.zeros((S, M)) for g in groups} for q in PARTS} for v in variants}
    loss = np.zeros((S, M))
    it = [(a, b) for a in range(S) for b in range(M)]
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="suppression sweep")
    base = {}
    for a, b in it:
        if a not in base:
            rng = np.random.default_rng(cfg.seeds[a])
            params = init_lstm(1, cfg.H, rng, dtype=dt, scheme=cfg.init)
            x, y, K, steps = task_batch(cfg.task, cfg.N, cfg.delay, rng, dt)
            readout = init_linear(cfg.H, K, rng, dtype=dt)
            base = {a: (params, x, y, steps, readout)}
        params, x, y, steps, readout = base[a]
        scaled = scale_params(params, cfg.scales[b], cfg.weights)
        hs, cache = lstm_forward(scaled, x)
        logits, lcache = linear_forward(readout, hs)
        loss[a, b], dlogits = softmax_cross_entropy(logits, y, steps=steps)
        lgrads = linear_backward(dlogits, lcache)
        L = x.shape[0]
        for v, p in zip(variants, (None,) + cfg.ps):
            h_scale = None if p is None else h_detach_lambda(L, p, dt)
            pg = gradient_paths(lgrads.h, cache, h_scale=h_scale, readout=lgrads)
            for q, d in pg.norms().items():
                for g in groups:
                    norms[v][q][g][a, b] = d[g]
    return SuppressionResult(cfg, norms, loss)


__all__ = ["SuppressionConfig", "SuppressionResult", "scale_params", "suppression_sweep", "task_batch"]
