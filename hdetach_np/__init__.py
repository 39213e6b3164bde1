"""hdetach-np: a NumPy LSTM with hand-derived BPTT, the exact cell-path / h-path split of its
gradient, and h-detach (Arpit, Kanuparthi et al., ICLR 2019).

    import hdetach_np as hd
    params = hd.init_lstm(D, H, rng)
    hs, cache = hd.lstm_forward(params, x)            # x (T, N, D) -> hs (T, N, H)
    grads = hd.lstm_backward(dhs, cache, h_scale=hd.sample_h_detach_mask(T, 0.25, rng))
"""

from . import gradcheck
from .linear import LinearCache, LinearGrads, LinearParams, init_linear, linear_backward, linear_forward
from .losses import mse_loss, softmax_cross_entropy
from .lstm import (
    GATES,
    LSTMCache,
    LSTMGrads,
    LSTMParams,
    StepCache,
    StepGrads,
    gate_slices,
    init_lstm,
    lstm_backward,
    lstm_forward,
    lstm_step_backward,
    lstm_step_forward,
)
from .masks import sample_h_detach_mask
from . import plots
from .jacobians import (
    ForwardSensitivities,
    JacobianProducts,
    StepJacobians,
    forward_mode,
    jacobian_products,
    step_jacobians,
)
from .paths import (
    PathGrads,
    TemporalCredit,
    expected_h_detach_gradient,
    expected_h_detach_paths,
    gradient_paths,
    gradient_paths_reference,
    h_detach_lambda,
    param_groups,
    path_ratios,
    temporal_credit,
)
from .suppression import SuppressionConfig, SuppressionResult, scale_params, suppression_sweep
from .config import TrainConfig
from .data import MNISTData, load_mnist, prepare_mnist
from .optim import SGD, Adam, RMSprop, clip_grad_norm, make_optimizer
from .runs import read_history
from .training import Model, TrainingDiverged, TrainResult, evaluate, evaluate_run, init_model, train, transfer_copying
from .threads import blas_threads
from .demo import DemoResult, run_demo

__version__ = "0.1.0"

__all__ = [
    "GATES", "LSTMCache", "LSTMGrads", "LSTMParams", "StepCache", "StepGrads", "LinearCache",
    "LinearGrads", "LinearParams", "gate_slices", "gradcheck", "init_linear", "init_lstm",
    "linear_backward", "linear_forward", "lstm_backward", "lstm_forward", "lstm_step_backward",
    "lstm_step_forward", "mse_loss", "PathGrads", "gradient_paths", "sample_h_detach_mask", "softmax_cross_entropy",
    # gradient paths: the cell / h split, h-detach in expectation, forward mode, suppression
    "ForwardSensitivities", "JacobianProducts", "StepJacobians", "SuppressionConfig", "SuppressionResult",
    "TemporalCredit", "expected_h_detach_gradient", "expected_h_detach_paths", "forward_mode",
    "gradient_paths_reference", "h_detach_lambda", "jacobian_products", "param_groups", "path_ratios",
    "plots", "scale_params", "step_jacobians", "suppression_sweep", "temporal_credit",
    "TrainConfig", "MNISTData", "load_mnist", "prepare_mnist", "SGD", "Adam", "RMSprop", "clip_grad_norm",
    "make_optimizer", "read_history", "Model", "TrainingDiverged", "TrainResult", "evaluate", "evaluate_run",
    "init_model", "train", "transfer_copying",
    "blas_threads",
    "DemoResult", "run_demo",
]
