"""DistributedDataParallel with a losslab loss equals one process on the concatenated batches.

Trains examples/ddp_train.py's model in two processes (gloo, CPU, 127.0.0.1 only, a free port)
with losslab's cross-entropy, then retrains the same model in this process on the whole batch with
torch's own F.cross_entropy: after 20 steps the parameters agree to 1e-6 in float64.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ddp_train.py"
STEPS, PER_RANK, WORLD, LR = 20, 16, 2, 0.1


def _example():
    spec = importlib.util.spec_from_file_location("ddp_train", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _single_process_reference(ex):
    """The same model and optimiser on all ranks' rows at once, with torch's own loss."""
    model = ex.make_model(0)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    for step in range(STEPS):
        x, y = ex.global_batch(step, WORLD, PER_RANK, 0)
        opt.zero_grad()
        F.cross_entropy(model(x), y, label_smoothing=0.05).backward()
        opt.step()
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def _worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        model = _example().train(rank, WORLD, STEPS, PER_RANK, LR, 0)
        if rank == 0:
            np.savez(out, **{k: v.detach().numpy() for k, v in model.state_dict().items()})
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_ddp_two_processes_equal_single_process(tmp_path, monkeypatch):
    # Forked workers inherit the imported torch and losslab (a spawned interpreter would spend
    # seconds importing torch again); nothing has touched CUDA or gloo before the fork.
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    out = tmp_path / "params.npz"
    torch.multiprocessing.start_processes(
        _worker, args=(_free_port(), str(out)), nprocs=WORLD, start_method="fork"
    )
    ddp = dict(np.load(out, allow_pickle=False))
    ref = _single_process_reference(_example())
    assert ddp.keys() == ref.keys()
    for k in ref:
        np.testing.assert_allclose(ddp[k], ref[k], rtol=0, atol=1e-6, err_msg=k)
    # ... and training moved the parameters: the comparison is not between two initial states.
    init = {k: v.detach().numpy() for k, v in _example().make_model(0).state_dict().items()}
    assert max(np.abs(ref[k] - init[k]).max() for k in ref) > 1e-2


def test_example_script_runs_single_process(tmp_path):
    """The script itself (what torchrun starts on each rank), here with WORLD_SIZE unset."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
    out = tmp_path / "single.npz"
    res = subprocess.run(
        [sys.executable, str(EXAMPLE), "--steps", "3", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "step   2" in res.stdout and out.exists()
