"""DistributedDataParallel over two gloo processes (through the interpreter on a CPU) training a network of
tritonlayers modules with SyncBatchNorm, against one process computing the same steps on the whole batch with
torch.nn (BatchNorm2d over all rows is what SyncBatchNorm computes over the ranks; DDP averages the ranks'
gradients, so the reference loss is the mean of the ranks' losses). On a GPU also against the torch.nn twin
with torch.nn.SyncBatchNorm under DDP, which torch runs on GPUs only. Compared: every rank's per-step loss,
parameters and running statistics after the steps."""
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from helpers import assert_close

WORKER = Path(__file__).with_name("ddp_worker.py")
sys.path.insert(0, str(WORKER.parent))
import ddp_worker as worker  # noqa: E402


def reference_run():
    """(per-step losses of each rank's rows, final state_dict) of one process on the whole batches."""
    model = worker.build("reference").double()
    optimizer = torch.optim.SGD(model.parameters(), lr=worker.LR, momentum=worker.MOMENTUM)
    losses = []
    for images, labels in worker.batches():
        optimizer.zero_grad()
        log_probabilities = model(images.double())
        rank_losses = [F.nll_loss(log_probabilities[start:stop], labels[start:stop]) for start, stop in worker.SPLITS]
        torch.stack(rank_losses).mean().backward()
        optimizer.step()
        losses.append([loss.item() for loss in rank_losses])
    return losses, model.state_dict()


def test_ddp_with_sync_batch_norm_trains_like_one_process(tmp_path):
    processes = [subprocess.Popen([sys.executable, str(WORKER), str(rank), "2", str(tmp_path / "init"),
                                   str(tmp_path)], env=dict(os.environ), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for rank in range(2)]
    for process in processes:
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output[-4000:]
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]
    losses, state = reference_run()

    for kind in ranks[0]:  # "tritonlayers", and "torch" on a GPU
        for rank, result in enumerate(ranks):
            for step, (loss, expected) in enumerate(zip(result[kind]["losses"], losses)):
                assert abs(loss - expected[rank]) <= 1e-5 * max(1.0, abs(expected[rank])), (
                    f"{kind} rank {rank} step {step} loss {loss} != {expected[rank]}")
            for key, expected in state.items():
                actual = result[kind]["state"][key]
                if key.endswith("num_batches_tracked"):
                    assert torch.equal(actual, expected), f"{kind} rank {rank} {key}"
                else:
                    # a few steps of fp32 SGD against fp64: rounding grows with the momentum
                    assert_close(actual, expected, torch.float32, scale_atol=10, name=f"{kind} rank {rank} {key}")
        # DDP keeps the replicas equal: both ranks end with the same parameters and buffers
        for key, value in ranks[0][kind]["state"].items():
            assert torch.equal(ranks[1][kind]["state"][key], value), f"{kind}: rank 1 vs rank 0 {key}"
