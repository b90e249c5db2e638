"""One rank of the SyncBatchNorm test: tests/test_sync_batch_norm.py starts two on gloo.

    python sync_batch_norm_worker.py RANK WORLD_SIZE INIT_FILE OUT_DIR

Every rank builds the same full batch and takes an uneven slice of it (rank r: rows SPLITS[r]), runs two
training steps and one evaluation step of a fused SyncBatchNorm (relu(BN(x) + residual)), and saves its
outputs, gradients and buffers for the parent to compare with one process on the whole batch.
"""
import os
import sys

import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"  # before tritonlayers imports triton

import torch.distributed as dist  # noqa: E402

import tritonlayers.nn as tnn  # noqa: E402

SHAPE = (8, 4, 3, 5)
SPLITS = [(0, 3), (3, 8)]  # uneven batches: 3 and 5 samples
STEPS = 3  # train, train, eval


def batches():
    generator = torch.Generator().manual_seed(0)
    return [(torch.randn(SHAPE, generator=generator) * 2 + 1, torch.randn(SHAPE, generator=generator),
             torch.randn(SHAPE, generator=generator)) for _ in range(STEPS)]


def initial_parameters():
    generator = torch.Generator().manual_seed(1)
    return torch.rand(SHAPE[1], generator=generator) + 0.5, torch.randn(SHAPE[1], generator=generator)


def main(rank, world_size, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    # gloo on one device for every rank: the CPU (interpreter), or the one GPU a test machine has
    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    module = tnn.SyncBatchNorm(SHAPE[1], activation="relu").to(device)
    weight, bias = initial_parameters()
    with torch.no_grad():
        module.weight.copy_(weight)
        module.bias.copy_(bias)
    start, stop = SPLITS[rank]
    results = []
    for step, (x, residual, grad_output) in enumerate(batches()):
        module.train(step < STEPS - 1)
        x = x[start:stop].to(device).requires_grad_()
        residual = residual[start:stop].to(device).requires_grad_()
        y = module(x, residual)
        params = list(module.parameters())
        grads = torch.autograd.grad(y, [x, residual, *params], grad_output[start:stop].to(device))
        results.append({"output": y.detach().cpu(), "grad_input": grads[0].cpu(), "grad_residual": grads[1].cpu(),
                        "grad_weight": grads[2].cpu(), "grad_bias": grads[3].cpu(),
                        **{name: value.detach().cpu().clone() for name, value in module.state_dict().items()}})
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
