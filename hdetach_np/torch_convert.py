"""Weights to and from `torch.nn.LSTM` (PyTorch is imported only inside these functions).

torch.nn.LSTM orders its gate blocks i, f, g, o (this package: i, f, o, g), stores its weights
transposed (weight_ih (4H, D), weight_hh (4H, H)) and has two biases, bias_ih and bias_hh, that are
added. `to_torch_lstm` puts b into bias_ih and zeros into bias_hh; `from_torch_lstm` sums them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .lstm import LSTMParams

if TYPE_CHECKING:  # for the annotations only: torch is imported when a converter is called
    import torch

TORCH_GATES = ("i", "f", "g", "o")


def _torch_order(H: int) -> np.ndarray:
    """Column indices (4H,) that take our blocks i, f, o, g into torch's order i, f, g, o."""
    i, f, o, g = (np.arange(k * H, (k + 1) * H) for k in range(4))
    return np.concatenate([i, f, g, o])


def to_torch_lstm(params: LSTMParams) -> torch.nn.LSTM:
    """A one-layer `torch.nn.LSTM(D, H)` (sequence-first, like this package) with these weights.

    Its dtype is the parameters' (float32 or float64). Wx (D, 4H) -> weight_ih_l0 (4H, D),
    Wh (H, 4H) -> weight_hh_l0 (4H, H), b -> bias_ih_l0 and zeros -> bias_hh_l0, gate blocks
    reordered to torch's i, f, g, o.
    """
    import torch

    if not isinstance(params, LSTMParams):
        raise TypeError(f"params must be LSTMParams (see init_lstm), got {type(params).__name__}")
    D, H = params.input_size, params.hidden_size
    order = _torch_order(H)
    dtype = torch.float64 if params.dtype == np.float64 else torch.float32
    module = torch.nn.LSTM(D, H).to(dtype)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(params.Wx[:, order].T)))
        module.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(params.Wh[:, order].T)))
        module.bias_ih_l0.copy_(torch.from_numpy(params.b[order].copy()))
        module.bias_hh_l0.zero_()
    return module


def from_torch_lstm(module: torch.nn.LSTM) -> LSTMParams:
    """The LSTMParams of a one-layer, unidirectional `torch.nn.LSTM` with biases and no projection.

    b = bias_ih + bias_hh; gate blocks reordered from torch's i, f, g, o to i, f, o, g; dtype float32
    or float64 as the module's.
    """
    import torch

    if not isinstance(module, torch.nn.LSTM):
        raise TypeError(f"module must be a torch.nn.LSTM, got {type(module).__name__}")
    if module.num_layers != 1 or module.bidirectional or not module.bias or module.proj_size:
        raise ValueError(
            "from_torch_lstm needs a one-layer, unidirectional nn.LSTM with biases and no projection, got "
            f"num_layers={module.num_layers}, bidirectional={module.bidirectional}, bias={module.bias}, "
            f"proj_size={module.proj_size}"
        )
    H = module.hidden_size
    # torch's rows are its gate blocks i, f, g, o; ours are read at the inverse permutation
    ours = np.argsort(_torch_order(H))
    with torch.no_grad():
        W_ih = module.weight_ih_l0.detach().cpu().numpy()  # (4H, D)
        W_hh = module.weight_hh_l0.detach().cpu().numpy()  # (4H, H)
        b = (module.bias_ih_l0 + module.bias_hh_l0).detach().cpu().numpy()  # (4H,)
    return LSTMParams(
        np.ascontiguousarray(W_ih[ours].T), np.ascontiguousarray(W_hh[ours].T), np.ascontiguousarray(b[ours])
    )


__all__ = ["TORCH_GATES", "from_torch_lstm", "to_torch_lstm"]
