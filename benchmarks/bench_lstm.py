"""Speed of the hand-derived LSTM BPTT: against PyTorch, against the machine's floor, and how it scales.

Run from the repository root (numpy is enough; PyTorch and threadpoolctl are used when installed):

    python benchmarks/bench_lstm.py                 # full run, about 10 minutes on 2 cores
    python benchmarks/bench_lstm.py --quick         # tiny sizes, a few seconds (a smoke test)
    python benchmarks/bench_lstm.py --threads 2     # BLAS and torch threads of the main tables
    python benchmarks/bench_lstm.py --out my.json   # where the JSON goes
    python benchmarks/bench_lstm.py --markdown my.json   # its tables as markdown

Everything runs in one process. Each table interleaves its variants (A B C ... C B A ...) after a
warm-up and reports the MEDIAN seconds per iteration over the repeats, so that its ratios stay
meaningful on a shared, busy machine; absolute seconds drift between runs, ratios much less.

1. Configs. "copying": T=120, N=100, D=10, H=128, K=9, loss at every step. "pixel-mnist": T=784,
   N=100, D=1, H=128, K=10, loss at the last step. One iteration is the forward pass, the linear
   readout, the softmax cross-entropy and the backward pass of all of them. Variants:
     ours-f32-p0, ours-f32-p0.25, ours-f64-p0, ours-f64-p0.25   hdetach_np; p = h-detach probability;
                                         the forward reuses the previous iteration's cache
     ours-f32-p0-fresh                   the same, with fresh arrays every iteration
     torch-lstm-f32, torch-lstm-f64      torch.nn.LSTM + nn.Linear + cross_entropy (no detach)
     torch-loop-f32-p0.25, -f64-p0.25    the original code's style: i2h/h2h Linear layers stepped in
                                         a Python loop, h.detach() before a step with probability p
     floor-gemm-f32, floor-gemm-f64      every matmul of one iteration timed alone: the input
                                         projection, the T forward and T backward (N, H) x (H, 4H)
                                         products, the weight-gradient matmuls over all T N rows and
                                         the readout's three matmuls
     floor-f32, floor-f64                the same plus the transcendental functions: one tanh over
                                         (N, 4H) and one over (N, H) per step and the softmax's exp
   The pixel-MNIST table is float32 only (its float64 runs take seconds each).
   Threads: ours-f32-p0 and torch-lstm-f32 with 1 and 2 threads (copying config, needs
   threadpoolctl), in a table of their own with a pause after each change of the thread count.
2. Detach sweep: the copying config, float32, the backward pass alone, p in {0, .25, .5, .75, 1}:
   a detached step skips its Wh product, so the time falls with p.
3. Scaling: T in {100, 300, 1000} x H in {64, 128, 256} x N in {1, 32, 100} (D=1, float32,
   forward (reusing the cache) + backward with a gradient at every step): seconds per iteration
   and per step, and
   memory: the bytes of the cache (h, c, gates, tanh(c)) and the peak traced by tracemalloc over
   forward + backward, each divided by the minimum any BPTT must keep: the gates, c and h of every
   step, T N 6H numbers; and the memory held per step, (peak(T) - peak(1)) / (T - 1), over N 6H
   numbers (the peak also holds a few weight-sized buffers that do not grow with T).

Memory allocation matters on this kind of machine: with glibc's defaults, arrays above 32 MB are
fresh pages from the operating system every iteration, and faulting them in costs as much as a
good part of the arithmetic. `--malloc-reuse` raises glibc's thresholds (mallopt) for the whole
process, so every variant (PyTorch too) reuses its memory; run both ways to see the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import hdetach_np as hd  # noqa: E402

try:
    import threadpoolctl
except ImportError:  # optional: without it the thread count comes from the environment
    threadpoolctl = None


@dataclass(frozen=True)
class Config:
    name: str
    T: int
    N: int
    D: int
    H: int
    K: int
    loss: str  # "all" (every step) or "last"


CONFIGS = (
    Config("copying", T=120, N=100, D=10, H=128, K=9, loss="all"),
    Config("pixel-mnist", T=784, N=100, D=1, H=128, K=10, loss="last"),
)
QUICK_CONFIGS = (
    Config("copying", T=12, N=4, D=3, H=8, K=5, loss="all"),
    Config("pixel-mnist", T=20, N=4, D=1, H=8, K=10, loss="last"),
)
P_DETACH = 0.25
SWEEP_P = (0.0, 0.25, 0.5, 0.75, 1.0)
SCALING = dict(T=(100, 300, 1000), H=(64, 128, 256), N=(1, 32, 100))
QUICK_SCALING = dict(T=(5, 10), H=(4, 8), N=(1, 3))
TARGETS = {  # name: (numerator, denominator, config, limit), ratios of medians in one run
    "copying: ours f32 / torch loop cell f32 (p=0.25)": ("ours-f32-p0.25", "torch-loop-f32-p0.25", "copying", 0.6),
    "copying: ours f32 / nn.LSTM f32": ("ours-f32-p0", "torch-lstm-f32", "copying", 0.8),
    "copying: ours f32 / floor f32": ("ours-f32-p0", "floor-f32", "copying", 1.3),
    "copying: ours f64 / nn.LSTM f64": ("ours-f64-p0", "torch-lstm-f64", "copying", 0.6),
    "pixel-mnist: ours f32 / nn.LSTM f32": ("ours-f32-p0", "torch-lstm-f32", "pixel-mnist", 0.8),
}


# ---------------------------------------------------------------------------------------------
# Threads and timing
# ---------------------------------------------------------------------------------------------


class Threads:
    """Sets the BLAS threads (threadpoolctl, when installed) and torch's threads together."""

    def __init__(self, torch=None):
        self.torch = torch
        self.controller = threadpoolctl.ThreadpoolController() if threadpoolctl else None
        self.current = None

    @property
    def can_set(self) -> bool:
        return self.controller is not None

    def set(self, n: int):
        if n == self.current:
            return
        if self.controller is not None:
            self.controller.limit(limits=n, user_api="blas")
        if self.torch is not None:
            self.torch.set_num_threads(n)
        self.current = n


