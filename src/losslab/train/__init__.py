"""The training engine: networks trained by a loss's gradient, in NumPy.

``layers`` (explicit backward passes), ``optimizers``, ``schedules``, ``regularization`` (the
article's L1/L2 cures), ``trainer`` (``Trainer``), ``callbacks``, ``checkpoint`` (NPZ files read
without pickle), ``metrics``, ``data`` (datasets, splits, standardisation) and ``experiments``
(the article's experiment).
"""
