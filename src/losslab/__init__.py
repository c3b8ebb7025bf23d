"""losslab: loss functions for neural networks.

A verified catalog of losses with closed-form gradients::

    import losslab
    loss = losslab.get("cross_entropy", label_smoothing=0.1)
    value, grad = loss.value_and_grad(logits, target)

``import losslab`` loads NumPy and the catalog only; torch, jax and matplotlib are imported by the
modules that need them (``losslab.torch``, ``losslab.jax``, the command line).
"""

from losslab import losses as _losses  # noqa: F401  (registers the catalog)
from losslab.losses._registry import Loss, LossSpec, available, get, spec
from losslab.losses._validation import value_checks

__version__ = "0.1.0"

__all__ = ["Loss", "LossSpec", "available", "get", "spec", "value_checks", "__version__"]