def interleaved(variants: dict, threads: Threads, repeats: int, warmup: int = 2, settle: float = 0.0) -> dict:
    """variants: name -> (function, threads or None). Returns name -> timing summary (seconds).

    Order A B C ... then ... C B A, so no variant always follows the same one. `settle` seconds
    of untimed pause follow every change of the thread count."""
    def use(n):
        if n is not None and n != threads.current:
            threads.set(n)
            time.sleep(settle)

    for _name, (fn, n) in variants.items():
        use(n)
        for _ in range(warmup):
            fn()
    times = {name: [] for name in variants}
    order = list(variants)
    for r in range(repeats):
        for name in order if r % 2 == 0 else order[::-1]:
            fn, n = variants[name]
            use(n)
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: _summary(ts) for name, ts in times.items()}


def _summary(ts) -> dict:
    q1, med, q3 = np.percentile(ts, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "min": float(np.min(ts)), "n": len(ts)}


# ---------------------------------------------------------------------------------------------
# One training iteration of each variant
# ---------------------------------------------------------------------------------------------


def _data(cfg: Config, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = hd.init_lstm(cfg.D, cfg.H, rng, dtype=np.float64)
    readout = hd.init_linear(cfg.H, cfg.K, rng, dtype=np.float64)
    x = rng.standard_normal((cfg.T, cfg.N, cfg.D))
    targets = rng.integers(0, cfg.K, size=(cfg.T, cfg.N))
    return params, readout, x, targets


def ours(cfg: Config, dtype, p: float, seed: int = 0, reuse: bool = True):
    """One training iteration; with `reuse` the forward overwrites the previous iteration's cache,
    as a training loop would (lstm_forward(..., reuse=cache))."""
    params, readout, x, targets = _data(cfg, seed)
    params, readout, x = params.astype(dtype), readout.astype(dtype), x.astype(dtype)
    rng = np.random.default_rng(seed + 1)
    last = {"cache": None}

    def run():
        hs, cache = hd.lstm_forward(params, x, reuse=last["cache"])
        if reuse:
            last["cache"] = cache
        if cfg.loss == "all":
            logits, lcache = hd.linear_forward(readout, hs)  # (T, N, K)
            _, dlogits = hd.softmax_cross_entropy(logits, targets, steps="all")
            dhs, dhT = hd.linear_backward(dlogits, lcache).h, None
        else:  # the readout sees h_T only; its gradient enters as dL/dh_T
            logits, lcache = hd.linear_forward(readout, hs[-1:])  # (1, N, K)
            _, dlogits = hd.softmax_cross_entropy(logits, targets[-1:], steps="all")
            dhs, dhT = None, hd.linear_backward(dlogits, lcache).h[0]
        keep = hd.sample_h_detach_mask(cfg.T, p, rng, dtype=dtype) if p > 0 else None
        hd.lstm_backward(dhs, cache, h_scale=keep, dhT=dhT)

    return run


def ours_backward_only(cfg: Config, dtype, p: float, seed: int = 0):
    params, _, x, _ = _data(cfg, seed)
    params, x = params.astype(dtype), x.astype(dtype)
    rng = np.random.default_rng(seed + 1)
    _, cache = hd.lstm_forward(params, x)
    dhs = rng.standard_normal((cfg.T, cfg.N, cfg.H)).astype(dtype)

    def run():
        keep = hd.sample_h_detach_mask(cfg.T, p, rng, dtype=dtype) if p > 0 else None
        hd.lstm_backward(dhs, cache, h_scale=keep)

    return run


def torch_lstm(torch, cfg: Config, tdtype, seed: int = 0):
    _, _, x, targets = _data(cfg, seed)
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(cfg.D, cfg.H).to(tdtype)
    lin = torch.nn.Linear(cfg.H, cfg.K).to(tdtype)
    xt = torch.tensor(x, dtype=tdtype)
    yt = torch.tensor(targets.reshape(-1) if cfg.loss == "all" else targets[-1])
    weights = list(lstm.parameters()) + list(lin.parameters())

    def run():
        for w in weights:
            w.grad = None
        out, _ = lstm(xt)  # (T, N, H)
        logits = lin(out if cfg.loss == "all" else out[-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.K), yt)
        loss.backward()

    return run


def torch_loop(torch, cfg: Config, tdtype, p: float, seed: int = 0):
    """The original code's cell: preact = i2h(x) + h2h(h), gates i, f, o, g, h detached with prob p."""
    _, _, x, targets = _data(cfg, seed)
    torch.manual_seed(seed)
    H = cfg.H
    i2h = torch.nn.Linear(cfg.D, 4 * H).to(tdtype)
    h2h = torch.nn.Linear(H, 4 * H).to(tdtype)
    lin = torch.nn.Linear(H, cfg.K).to(tdtype)
    xt = torch.tensor(x, dtype=tdtype)
    yt = torch.tensor(targets.reshape(-1) if cfg.loss == "all" else targets[-1])
    weights = list(i2h.parameters()) + list(h2h.parameters()) + list(lin.parameters())
    rng = np.random.default_rng(seed + 1)

    def run():
        for w in weights:
            w.grad = None
        h = torch.zeros(cfg.N, H, dtype=tdtype)
        c = torch.zeros(cfg.N, H, dtype=tdtype)
        detach = rng.random(cfg.T) < p
        hs = []
        for t in range(cfg.T):
            if detach[t]:
                h = h.detach()
            preact = i2h(xt[t]) + h2h(h)
            gates = preact[:, :3 * H].sigmoid()
            g = preact[:, 3 * H:].tanh()
            i, f, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
            c = c * f + i * g
            h = o * c.tanh()
            if cfg.loss == "all":
                hs.append(h)
        logits = lin(torch.stack(hs) if cfg.loss == "all" else h)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.K), yt)
        loss.backward()

    return run


