"""The training configuration: one frozen dataclass, built from CLI flags or a JSON file.

    cfg = TrainConfig.from_dict({"task": "copying", "p": 0.5})                    # the laptop preset fills the rest
    cfg = TrainConfig.from_dict({"task": "copying", "p": 0.5}, preset="paper")    # the original experiments
    cfg = TrainConfig.from_json("config.json")                                   # unknown keys are rejected

Two presets of task-dependent defaults (`PRESETS`):
- "laptop" (the default): settings that finish in about half an hour or less on 2 cores, those of
  the experiment scripts in analysis/: copying delay 10, hidden 128, one-hot input, Adam lr 3e-3,
  15,000 iterations; pixel and permuted MNIST fed 16 pixels per step (T=49), hidden 100, 16 epochs;
  adding length 100, 10,000 iterations.
- "paper": the original experiments: copying delay 300, hidden 128, scalar input, 600 epochs of 1,000
  iterations; pixel and permuted MNIST one pixel per step, hidden 100, seed 400, 200 epochs; Adam
  lr 1e-3, h-detach switched off for the last `anneal_p - 1` epochs with anneal_p 40.
Both: batch 100, clipping at 1.0. The LSTM's bias: one vector in the laptop preset, the
original's two trained vectors (b_ih, b_hh) in the paper preset. docs/training.md gives the expected duration of each.

T is the number of steps of a sequence, as in the core (`sequence_length`): copying delay + 20,
adding length, MNIST 784 / pixels_per_step. Configs written when the copying delay and the adding
length were both called "T" still load (`from_dict` reads that key as the task's delay or length).
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from .._validate import check_choice
from ..lstm import INIT_SCHEMES
from ..masks import PER
from .optim import OPTIMIZERS

TASKS = ("copying", "adding", "pixel-mnist", "permuted-mnist")
MNIST_TASKS = ("pixel-mnist", "permuted-mnist")
DTYPES = ("float32", "float64")
DETACH = ("h", "c")
INITS = INIT_SCHEMES
BIASES = ("one", "two")
# Keys added to the config after run folders were first written, with the value those runs used.
ADDED_KEYS = {"bias": "one"}


def _f(default, help, **kw):
    return field(default=default, metadata={"help": help, **kw})


# Task-dependent defaults, applied by `from_dict` under the keys it is given.
_MNIST_LAPTOP = dict(delay=None, length=None, pixels_per_step=16, hidden=100, lr=1e-3, one_hot=False, seed=400,
                     epochs=16, iterations_per_epoch=0, anneal_p=0, n_train=50_000, n_valid=5_000, n_test=10_000,
                     bias="one")
_MNIST_PAPER = dict(delay=None, length=None, pixels_per_step=1, hidden=100, lr=1e-3, one_hot=False, seed=400,
                    epochs=200, iterations_per_epoch=0, anneal_p=40, n_train=50_000, n_valid=10_000, n_test=10_000,
                    bias="two")
PRESETS = {
    "laptop": {
        "copying": dict(delay=10, length=None, pixels_per_step=1, hidden=128, lr=3e-3, one_hot=True, seed=3, epochs=150,
                        iterations_per_epoch=100, anneal_p=0, n_train=100_000, n_valid=500, n_test=0, bias="one"),
        "adding": dict(delay=None, length=100, pixels_per_step=1, hidden=128, lr=1e-3, one_hot=False, seed=3, epochs=10,
                       iterations_per_epoch=1000, anneal_p=0, n_train=0, n_valid=1_000, n_test=0, bias="one"),
        "pixel-mnist": _MNIST_LAPTOP,
        "permuted-mnist": _MNIST_LAPTOP,
    },
    "paper": {
        "copying": dict(delay=300, length=None, pixels_per_step=1, hidden=128, lr=1e-3, one_hot=False, seed=3,
                        epochs=600, iterations_per_epoch=0, anneal_p=40, n_train=100_000, n_valid=5_000, n_test=0,
                        bias="two"),
        "adding": dict(delay=None, length=200, pixels_per_step=1, hidden=128, lr=1e-3, one_hot=False, seed=3, epochs=50,
                       iterations_per_epoch=0, anneal_p=40, n_train=0, n_valid=1_000, n_test=0, bias="two"),
        "pixel-mnist": _MNIST_PAPER,
        "permuted-mnist": _MNIST_PAPER,
    },
}
DEFAULT_PRESET = "laptop"
LEGACY_T = {"copying": "delay", "adding": "length"}  # what the key "T" of older configs meant, per task


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (two runs with equal configs give equal results)."""

    task: str = _f("copying", "task: " + ", ".join(TASKS))
    delay: int | None = _f(10, "copying: the delay, i.e. the blank steps between the 10 tokens and the recall "
                               "marker (the paper's T; sequences of delay + 20 steps); null for other tasks",
                           task_default=True)
    length: int | None = _f(None, "adding: the sequence length; null for other tasks", task_default=True)
    hidden: int = _f(128, "LSTM hidden size H", task_default=True)
    batch_size: int = _f(100, "minibatch size N")
    optimizer: str = _f("adam", "optimizer: " + ", ".join(OPTIMIZERS))
    lr: float = _f(3e-3, "learning rate", task_default=True)
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
    anneal_p: int = _f(0, "switch detaching off in epochs with index > epochs - anneal_p (the last anneal_p-1 "
                          "epochs, as the original --anneal-p); 0 = never", task_default=True)
    seed: int = _f(3, "random seed (data, initialisation, minibatches, masks)", task_default=True)
    epochs: int = _f(150, "number of epochs", task_default=True)
    iterations_per_epoch: int = _f(100, "iterations per epoch; 0 = n_train // batch_size (adding: 1,000)",
                                   task_default=True)
    n_train: int = _f(100_000, "training set size (copying: fixed set drawn from the seed; MNIST: the first n_train "
                               "of the 50k training images; adding: 0, fresh data every iteration)", task_default=True)
    n_valid: int = _f(500, "validation set size (MNIST: the first n_valid of the 10k validation images)",
                      task_default=True)
    n_test: int = _f(0, "test set size (MNIST only: the first n_test of the 10k test images)", task_default=True)
    one_hot: bool = _f(True, "copying: one-hot input (D=10) instead of the raw token value (D=1)", task_default=True)
    pixels_per_step: int = _f(1, "pixel MNIST: pixels fed per step (must divide 784; 1 = the original task)",
                              task_default=True)
    perm_seed: int | None = _f(None, "permuted MNIST: seed of the pixel permutation (default: seed, as the original)")
    init: str = _f("original", "initialisation: " + ", ".join(INITS))
    bias: str = _f("one", "LSTM bias: one (the sum b of the original's two biases as one parameter) or two (b_ih "
                          "and b_hh trained as separate parameters, as the original)", task_default=True)
    dtype: str = _f("float32", "floating point type of the whole run: float32 or float64")
    log_every: int = _f(1, "write a training record (loss, accuracy, gradient norm, clipping) every k iterations")
    log_paths_every: int = _f(0, "every k iterations, log the norms of the cell-path and h-path gradient parts; "
                                 "0 = off")
    checkpoint_every: int = _f(0, "also checkpoint every k iterations (checkpoints are always written at epoch "
                                  "ends); 0 = off")
    eval_batch_size: int = _f(1000, "sequences per chunk during evaluation")

    def __post_init__(self):
        def need(name, ok, expected):
            if not ok:
                raise ValueError(f"config {name} must be {expected}, got {getattr(self, name)!r}")

        for name, choices in (("task", TASKS), ("optimizer", OPTIMIZERS), ("detach", DETACH),
                              ("mask_per", PER), ("init", INITS), ("bias", BIASES), ("dtype", DTYPES)):
            need(name, getattr(self, name) in choices, "one of " + ", ".join(map(repr, choices)))
        ints = {"hidden": 1, "batch_size": 1, "anneal_p": 0, "seed": 0, "epochs": 1, "iterations_per_epoch": 0,
                "n_train": 0, "n_valid": 1, "n_test": 0, "pixels_per_step": 1, "log_every": 1, "log_paths_every": 0,
                "checkpoint_every": 0, "eval_batch_size": 1}
        for name, lo in ints.items():
            v = getattr(self, name)
            need(name, isinstance(v, int) and not isinstance(v, bool) and v >= lo, f"an integer >= {lo}")
        floats = {"lr": (0, False), "momentum": (0, True), "beta1": (0, True), "beta2": (0, True), "eps": (0, True),
                  "alpha": (0, True), "weight_decay": (0, True), "clip": (0, True), "p": (0, True)}
        for name, (lo, closed) in floats.items():
            v = getattr(self, name)
            is_number = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            ok = is_number and (v >= lo if closed else v > lo)
            need(name, ok, f"a finite number {'>=' if closed else '>'} {lo}")
            object.__setattr__(self, name, float(v))
        for name in ("momentum", "beta1", "beta2", "alpha"):
            need(name, getattr(self, name) < 1, "< 1")
        need("p", self.p <= 1, "a probability in [0, 1]")
        need("one_hot", isinstance(self.one_hot, bool), "true or false")
        perm_seed = self.perm_seed
        need("perm_seed", perm_seed is None or (isinstance(perm_seed, int) and not isinstance(perm_seed, bool)
                                                and perm_seed >= 0), "null or an integer >= 0")
        if self.task != "copying":
            need("one_hot", not self.one_hot, "false for task " + self.task + " (one-hot input is a copying option)")
        if self.task in MNIST_TASKS:
            need("pixels_per_step", 784 % self.pixels_per_step == 0, "a divisor of 784")
            need("n_train", 1 <= self.n_train <= 50_000, "in [1, 50000]")
            need("n_valid", self.n_valid <= 10_000, "in [1, 10000]")
            need("n_test", self.n_test <= 10_000, "in [0, 10000]")
        else:
            need("pixels_per_step", self.pixels_per_step == 1, f"1 for task {self.task} (a pixel MNIST option)")
            need("perm_seed", self.perm_seed is None, f"null for task {self.task} (a permuted MNIST option)")
            need("n_test", self.n_test == 0, f"0 for task {self.task} (there is no test set)")
        for name, task, lo in (("delay", "copying", 1), ("length", "adding", 2)):
            v = getattr(self, name)
            if self.task == task:
                need(name, isinstance(v, int) and not isinstance(v, bool) and v >= lo,
                     f"an integer >= {lo} for task {task}")
            else:
                need(name, v is None, f"null for task {self.task} (a {task} option)")
        if self.task == "adding":
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
        """T, the number of steps of a sequence: copying delay + 20, adding length, MNIST 784 / pixels_per_step."""
        if self.task == "copying":
            return self.delay + 20
        return self.length if self.task == "adding" else 784 // self.pixels_per_step

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
    def from_dict(cls, d: dict, preset: str = DEFAULT_PRESET) -> TrainConfig:
        """Build from a dict: unknown keys are an error; missing keys take the task's defaults in
        `preset` ("laptop" or "paper", see `PRESETS`)."""
        if not isinstance(d, dict):
            raise TypeError(f"a config must be a JSON object / dict, got {type(d).__name__}")
        unknown = sorted(set(d) - set(cls.keys()) - {"T"})
        if unknown:
            raise ValueError(f"unknown config key(s) {', '.join(map(repr, unknown))}; "
                             f"expected keys among: {', '.join(cls.keys())}")
        check_choice("preset", preset, tuple(PRESETS))
        task = d.get("task", "copying")
        check_choice("config task", task, TASKS)
        return cls(**{**PRESETS[preset][task], **cls._from_legacy(d, task)})

    @staticmethod
    def _from_legacy(d: dict, task: str) -> dict:
        """A config written before `delay` and `length` had the key "T": the copying delay, the adding
        length, or for pixel MNIST 784 / pixels_per_step (then it must agree)."""
        if "T" not in d:
            return d
        d = dict(d)
        T = d.pop("T")
        if task in LEGACY_T:
            d.setdefault(LEGACY_T[task], T)
        elif T != 784 // d.get("pixels_per_step", 1):
            raise ValueError(f"config T must be 784 / pixels_per_step = {784 // d.get('pixels_per_step', 1)} for pixel "
                             f"MNIST, got {T!r} (T is no longer a config key: set pixels_per_step)")
        return d

    @classmethod
    def from_saved(cls, d: dict) -> TrainConfig:
        """A config read from a run folder or a checkpoint: the keys it predates take the value its
        run used (ADDED_KEYS), so that runs written before a key existed resume and compare equal."""
        return cls.from_dict({**ADDED_KEYS, **d} if isinstance(d, dict) else d)

    @classmethod
    def from_json(cls, path) -> TrainConfig:
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
