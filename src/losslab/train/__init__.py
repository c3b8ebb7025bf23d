"""The training engine: networks trained by a loss's gradient, in NumPy.

Modules, each named after its concept: ``layers`` (explicit backward passes), ``optimizers``,
``schedules`` (per epoch or per batch), ``regularization`` (the article's L1/L2 cures),
``trainer`` (``Trainer``), ``history``, ``callbacks``, ``checkpoint`` (NPZ files read without
pickle), ``lr_finder`` (the learning-rate range test), ``outputs`` (probabilities and labels from
a model's raw outputs), ``metrics``, ``data`` (datasets, splits, standardisation), ``curves``
(learning and validation curves over repeated splits) and ``experiments`` (the article's
experiment).

The names most programs need are importable from here::

    from losslab.train import Trainer, lr_find
"""

from losslab.train.checkpoint import CheckpointError, load_checkpoint, load_model, save_model
from losslab.train.curves import kfold_splits, learning_curve, validation_curve
from losslab.train.history import History
from losslab.train.lr_finder import LRFinderResult, lr_find
from losslab.train.trainer import NonFiniteError, Trainer

__all__ = [
    "Trainer",
    "History",
    "NonFiniteError",
    "lr_find",
    "LRFinderResult",
    "CheckpointError",
    "save_model",
    "load_model",
    "load_checkpoint",
    "learning_curve",
    "validation_curve",
    "kfold_splits",
]
