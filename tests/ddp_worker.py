"""One rank of the DistributedDataParallel test: tests/test_ddp.py starts two on gloo.

    python ddp_worker.py RANK WORLD_SIZE INIT_FILE OUT_DIR

Every rank builds the same full batches and takes an uneven slice of each (rank r: rows SPLITS[r]), trains
the tritonlayers network (SyncBatchNorm with the ReLU fused) under DDP for STEPS steps of SGD with momentum,
and saves its losses and final state_dict. On a GPU it does the same with the torch.nn twin
(torch.nn.SyncBatchNorm, which refuses CPU tensors).
"""
import os
import sys

import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"  # before tritonlayers imports triton

import torch.distributed as dist  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

import tritonlayers.nn as tnn  # noqa: E402

BATCH, CHANNELS, SIZE, CLASSES = 8, 3, 8, 5
SPLITS = [(0, 3), (3, 8)]  # uneven batches: 3 and 5 samples
STEPS = 3
LR, MOMENTUM = 0.1, 0.9


def build(kind):
    """The network as "tritonlayers" (SyncBatchNorm with the ReLU fused, an Identity in the ReLU's place so
    the state_dict keys match), "torch" (torch.nn.SyncBatchNorm, then ReLU) or "reference" (BatchNorm2d: one
    process on the whole batch computes what SyncBatchNorm computes over the ranks). Identical initial
    weights for every kind."""
    layers = tnn if kind == "tritonlayers" else torch.nn

    def bn_relu(channels):
        if kind == "tritonlayers":
            return [tnn.SyncBatchNorm(channels, activation="relu"), torch.nn.Identity()]
        norm = torch.nn.SyncBatchNorm if kind == "torch" else torch.nn.BatchNorm2d
        return [norm(channels), torch.nn.ReLU()]

    model = torch.nn.Sequential(
        layers.Conv2d(CHANNELS, 8, 1), *bn_relu(8), layers.MaxPool2d(2),  # 8x8 -> 4x4
        layers.Conv2d(8, 16, 1, bias=False), *bn_relu(16), layers.AvgPool2d(2),  # 4x4 -> 2x2
        layers.AdaptiveAvgPool2d(1), torch.nn.Flatten(), layers.Linear(16, CLASSES), layers.LogSoftmax(dim=1))
    if kind == "reference":
        generator = torch.Generator().manual_seed(1)  # not torch's global one: importing the test changes nothing
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    else:
        model.load_state_dict(build("reference").state_dict())
    return model


def batches():
    generator = torch.Generator().manual_seed(0)
    return [(torch.randn(BATCH, CHANNELS, SIZE, SIZE, generator=generator) * 2 + 1,
             torch.randint(CLASSES, (BATCH,), generator=generator)) for _ in range(STEPS)]


def allow_sync_batch_norm_on_cpu():
    """torch's DDP refuses every torch.nn.SyncBatchNorm (an isinstance check, so tritonlayers' too) in a CPU
    module, because torch's own runs on GPUs only; tritonlayers' runs on CPUs (through the interpreter), so
    the CPU run skips that check."""
    DistributedDataParallel._passing_sync_batchnorm_handle = lambda self, module: None


def train(model, device, rank):
    """Per-step local losses and the final state_dict of `model` trained under DDP on this rank's rows."""
    model = model.to(device)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=LR, momentum=MOMENTUM)
    start, stop = SPLITS[rank]
    losses = []
    for images, labels in batches():
        optimizer.zero_grad()
        loss = F.nll_loss(ddp(images[start:stop].to(device)), labels[start:stop].to(device))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return {"losses": losses, "state": {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}}


def main(rank, world_size, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    # gloo on one device for every rank: the CPU (interpreter), or the one GPU a test machine has
    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cpu":
        allow_sync_batch_norm_on_cpu()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 GEMMs, compared with fp64
    results = {"tritonlayers": train(build("tritonlayers"), device, rank)}
    if device.type == "cuda":
        results["torch"] = train(build("torch"), device, rank)
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
