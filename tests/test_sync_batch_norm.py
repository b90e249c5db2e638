"""SyncBatchNorm over two gloo processes (through the interpreter on a CPU) against one process on the
whole batch: outputs, input / residual gradients, summed weight / bias gradients, running statistics."""
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

import tritonlayers.nn as tnn
from helpers import DEVICE, assert_close

WORKER = Path(__file__).with_name("sync_batch_norm_worker.py")
sys.path.insert(0, str(WORKER.parent))
import sync_batch_norm_worker as worker  # noqa: E402


def test_two_ranks_with_uneven_batches_match_one_process(tmp_path):
    env = dict(os.environ)
    processes = [subprocess.Popen([sys.executable, str(WORKER), str(rank), "2", str(tmp_path / "init"),
                                   str(tmp_path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) for rank in range(2)]
    for process in processes:
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output[-4000:]
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]

    reference = torch.nn.BatchNorm2d(worker.SHAPE[1]).double()
    weight, bias = worker.initial_parameters()
    with torch.no_grad():
        reference.weight.copy_(weight)
        reference.bias.copy_(bias)
    for step, (x, residual, grad_output) in enumerate(worker.batches()):
        reference.train(step < worker.STEPS - 1)
        x = x.double().requires_grad_()
        residual = residual.double().requires_grad_()
        y = F.relu(reference(x) + residual)
        grads = torch.autograd.grad(y, [x, residual, reference.weight, reference.bias], grad_output.double())
        gathered = {key: torch.cat([rank[step][key] for rank in ranks]) for key in
                    ("output", "grad_input", "grad_residual")}
        assert_close(gathered["output"], y, torch.float32, name=f"step {step} output")
        assert_close(gathered["grad_input"], grads[0], torch.float32, scale_atol=10, name=f"step {step} grad_input")
        assert_close(gathered["grad_residual"], grads[1], torch.float32, name=f"step {step} grad_residual")
        # each rank returns its own batch's weight / bias gradient, as torch's SyncBatchNorm (DDP sums them)
        for key, expected in (("grad_weight", grads[2]), ("grad_bias", grads[3])):
            assert_close(sum(rank[step][key] for rank in ranks), expected, torch.float32, scale_atol=100,
                         name=f"step {step} {key}")
        for key, expected in reference.state_dict().items():
            for rank in ranks:
                if expected.dtype == torch.int64:
                    assert torch.equal(rank[step][key], expected), key
                elif key.startswith("running"):
                    assert_close(rank[step][key], expected, torch.float32, name=f"step {step} {key}")


def test_convert_sync_batchnorm_keeps_parameters_buffers_and_activation():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4),
                                torch.nn.Sequential(tnn.BatchNorm2d(4, activation="relu")))
    model[1].running_mean.fill_(0.5)
    model.eval().to(DEVICE)
    x = torch.randn(2, 3, 5, 5, device=DEVICE)
    expected = model(x)
    converted = tnn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(converted[1], tnn.SyncBatchNorm) and isinstance(converted[1], torch.nn.SyncBatchNorm)
    assert isinstance(converted[2][0], tnn.SyncBatchNorm) and converted[2][0].activation.name == "relu"
    assert converted[1].weight is model[1].weight and converted[1].running_mean is model[1].running_mean
    assert not converted[1].training
    assert_close(converted(x), expected)