def floor(cfg: Config, dtype, transcendentals: bool, seed: int = 0):
    """Every matmul of one iteration timed alone (+ the tanh and exp calls when `transcendentals`)."""
    T, N, D, H, K = cfg.T, cfg.N, cfg.D, cfg.H, cfg.K
    rng = np.random.default_rng(seed)

    def r(*shape):
        return (0.1 * rng.standard_normal(shape)).astype(dtype)

    x2, Wx, Wh, V = r(T * N, D), r(D, 4 * H), r(H, 4 * H), r(H, K)
    WhT, WxT = np.ascontiguousarray(Wh.T), np.ascontiguousarray(Wx.T)
    gates2, das2, hs2 = r(T * N, 4 * H), r(T * N, 4 * H), r(T * N, H)
    h, a, da, dh, dx2 = r(N, H), r(N, 4 * H), r(N, 4 * H), r(N, H), r(T * N, D)
    M = T * N if cfg.loss == "all" else N  # rows of the readout
    hr, dlogits, logits = hs2[:M], r(M, K), r(M, K)

    def run():
        np.matmul(x2, Wx, out=gates2)  # input projection
        for _ in range(T):
            np.matmul(h, Wh, out=a)  # forward recurrent product
            if transcendentals:
                np.tanh(a, out=a)  # the four gates (sigmoid = a tanh)
                np.tanh(h, out=dh)  # tanh(c_t)
        np.matmul(hr, V, out=logits)  # readout
        if transcendentals:
            np.exp(logits, out=logits)  # softmax
        hr.T @ dlogits  # readout weight gradient
        dlogits @ V.T  # readout input gradient
        for _ in range(T):
            np.matmul(da, WhT, out=dh)  # backward recurrent product
        hs2.T @ das2  # dWh over all steps
        x2.T @ das2  # dWx
        np.matmul(das2, WxT, out=dx2)  # dx

    return run


