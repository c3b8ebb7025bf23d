"""What a model's raw outputs mean, read from the loss it was trained with.

A loss declares what its first input holds (``LossSpec.input_kind``) and along which axis one
item's values lie (``LossSpec.layout``); that, and nothing else, says how outputs become
probabilities:

============================  ==========================  ================================
input_kind                    layout                      probabilities
============================  ==========================  ================================
``logits``                    ``class_axis``              softmax over axis 1
``logits``                    ``elementwise``             sigmoid, elementwise
``log_probabilities``         any                         ``exp``
``probabilities``             any                         the outputs as they are
``scores``, ``real``          any                         none: a ValueError says so
============================  ==========================  ================================

Both the trainer (``predict_proba``, the ``log_loss`` and ``calibration_error`` metrics) and
the command line read probabilities through ``probabilities``/``class_probabilities``.
"""

from __future__ import annotations

import numpy as np

from losslab.losses._primitives import sigmoid
from losslab.losses._registry import LossSpec

__all__ = ["has_probabilities", "probabilities", "class_probabilities", "predicted_labels"]


def _softmax(z: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def has_probabilities(spec: LossSpec) -> bool:
    """Whether outputs trained with this loss stand for probabilities (see the table above)."""
    if spec.input_kind == "logits":
        return spec.layout in ("class_axis", "elementwise")
    return spec.input_kind in ("probabilities", "log_probabilities")


def probabilities(outputs: np.ndarray, spec: LossSpec) -> np.ndarray:
    """The probabilities ``outputs`` stand for under ``spec`` (same shape and dtype)."""
    outputs = np.asarray(outputs)
    if not has_probabilities(spec):
        raise ValueError(
            f"the outputs of a model trained with {spec.name!r} are {spec.input_kind} "
            f"(layout {spec.layout!r}), not logits or probabilities: they have no probabilities."
            " Train with a loss on logits (cross_entropy, bce_with_logits) for those."
        )
    if spec.input_kind == "logits":
        if spec.layout == "class_axis":
            return _softmax(outputs, axis=1)
        return sigmoid(np, outputs)
    if spec.input_kind == "log_probabilities":
        return np.exp(outputs)
    return outputs


def class_probabilities(outputs: np.ndarray, spec: LossSpec) -> np.ndarray:
    """Per-class probabilities, shape ``(n, n_classes)``: ``probabilities`` for a class axis; for
    one elementwise output per sample (binary), the columns ``[1 - p, p]``."""
    p = probabilities(outputs, spec)
    if spec.layout != "class_axis" and (p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1)):
        p1 = p.reshape(len(p))
        return np.stack([1 - p1, p1], axis=1)
    return p


def predicted_labels(outputs: np.ndarray, spec: LossSpec) -> np.ndarray:
    """Class labels (int64): argmax over a class axis; for one elementwise output per sample,
    1 where the probability exceeds 1/2 (logits > 0 exactly, without rounding a sigmoid)."""
    outputs = np.asarray(outputs)
    if spec.layout == "class_axis":
        return np.argmax(outputs, axis=1).astype(np.int64, copy=False)
    z = outputs.reshape(len(outputs))
    if spec.input_kind == "logits" or spec.input_kind == "scores":
        return (z > 0).astype(np.int64)
    if spec.input_kind == "log_probabilities":
        return (z > np.log(0.5)).astype(np.int64)
    if spec.input_kind == "probabilities":
        return (z > 0.5).astype(np.int64)
    raise ValueError(
        f"the outputs of a model trained with {spec.name!r} are {spec.input_kind}: they are not "
        "class scores, so they give no labels."
    )
