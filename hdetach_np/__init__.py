"""hdetach-np: a NumPy LSTM with hand-derived BPTT, the exact cell-path / h-path split of its
gradient, and h-detach (Arpit, Kanuparthi et al., ICLR 2019).

    import hdetach_np as hd
    params = hd.init_lstm(D, H, rng)
    hs, cache = hd.lstm_forward(params, x)            # x (T, N, D) -> hs (T, N, H)
    grads = hd.lstm_backward(dhs, cache, h_scale=hd.sample_h_detach_mask(T, 0.25, rng))
"""

import importlib

from . import gradcheck
from .linear import LinearCache, LinearGrads, LinearParams, init_linear, linear_backward, linear_forward
from .losses import mse_loss, softmax_cross_entropy
from .lstm import (
    GATES,
    LSTMParams,
    StepCache,
    StepGrads,
    gate_slices,
    init_lstm,
    lstm_cell_backward,
    lstm_step_backward,
    lstm_step_forward,
    split_gates,
)
from .masks import sample_h_detach_mask
from .paths import (
    PathGrads,
    SuppressionConfig,
    expected_h_detach_gradient,
    forward_mode,
    gradient_paths,
    h_detach_lambda,
    jacobian_products,
    path_ratios,
    step_jacobians,
    suppression_sweep,
    temporal_credit,
)
from .sequence import (
    LSTMCache,
    LSTMGrads,
    lstm_backward,
    lstm_backward_steps,
    lstm_forward,
    lstm_forward_steps,
)
from .torch_convert import from_torch_lstm, to_torch_lstm

__version__ = "0.2.0"

__all__ = [
    # the core: one LSTM step and a whole sequence, forward and backward; the readout and losses
    "GATES", "LSTMCache", "LSTMGrads", "LSTMParams", "StepCache", "StepGrads", "gate_slices", "init_lstm",
    "lstm_backward", "lstm_backward_steps", "lstm_cell_backward", "lstm_forward", "lstm_forward_steps",
    "lstm_step_backward", "lstm_step_forward", "split_gates", "to_torch_lstm", "from_torch_lstm",
    "LinearCache", "LinearGrads", "LinearParams", "init_linear", "linear_backward", "linear_forward",
    "mse_loss", "softmax_cross_entropy", "sample_h_detach_mask", "gradcheck",
    # the two-path analysis (more in hdetach_np.paths)
    "PathGrads", "SuppressionConfig", "expected_h_detach_gradient", "forward_mode", "gradient_paths",
    "h_detach_lambda", "jacobian_products", "path_ratios", "step_jacobians", "suppression_sweep",
    "temporal_credit",
]

_SUBPACKAGES = ("paths", "tasks", "training", "teaching", "cli")


def __getattr__(name):
    """`hd.training`, `hd.teaching`, ...: the subpackages, imported when first used."""
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'hdetach_np' has no attribute {name!r}")