# ---------------------------------------------------------------------------------------------
# The three parts of the run
# ---------------------------------------------------------------------------------------------


def bench_configs(configs, torch, threads: Threads, n_threads: int, repeats: int, pixel_repeats: int, warmup: int):
    results = {}
    for cfg in configs:
        v = {}
        # float64 only for the copying config: the pixel-MNIST float64 runs take seconds each
        dtypes = (("f32", np.float32), ("f64", np.float64)) if cfg.name == "copying" else (("f32", np.float32),)
        for dname, dt in dtypes:
            v[f"ours-{dname}-p0"] = (ours(cfg, dt, 0.0), n_threads)
            v[f"ours-{dname}-p{P_DETACH}"] = (ours(cfg, dt, P_DETACH), n_threads)
            if dname == "f32":
                v[f"ours-{dname}-p0-fresh"] = (ours(cfg, dt, 0.0, reuse=False), n_threads)
            if torch is not None:
                tdt = torch.float32 if dt == np.float32 else torch.float64
                v[f"torch-lstm-{dname}"] = (torch_lstm(torch, cfg, tdt), n_threads)
                v[f"torch-loop-{dname}-p{P_DETACH}"] = (torch_loop(torch, cfg, tdt, P_DETACH), n_threads)
            v[f"floor-gemm-{dname}"] = (floor(cfg, dt, transcendentals=False), n_threads)
            v[f"floor-{dname}"] = (floor(cfg, dt, transcendentals=True), n_threads)
        n_rep = repeats if cfg.name == "copying" else pixel_repeats
        print(f"[{cfg.name}] {len(v)} variants x {n_rep} repeats ...", flush=True)
        timing = interleaved(v, threads, n_rep, warmup)
        results[cfg.name] = {"config": asdict(cfg), "threads": n_threads, "repeats": n_rep,
                             "timing": timing, "ratios": _ratios(timing)}
        print(format_config(results[cfg.name]), flush=True)
    return results


