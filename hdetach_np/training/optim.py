"""Optimizers with PyTorch's update rules, and global-norm gradient clipping.

Parameters and gradients are dicts of arrays with the same keys (e.g. "lstm.Wx", "readout.V");
`step` updates the parameter arrays IN PLACE. State is a flat dict of arrays (`state_dict`) so a
checkpoint can store it in an .npz and `load_state_dict` can restore it exactly.

Update rules, for one parameter p with gradient g (weight decay wd adds wd * p to g first):

    Adam     m = b1 m + (1 - b1) g ;  v = b2 v + (1 - b2) g^2 ;  k = step count
             p -= (lr / (1 - b1^k)) * m / (sqrt(v) / sqrt(1 - b2^k) + eps)
    SGD      buf = g on the first step, else buf = momentum * buf + g ;  p -= lr * buf
             (nesterov: p -= lr * (g + momentum * buf); momentum 0: p -= lr * g)
    RMSprop  s = alpha s + (1 - alpha) g^2 ;  d = sqrt(s) + eps
             momentum 0: p -= lr * g / d ;  else buf = momentum * buf + g / d ; p -= lr * buf

Clipping (`clip_grad_norm`) is PyTorch's `clip_grad_norm_`: the norm over ALL gradients together;
if it exceeds max_norm, every gradient is multiplied by max_norm / (norm + 1e-6).
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import check_positive

OPTIMIZERS = ("adam", "sgd", "rmsprop")


def _check_unit(name, v):
    v = check_positive(name, v, allow_zero=True)
    if v >= 1:
        raise ValueError(f"{name} must be in [0, 1), got {v!r}")
    return v


class Optimizer:
    """Base class: holds the parameter dict and a flat state dict of arrays."""

    kind = ""

    def __init__(self, params: dict, lr: float, weight_decay: float = 0.0):
        if not isinstance(params, dict) or not params:
            raise TypeError(f"params must be a non-empty dict of arrays, got {type(params).__name__}")
        for k, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise TypeError(f"params[{k!r}] must be a float array, got {type(p).__name__}")
        self.params = params
        self.lr = check_positive("lr", lr)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self.steps = 0
        self.state: dict[str, np.ndarray] = {}
        self._work: dict[str, np.ndarray] = {}

    def _grad(self, grads, k):
        if k not in grads:
            raise ValueError(f"missing gradient for parameter {k!r}")
        g, p = grads[k], self.params[k]
        if g.shape != p.shape or g.dtype != p.dtype:
            raise ValueError(f"gradient {k!r} is {g.dtype} {g.shape}, expected {p.dtype} {p.shape}")
        if self.weight_decay:
            g = g + self.weight_decay * p
        return g

    def _scratch(self, k):
        """A work array shaped like parameter k, kept between steps (not part of the state)."""
        work = self._work.get(k)
        if work is None:
            work = self._work[k] = np.empty_like(self.params[k])
        return work

    def _buffer(self, name, k):
        key = f"{name}/{k}"
        if key not in self.state:
            self.state[key] = np.zeros_like(self.params[k])
        return self.state[key]

    def step(self, grads: dict) -> None:
        self.steps += 1
        for k in self.params:
            self._update(k, self._grad(grads, k))

    def _update(self, k, g):  # pragma: no cover - abstract
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Flat arrays: "steps" and one buffer per (name, parameter), e.g. "m/lstm.Wx"."""
        out = {"steps": np.array(self.steps, dtype=np.int64)}
        out.update({k: v.copy() for k, v in self.state.items()})
        return out

    def buffer_names(self) -> tuple[str, ...]:
        """The buffers every parameter has after the first step, e.g. ("m", "v") for Adam."""
        return ()

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()` output; checks that every buffer is there and matches its parameter.

        After one step or more, each parameter must have each of `buffer_names()`: a missing
        buffer would restart at zero and the run would silently no longer be exact.
        """
        if "steps" not in state:
            raise ValueError("optimizer state has no 'steps' entry")
        steps = np.asarray(state["steps"])
        if steps.shape != () or steps.dtype.kind not in "iu" or int(steps) < 0:
            raise ValueError("optimizer state 'steps' must be an integer >= 0, "
                             f"got {steps.dtype} {steps.shape} {steps!r}")
        buffers = {}
        for key, v in state.items():
            if key == "steps":
                continue
            name, _, k = key.partition("/")
            if k not in self.params:
                raise ValueError(f"optimizer state {key!r} names no parameter of this model")
            if name not in self.buffer_names():
                raise ValueError(f"optimizer state {key!r} is not a buffer of this {self.kind} optimizer "
                                 f"(expected {', '.join(self.buffer_names()) or 'none'})")
            p = self.params[k]
            if v.shape != p.shape or v.dtype != p.dtype:
                raise ValueError(f"optimizer state {key!r} is {v.dtype} {v.shape}, expected {p.dtype} {p.shape}")
            buffers[key] = np.array(v, copy=True)
        expected = {f"{b}/{k}" for b in self.buffer_names() for k in self.params} if int(steps) > 0 else set()
        missing = sorted(expected - set(buffers))
        if missing:
            raise ValueError(f"optimizer state lacks {', '.join(missing)} after {int(steps)} step(s); "
                             "it would restart at zero and the run would no longer be exact")
        self.steps = int(steps)
        self.state = buffers


class Adam(Optimizer):
    """torch.optim.Adam (amsgrad=False): lr 1e-3, betas (0.9, 0.999), eps 1e-8 by default."""

    kind = "adam"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.beta1, self.beta2 = (_check_unit(f"betas[{i}]", b) for i, b in enumerate(betas))
        self.eps = check_positive("eps", eps, allow_zero=True)

    def buffer_names(self):
        return ("m", "v")

    def _update(self, k, g):
        m, v = self._buffer("m", k), self._buffer("v", k)
        work = self._scratch(k)  # the operations of the update rule, written into one reused array
        m *= self.beta1
        m += np.multiply(g, 1 - self.beta1, out=work)  # m = b1 m + (1 - b1) g
        v *= self.beta2
        np.multiply(g, g, out=work)
        work *= 1 - self.beta2
        v += work  # v = b2 v + (1 - b2) g^2
        bias1 = 1 - self.beta1 ** self.steps
        bias2_sqrt = math.sqrt(1 - self.beta2 ** self.steps)
        denom = np.sqrt(v, out=work)
        denom /= bias2_sqrt
        denom += self.eps  # sqrt(v) / sqrt(1 - b2^k) + eps
        step = np.divide(m, denom, out=work)
        step *= self.lr / bias1
        self.params[k] -= step


class SGD(Optimizer):
    """torch.optim.SGD with momentum (dampening 0), optional Nesterov."""

    kind = "sgd"

    def __init__(self, params, lr=1e-2, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.momentum = _check_unit("momentum", momentum)
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0, got momentum 0")
        self.nesterov = bool(nesterov)

    def buffer_names(self):
        return ("momentum",) if self.momentum else ()

    def _update(self, k, g):
        if self.momentum:
            key = f"momentum/{k}"
            if key not in self.state:
                self.state[key] = np.array(g, copy=True)  # the first step starts the buffer at g
            else:
                buf = self.state[key]
                buf *= self.momentum
                buf += g
            buf = self.state[key]
            g = g + self.momentum * buf if self.nesterov else buf
        self.params[k] -= self.lr * g


class RMSprop(Optimizer):
    """torch.optim.RMSprop (centered=False): alpha 0.99, eps 1e-8, optional momentum."""

    kind = "rmsprop"

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.alpha = _check_unit("alpha", alpha)
        self.eps = check_positive("eps", eps, allow_zero=True)
        self.momentum = _check_unit("momentum", momentum)

    def buffer_names(self):
        return ("square_avg",) + (("momentum",) if self.momentum else ())

    def _update(self, k, g):
        s = self._buffer("square_avg", k)
        s *= self.alpha
        s += (1 - self.alpha) * (g * g)
        avg = np.sqrt(s) + self.eps
        if self.momentum:
            buf = self._buffer("momentum", k)
            buf *= self.momentum
            buf += g / avg
            self.params[k] -= self.lr * buf
        else:
            self.params[k] -= self.lr * (g / avg)


def make_optimizer(kind: str, params: dict, lr: float, *, betas=(0.9, 0.999), eps=1e-8, momentum=0.0,
                   alpha=0.99, nesterov=False, weight_decay=0.0) -> Optimizer:
    """Build "adam", "sgd" or "rmsprop" with the given hyper-parameters (the others are ignored)."""
    if kind == "adam":
        return Adam(params, lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if kind == "sgd":
        return SGD(params, lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    if kind == "rmsprop":
        return RMSprop(params, lr, alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {kind!r}; expected one of {', '.join(map(repr, OPTIMIZERS))}")


def global_norm(grads: dict) -> float:
    """sqrt of the sum of squares of every gradient entry (accumulated in float64)."""
    total = 0.0
    for g in grads.values():
        a = g.ravel().astype(np.float64, copy=False)
        total += float(np.dot(a, a))
    return math.sqrt(total)


def clip_grad_norm(grads: dict, max_norm: float) -> tuple[float, bool]:
    """Scale all gradients IN PLACE so their global norm is at most max_norm (0 turns clipping off).

    As torch.nn.utils.clip_grad_norm_: the factor is max_norm / (norm + 1e-6), applied when it is
    below 1. Returns (the norm before clipping, whether the gradients were scaled). A non-finite
    norm is returned as is, with nothing scaled.
    """
    max_norm = check_positive("max_norm", max_norm, allow_zero=True)
    norm = global_norm(grads)
    if max_norm == 0 or not math.isfinite(norm):
        return norm, False
    coef = max_norm / (norm + 1e-6)
    if coef >= 1:
        return norm, False
    for g in grads.values():
        g *= g.dtype.type(coef)
    return norm, True
