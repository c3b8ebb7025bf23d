"""Trainer, callbacks and metrics: history contents, the NaN guard, bad input, reproducibility."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import losslab
from losslab.train import metrics as M
from losslab.train.callbacks import Callback, EarlyStopping, LambdaCallback, ModelCheckpoint
from losslab.train.history import History
from losslab.train.layers import Linear, Sequential, linear_model, mlp
from losslab.train.optimizers import SGD, Adam
from losslab.train.regularization import L2
from losslab.train.schedules import ReduceOnPlateau, StepLR
from losslab.train.trainer import NonFiniteError, Trainer


def _regression(n=64, d=3, seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    w = np.arange(1, d + 1, dtype=dtype)
    y = (X @ w + 0.5 + 0.1 * rng.normal(size=n)).astype(dtype)
    return X, y


def _classification(n=90, d=4, c=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    centers = rng.normal(scale=3.0, size=(c, d))
    X = (centers[y] + rng.normal(size=(n, d))).astype("float32")
    return X, y


# -- history -----------------------------------------------------------------------------------


def test_history_regression_contents():
    X, y = _regression()
    t = Trainer(linear_model(3, seed=0), "mse", "sgd", lr=0.05, regularizer=L2(1e-3),
                schedule=StepLR(0.05, step_size=2, gamma=0.5))
    h = t.fit(X, y, epochs=5, batch_size=16, validation_split=0.25)
    assert isinstance(h, History) and h.epochs == [0, 1, 2, 3, 4] and len(h) == 5
    for key in ("loss", "val_loss", "r2", "mae", "val_r2", "val_mae", "lr", "reg_loss",
                "grad_norm/0.weight", "grad_norm/0.bias"):
        assert key in h and len(h[key]) == 5, key
        assert all(math.isfinite(v) for v in h[key]), key
    assert h["lr"] == pytest.approx([0.05, 0.05, 0.025, 0.025, 0.0125])
    assert h["loss"][-1] < h["loss"][0]
    assert h["val_r2"][-1] > h["val_r2"][0]
    # The reported loss includes the penalty: loss - reg_loss is the data loss.
    assert all(r > 0 for r in h["reg_loss"])
    assert all(lo > r for lo, r in zip(h["loss"], h["reg_loss"]))
    assert t.epoch == 5


def test_history_values_are_what_they_claim():
    """Full batch, no shuffling: loss = MSE before the step, grad_norm = the norm of that
    step's gradient, val metrics = the metric functions on the final model."""
    X, y = _regression(n=40, dtype="float64")
    Xv, yv = _regression(n=20, seed=1, dtype="float64")
    model = linear_model(3, dtype="float64", seed=0)
    w0, b0 = model[0].weight.copy(), model[0].bias.copy()
    t = Trainer(model, "mse", "sgd", lr=0.1)
    h = t.fit(X, y, epochs=1, batch_size=None, shuffle=False, validation_data=(Xv, yv))
    err = X @ w0[0] + b0[0] - y
    assert h["loss"][0] == pytest.approx(np.mean(err**2), rel=1e-12)
    gw = 2 * err @ X / len(X)
    assert h["grad_norm/0.weight"][0] == pytest.approx(np.linalg.norm(gw), rel=1e-12)
    assert h["grad_norm/0.bias"][0] == pytest.approx(abs(2 * err.mean()), rel=1e-12)
    pred = t.predict(Xv)
    assert pred.shape == (20,)
    assert h["val_loss"][0] == pytest.approx(np.mean((pred - yv) ** 2), rel=1e-12)
    assert h["val_r2"][0] == pytest.approx(M.r2(yv, pred), rel=1e-12)
    assert h["val_mae"][0] == pytest.approx(M.mae(yv, pred), rel=1e-12)
    # Streaming training metrics equal the metric over the epoch (full batch: one batch).
    pred0 = X @ w0[0] + b0[0]
    assert h["r2"][0] == pytest.approx(M.r2(y, pred0), rel=1e-10)
    ev = t.evaluate(Xv, yv)
    assert ev["loss"] == pytest.approx(h["val_loss"][0]) and set(ev) == {"loss", "r2", "mae"}


