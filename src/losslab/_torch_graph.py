"""What a backward pass may do with its buffers: shared by losslab.torch's autograd nodes."""

from __future__ import annotations

import torch

__all__ = ["keep_graph"]


def keep_graph() -> bool:
    """Whether the running backward pass keeps the graph (retain_graph=True); True if unknown.

    Unless it does, a backward pass may scale a saved gradient in place and hand that very buffer
    on. torch's own aot_autograd asks the engine the same question to free saved tensors early.
    """
    probe = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    try:
        return True if probe is None else bool(probe())
    except RuntimeError:
        return True
