"""Probabilities and labels from a model's raw outputs, by the loss's declared input kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import losslab
from losslab.train.layers import Layer, Linear, Sequential, eval_mode, mlp
from losslab.train.outputs import (
    class_probabilities,
    has_probabilities,
    predicted_labels,
    probabilities,
)
from losslab.train.trainer import Trainer

RNG = np.random.default_rng(0)
Z = RNG.normal(scale=3.0, size=(7, 4))


@pytest.mark.parametrize("name", losslab.available())
def test_every_catalog_loss_follows_the_table(name):
    spec = losslab.spec(name)
    z = Z if spec.layout != "elementwise" else Z[:, :1]
    if spec.input_kind in ("scores", "real") or (
        spec.input_kind == "logits" and spec.layout not in ("class_axis", "elementwise")
    ):
        assert not has_probabilities(spec)
        with pytest.raises(ValueError, match=f"{name!r} are {spec.input_kind}.*no probabilit"):
            probabilities(z, spec)
        return
    assert has_probabilities(spec)
    p = probabilities(z, spec)
    assert p.shape == z.shape and p.dtype == z.dtype
    t = torch.from_numpy(z)
    if spec.input_kind == "logits" and spec.layout == "class_axis":
        ref = torch.softmax(t, dim=1)
    elif spec.input_kind == "logits":
        ref = torch.sigmoid(t)
    elif spec.input_kind == "log_probabilities":
        ref = torch.exp(t)
    else:
        ref = t
    np.testing.assert_allclose(p, ref.numpy(), rtol=1e-14, atol=1e-300)


def test_class_probabilities_and_labels():
    ce, bce_logits, bce = (losslab.spec(n) for n in ("cross_entropy", "bce_with_logits", "bce"))
    p = class_probabilities(Z.astype("float32"), ce)
    assert p.shape == (7, 4) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(predicted_labels(Z, ce), Z.argmax(axis=1))
    z = np.array([[-2.0], [0.0], [1e-30], [3.0]])
    p2 = class_probabilities(z, bce_logits)
    assert p2.shape == (4, 2)
    np.testing.assert_allclose(p2[:, 1], 1 / (1 + np.exp(-z[:, 0])), rtol=1e-15)
    np.testing.assert_allclose(p2.sum(axis=1), 1)
    # logits > 0 exactly: sigmoid(1e-30) rounds to 0.5, the label does not
    np.testing.assert_array_equal(predicted_labels(z, bce_logits), [0, 0, 1, 1])
    np.testing.assert_array_equal(predicted_labels(np.array([0.2, 0.5, 0.7]), bce), [0, 0, 1])
    with pytest.raises(ValueError, match="'mse' are real"):
        predicted_labels(z, losslab.spec("mse"))


def test_trainer_reads_probabilities_through_the_spec():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4)).astype("float32")
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    t = Trainer(mlp([4, 8, 3], seed=0), "multi_margin", "adam", lr=0.01,
                metrics=["accuracy", "log_loss", "calibration_error"])
    h = t.fit(X, y, epochs=2, validation_data=(X, y))
    assert t.task == "classification"
    assert np.isnan(h["val_log_loss"]).all() and np.isnan(h["val_calibration_error"]).all()
    assert np.isfinite(h["val_accuracy"]).all()
    with pytest.raises(ValueError, match="'multi_margin' are scores"):
        t.predict_proba(X)
    t2 = Trainer(mlp([4, 8, 3], seed=0), "cross_entropy", "adam", lr=0.01)
    t2.fit(X, y, epochs=1)
    np.testing.assert_allclose(t2.predict_proba(X),
                               probabilities(t2.forward(X), losslab.spec("cross_entropy")))


def test_eval_mode_restores_the_mode_even_after_an_error():
    model = mlp([3, 4, 2], dropout=0.5, seed=0)
    assert model.training
    with eval_mode(model) as m:
        assert m is model and not model.training and not model[2].training
    assert model.training and model[2].training
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError
    assert model.training
    model.eval()
    with eval_mode(model):
        pass
    assert not model.training


def test_a_type_error_inside_a_layer_is_not_swallowed():
    class Broken(Layer):
        calls = 0

        def forward(self, x):
            return x

        def backward(self, grad_out):
            Broken.calls += 1
            raise TypeError("a bug inside the layer")

    model = Sequential(Linear(3, 2, rng=np.random.default_rng(0)), Broken())
    t = Trainer(model, "mse", "sgd", lr=0.1, metrics=[])
    with pytest.raises(TypeError, match="a bug inside the layer"):
        t.fit(np.zeros((4, 3)), np.zeros((4, 2)), epochs=1)
    assert Broken.calls == 1  # backward was not called a second time

    class Custom(Layer):  # a layer of one's own as the whole model: only backward
        def __init__(self):
            super().__init__()
            self.w = np.ones((1,), dtype=np.float32)
            self.grads = {"w": np.zeros_like(self.w)}

        def forward(self, x):
            self.x = x
            return x * self.w

        def backward(self, grad_out):
            self.grads["w"][...] = np.sum(grad_out * self.x)
            return grad_out * self.w

        def parameters(self):
            return {"w": self.w}

    t = Trainer(Custom(), "mse", "sgd", lr=0.1, metrics=[])
    t.fit(np.ones((4, 1), dtype="float32"), np.full(4, 2.0, dtype="float32"), epochs=60,
          batch_size=None)
    assert t.model.w[0] == pytest.approx(2.0, rel=1e-3)