def test_history_classification_and_csv(tmp_path):
    X, y = _classification()
    t = Trainer(mlp([4, 16, 3], seed=0), "cross_entropy", "adam", lr=0.01,
                metrics=["accuracy", "log_loss", "calibration_error"])
    h = t.fit(X, y, epochs=3, batch_size=32, validation_data=(X, y))
    assert t.task == "classification"
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "val_log_loss",
                "val_calibration_error", "grad_norm/2.weight"):
        assert key in h, key
    assert "log_loss" not in h  # not streamable: validation only
    # val_log_loss of softmax probabilities is the cross-entropy
    assert h["val_log_loss"][-1] == pytest.approx(h["val_loss"][-1], rel=1e-4)
    h.to_csv(tmp_path / "h.csv")
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,loss") and len(lines) == 4
    assert History.from_dict(h.to_dict()).history == h.history


def test_lambda_callback_hooks_order():
    X, y = _regression(n=20)
    calls = []
    cb = LambdaCallback(
        on_train_begin=lambda t: calls.append("begin"),
        on_epoch_begin=lambda t, e: calls.append(f"e{e}"),
        on_batch_end=lambda t, e, b, logs: calls.append(f"b{e}.{b}"),
        on_epoch_end=lambda t, e, logs: calls.append(f"end{e}"),
        on_train_end=lambda t: calls.append("done"),
    )
    Trainer(linear_model(3, seed=0), "mse", "sgd", lr=0.01).fit(
        X, y, epochs=2, batch_size=10, callbacks=[cb])
    assert calls == ["begin", "e0", "b0.0", "b0.1", "end0", "e1", "b1.0", "b1.1", "end1", "done"]


