"""The training loop: forward pass, loss, gradient flowing backward, an optimizer step.

The article's system, as a ``Trainer``::

    model = mlp([64, 128, 10], seed=0)
    trainer = Trainer(model, "cross_entropy", "adam", lr=1e-3, seed=0)
    history = trainer.fit(X, y, epochs=20, batch_size=64, validation_split=0.2,
                          callbacks=[EarlyStopping(patience=3)])
    trainer.evaluate(X_test, y_test)  # {"loss": ..., "accuracy": ...}

What one step does (``Trainer.train_step``)::

    out = model.forward(xb)
    L, dL/dout = loss.value_and_grad(out, yb)      # one pass through the catalog loss
    model.backward_params(dL/dout)                 # fills every layer's gradients
    L += R(w); grad += dR/dw                       # the article's regularisation term, if any
    check L and every gradient are finite         # else NonFiniteError(epoch, batch)
    clip gradients (by norm / by value)
    optimizer.step(params, grads)                  # in place

Conventions:

- ``history["loss"]`` is the mean over the epoch's batches (weighted by batch size) of the loss
  *including* the regularisation term, as Keras reports it; ``history["reg_loss"]`` is that term
  alone. ``val_loss`` is the data loss on the validation set without the penalty (the quantity
  generalisation is judged by). Training metrics stream over the epoch's batches as the weights
  change (Keras's convention); ``val_`` metrics are computed at the epoch's end in eval mode.
- ``history["grad_norm/<param>"]`` is the mean over the epoch's batches of the L2 norm of that
  parameter's gradient (after the regularisation gradient, before clipping): vanishing or
  exploding gradients show up here per layer.
- A schedule with ``interval="epoch"`` (the default) steps once per epoch:
  ``lr <- schedule.step(metric)`` with metric = ``val_loss`` when there is validation data and
  ``loss`` otherwise (only ReduceOnPlateau reads it). One with ``interval="batch"`` steps after
  every optimizer step (after the batch's callbacks), as torch's ``OneCycleLR`` loop does.
  ``history["lr"]`` is the rate the epoch's first batch used; each batch's rate is ``"lr"`` in
  the logs ``on_batch_end`` receives. ``train_step`` never steps the schedule.
- A callback stops training by setting ``trainer.stop_training = True``: in ``on_batch_end`` the
  epoch ends after that batch (its logs average the batches run), in ``on_epoch_end`` after the
  epoch; either way the epoch's end (history, callbacks, checkpoint) still happens (Keras).
- ``validation_split`` holds out the *last* fraction of the samples, before shuffling (Keras).
- One ``seed`` fixes everything random: ``SeedSequence(seed).spawn(3)`` gives independent
  streams for initialisation (``trainer.init_rng``, or ``seed_streams(seed)["init"]`` to pass as
  ``mlp(..., seed=<that generator>)``), shuffling and the dropout masks (the Trainer reseeds the
  model's Dropout layers). A model built with ``mlp(..., seed=seed)`` is reproducible as well.
- Task, read from the loss's declared facts (``losslab.spec(name)``): ``"classification"``
  when its layout is ``class_axis`` with class targets and ``y`` is 1-D (cross_entropy, nll,
  poly1, multi_margin, ...); ``"binary"`` for an ``elementwise`` loss on ``logits`` and a model
  with one output (bce_with_logits, focal), 0/1 targets; ``"regression"`` otherwise. Pass
  ``task=`` to force.
- Probabilities (``predict_proba``, the ``log_loss`` and ``calibration_error`` metrics) are read
  from the outputs by the loss's input kind (``losslab.train.outputs``). A loss on scores
  (hinge, multi_margin, ...) gives none: ``predict_proba`` raises, and those metrics are
  recorded as NaN ("not measured").
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

import losslab
from losslab.losses._registry import Loss
from losslab.train.callbacks import Callback, callback_states, load_callback_states
from losslab.train.checkpoint import read_checkpoint, save_checkpoint
from losslab.train.history import History
from losslab.train.layers import Layer, eval_mode
from losslab.train.metrics import (
    CLASSIFICATION_METRICS,
    METRICS,
    REGRESSION_METRICS,
    StreamingMetric,
    get_metric,
)
from losslab.train.optimizers import Optimizer, make_optimizer
from losslab.train.outputs import (
    class_probabilities,
    has_probabilities,
    predicted_labels,
)
from losslab.train.regularization import Regularizer, clip_grad_norm, clip_grad_value
from losslab.train.schedules import Schedule, make_schedule

__all__ = ["Trainer", "NonFiniteError", "TASKS", "seed_streams"]

TASKS = ("regression", "classification", "binary")



class NonFiniteError(ValueError):
    """The loss or a gradient became NaN or infinite; ``epoch`` and ``batch`` count from 0."""

    def __init__(self, what: str, epoch: int, batch: int, value: float | None = None) -> None:
        self.what, self.epoch, self.batch = what, epoch, batch
        shown = "" if value is None else f" ({value})"
        super().__init__(
            f"non-finite {what}{shown} at epoch {epoch}, batch {batch} (counting from 0). "
            "Lower the learning rate, clip gradients (clip_norm=...), standardise the inputs, "
            "or check the data for extreme values."
        )


def seed_streams(seed: int | None) -> dict[str, np.random.Generator]:
    """Independent generators ``init``, ``shuffle`` and ``dropout`` derived from one seed."""
    init, shuffle, dropout = np.random.SeedSequence(seed).spawn(3)
    return {
        "init": np.random.default_rng(init),
        "shuffle": np.random.default_rng(shuffle),
        "dropout": np.random.default_rng(dropout),
    }


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a positive number; got {value!r}.")
    if not (math.isfinite(float(value)) and float(value) > 0):
        raise ValueError(f"{name} must be a positive finite number (> 0); got {value!r}.")
    return float(value)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def _find_nonfinite(a: np.ndarray) -> str:
    bad = np.argwhere(~np.isfinite(a))
    return f" (first at index {tuple(int(i) for i in bad[0])})" if len(bad) else ""


class Trainer:
    """Fits ``model`` by minimising ``loss`` with ``optimizer``; see the module docstring.

    Parameters
    ----------
    model : a losslab ``Layer`` (usually ``Sequential``; ``mlp`` and ``linear_model`` build one).
    loss : a catalog name (``"mse"``, ``"cross_entropy"``, ...) or a ``losslab.Loss``.
    optimizer : a name (``"sgd"``, ``"adam"``, ...) or an ``Optimizer``. ``lr`` overrides its rate.
    schedule : None, a name (constant, plateau; the others need options, so pass a
        ``Schedule`` for those) or a ``Schedule``, stepped per epoch or, with
        ``interval="batch"``, per batch.
    regularizer : None or a ``Regularizer`` (L1, L2, ElasticNet): its value is added to the loss
        and its gradient to the parameters' gradients.
    clip_norm, clip_value : gradient clipping by global L2 norm / by value (torch semantics).
    metrics : metric names (see ``losslab.train.metrics.METRICS``); default accuracy for
        classification, r2 and mae for regression; ``[]`` for none (fastest).
    task : None (inferred at ``fit``), "regression", "classification" or "binary".
    seed : fixes shuffling and dropout masks (and ``init_rng``).
    dtype : "float32" or "float64"; None (default) takes the model's parameter dtype. Data are
        converted to it once per ``fit``.
    """

    def __init__(
        self,
        model: Layer,
        loss: str | Loss = "mse",
        optimizer: str | Optimizer = "sgd",
        *,
        lr: float | None = None,
        schedule: str | Schedule | None = None,
        regularizer: Regularizer | None = None,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        metrics: Sequence[str] | None = None,
        task: str | None = None,
        seed: int | None = 0,
        dtype: Any = None,
    ) -> None:
        if not isinstance(model, Layer):
            raise TypeError(f"model must be a losslab Layer; got {type(model).__name__}.")
        self.model = model
        loss = losslab.get(loss) if isinstance(loss, str) else loss
        if not isinstance(loss, Loss):
            raise TypeError(f"loss must be a catalog name or a losslab.Loss; got {loss!r}.")
        self.loss: Loss = loss
        if lr is not None:
            lr = _positive(lr, "lr")
        if isinstance(optimizer, str):
            optimizer = make_optimizer(optimizer, lr=lr)
        elif isinstance(optimizer, Optimizer):
            if lr is not None:
                optimizer.lr = lr
        else:
            raise TypeError(f"optimizer must be a name or an Optimizer; got {optimizer!r}.")
        _positive(optimizer.lr, "lr")
        self.optimizer: Optimizer = optimizer
        if isinstance(schedule, str):
            schedule = make_schedule(schedule, self.optimizer.lr)
        elif schedule is not None and not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be None, a name or a Schedule; got {schedule!r}.")
        self.schedule: Schedule | None = schedule
        if schedule is not None:
            self.optimizer.lr = float(schedule.lr)
        if regularizer is not None and not isinstance(regularizer, Regularizer):
            raise TypeError(
                "regularizer must be None or a Regularizer (L1, L2, ElasticNet); "
                f"got {regularizer!r}."
            )
        self.regularizer = regularizer
        self.clip_norm = None if clip_norm is None else _positive(clip_norm, "clip_norm")
        self.clip_value = None if clip_value is None else _positive(clip_value, "clip_value")
        if task is not None and task not in TASKS:
            raise ValueError(f"task must be one of {TASKS} or None; got {task!r}.")
        self.task = task
        self._metric_names = None if metrics is None else [str(m) for m in metrics]
        for m in self._metric_names or ():
            if m not in METRICS:
                get_metric(m)  # raises with the closest names
        params = model.parameters()
        model_dtype = next(iter(params.values())).dtype if params else np.dtype(np.float32)
        if dtype is None:
            self.dtype = np.dtype(model_dtype)
        else:
            try:
                self.dtype = np.dtype(dtype)
            except TypeError:
                raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}.") from None
            if self.dtype not in (np.float32, np.float64):
                raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}.")
            if params and self.dtype != model_dtype:
                raise ValueError(
                    f"dtype={str(self.dtype)!r} but the model's parameters are {model_dtype}; "
                    f"build the model with dtype={str(self.dtype)!r}."
                )
        self.seed = seed
        streams = seed_streams(seed)
        self.init_rng = streams["init"]
        self.shuffle_rng = streams["shuffle"]
        model.set_rng(streams["dropout"])
        self.history = History()
        self.stop_training = False
        self.epoch = 0
        self.callbacks: list[Callback] = []
        self._y_1d = True
        self._n_outputs: int | None = None

    # -- model facts ------------------------------------------------------------------------

    @property
    def lr(self) -> float:
        return float(self.optimizer.lr)

    @property
    def in_features(self) -> int | None:
        """Input width from the first parameterised layer (None if unknown)."""
        return self.model.input_features()

    @property
    def n_outputs(self) -> int:
        """Output width, found once by a forward pass of one zero sample in eval mode."""
        if self._n_outputs is None:
            d = self.in_features or 1
            with eval_mode(self.model):
                out = self.model.forward(np.zeros((1, d), dtype=self.dtype))
            self._n_outputs = int(out.shape[-1]) if out.ndim > 1 else 1
        return self._n_outputs

    def _infer_task(self, y: np.ndarray) -> str:
        spec = self.loss.spec
        if spec.layout == "class_axis" and spec.target_kind in ("class", "class_index") and (
            y.ndim == 1
        ):
            return "classification"  # non-integer labels are then rejected by _check_y
        if spec.input_kind == "logits" and spec.layout == "elementwise" and self.n_outputs == 1:
            return "binary"
        return "regression"

    # -- input checks -----------------------------------------------------------------------

    def _check_X(self, X: Any, name: str = "X") -> np.ndarray:
        try:
            X = np.asarray(X)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a numeric array; {exc}") from None
        if X.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold numbers; got dtype {X.dtype}.")
        d = self.in_features
        if X.ndim == 1 and d == 1:
            X = X[:, None]
        if X.ndim != 2:
            raise ValueError(
                f"{name} must be a 2-D array (n_samples, n_features); got shape {X.shape}."
            )
        if d is not None and X.shape[1] != d:
            raise ValueError(
                f"{name} has {X.shape[1]} features, but the model expects {d} (its first layer's "
                "in_features)."
            )
        if len(X) == 0:
            raise ValueError(f"{name} is empty (0 samples).")
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{name} contains NaN or infinite values{_find_nonfinite(X)}.")
        return X

    def _check_y(self, y: Any, n: int, name: str = "y", x_name: str = "X") -> np.ndarray:
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != n:
            raise ValueError(
                f"{x_name} and {name} must have the same number of samples; got {n} and "
                f"{len(y) if y.ndim else 'a scalar'}."
            )
        if y.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold numbers; got dtype {y.dtype}.")
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contains NaN or infinite values{_find_nonfinite(y)}.")
        task = self.task
        if task == "classification":
            if y.ndim != 1:
                raise ValueError(
                    f"{name} must be a 1-D array of integer class labels for classification; got "
                    f"shape {y.shape}."
                )
            if y.dtype.kind == "f" and not np.all(y == np.round(y)):
                raise ValueError(
                    f"{name} must hold integer class labels for classification; got non-integer "
                    f"values such as {y[y != np.round(y)][0]!r}."
                )
            c = self.n_outputs
            if y.min() < 0 or y.max() >= c:
                raise ValueError(
                    f"{name} labels must lie in [0, {c - 1}] for a model with {c} outputs; got "
                    f"values in [{y.min()}, {y.max()}]."
                )
            return y.astype(np.int64, copy=False)
        c = self.n_outputs
        if task == "binary":
            if not np.all((y == 0) | (y == 1)):
                raise ValueError(f"{name} must hold 0/1 labels for binary classification.")
        if y.ndim == 1:
            if c != 1:
                raise ValueError(
                    f"{name} has one target per sample but the model has {c} outputs; pass "
                    f"{name} of shape ({n}, {c})."
                )
            y = y[:, None]
        elif y.shape[1:] != (c,) or y.ndim != 2:
            raise ValueError(f"{name} must have shape ({n},) or ({n}, {c}); got {y.shape}.")
        return np.ascontiguousarray(y, dtype=self.dtype)

    def _prepare(
        self, X: Any, y: Any, x_name: str = "X", y_name: str = "y"
    ) -> tuple[np.ndarray, np.ndarray]:
        X = self._check_X(X, x_name)
        y_arr = np.asarray(y)
        if self.task is None:
            if y_arr.ndim == 0 or len(y_arr) != len(X):
                self._check_y(y_arr, len(X), y_name, x_name)  # raises the length error
            self.task = self._infer_task(y_arr)
        if y_arr.ndim >= 1 and len(y_arr) == len(X):
            self._y_1d = y_arr.ndim == 1
        return X, self._check_y(y_arr, len(X), y_name, x_name)

    # -- one step ---------------------------------------------------------------------------

    def _step(
        self, xb: np.ndarray, yb: np.ndarray, epoch: int, batch: int,
        norms: dict[str, float] | None,
    ) -> tuple[float, float, np.ndarray]:
        """Forward, backward, checks, clip, update.

        Returns ``(loss including the penalty, penalty, model output)``.
        """
        model = self.model
        out = model.forward(xb)
        value, g = self.loss.value_and_grad(out, yb)
        loss_value = float(value)
        if not math.isfinite(loss_value):
            raise NonFiniteError("loss", epoch, batch, loss_value)
        model.backward_params(g)  # no dL/dx: the data need no gradient
        params = model.parameters()
        grads = model.gradients()
        penalty = 0.0 if self.regularizer is None else self.regularizer.add_grad(params, grads)
        for k, gk in grads.items():
            flat = gk.reshape(-1)
            sq = float(np.dot(flat, flat))
            if not math.isfinite(sq) and not np.all(np.isfinite(gk)):
                raise NonFiniteError(f"gradient of {k!r}", epoch, batch)
            if norms is not None:
                # sq overflowing float32 for huge-but-finite gradients: recompute in float64
                norms[k] += math.sqrt(sq) if math.isfinite(sq) else float(
                    np.linalg.norm(gk.astype(np.float64))
                )
        if self.clip_norm is not None or self.clip_value is not None:
            if self.clip_value is not None:
                clip_grad_value(grads, self.clip_value)
            if self.clip_norm is not None:
                clip_grad_norm(grads, self.clip_norm)
        self.optimizer.step(params, grads)
        return loss_value + penalty, penalty, out

    def train_step(self, xb: Any, yb: Any) -> float:
        """One forward/backward/update on a batch; returns the loss (with the penalty)."""
        xb, yb = self._prepare(xb, yb, "xb", "yb")
        self.model.train()
        return self._step(xb, yb, self.epoch, 0, None)[0]

    # -- fit --------------------------------------------------------------------------------

    def _metric_list(self) -> list[str]:
        if self._metric_names is not None:
            return self._metric_names
        if self.task in ("classification", "binary"):
            return list(CLASSIFICATION_METRICS)
        return list(REGRESSION_METRICS)

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        epochs: int = 10,
        batch_size: int | None = 32,
        shuffle: bool = True,
        validation_split: float = 0.0,
        validation_data: tuple[Any, Any] | None = None,
        callbacks: Sequence[Callback] = (),
        checkpoint_path: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        verbose: bool = False,
    ) -> History:
        """Train for ``epochs`` epochs (mini-batches of ``batch_size``; None = full batch).

        With ``checkpoint_path`` the full training state is saved (atomically) after every
        ``checkpoint_every`` epochs and at the end. ``resume=True`` continues an interrupted run:
        if the checkpoint exists its state is loaded and training goes on until ``epochs`` epochs
        are done *in total*, giving the same parameters as an uninterrupted run. Otherwise each
        call trains ``epochs`` more epochs.
        """
        epochs = _count(epochs, "epochs")
        checkpoint_every = _count(checkpoint_every, "checkpoint_every")
        X, y = self._prepare(X, y)
        n = len(X)
        batch_size = n if batch_size is None else _count(batch_size, "batch_size")
        validation: tuple[np.ndarray, np.ndarray] | None = None
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError("validation_data must be a pair (X_val, y_val).")
            validation = self._prepare(
                *validation_data, "validation_data[0]", "validation_data[1]"
            )
        elif validation_split:
            if isinstance(validation_split, bool) or not (0.0 < float(validation_split) < 1.0):
                raise ValueError(f"validation_split must lie in [0, 1); got {validation_split!r}.")
            n_val = int(math.floor(n * float(validation_split)))
            if n_val < 1 or n_val >= n:
                raise ValueError(
                    f"validation_split={validation_split} leaves {n_val} of {n} samples for "
                    "validation; it must leave at least one for each part."
                )
            X, y, validation = X[: n - n_val], y[: n - n_val], (X[n - n_val :], y[n - n_val :])
            n = len(X)
        resume_state = None
        if resume:
            if checkpoint_path is None:
                raise ValueError("resume=True needs checkpoint_path (the file to resume from).")
            if os.path.exists(checkpoint_path):
                resume_state = read_checkpoint(checkpoint_path)["trainer"]
        self.callbacks = list(callbacks)
        self.stop_training = False
        for cb in self.callbacks:
            cb.on_train_begin(self)
        if resume_state is not None:
            # After on_train_begin, which starts callbacks afresh: the saved state wins.
            self.load_state_dict(resume_state)
            target = epochs
        else:
            target = self.epoch + epochs
        metric_names = self._metric_list()
        streaming = [StreamingMetric(m) for m in metric_names if m in StreamingMetric.SUPPORTED]
        param_names = list(self.model.parameters())
        # Shuffled batches are gathered row by row into two reused buffers: each sample is copied
        # once, into an array small enough to be in cache when the first layer reads it (a
        # shuffled copy of the whole data set would be written to memory and read back).
        rows = min(batch_size, n)
        xbuf = np.empty((rows, *X.shape[1:]), X.dtype)
        ybuf = np.empty((rows, *y.shape[1:]), y.dtype)
        labels_checked = self.task == "classification"
        schedule = self.schedule
        batch_schedule = schedule if schedule is not None and schedule.interval == "batch" else None
        for epoch in range(self.epoch, target):
            for cb in self.callbacks:
                cb.on_epoch_begin(self, epoch)
            self.model.train()
            order = self.shuffle_rng.permutation(n) if shuffle else None
            lr_used = self.lr
            total = 0.0
            reg_total = 0.0
            norms = dict.fromkeys(param_names, 0.0)
            for m in streaming:
                m.reset()
            n_batches = n_seen = 0
            # Labels were range-checked up front: skip the loss's per-batch value checks.
            # Overflow is reported by the NonFiniteError guard, not by NumPy warnings.
            with losslab.value_checks(not labels_checked), np.errstate(
                over="ignore", invalid="ignore"
            ):
                for b, start in enumerate(range(0, n, batch_size)):
                    if order is None:
                        xb, yb = X[start : start + batch_size], y[start : start + batch_size]
                    else:
                        idx = order[start : start + batch_size]
                        # mode="clip" (the indices are a permutation, always valid) lets take
                        # write straight into the buffer; "raise" would go through a temporary.
                        xb = np.take(X, idx, axis=0, out=xbuf[: len(idx)], mode="clip")
                        yb = np.take(y, idx, axis=0, out=ybuf[: len(idx)], mode="clip")
                    lr_batch = self.optimizer.lr
                    value, penalty, out = self._step(xb, yb, epoch, b, norms)
                    total += value * len(xb)
                    reg_total += penalty * len(xb)
                    for m in streaming:
                        m.update(yb, self._metric_input(out))
                    n_batches += 1
                    if self.callbacks:
                        batch_logs = {"loss": value, "size": float(len(xb)), "lr": lr_batch}
                        for cb in self.callbacks:
                            cb.on_batch_end(self, epoch, b, batch_logs)
                    if batch_schedule is not None:
                        self.optimizer.lr = float(batch_schedule.step())
                    n_seen += len(xb)
                    if self.stop_training:  # a callback stopped training in mid-epoch
                        break
            logs: dict[str, float] = {"loss": total / n_seen}
            if self.regularizer is not None:
                logs["reg_loss"] = reg_total / n_seen
            for m in streaming:
                logs[m.name] = m.result()
            if validation is not None:
                for k, v in self._evaluate_arrays(*validation, metric_names).items():
                    logs["val_" + k] = v
            logs["lr"] = lr_used
            for k in param_names:
                logs["grad_norm/" + k] = norms[k] / n_batches
            self.epoch = epoch + 1
            if schedule is not None and batch_schedule is None:
                metric = logs.get("val_loss", logs["loss"])
                self.optimizer.lr = float(schedule.step(metric))
            self.history.append(epoch, logs)
            if verbose:
                shown = {k: v for k, v in logs.items() if not k.startswith("grad_norm/")}
                print(f"epoch {epoch + 1}/{target} " + " ".join(
                    f"{k}={v:.6g}" for k, v in shown.items()))
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, logs)
            last = self.stop_training or epoch + 1 == target
            if checkpoint_path is not None and (last or (epoch + 1) % checkpoint_every == 0):
                save_checkpoint(self, checkpoint_path)
            if self.stop_training:
                break
        # Like Keras, on_train_end runs when training completes or stops early, not on an error.
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.history

    # -- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything an exact continuation needs, composed of the parts' own state (copies):

        ``epoch``, ``task``, ``targets_1d``, ``dtype``, ``model`` (``Layer.state_dict``:
        parameters and dropout streams), ``optimizer``, ``schedule`` (None without one), ``rng``
        (the initialisation and shuffling generators), ``history`` and ``callbacks`` (the
        stateful callbacks of the current or last ``fit``, by ``state_key``). Values are arrays,
        str/int/float/bool/None, lists and dicts: ``losslab.train.checkpoint`` writes them
        without pickle.
        """
        return {
            "epoch": self.epoch,
            "task": self.task,
            "targets_1d": self._y_1d,
            "dtype": str(self.dtype),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": None if self.schedule is None else self.schedule.state_dict(),
            "rng": {
                "init": self.init_rng.bit_generator.state,
                "shuffle": self.shuffle_rng.bit_generator.state,
            },
            "history": self.history.state_dict(),
            "callbacks": callback_states(self.callbacks),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()`` into this trainer: same architecture, dtype, optimizer and
        schedule types (checked before anything changes). Callbacks' states go to the callbacks
        in ``self.callbacks`` with the same ``state_key``."""
        if state["dtype"] != str(self.dtype):
            raise ValueError(
                f"state is for dtype {state['dtype']}; this trainer's is {self.dtype}."
            )
        own = self.model.parameters()
        saved = state["model"]["params"]
        if set(own) != set(saved):
            raise ValueError(
                f"state has parameters {sorted(saved)}, the model has {sorted(own)}: not the "
                "same architecture."
            )
        for k, a in own.items():
            if np.shape(saved[k]) != a.shape:
                raise ValueError(
                    f"state's parameter {k!r} has shape {np.shape(saved[k])}; the model's is "
                    f"{a.shape}."
                )
        kind = state["optimizer"].get("optimizer")
        if kind != type(self.optimizer).__name__:
            raise ValueError(
                f"state is for optimizer {kind!r}, not {type(self.optimizer).__name__!r}."
            )
        if (state["schedule"] is None) != (self.schedule is None):
            has = "has a schedule" if state["schedule"] is not None else "has no schedule"
            mine = "none" if self.schedule is None else repr(self.schedule)
            raise ValueError(f"state {has}; this trainer's schedule is {mine}.")
        if self.schedule is not None and state["schedule"]["schedule"] != type(
            self.schedule
        ).__name__:
            raise ValueError(
                f"state is for schedule {state['schedule']['schedule']!r}, not "
                f"{type(self.schedule).__name__!r}."
            )
        self.model.load_state_dict(state["model"])  # checks dtypes and dropouts, then copies
        if self.schedule is not None:
            self.schedule.load_state_dict(state["schedule"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.init_rng.bit_generator.state = state["rng"]["init"]
        self.shuffle_rng.bit_generator.state = state["rng"]["shuffle"]
        self.epoch = int(state["epoch"])
        self.task = state["task"]
        self._y_1d = bool(state.get("targets_1d", True))
        self.history.load_state_dict(state["history"])
        load_callback_states(self.callbacks, state["callbacks"])

    # -- inference --------------------------------------------------------------------------

    def _metric_input(self, out: np.ndarray) -> np.ndarray:
        """Model outputs in the form the accuracy metric reads (labels for binary outputs; the
        metric takes the argmax of class scores itself)."""
        if self.task == "binary":
            return predicted_labels(out, self.loss.spec)
        return out

    def forward(self, X: Any) -> np.ndarray:
        """The model's raw outputs (logits for classification) in evaluation mode: no dropout."""
        return self._forward_eval(self._check_X(X))

    def _forward_eval(self, X: np.ndarray) -> np.ndarray:
        with eval_mode(self.model):
            return self.model.forward(X)

    def _evaluate_arrays(self, X: np.ndarray, y: np.ndarray, names: list[str]) -> dict[str, float]:
        out = self._forward_eval(X)
        result = {"loss": float(self.loss(out, y))}
        proba = None
        for name in names:
            if name in ("log_loss", "calibration_error"):
                self._require_classification("the log_loss and calibration_error metrics")
                if not has_probabilities(self.loss.spec):
                    result[name] = math.nan  # the outputs are scores: no probabilities to judge
                    continue
                if proba is None:
                    proba = class_probabilities(out, self.loss.spec)
                result[name] = METRICS[name](y, proba)
            elif name == "accuracy":
                result[name] = METRICS[name](y, self._metric_input(out))
            else:
                result[name] = METRICS[name](y, out)
        return result

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """``{"loss": data loss, <metric>: value, ...}`` on ``(X, y)`` in eval mode."""
        X, y = self._prepare(X, y)
        return self._evaluate_arrays(X, y, self._metric_list())

    def predict(self, X: Any) -> np.ndarray:
        """Class labels for classification and binary tasks, else the model's outputs
        (shape (n,) when the model has one output and was fitted on 1-D targets)."""
        X = self._check_X(X)
        out = self._forward_eval(X)
        if self.task == "classification":
            return np.argmax(out, axis=1)
        if self.task == "binary":
            return predicted_labels(out, self.loss.spec)
        if out.ndim == 2 and out.shape[1] == 1 and self._y_1d:
            return out[:, 0]
        return out

    def _require_classification(self, what: str) -> None:
        if self.task not in ("classification", "binary"):
            raise ValueError(
                f"{what} need a classification task; this trainer's task is {self.task!r}."
            )

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), read from the outputs by the loss's input
        kind (``losslab.train.outputs``): softmax of class logits, ``[1 - p, p]`` with ``p`` the
        sigmoid of binary logits, ``exp`` of log-probabilities. A loss on scores (hinge,
        multi_margin, ...) gives no probabilities: ValueError."""
        self._require_classification("predict_proba and probabilities")
        return class_probabilities(self._forward_eval(self._check_X(X)), self.loss.spec)

    # -- construction helpers ---------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"Trainer(loss={self.loss!r}, optimizer={self.optimizer!r}, schedule={self.schedule!r},"
            f" regularizer={self.regularizer!r}, task={self.task!r}, epoch={self.epoch})"
        )