def _ratios(timing: dict) -> dict:
    med = {k: t["median"] for k, t in timing.items()}
    out = {}
    for num in [k for k in med if k.startswith("ours-")]:
        dname = "f32" if "-f32" in num else "f64"
        for den in (f"torch-lstm-{dname}", f"torch-loop-{dname}-p{P_DETACH}", f"floor-{dname}", f"floor-gemm-{dname}"):
            if den in med:
                out[f"{num} / {den}"] = med[num] / med[den]
    return out


def bench_threads(cfg: Config, torch, threads: Threads, repeats: int, warmup: int):
    """ours-f32-p0 and torch-lstm-f32 with 1 and 2 threads, interleaved. After each change of the
    thread count the run pauses (untimed) so that BLAS threads still spinning from the previous
    variant do not steal the core of the next one."""
    v = {}
    for n in (1, 2):
        v[f"ours-f32-p0@{n}"] = (ours(cfg, np.float32, 0.0), n)
        if torch is not None:
            v[f"torch-lstm-f32@{n}"] = (torch_lstm(torch, cfg, torch.float32), n)
    print(f"[threads, {cfg.name}] {len(v)} variants x {repeats} repeats ...", flush=True)
    timing = interleaved(v, threads, repeats, warmup, settle=0.3)
    med = {k: t["median"] for k, t in timing.items()}
    ratios = {f"{b}@2 / {b}@1": med[f"{b}@2"] / med[f"{b}@1"] for b in ("ours-f32-p0", "torch-lstm-f32")
              if f"{b}@1" in med}
    res = {"config": asdict(cfg), "repeats": repeats, "timing": timing, "ratios": ratios}
    print(format_config(res), flush=True)
    return res


def bench_detach_sweep(cfg: Config, threads: Threads, n_threads: int, repeats: int, warmup: int):
    v = {f"backward-f32-p{p}": (ours_backward_only(cfg, np.float32, p), n_threads) for p in SWEEP_P}
    print(f"[detach sweep] {len(v)} variants x {repeats} repeats ...", flush=True)
    timing = interleaved(v, threads, repeats, warmup)
    secs = [timing[f"backward-f32-p{p}"]["median"] for p in SWEEP_P]
    return {"config": asdict(cfg), "p": list(SWEEP_P), "seconds": secs, "timing": timing,
            "relative_to_p0": [s / secs[0] for s in secs]}


def bench_scaling(grid: dict, threads: Threads, n_threads: int, repeats: int, warmup: int):
    threads.set(n_threads)
    rows, v = [], {}
    for T in grid["T"]:
        for H in grid["H"]:
            for N in grid["N"]:
                cfg = Config(f"T{T}-H{H}-N{N}", T=T, N=N, D=1, H=H, K=1, loss="all")
                v[cfg.name] = (ours_backward_only_with_forward(cfg), n_threads)
    print(f"[scaling] {len(v)} sizes x {repeats} repeats ...", flush=True)
    timing = interleaved(v, threads, repeats, warmup)
    for name, t in timing.items():
        T, H, N = (int(part[1:]) for part in name.split("-"))
        mem = measure_memory(T, N, H)
        rows.append(dict(T=T, H=H, N=N, seconds=t["median"], seconds_per_step=t["median"] / T, **mem))
    return rows


def ours_backward_only_with_forward(cfg: Config, seed: int = 0):
    """Forward + backward of the LSTM alone (float32), a random gradient at every step; the
    forward reuses the previous iteration's cache, as in a training loop."""
    rng = np.random.default_rng(seed)
    params = hd.init_lstm(cfg.D, cfg.H, rng)
    x = rng.standard_normal((cfg.T, cfg.N, cfg.D)).astype(np.float32)
    dhs = rng.standard_normal((cfg.T, cfg.N, cfg.H)).astype(np.float32)
    last = {"cache": None}

    def run():
        _, last["cache"] = hd.lstm_forward(params, x, reuse=last["cache"])
        hd.lstm_backward(dhs, last["cache"])

    return run