def test_stop_training_from_callback():
    X, y = _regression(n=20)

    class StopAt(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 2:
                trainer.stop_training = True

    t = Trainer(linear_model(3, seed=0), "mse", "sgd", lr=0.01)
    assert len(t.fit(X, y, epochs=10, callbacks=[StopAt()])) == 3


def test_stop_training_in_mid_epoch_ends_the_epoch_after_that_batch():
    X, y = _regression(n=40, dtype="float64")
    losses = []

    class StopAtBatch(Callback):
        def on_batch_end(self, trainer, epoch, batch, logs):
            losses.append(logs["loss"])
            if epoch == 1 and batch == 1:
                trainer.stop_training = True

    t = Trainer(linear_model(3, dtype="float64", seed=0), "mse", "sgd", lr=0.01)
    h = t.fit(X, y, epochs=5, batch_size=10, shuffle=False, callbacks=[StopAtBatch()])
    assert len(h) == 2 and t.epoch == 2 and len(losses) == 4 + 2
    # the stopped epoch's loss averages the batches it ran
    assert h["loss"][1] == pytest.approx(np.mean(losses[4:]), rel=1e-12)


# -- early stopping ----------------------------------------------------------------------------


def test_early_stopping_restores_best_weights():
    X, y = _regression(n=40, dtype="float64")
    Xv, yv = _regression(n=40, seed=1, dtype="float64")
    snapshots = {}
    record = LambdaCallback(
        on_epoch_end=lambda t, e, logs: snapshots.__setitem__(
            e, {k: v.copy() for k, v in t.model.parameters().items()}))
    # lr far too large: validation loss diverges after the first epochs
    es = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    t = Trainer(linear_model(3, dtype="float64", seed=0), "mse", "sgd", lr=1.05)
    h = t.fit(X, y, epochs=30, batch_size=None, shuffle=False, validation_data=(Xv, yv),
              callbacks=[record, es])
    best = int(np.argmin(h["val_loss"]))
    assert es.best_epoch == best and es.stopped_epoch == best + 2 and len(h) == best + 3
    for k, v in t.model.parameters().items():
        np.testing.assert_array_equal(v, snapshots[best][k])
    assert t.evaluate(Xv, yv)["loss"] == pytest.approx(min(h["val_loss"]), rel=1e-12)


def test_early_stopping_min_delta_mode_and_missing_monitor():
    X, y = _regression(n=20)
    es = EarlyStopping(monitor="r2", mode="max", patience=0, min_delta=10.0)
    t = Trainer(linear_model(3, seed=0), "mse", "sgd", lr=0.01)
    assert len(t.fit(X, y, epochs=5, callbacks=[es])) == 2  # nothing beats best + 10
    with pytest.raises(ValueError, match="val_loss"):
        Trainer(linear_model(3, seed=0), "mse").fit(X, y, epochs=2, callbacks=[EarlyStopping()])
    assert EarlyStopping(monitor="val_accuracy", mode="auto").mode == "max"
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")


def test_model_checkpoint_best_only(tmp_path):
    from losslab.train.checkpoint import load_model

    X, y = _regression(n=20)
    path = str(tmp_path / "best.npz")
    t = Trainer(linear_model(3, seed=0), "mse", "sgd", lr=0.05)
    t.fit(X, y, epochs=4, validation_data=(X, y),
          callbacks=[ModelCheckpoint(path, save_best_only=True)])
    m = load_model(path)
    for k, v in m.parameters().items():
        np.testing.assert_array_equal(v, t.model.parameters()[k])


# -- schedules, clipping, regularization -------------------------------------------------------


def test_plateau_schedule_gets_val_loss():
    X, y = _regression(n=20)
    sched = ReduceOnPlateau(0.1, patience=0, factor=0.5)
    seen = []
    orig = sched.step

    def spy(metric=None):
        seen.append(metric)
        return orig(metric)

    sched.step = spy
    t = Trainer(linear_model(3, seed=0), "mse", "sgd", lr=0.1, schedule=sched)
    h = t.fit(X, y, epochs=3, validation_data=(X[:5], y[:5]))
    assert seen == h["val_loss"]
    t2 = Trainer(linear_model(3, seed=0), "mse", "sgd", lr=0.1, schedule="plateau")
    seen2 = []
    t2.schedule.step = lambda metric=None: seen2.append(metric) or 0.1
    h2 = t2.fit(X, y, epochs=2)
    assert seen2 == h2["loss"]


def test_schedule_by_name_and_lr_written_to_optimizer():
    X, y = _regression(n=20)
    t = Trainer(linear_model(3, seed=0), "mse", "sgd", lr=0.1, schedule="constant")
    t.fit(X, y, epochs=2)
    assert t.optimizer.lr == 0.1
    t = Trainer(linear_model(3, seed=0), "mse", SGD(lr=0.1),
                schedule=StepLR(0.1, step_size=1, gamma=0.1))
    t.fit(X, y, epochs=2)
    assert t.optimizer.lr == pytest.approx(0.001)


def test_clip_norm_bounds_the_update():
    X, y = _regression(n=32, dtype="float64")
    y = y * 1000  # huge gradients
    model = linear_model(3, dtype="float64", seed=0)
    before = {k: v.copy() for k, v in model.parameters().items()}
    t = Trainer(model, "mse", "sgd", lr=1.0, clip_norm=0.5)
    t.train_step(X, y)
    step = np.sqrt(sum(np.sum((model.parameters()[k] - before[k]) ** 2) for k in before))
    assert step == pytest.approx(0.5, rel=1e-6)  # torch's max_norm / (norm + 1e-6)
    model2 = linear_model(3, dtype="float64", seed=0)
    Trainer(model2, "mse", "sgd", lr=1.0, clip_value=0.01).train_step(X, y)
    delta = model2[0].weight - before["0.weight"]
    np.testing.assert_allclose(np.abs(delta), 0.01)


def test_regularizer_in_loss_and_gradient():
    X, y = _regression(n=16, dtype="float64")
    model = linear_model(3, dtype="float64", seed=0)
    w = model[0].weight.copy()
    t = Trainer(model, "mse", "sgd", lr=0.1, regularizer=L2(0.5))
    plain = float(losslab.get("mse")(model.forward(X), y[:, None]))
    loss = t.train_step(X, y)
    assert loss == pytest.approx(plain + 0.5 * np.sum(w**2), rel=1e-12)
    model2 = linear_model(3, dtype="float64", seed=0)
    Trainer(model2, "mse", "sgd", lr=0.1).train_step(X, y)
    # the penalty's gradient 2*l2*w moved the weight further: w - lr * 2 * 0.5 * w
    np.testing.assert_allclose(model[0].weight, model2[0].weight - 0.1 * w, rtol=1e-12)
    np.testing.assert_allclose(model[0].bias, model2[0].bias, rtol=1e-12)  # biases free


# -- NaN guard ---------------------------------------------------------------------------------


def test_nonfinite_loss_names_epoch_and_batch():
    X, y = _regression(n=64, dtype="float64")
    y = y * 1e3
    t = Trainer(linear_model(3, dtype="float64", seed=0), "mse", "sgd", lr=10.0)
    with pytest.raises(NonFiniteError, match=r"epoch \d+, batch \d+") as info:
        t.fit(X, y, epochs=50, batch_size=16)
    assert isinstance(info.value, ValueError)
    assert info.value.what in ("loss",) or info.value.what.startswith("gradient")
    assert info.value.epoch >= 0 and 0 <= info.value.batch < 4


def test_overflowing_loss_is_reported_as_loss_at_its_batch():
    X = np.ones((8, 3), dtype="float32")
    X[5] = 1e20  # finite, but its squared error overflows float32
    t = Trainer(linear_model(3, seed=0), "mse", "sgd", lr=0.01)
    with pytest.raises(NonFiniteError, match=r"non-finite loss \(inf\) at epoch 0, batch 2") as e:
        t.fit(X, np.zeros(8), epochs=1, batch_size=2, shuffle=False)
    assert (e.value.what, e.value.epoch, e.value.batch) == ("loss", 0, 2)


def test_nonfinite_gradient_is_caught_before_the_update():
    class Boom(Linear):
        def backward_params(self, grad_out):  # what the trainer calls on the first layer
            super().backward_params(grad_out)
            if self.calls == 2:
                self.grads["weight"][0, 0] = np.nan
            self.calls += 1

    layer = Boom(3, 1, rng=np.random.default_rng(0))
    layer.calls = 0
    X, y = _regression(n=32)
    t = Trainer(Sequential(layer), "mse", "sgd", lr=0.01)
    with pytest.raises(NonFiniteError, match=r"gradient of '0.weight' at epoch 0, batch 2"):
        t.fit(X, y, epochs=1, batch_size=8, shuffle=False)
    assert np.all(np.isfinite(layer.weight))


# -- bad input ---------------------------------------------------------------------------------


@pytest.fixture
def reg_trainer():
    return Trainer(linear_model(3, seed=0), "mse", "sgd", lr=0.01)


@pytest.fixture
def clf_trainer():
    return Trainer(mlp([4, 8, 3], seed=0), "cross_entropy", "sgd", lr=0.01)


def test_bad_X_y_lengths(reg_trainer):
    X, y = _regression(n=20)
    with pytest.raises(ValueError, match=r"X and y .*20 and 19"):
        reg_trainer.fit(X, y[:19])
    with pytest.raises(ValueError, match=r"validation_data\[0\] and validation_data\[1\]"):
        reg_trainer.fit(X, y, validation_data=(X, y[:5]))


def test_bad_feature_count(reg_trainer):
    X, y = _regression(n=20)
    reg_trainer.fit(X, y, epochs=1)
    with pytest.raises(ValueError, match=r"X has 4 features, but the model expects 3"):
        reg_trainer.predict(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"X has 2 features"):
        reg_trainer.fit(X[:, :2], y)
    with pytest.raises(ValueError, match=r"X must be a 2-D array"):
        reg_trainer.predict(np.zeros((2, 3, 1)))


@pytest.mark.parametrize(
    "labels, match",
    [
        ([0, 1, 2.5], r"y must hold integer class labels"),
        ([0, 1, -1], r"y labels must lie in \[0, 2\]"),
        ([0, 1, 3], r"y labels must lie in \[0, 2\]"),
        (["a", "b", "c"], r"y must hold numbers"),
    ],
)
def test_bad_labels(clf_trainer, labels, match):
    X = np.zeros((3, 4), dtype="float32")
    with pytest.raises(ValueError, match=match):
        clf_trainer.fit(X, np.array(labels), epochs=1)


def test_integral_float_labels_accepted(clf_trainer):
    X, y = _classification(n=30)
    clf_trainer.fit(X, y.astype(float), epochs=1)
    assert clf_trainer.task == "classification"


@pytest.mark.parametrize("where", ["X", "y", "validation_data[0]"])
def test_nan_in_data(reg_trainer, where):
    X, y = _regression(n=20)
    Xv, yv = X.copy(), y.copy()
    target = {"X": X, "y": y, "validation_data[0]": Xv}[where]
    target.flat[5] = np.nan
    with pytest.raises(ValueError, match=re.escape(where) + " contains NaN"):
        reg_trainer.fit(X, y, epochs=1, validation_data=(Xv, yv))


def test_inf_in_predict(reg_trainer):
    with pytest.raises(ValueError, match=r"X contains NaN or infinite values"):
        reg_trainer.predict(np.array([[0.0, np.inf, 1.0]]))


@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf")])
def test_bad_lr(lr):
    with pytest.raises(ValueError, match=r"\blr\b"):
        Trainer(linear_model(3, seed=0), "mse", "sgd", lr=lr)
    with pytest.raises(ValueError, match=r"\blr\b"):
        Trainer(linear_model(3, seed=0), "mse", Adam(lr=0.1), lr=lr)


def test_unknown_names():
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(linear_model(3, seed=0), "mse", "adamm")
    with pytest.raises(ValueError, match="schedule"):
        Trainer(linear_model(3, seed=0), "mse", "sgd", schedule="cosin")
    with pytest.raises(ValueError, match="loss"):
        Trainer(linear_model(3, seed=0), "msee")
    with pytest.raises(ValueError, match="metric"):
        Trainer(linear_model(3, seed=0), "mse", metrics=["acuracy"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"validation_split": 1.0}, "validation_split"),
        ({"validation_split": 0.01}, "validation_split"),
        ({"validation_data": (1, 2, 3)}, "validation_data"),
    ],
)
def test_bad_fit_arguments(reg_trainer, kwargs, match):
    X, y = _regression(n=20)
    with pytest.raises(ValueError, match=match):
        reg_trainer.fit(X, y, **kwargs)


