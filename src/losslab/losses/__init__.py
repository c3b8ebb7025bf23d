"""The loss catalog, one module per family.

Importing this package registers every loss with ``losslab.get``. Each family module holds one pure
function per loss, ``fn(*inputs, compute_grad=True, **options) -> (value, grad)``, whose docstring
gives the formula, the gradient and a reference.
"""

from losslab.losses import (  # noqa: F401  (imported to register)
    binary,
    divergence,
    embedding,
    likelihood,
    margin,
    multiclass,
    overlap,
    regression,
)
