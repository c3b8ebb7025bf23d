"""The seed article's experiment, run through the engine.

The article (section 4) fits ``yhat = theta0 + theta1 x`` to ``y = 2 + 3x + N(0, 0.5)`` by 1000
full-batch gradient-descent steps on the MSE with learning rate 0.01 and prints
``theta0 = 2.09496, theta1 = 2.97989, MSE = 0.24812``. ``article_experiment`` reproduces this with
a ``linear_model``, the catalog's ``mse`` and ``SGD`` (float64), not with a copy of the script:

- data and initial theta come from one ``RandomState(0)`` stream in the article's order (x, the
  noise, theta0, theta1), identical to its ``np.random.seed(0)`` global stream, which is left
  untouched here;
- ``theta0`` is the Linear layer's bias, ``theta1`` its 1x1 weight;
- the article's printed MSE is the one computed inside the loop, i.e. at the parameters *before*
  the last update (0.248116034...). That is ``history["loss"][-1]`` of a full-batch run, reported
  as ``mse``. The MSE at the final parameters (0.24811595...) is ``mse_final``. Both round to
  0.24812.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import losslab
from losslab.train.data import article_stream
from losslab.train.history import History
from losslab.train.layers import Linear, Sequential
from losslab.train.optimizers import SGD
from losslab.train.trainer import Trainer

__all__ = ["ArticleResult", "article_experiment", "ARTICLE_PRINTED"]

# What the article's script prints (theta0, theta1, MSE), to the digits it shows.
ARTICLE_PRINTED = {"theta0": 2.09496, "theta1": 2.97989, "mse": 0.24812}


@dataclass
class ArticleResult:
    theta0: float
    theta1: float
    mse: float  # computed in the last iteration, before the final update (what the article prints)
    mse_final: float  # at the final parameters
    history: History
    x: np.ndarray
    y: np.ndarray
    trainer: Trainer
    theta_init: tuple[float, float]

    def summary(self) -> str:
        return (
            f"theta0 = {self.theta0:.5f}, theta1 = {self.theta1:.5f}, MSE = {self.mse:.5f} "
            f"(article: theta0 = {ARTICLE_PRINTED['theta0']}, theta1 = "
            f"{ARTICLE_PRINTED['theta1']}, MSE = {ARTICLE_PRINTED['mse']})"
        )


def article_experiment(
    seed: int = 0, n: int = 100, lr: float = 0.01, steps: int = 1000, callbacks: Any = ()
) -> ArticleResult:
    """Run the article's gradient descent through the engine; see the module docstring."""
    x, y, rs = article_stream(seed, n)
    theta0 = rs.uniform(-1, 1)
    theta1 = rs.uniform(-1, 1)
    layer = Linear(1, 1, dtype="float64", rng=np.random.default_rng(0))
    model = Sequential(layer)
    layer.weight[...] = theta1
    assert layer.bias is not None
    layer.bias[...] = theta0
    trainer = Trainer(
        model, losslab.get("mse"), SGD(lr=lr), dtype="float64", metrics=[], seed=seed
    )
    history = trainer.fit(
        x[:, None], y, epochs=steps, batch_size=None, shuffle=False, callbacks=callbacks
    )
    mse_final = trainer.evaluate(x[:, None], y)["loss"]
    return ArticleResult(
        theta0=float(layer.bias[0]),
        theta1=float(layer.weight[0, 0]),
        mse=float(history["loss"][-1]),
        mse_final=float(mse_final),
        history=history,
        x=x,
        y=y,
        trainer=trainer,
        theta_init=(float(theta0), float(theta1)),
    )