def test_bad_trainer_arguments():
    m = linear_model(3, seed=0)
    with pytest.raises(ValueError, match="clip_norm"):
        Trainer(m, "mse", clip_norm=0)
    with pytest.raises(ValueError, match="task"):
        Trainer(m, "mse", task="ranking")
    with pytest.raises(ValueError, match="dtype"):
        Trainer(m, "mse", dtype="float64")  # the model is float32
    with pytest.raises(TypeError, match="regularizer"):
        Trainer(m, "mse", regularizer=0.1)


def test_regression_target_shape_mismatch(reg_trainer):
    X, _ = _regression(n=20)
    with pytest.raises(ValueError, match=r"y must have shape \(20,\) or \(20, 1\)"):
        reg_trainer.fit(X, np.zeros((20, 2)))


def test_predict_proba_needs_classification(reg_trainer):
    X, y = _regression(n=20)
    reg_trainer.fit(X, y, epochs=1)
    with pytest.raises(ValueError, match="classification"):
        reg_trainer.predict_proba(X)


def test_forward_gives_the_logits_behind_predict_proba(clf_trainer):
    X, y = _classification(n=60)
    clf_trainer.fit(X, y, epochs=2)
    logits = clf_trainer.forward(X)
    assert logits.shape == (60, int(y.max()) + 1)
    np.testing.assert_array_equal(logits, clf_trainer.forward(X))  # eval mode: deterministic
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(
        clf_trainer.predict_proba(X), shifted / shifted.sum(axis=1, keepdims=True), rtol=1e-5
    )


