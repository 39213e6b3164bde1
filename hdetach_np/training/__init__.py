"""Training: an LSTM with a linear readout trained on a task, with h-detach, in run folders.

- `config`: the training configuration (`TrainConfig`);
- `loop`: the model, the training loop and evaluation;
- `optim`: optimizers with PyTorch's update rules, gradient clipping;
- `runs`: the run folder (config, history, checkpoints);
- `data`: the MNIST files; `threads`: BLAS threads; `plots`: training curves;
- `sweep`: many runs over a grid of config values (joblib, Dask); `report`: their summaries over seeds.
"""

from .config import TrainConfig
from .data import MNISTData, load_mnist, prepare_mnist
from .loop import Model, TrainingDiverged, TrainResult, evaluate, evaluate_run, init_model, train, transfer_copying
from .optim import SGD, Adam, RMSprop, clip_grad_norm, make_optimizer
from .runs import read_history
from .threads import blas_threads

__all__ = [
    "Adam", "MNISTData", "Model", "RMSprop", "SGD", "TrainConfig", "TrainResult", "TrainingDiverged",
    "blas_threads", "clip_grad_norm", "evaluate", "evaluate_run", "init_model", "load_mnist",
    "make_optimizer", "prepare_mnist", "read_history", "train", "transfer_copying",
]
