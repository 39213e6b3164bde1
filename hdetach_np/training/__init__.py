"""Training: an LSTM with a linear readout trained on a task, with h-detach, in run folders.

- `config`: the training configuration (`TrainConfig`);
- `loop`: the training loop (`train`); `model`: the LSTM with its readout, the batch loss, evaluation;
- `task_data`: the tasks' data sets and minibatches; `trained`: using a finished run (evaluation, transfer);
- `optim`: optimizers with PyTorch's update rules, gradient clipping;
- `runs`: the run folder (config, history, checkpoints, its lock);
- `guard`: what keeps a run's work (stops on SIGINT/SIGTERM, timed checkpoints, memory check);
- `data`: the MNIST files; `threads`: BLAS threads; `plots`: training curves;
- `sweep`: many runs over a grid of config values (joblib, Dask); `report`: their summaries over seeds.
"""

from .config import TrainConfig
from .data import MNISTData, load_mnist
from .guard import TrainingInterrupted
from .loop import TrainResult, train
from .mnist_sources import prepare_mnist
from .model import Model, TrainingDiverged, evaluate, init_model
from .optim import SGD, Adam, RMSprop, clip_grad_norm, make_optimizer
from .runs import RunFolderBusy, lock_run_folder, read_history
from .threads import AUTO_MAX_THREADS, auto_threads, blas_threads, resolve_threads
from .trained import evaluate_run, load_run, transfer_copying

__all__ = [
    "AUTO_MAX_THREADS", "Adam", "MNISTData", "Model", "RMSprop", "RunFolderBusy", "SGD", "TrainConfig",
    "TrainResult", "TrainingDiverged", "TrainingInterrupted", "auto_threads", "blas_threads", "clip_grad_norm",
    "evaluate", "evaluate_run", "init_model", "load_mnist", "load_run", "lock_run_folder", "make_optimizer",
    "prepare_mnist", "read_history", "resolve_threads", "train", "transfer_copying",
]