# -- reproducibility and dtype -----------------------------------------------------------------


def _dropout_run(seed):
    X, y = _classification(n=60)
    t = Trainer(mlp([4, 32, 3], dropout=0.3, seed=seed), "cross_entropy", "adam", lr=0.01,
                seed=seed)
    t.fit(X, y, epochs=3, batch_size=16)
    return t.model.parameters()


def test_same_seed_same_numbers_different_seed_different():
    a, b, c = _dropout_run(3), _dropout_run(3), _dropout_run(4)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_trainer_seed_controls_shuffle_and_dropout():
    X, y = _classification(n=60)
    out = []
    for seed in (0, 0, 1):
        t = Trainer(mlp([4, 32, 3], dropout=0.3, seed=0), "cross_entropy", "sgd", lr=0.1,
                    seed=seed)
        t.fit(X, y, epochs=2, batch_size=16)
        out.append(t.model[0].weight.copy())
    np.testing.assert_array_equal(out[0], out[1])
    assert not np.array_equal(out[0], out[2])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_kept(dtype):
    X, y = _classification(n=30)
    t = Trainer(mlp([4, 8, 3], dtype=dtype, seed=0), "cross_entropy", "adam", lr=0.01)
    t.fit(X.astype("float64"), y, epochs=2, batch_size=8)
    assert t.dtype == np.dtype(dtype)
    assert all(p.dtype == np.dtype(dtype) for p in t.model.parameters().values())
    assert t.predict_proba(X).dtype == np.dtype(dtype)
    assert t.predict(X).dtype.kind == "i"


