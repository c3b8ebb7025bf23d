"""DistributedDataParallel with losslab.torch.linear_cross_entropy equals one process.

A tiny language model (embedding, one layer, output head) trains for 8 SGD steps in two processes
(gloo, CPU, 127.0.0.1 only) with ``process_group`` set, on shards holding different numbers of
ignored tokens, and on steps 2 and 5 none at all on rank 1. The same model trained in this
process on the concatenated batches with the composed loss (``F.cross_entropy`` plus the z-loss,
one mean over every counted token) ends with the same parameters to 1e-9 (float64). The per-rank
mean without ``process_group`` (what DDP with an ordinary mean loss computes) ends elsewhere,
which shows that the comparison can tell the two apart.
"""

from __future__ import annotations

import datetime
import os
import socket
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import losslab.torch as lt

STEPS, WORLD, BATCH, SEQ = 8, 2, 2, 5
N_IN, D, V = 11, 6, 13
EMPTY_STEPS = (2, 5)  # rank 1 has no counted token on these steps
LR = 0.5


def class_weight() -> torch.Tensor:
    return torch.linspace(0.5, 1.5, V, dtype=torch.float64)


OPTIONS = dict(label_smoothing=0.1, z_loss=1e-2)


class TinyLM(torch.nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = torch.nn.Embedding(N_IN, D)
        self.layer = torch.nn.Linear(D, D)
        self.head = torch.nn.Linear(D, V)
        self.double()

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.layer(self.embed(x)))

    def forward(self, x: torch.Tensor, y: torch.Tensor, group=None) -> torch.Tensor:
        return lt.linear_cross_entropy(
            self.hidden(x), self.head.weight, y, bias=self.head.bias,
            class_weight=class_weight(), process_group=group, **OPTIONS,
        )


def shard(step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank ``rank``'s (B, T) inputs and targets on step ``step``; the ranks ignore different
    fractions of their targets."""
    rng = np.random.default_rng([step, rank])
    x = torch.from_numpy(rng.integers(0, N_IN, (BATCH, SEQ)))
    y = torch.from_numpy(rng.integers(0, V, (BATCH, SEQ)))
    y[torch.from_numpy(rng.random((BATCH, SEQ)) < (0.2 if rank == 0 else 0.6))] = -100
    if rank == 1 and step in EMPTY_STEPS:
        y[:] = -100
    y[0, 0] = 3 if rank == 0 else y[0, 0]  # rank 0 always has a counted token
    return x, y


def reference_loss(model: TinyLM, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The composed loss over the whole batch: one mean over every counted token."""
    s = F.linear(model.hidden(x).reshape(-1, D), model.head.weight, model.head.bias)
    t = y.reshape(-1)
    ce = F.cross_entropy(s, t, weight=class_weight(), label_smoothing=OPTIONS["label_smoothing"])
    valid = t != -100
    lse = torch.logsumexp(s, 1)
    return ce + OPTIONS["z_loss"] * torch.where(valid, lse**2, 0.0).sum() / valid.sum()


def single_process() -> dict[str, np.ndarray]:
    model = TinyLM()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    for step in range(STEPS):
        parts = [shard(step, r) for r in range(WORLD)]
        x = torch.cat([p[0] for p in parts])
        y = torch.cat([p[1] for p in parts])
        opt.zero_grad()
        reference_loss(model, x, y).backward()
        opt.step()
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def _worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
        timeout=datetime.timedelta(seconds=60),  # fail, rather than hang, if a rank is lost
    )
    try:
        results = {}
        for label, group in (("global", dist.group.WORLD), ("local", None)):
            model = TinyLM()
            ddp = DistributedDataParallel(model)
            opt = torch.optim.SGD(ddp.parameters(), lr=LR)
            losses = []
            for step in range(STEPS):
                x, y = shard(step, rank)
                opt.zero_grad()
                loss = ddp(x, y, group)
                loss.backward()  # DDP averages the gradients over the ranks here
                opt.step()
                losses.append(loss.item())
            for k, v in model.state_dict().items():
                results[f"{label}/{k}"] = v.detach().numpy()
            results[f"{label}/losses"] = np.array(losses)
        np.savez(f"{out}.{rank}.npz", **results)
    finally:
        dist.destroy_process_group()
    # Leave without the interpreter's teardown, as a forked child would: spawned children were
    # seen to hang there now and then after gloo had shut down (the results are saved by now).
    os._exit(0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_ddp_with_a_rank_of_ignored_tokens_equals_single_process(tmp_path, monkeypatch):
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    out = str(tmp_path / "params")
    # Spawned, not forked: in the full suite JAX (multithreaded) is already imported here, and a
    # forked child could deadlock on one of its locks.
    ctx = torch.multiprocessing.start_processes(
        _worker, args=(_free_port(), out), nprocs=WORLD, start_method="spawn", join=False
    )
    deadline = time.monotonic() + 180
    while not ctx.join(timeout=5):  # raises if a worker failed
        if time.monotonic() > deadline:
            for proc in ctx.processes:
                proc.kill()
            pytest.fail("the DDP workers did not finish within 180 s")
    ranks = [dict(np.load(f"{out}.{r}.npz", allow_pickle=False)) for r in range(WORLD)]
    ref = single_process()
    for k in ref:
        for r in range(WORLD):
            np.testing.assert_allclose(ranks[r][f"global/{k}"], ref[k], rtol=0, atol=1e-9,
                                       err_msg=k)
    # On the steps where rank 1 counts no token its share of the loss is 0 (not NaN) ...
    assert all(ranks[1]["global/losses"][s] == 0.0 for s in EMPTY_STEPS)
    # ... and the ranks' shares average to the global mean.
    model = TinyLM()
    x0, y0 = shard(0, 0)
    x1, y1 = shard(0, 1)
    with torch.no_grad():
        mean0 = reference_loss(model, torch.cat([x0, x1]), torch.cat([y0, y1])).item()
    shares = (ranks[0]["global/losses"][0] + ranks[1]["global/losses"][0]) / 2
    assert shares == pytest.approx(mean0, rel=1e-12)
    # The per-rank mean trains a different model: the comparison above is sensitive.
    init = {k: v.detach().numpy() for k, v in TinyLM().state_dict().items()}
    assert max(np.abs(ref[k] - init[k]).max() for k in ref) > 1e-2
    assert max(np.abs(ranks[0][f"local/{k}"] - ref[k]).max() for k in ref) > 1e-3
