"""Data-parallel training with a losslab loss under DistributedDataParallel.

Run on one machine, two processes, CPU, gloo backend, loopback only::

    torchrun --nproc_per_node=2 --master_addr=127.0.0.1 examples/ddp_train.py

(add ``--out params.npz`` to save rank 0's final parameters; without torchrun the script runs as a
single process). A losslab loss is an ordinary autograd node, so nothing about DDP changes: each
rank computes its loss on its shard, DDP all-reduces the gradients during ``backward``.

Why the result equals one process trained on the whole batch: DDP *averages* gradients over the
ranks (all-reduce sum, divided by the world size W). With ``reduction="mean"`` and the same batch
size B on every rank, each rank's gradient is ``1/B * sum over its rows``, and their average is
``1/(W B) * sum over all rows``: exactly the gradient of the mean over the concatenated batch. So
the parameters follow the single-process trajectory step for step (tests/test_distributed.py
checks 20 steps to 1e-6 in float64). With ``reduction="sum"`` every step would be W times too
small; with unequal shards the rows of the smaller shard would weigh more.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import losslab.torch as lt

N_FEATURES, N_HIDDEN, N_CLASSES = 8, 16, 3


def make_model(seed: int = 0) -> torch.nn.Module:
    """The same initial weights on every rank (DDP also broadcasts rank 0's at start)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, N_HIDDEN),
        torch.nn.Tanh(),
        torch.nn.Linear(N_HIDDEN, N_CLASSES),
    ).double()


def global_batch(step: int, world_size: int, per_rank: int, seed: int = 0):
    """Step ``step``'s batch for all ranks together; rank r trains on rows [r B, (r + 1) B)."""
    rng = np.random.default_rng([seed, step])
    n = world_size * per_rank
    x = rng.normal(size=(n, N_FEATURES))
    y = (x[:, 0] + x[:, 1] ** 2 > 0.5).astype(np.int64) + (x[:, 2] > 1.0)
    return torch.from_numpy(x), torch.from_numpy(y)


def make_criterion() -> torch.nn.Module:
    # reduction="mean" (the default): see the module docstring for why DDP needs it.
    return lt.CrossEntropyLoss(label_smoothing=0.05)


def train(rank: int, world_size: int, steps: int, per_rank: int, lr: float, seed: int = 0):
    model = make_model(seed)
    ddp = DistributedDataParallel(model) if world_size > 1 else model
    criterion = make_criterion()
    opt = torch.optim.SGD(ddp.parameters(), lr=lr, momentum=0.9)
    for step in range(steps):
        x, y = global_batch(step, world_size, per_rank, seed)
        rows = slice(rank * per_rank, (rank + 1) * per_rank)
        opt.zero_grad()
        loss = criterion(ddp(x[rows]), y[rows])
        loss.backward()  # DDP all-reduces (averages) the gradients here
        opt.step()
        if rank == 0 and (step % 5 == 0 or step == steps - 1):
            print(f"step {step:3d}  loss on rank 0's shard {loss.item():.6f}", flush=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--per-rank", type=int, default=32, help="batch size on each rank")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="save rank 0's final parameters here (.npz, no pickle)")
    args = parser.parse_args()

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world_size > 1:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        model = train(rank, world_size, args.steps, args.per_rank, args.lr, args.seed)
        if rank == 0 and args.out:
            params = {k: v.detach().numpy() for k, v in model.state_dict().items()}
            tmp = args.out + ".tmp.npz"
            np.savez(tmp, **params)
            os.replace(tmp, args.out)  # atomic: a reader never sees half a file
    finally:
        if world_size > 1:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