def test_binary_task_with_bce_with_logits():
    if "bce_with_logits" not in losslab.available():
        pytest.skip("bce_with_logits not in the catalog yet")
    X, y = _classification(n=80, c=2)
    t = Trainer(mlp([4, 8, 1], seed=0), "bce_with_logits", "adam", lr=0.05)
    h = t.fit(X, y.astype("float32"), epochs=20, batch_size=16)
    assert t.task == "binary" and h["accuracy"][-1] > 0.9
    p = t.predict_proba(X)
    assert p.shape == (80, 2) and np.allclose(p.sum(axis=1), 1)
    np.testing.assert_array_equal(t.predict(X), (p[:, 1] > 0.5).astype(int))


def test_fit_twice_continues_and_train_step():
    X, y = _regression(n=20)
    t = Trainer(linear_model(3, seed=0), "mse", "sgd", lr=0.05)
    t.fit(X, y, epochs=2)
    t.fit(X, y, epochs=3)
    assert t.epoch == 5 and t.history.epochs == [0, 1, 2, 3, 4]
    assert isinstance(t.train_step(X[:4], y[:4]), float)


# -- metrics against scikit-learn --------------------------------------------------------------


def test_metrics_match_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    yt = rng.normal(size=50)
    yp = yt + rng.normal(scale=0.3, size=50)
    assert M.r2(yt, yp) == pytest.approx(sk.r2_score(yt, yp), rel=1e-12)
    assert M.mae(yt, yp) == pytest.approx(sk.mean_absolute_error(yt, yp), rel=1e-12)
    assert M.rmse(yt, yp) == pytest.approx(np.sqrt(sk.mean_squared_error(yt, yp)), rel=1e-12)
    Y = rng.normal(size=(50, 2))
    P = Y + rng.normal(size=(50, 2))
    assert M.r2(Y, P) == pytest.approx(sk.r2_score(Y, P), rel=1e-12)
    labels = rng.integers(0, 4, 50)
    logits = rng.normal(size=(50, 4))
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert M.accuracy(labels, logits) == sk.accuracy_score(labels, logits.argmax(1))
    assert M.log_loss(labels, proba) == pytest.approx(
        sk.log_loss(labels, proba, labels=range(4)), rel=1e-10)
    assert M.r2([1.0, 1.0], [1.0, 1.0]) == 1.0 and M.r2([1.0, 1.0], [1.0, 2.0]) == 0.0


def test_calibration_error_by_hand():
    # Max-probabilities 0.9 (bin (13/15, 14/15]) and 0.6 (bin (8/15, 9/15]), two samples each.
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    # 0.9-bin: accuracy 0.5 vs confidence 0.9; 0.6-bin: accuracy 1.0 vs 0.6; each weighs 2/4.
    assert M.calibration_error(y, proba) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert M.calibration_error(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]])) == 0.0
    # binary probabilities of class 1 are accepted
    assert M.calibration_error(y, proba[:, 1]) == pytest.approx(0.4)
    # a bin's gaps are averaged before the absolute value: over- and under-confidence cancel
    p2 = np.array([[0.7, 0.3], [0.7, 0.3], [0.7, 0.3]])
    assert M.calibration_error(np.array([0, 0, 1]), p2) == pytest.approx(abs(2 / 3 - 0.7))


def test_streaming_metrics_equal_batch_metrics():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(37, 2))
    out = y + rng.normal(size=(37, 2))
    for name in ("r2", "mae", "rmse"):
        s = M.StreamingMetric(name)
        for i in range(0, 37, 10):
            s.update(y[i:i + 10], out[i:i + 10])
        assert s.result() == pytest.approx(M.METRICS[name](y, out), rel=1e-10), name
    labels = rng.integers(0, 3, 37)
    logits = rng.normal(size=(37, 3))
    s = M.StreamingMetric("accuracy")
    for i in range(0, 37, 10):
        s.update(labels[i:i + 10], logits[i:i + 10])
    assert s.result() == M.accuracy(labels, logits)


def test_metric_bad_input():
    with pytest.raises(ValueError, match="y_pred"):
        M.mae([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="y_true labels"):
        M.log_loss([0, 5], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="proba"):
        M.calibration_error([0, 1], [[1.5, -0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="unknown metric"):
        M.get_metric("f2")