def measure_memory(T: int, N: int, H: int) -> dict:
    """Bytes of the cache, and peak bytes allocated during forward + backward (tracemalloc sees
    numpy's arrays), against the minimum T N 6H numbers (gates, c, h of every step). The peak
    includes buffers of the weights' size that do not grow with T; `per_step_ratio` removes them:
    (peak(T) - peak(1)) / (T - 1), the memory held per step, over the minimum per step N 6H."""
    minimum = T * N * 6 * H * 4
    peak = _peak_bytes(T, N, H)
    per_step = (peak - _peak_bytes(1, N, H)) / (T - 1) if T > 1 else float("nan")
    rng = np.random.default_rng(0)
    _, cache = hd.lstm_forward(hd.init_lstm(1, H, rng), np.zeros((T, N, 1), np.float32))
    cache_bytes = sum(getattr(cache, f).nbytes for f in ("h", "c", "gates", "tanh_c"))
    return dict(minimum_bytes=minimum, cache_bytes=cache_bytes, peak_bytes=int(peak),
                cache_ratio=cache_bytes / minimum, peak_ratio=peak / minimum,
                per_step_bytes=per_step, per_step_ratio=per_step / (N * 6 * H * 4))


def _peak_bytes(T: int, N: int, H: int) -> int:
    rng = np.random.default_rng(0)
    params = hd.init_lstm(1, H, rng)
    x = rng.standard_normal((T, N, 1)).astype(np.float32)
    dhs = rng.standard_normal((T, N, H)).astype(np.float32)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        _, cache = hd.lstm_forward(params, x)
        hd.lstm_backward(dhs, cache)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def machine_info(torch) -> dict:
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": getattr(torch, "__version__", None),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                                               "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if threadpoolctl is not None:
        info["threadpools"] = [{k: lib.get(k) for k in ("user_api", "internal_api", "prefix", "version",
                                                         "architecture", "threading_layer", "num_threads")}
                               for lib in threadpoolctl.threadpool_info()]
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        info["torch_blas"] = "mkl" if torch.backends.mkl.is_available() else "other"
        info["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    return info


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def format_config(res: dict) -> str:
    lines = [f"{'variant':28s} {'median s':>10s} {'q1':>9s} {'q3':>9s}"]
    for name, t in res["timing"].items():
        lines.append(f"{name:28s} {t['median']:10.4f} {t['q1']:9.4f} {t['q3']:9.4f}")
    lines.append("ratios (medians):")
    lines += [f"  {k:50s} {v:6.3f}" for k, v in res["ratios"].items()]
    return "\n".join(lines)


def check_targets(configs: dict, sweep: dict | None, scaling: list | None) -> dict:
    out = {}
    for label, (num, den, cfg, limit) in TARGETS.items():
        timing = configs.get(cfg, {}).get("timing", {})
        if num in timing and den in timing:
            value = timing[num]["median"] / timing[den]["median"]
            out[label] = {"value": value, "limit": limit, "met": value <= limit}
    if sweep is not None:
        secs = sweep["seconds"]
        out["detach: backward time falls with p (p=1 / p=0)"] = {
            "value": secs[-1] / secs[0], "limit": 1.0, "met": secs[-1] < secs[0]}
    if scaling:
        worst = max(r["per_step_ratio"] for r in scaling)
        out["memory: held per step in forward+backward / minimum (worst size)"] = {
            "value": worst, "limit": 1.25, "met": worst <= 1.25}
    return out


def markdown(res: dict) -> str:
    """Markdown tables of a result JSON (what benchmarks/README.md shows)."""
    m = res["meta"]
    blas = [lib for lib in m.get("threadpools", []) if lib.get("user_api") == "blas"]
    blas_txt = ", ".join(f"{b['internal_api']} {b['version']} ({b['architecture']})" for b in blas) or "unknown"
    load = m.get("loadavg_start")
    lines = [f"Machine: {m['cpu']}, {m['cpu_count']} cores; numpy {m['numpy']} with {blas_txt}; "
             f"torch {m['torch']}; threads {m['threads']} (BLAS and torch); "
             f"glibc heap reuse (--malloc-reuse): {'on' if m.get('malloc_reuse') else 'off'}; "
             f"load average at start {load[0]:.1f}" if load else "", ""]
    for name, cfg in res["configs"].items():
        c = cfg["config"]
        lines += [f"**{name}** (T={c['T']}, N={c['N']}, D={c['D']}, H={c['H']}, K={c['K']}, loss at "
                  f"{'every step' if c['loss'] == 'all' else 'the last step'}; {cfg['repeats']} repeats)", "",
                  "| variant | median s | q1 s | q3 s |", "|---|---:|---:|---:|"]
        for v, t in cfg["timing"].items():
            lines.append(f"| {v} | {t['median']:.4f} | {t['q1']:.4f} | {t['q3']:.4f} |")
        lines += ["", "| ratio of medians | value |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in cfg["ratios"].items()]
        lines.append("")
    if res.get("threads"):
        th = res["threads"]
        lines += [f"**threads** ({th['config']['name']} config, {th['repeats']} repeats)", "",
                  "| variant | median s | q1 s | q3 s |", "|---|---:|---:|---:|"]
        lines += [f"| {v} | {t['median']:.4f} | {t['q1']:.4f} | {t['q3']:.4f} |" for v, t in th["timing"].items()]
        lines += [f"| {k} | {v:.3f} | | |" for k, v in th["ratios"].items()]
        lines.append("")
    if res.get("detach_sweep"):
        sw = res["detach_sweep"]
        lines += ["**detach sweep** (backward only, copying config, float32)", "",
                  "| p | " + " | ".join(str(p) for p in sw["p"]) + " |",
                  "|---|" + "---:|" * len(sw["p"]),
                  "| median s | " + " | ".join(f"{x:.4f}" for x in sw["seconds"]) + " |",
                  "| relative to p=0 | " + " | ".join(f"{x:.3f}" for x in sw["relative_to_p0"]) + " |", ""]
    if res.get("scaling"):
        lines += ["**scaling** (float32, D=1, forward + backward with a gradient at every step)", "",
                  "| T | H | N | s / iter | us / step | cache / min | peak / min | held per step / min |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in res["scaling"]:
            lines.append(f"| {r['T']} | {r['H']} | {r['N']} | {r['seconds']:.4f} | {1e6 * r['seconds_per_step']:.1f} "
                         f"| {r['cache_ratio']:.3f} | {r['peak_ratio']:.3f} | {r['per_step_ratio']:.3f} |")
        lines.append("")
    if res.get("targets"):
        lines += ["| target | value | limit | met |", "|---|---:|---:|---|"]
        lines += [f"| {k} | {t['value']:.3f} | {t['limit']} | {'yes' if t['met'] else 'no'} |"
                  for k, t in res["targets"].items()]
    return "\n".join(lines)


def _malloc_reuse() -> bool:
    """glibc only: serve large arrays from the heap (M_MMAP_THRESHOLD) and never give freed memory
    back (M_TRIM_THRESHOLD), as a training loop's steady state with a caching allocator would."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-3, 1 << 30)) and bool(libc.mallopt(-1, 1 << 30))
    except (OSError, AttributeError):
        print("--malloc-reuse needs glibc; running with the default allocator", flush=True)
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes and few repeats (smoke test)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS and torch threads of the main tables")
    ap.add_argument("--repeats", type=int, default=None, help="repeats of the copying table (default 15, quick 3)")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when installed")
    ap.add_argument("--configs", default="copying,pixel-mnist", help="comma-separated configs to time")
    ap.add_argument("--no-configs", action="store_true", help="skip the copying / pixel-mnist tables")
    ap.add_argument("--no-sweep", action="store_true", help="skip the detach sweep")
    ap.add_argument("--no-threads", action="store_true", help="skip the 1 vs 2 threads table")
    ap.add_argument("--no-scaling", action="store_true", help="skip the scaling table")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_lstm.json",
                    help="JSON output file")
    ap.add_argument("--malloc-reuse", action="store_true",
                    help="raise glibc's mmap and trim thresholds (mallopt) so that every variant reuses "
                         "freed heap memory instead of faulting in fresh pages every iteration")
    ap.add_argument("--markdown", type=Path, default=None, metavar="JSON",
                    help="print the tables of an earlier result file as markdown and exit")
    args = ap.parse_args(argv)
    if args.markdown is not None:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    if args.threads < 1:
        ap.error(f"--threads must be >= 1, got {args.threads}")
    repeats = args.repeats or (3 if args.quick else 15)
    pixel_repeats = 3 if args.quick else max(5, repeats // 2)
    warmup = 1 if args.quick else 2

    malloc_reuse = _malloc_reuse() if args.malloc_reuse else False
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
    threads = Threads(torch)
    threads.set(args.threads)
    if not threads.can_set:
        print("threadpoolctl is not installed: the BLAS uses the threads set by the environment", flush=True)

    meta = machine_info(torch)
    meta["threads"] = args.threads
    meta["malloc_reuse"] = malloc_reuse
    meta["threads_settable"] = threads.can_set
    print(json.dumps(meta, indent=1), flush=True)

    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    known = [c.name for c in CONFIGS]
    if not names or any(n not in known for n in names):
        ap.error(f"--configs must name some of {', '.join(known)}, got {args.configs!r}")
    configs = [c for c in (QUICK_CONFIGS if args.quick else CONFIGS) if c.name in names]
    started = time.time()
    res_configs = {}
    if not args.no_configs:
        res_configs = bench_configs(configs, torch, threads, args.threads, repeats, pixel_repeats, warmup)
    threads_table = None
    if threads.can_set and not args.no_threads and not args.no_configs:
        threads_table = bench_threads(configs[0], torch, threads, max(3, repeats // 2), warmup)
        threads.set(args.threads)
    sweep = None
    if not args.no_sweep:
        sweep = bench_detach_sweep(configs[0], threads, args.threads, repeats, warmup)
        print("detach sweep (backward only, relative to p=0):",
              ", ".join(f"p={p}: {r:.3f}" for p, r in zip(sweep["p"], sweep["relative_to_p0"])), flush=True)
    scaling = None
    if not args.no_scaling:
        scaling = bench_scaling(QUICK_SCALING if args.quick else SCALING, threads, args.threads,
                                3 if args.quick else 5, warmup=1)
        print(f"{'T':>5s} {'H':>4s} {'N':>4s} {'s/iter':>9s} {'us/step':>9s} {'cache/min':>9s} {'peak/min':>9s} "
              f"{'step/min':>9s}")
        for r in scaling:
            print(f"{r['T']:5d} {r['H']:4d} {r['N']:4d} {r['seconds']:9.4f} {1e6 * r['seconds_per_step']:9.1f} "
                  f"{r['cache_ratio']:9.3f} {r['peak_ratio']:9.3f} {r['per_step_ratio']:9.3f}")
    targets = check_targets(res_configs, sweep, scaling)
    if args.quick:
        print("(quick mode: the sizes are too small for the targets to mean anything)")
    for label, t in targets.items():
        print(f"{'MET ' if t['met'] else 'MISS'} {label}: {t['value']:.3f} (limit {t['limit']})")
    meta["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    meta["wall_seconds"] = time.time() - started
    out = {"meta": meta, "quick": args.quick, "configs": res_configs, "threads": threads_table, "detach_sweep": sweep,
           "scaling": scaling, "targets": targets}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
