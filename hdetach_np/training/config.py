"""The training configuration: one frozen dataclass, built from CLI flags or a JSON file.

    cfg = TrainConfig.from_dict({"task": "copying", "T": 20, "p": 0.5})   # task defaults fill the rest
    cfg = TrainConfig.from_json("config.json")                           # unknown keys are rejected

Defaults follow the original experiments: copying T=300, hidden 128, seed 3, 100,000 training and
5,000 validation sequences, 600 epochs of 1,000 iterations; pixel and permuted MNIST hidden 100,
seed 400, 50k/10k/10k, 200 epochs; Adam lr 1e-3, batch 100, clipping at 1.0, h-detach switched off
for the last `anneal_p - 1` epochs with anneal_p 40; two trained LSTM bias vectors (bias "two").
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from ..masks import PER
from .optim import OPTIMIZERS

TASKS = ("copying", "adding", "pixel-mnist", "permuted-mnist")
MNIST_TASKS = ("pixel-mnist", "permuted-mnist")
DTYPES = ("float32", "float64")
DETACH = ("h", "c")
INITS = ("original", "forget-bias-1")
BIASES = ("one", "two")
# Keys added to the config after run folders were first written, with the value those runs used.
ADDED_KEYS = {"bias": "one"}


def _f(default, help, **kw):
    return field(default=default, metadata={"help": help, **kw})


# Task-dependent defaults, applied by `from_dict` under the keys it is given.
TASK_DEFAULTS = {
    "copying": dict(T=300, hidden=128, seed=3, epochs=600, n_train=100_000, n_valid=5_000, n_test=0),
    "adding": dict(T=200, hidden=128, seed=3, epochs=50, n_train=0, n_valid=1_000, n_test=0),
    "pixel-mnist": dict(T=784, hidden=100, seed=400, epochs=200, n_train=50_000, n_valid=10_000, n_test=10_000),
    "permuted-mnist": dict(T=784, hidden=100, seed=400, epochs=200, n_train=50_000, n_valid=10_000, n_test=10_000),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (two runs with equal configs give equal results)."""

    task: str = _f("copying", "task: " + ", ".join(TASKS))
    T: int = _f(300, "copying delay T (sequence length T+20) or adding length; pixel MNIST: 784 / pixels_per_step, "
                     "set automatically", task_default=True)
    hidden: int = _f(128, "LSTM hidden size H", task_default=True)
    batch_size: int = _f(100, "minibatch size N")
    optimizer: str = _f("adam", "optimizer: " + ", ".join(OPTIMIZERS))
    lr: float = _f(1e-3, "learning rate")
    momentum: float = _f(0.0, "momentum (sgd, rmsprop)")
    beta1: float = _f(0.9, "Adam beta1")
    beta2: float = _f(0.999, "Adam beta2")
    eps: float = _f(1e-8, "Adam / RMSprop epsilon")
    alpha: float = _f(0.99, "RMSprop smoothing constant")
    weight_decay: float = _f(0.0, "L2 weight decay added to the gradient")
    clip: float = _f(1.0, "global-norm gradient clipping over all parameters incl. the readout; 0 = off")
    p: float = _f(0.0, "h-detach: probability of BLOCKING the edge h_{t-1} -> gates_t at each step; 0 = plain LSTM")
    detach: str = _f("h", "which edge p cuts: h (h-detach) or c (c-detach, the cell edge c_{t-1} -> c_t)")
    mask_per: str = _f("step", "one Bernoulli draw per: step (shared by the batch, as the original), example or unit")
    anneal_p: int = _f(40, "switch detaching off in epochs with index > epochs - anneal_p (the last anneal_p-1 "
                           "epochs, as the original --anneal-p); 0 = never")
    seed: int = _f(3, "random seed (data, initialisation, minibatches, masks)", task_default=True)
    epochs: int = _f(600, "number of epochs", task_default=True)
    iterations_per_epoch: int = _f(0, "iterations per epoch; 0 = n_train // batch_size (1,000 for copying, 500 for MNIST)")
    n_train: int = _f(100_000, "training set size (copying: fixed set drawn from the seed; MNIST: the first n_train "
                               "of the 50k training images; adding: 0, fresh data every iteration)", task_default=True)
    n_valid: int = _f(5_000, "validation set size (MNIST: the first n_valid of the 10k validation images)", task_default=True)
    n_test: int = _f(0, "test set size (MNIST only: the first n_test of the 10k test images)", task_default=True)
    one_hot: bool = _f(False, "copying: one-hot input (D=10) instead of the raw token value (D=1)")
    pixels_per_step: int = _f(1, "pixel MNIST: pixels fed per step (must divide 784; 1 = the original task)")
    perm_seed: int | None = _f(None, "permuted MNIST: seed of the pixel permutation (default: seed, as the original)")
    init: str = _f("original", "initialisation: " + ", ".join(INITS))
    bias: str = _f("two", "LSTM bias: two (b_ih and b_hh trained as separate parameters, as the original) or one "
                          "(their sum b as one parameter)")
    dtype: str = _f("float32", "floating point type of the whole run: float32 or float64")
    log_every: int = _f(1, "write a training record (loss, accuracy, gradient norm, clipping) every k iterations")
    log_paths_every: int = _f(0, "every k iterations, log the norms of the cell-path and h-path gradient parts; 0 = off")
    checkpoint_every: int = _f(0, "also checkpoint every k iterations (checkpoints are always written at epoch ends); 0 = off")
    eval_batch_size: int = _f(1000, "sequences per chunk during evaluation")

    def __post_init__(self):
        def need(name, ok, expected):
            if not ok:
                raise ValueError(f"config {name} must be {expected}, got {getattr(self, name)!r}")

        for name, choices in (("task", TASKS), ("optimizer", OPTIMIZERS), ("detach", DETACH),
                              ("mask_per", PER), ("init", INITS), ("bias", BIASES), ("dtype", DTYPES)):
            need(name, getattr(self, name) in choices, "one of " + ", ".join(map(repr, choices)))
        ints = {"T": 1, "hidden": 1, "batch_size": 1, "anneal_p": 0, "seed": 0, "epochs": 1, "iterations_per_epoch": 0,
                "n_train": 0, "n_valid": 1, "n_test": 0, "pixels_per_step": 1, "log_every": 1, "log_paths_every": 0,
                "checkpoint_every": 0, "eval_batch_size": 1}
        for name, lo in ints.items():
            v = getattr(self, name)
            need(name, isinstance(v, int) and not isinstance(v, bool) and v >= lo, f"an integer >= {lo}")
        floats = {"lr": (0, False), "momentum": (0, True), "beta1": (0, True), "beta2": (0, True), "eps": (0, True),
                  "alpha": (0, True), "weight_decay": (0, True), "clip": (0, True), "p": (0, True)}
        for name, (lo, closed) in floats.items():
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v >= lo if closed else v > lo)
            need(name, ok, f"a finite number {'>=' if closed else '>'} {lo}")
            object.__setattr__(self, name, float(v))
        for name in ("momentum", "beta1", "beta2", "alpha"):
            need(name, getattr(self, name) < 1, "< 1")
        need("p", self.p <= 1, "a probability in [0, 1]")
        need("one_hot", isinstance(self.one_hot, bool), "true or false")
        need("perm_seed", self.perm_seed is None or (isinstance(self.perm_seed, int) and not isinstance(self.perm_seed, bool)
                                                     and self.perm_seed >= 0), "null or an integer >= 0")
        if self.task != "copying":
            need("one_hot", not self.one_hot, "false for task " + self.task + " (one-hot input is a copying option)")
        if self.task in MNIST_TASKS:
            need("pixels_per_step", 784 % self.pixels_per_step == 0, "a divisor of 784")
            need("T", self.T == 784 // self.pixels_per_step, f"784 / pixels_per_step = {784 // self.pixels_per_step} "
                 "for pixel MNIST (set pixels_per_step instead)")
            need("n_train", 1 <= self.n_train <= 50_000, "in [1, 50000]")
            need("n_valid", self.n_valid <= 10_000, "in [1, 10000]")
            need("n_test", self.n_test <= 10_000, "in [0, 10000]")
        else:
            need("pixels_per_step", self.pixels_per_step == 1, f"1 for task {self.task} (a pixel MNIST option)")
            need("perm_seed", self.perm_seed is None, f"null for task {self.task} (a permuted MNIST option)")
            need("n_test", self.n_test == 0, f"0 for task {self.task} (there is no test set)")
        if self.task == "adding":
            need("T", self.T >= 2, "an integer >= 2 for the adding task")
            need("n_train", self.n_train == 0, "0 for the adding task (fresh sequences every iteration)")
        if self.task == "copying":
            need("n_train", self.n_train >= 1, "an integer >= 1 for the copying task")
        if self.iterations_per_epoch == 0:
            need("n_train", self.n_train >= self.batch_size or self.task == "adding",
                 f">= batch_size ({self.batch_size}) when iterations_per_epoch is 0")
        if self.p > 0 and self.anneal_p > self.epochs:
            need("anneal_p", False, f"<= epochs ({self.epochs}) when p > 0, else detaching is off in every epoch; "
                 "use anneal_p 0 to detach in all epochs")
        if self.task in MNIST_TASKS:
            need("iterations_per_epoch", self.iterations_per_epoch <= self.n_train // self.batch_size,
                 f"<= n_train // batch_size = {self.n_train // self.batch_size} for MNIST (one pass per epoch at most)")

    # -----------------------------------------------------------------------------------------
    @property
    def iterations_per_epoch_resolved(self) -> int:
        if self.iterations_per_epoch:
            return self.iterations_per_epoch
        if self.task == "adding":
            return 1000
        return self.n_train // self.batch_size

    @property
    def total_iterations(self) -> int:
        return self.epochs * self.iterations_per_epoch_resolved

    @property
    def sequence_length(self) -> int:
        return self.T + 20 if self.task == "copying" else self.T

    def p_at_epoch(self, epoch: int) -> float:
        """The detach probability used in `epoch` (0-based): 0 once epoch > epochs - anneal_p."""
        if self.anneal_p and epoch > self.epochs - self.anneal_p:
            return 0.0
        return self.p

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build from a dict: unknown keys are an error; missing keys take the task's defaults."""
        if not isinstance(d, dict):
            raise TypeError(f"a config must be a JSON object / dict, got {type(d).__name__}")
        unknown = sorted(set(d) - set(cls.keys()))
        if unknown:
            raise ValueError(f"unknown config key(s) {', '.join(map(repr, unknown))}; "
                             f"expected keys among: {', '.join(cls.keys())}")
        task = d.get("task", "copying")
        if task not in TASKS:
            raise ValueError(f"config task must be one of {', '.join(map(repr, TASKS))}, got {task!r}")
        merged = dict(TASK_DEFAULTS[task])
        if task in MNIST_TASKS:  # T follows pixels_per_step; a T given must agree (checked in __post_init__)
            k = d.get("pixels_per_step", 1)
            merged["T"] = 784 // k if isinstance(k, int) and k >= 1 else 784
        merged.update(d)
        return cls(**merged)

    @classmethod
    def from_saved(cls, d: dict) -> "TrainConfig":
        """A config read from a run folder or a checkpoint: the keys it predates take the value its
        run used (ADDED_KEYS), so that runs written before a key existed resume and compare equal."""
        return cls.from_dict({**ADDED_KEYS, **d} if isinstance(d, dict) else d)

    @classmethod
    def from_json(cls, path) -> "TrainConfig":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err
        return cls.from_dict(d)


def field_help() -> dict[str, tuple[object, str, bool]]:
    """{name: (default, help, task_dependent)} for the command line."""
    out = {}
    for f in fields(TrainConfig):
        default = f.default if f.default is not MISSING else None
        out[f.name] = (default, f.metadata["help"], bool(f.metadata.get("task_default")))
    return out
