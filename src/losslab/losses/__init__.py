"""The loss catalog, one module per family.

Importing this package registers every loss with ``losslab.get``. Each family module holds one pure
function per loss, ``fn(xp, *inputs, **options) -> Items`` (the per-item losses and closures for
their derivatives), whose docstring gives the formula, the gradient, the Hessian and a reference;
``_registry.py`` holds the contract and the one reducer, ``_constraints.py`` the option
constraints, ``_validation.py`` the input checks, ``_layout.py`` the layouts, ``_primitives.py``
the numerically stable building blocks and measured fast paths, ``_blocked.py`` the cache-blocked
executor.
"""

from losslab.losses import (  # noqa: F401  (imported to register)
    binary,
    contrastive,
    divergence,
    embedding,
    likelihood,
    linear_cross_entropy,
    margin,
    multiclass,
    overlap,
    preference,
    regression,
    robust,
    segmentation,
    sequence,
)

