"""torch.compile and torch.export over tritonlayers' ops: whole models trace without graph breaks (fullgraph=True
raises on one), give eager's outputs, gradients and running statistics, draw dropout masks like eager; and
each custom op passes torch.library.opcheck.

backend="aot_eager" runs AOT autograd (functionalization, the joint graph, the partitioner) with the kernels
themselves, so it works through Triton's interpreter; inductor would need a C++ toolchain on the CPU.
"""
import copy

import pytest
import torch

import tritonlayers.functional as TF
import tritonlayers.nn as tnn
from helpers import DEVICE, assert_close, make_input


class Net(torch.nn.Module):
    """One of each layer family: fused GEMM activations, BatchNorm with running statistics, in-place
    activations, both dropouts, max pooling with indices, a transposed convolution, global pooling, softmax."""

    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(3, 4, 1, activation="relu")
        self.bn = tnn.BatchNorm2d(4, activation="silu")
        self.gelu = tnn.GELU()
        self.relu = tnn.ReLU(inplace=True)
        self.drop2d = tnn.Dropout2d(0.25)
        self.pool = tnn.MaxPool2d(2, return_indices=True)
        self.up = tnn.ConvTranspose2d(4, 3, 2, stride=2, activation="tanh")
        self.bn2 = tnn.BatchNorm2d(3)
        self.avg = tnn.AvgPool2d(2)
        self.flat = tnn.GlobalAvgPool2d(flatten=True)
        self.fc = tnn.Linear(3, 5, activation="gelu")
        self.drop = tnn.Dropout(0.3)
        self.head = tnn.Linear(5, 3, activation="log_softmax")
        self.softmax = tnn.Softmax(dim=1)

    def forward(self, x):
        x = self.relu(self.gelu(self.bn(self.conv(x))))
        x, indices = self.pool(self.drop2d(x))
        x = self.avg(self.bn2(self.up(x)))
        logits = self.head(self.drop(self.fc(self.flat(x))))
        return self.softmax(logits), TF.fused_dropout(logits, 0.5, activation="relu", residual=logits), indices


def _models():
    torch.manual_seed(0)
    eager = Net().to(DEVICE)
    return eager, copy.deepcopy(eager)


def _input():
    # channels_last: the outputs' memory format must come through the fake kernels as the real ones make it
    return make_input((2, 3, 4, 4), torch.float32, "channels_last", requires_grad=True)


def _step(model, x, seed):
    torch.manual_seed(seed)
    probabilities, fused, indices = model(x)
    loss = (probabilities * torch.arange(3, device=DEVICE)).sum() + fused.square().sum()
    grads = torch.autograd.grad(loss, [x, *model.parameters()])
    return (probabilities, fused, indices), grads


def test_compiled_training_steps_match_eager():
    eager, compiled_model = _models()
    compiled = torch.compile(compiled_model, backend="aot_eager", fullgraph=True)  # fullgraph: no graph breaks
    for seed in (1, 2):  # the second step sees updated running statistics and fresh masks
        x = _input()
        outputs, grads = _step(eager, x, seed)
        compiled_outputs, compiled_grads = _step(compiled, x, seed)
        for name, actual, expected in zip(("softmax", "fused_dropout"), compiled_outputs, outputs):
            assert actual.stride() == expected.stride(), name
            assert_close(actual, expected, name=name)
        assert torch.equal(compiled_outputs[2], outputs[2]), "max_pool2d indices"
        for index, (actual, expected) in enumerate(zip(compiled_grads, grads)):
            assert_close(actual, expected, scale_atol=10, name=f"gradient {index}")
        for (name, buffer), (_, compiled_buffer) in zip(eager.named_buffers(), compiled_model.named_buffers()):
            assert torch.equal(compiled_buffer, buffer), name
    assert int(compiled_model.bn.num_batches_tracked) == 2


def test_compiled_eval_and_export_match_eager():
    eager, compiled_model = _models()
    eager.eval(), compiled_model.eval()
    x = _input().detach()
    expected = eager(x)
    compiled = torch.compile(compiled_model, backend="aot_eager", fullgraph=True)(x)
    exported = torch.export.export(compiled_model, (x,)).module()(x)
    for actual in (compiled, exported):
        assert_close(actual[0], expected[0])
        assert_close(actual[1], expected[1])
        assert torch.equal(actual[2], expected[2])
    for (name, buffer), (_, compiled_buffer) in zip(eager.named_buffers(), compiled_model.named_buffers()):
        assert torch.equal(compiled_buffer, buffer), name  # eval: running statistics untouched


def _pool_1d_3d(x):
    """1-d and 3-d pooling: the 2-d ops on views, and the 3-d indices gathered with torch ops in between."""
    y, indices = TF.max_pool3d(x, 2, 1, 1, return_indices=True)
    pooled = TF.avg_pool3d(x, 2, divisor_override=3).sum() + TF.adaptive_max_pool3d(x, (2, 3, 1)).sum()
    signal = x.flatten(2)
    return y.sum() + pooled + TF.max_pool1d(signal, 3, return_indices=True)[0].sum() + \
        TF.adaptive_avg_pool1d(signal, 4).sum(), indices


def test_compiled_1d_and_3d_pooling_match_eager():
    x = make_input((2, 3, 4, 6, 5), torch.float64, "channels_last", requires_grad=True)
    compiled = torch.compile(_pool_1d_3d, backend="aot_eager", fullgraph=True)
    (total, indices), (expected, expected_indices) = compiled(x), _pool_1d_3d(x)
    assert_close(total, expected)
    assert torch.equal(indices, expected_indices)
    assert_close(torch.autograd.grad(total, x)[0], torch.autograd.grad(expected, x)[0])


def _two_dropouts(x):
    return TF.dropout(x, 0.5), TF.dropout(x, 0.5)  # equal arguments: the two draws must not merge


def test_compiled_dropout_draws_fresh_masks_reproducibly():
    x = torch.ones(64, device=DEVICE)
    compiled = torch.compile(_two_dropouts, backend="aot_eager", fullgraph=True)
    torch.manual_seed(3)
    first = compiled(x)
    second = compiled(x)
    assert not torch.equal(first[0], first[1]), "two calls in one graph drew one mask"
    assert not torch.equal(first[0], second[0]), "two runs of a graph drew one mask"
    torch.manual_seed(3)
    again = compiled(x)
    torch.manual_seed(3)
    eager = _two_dropouts(x)
    for actual, expected, in_eager in zip(again, first, eager):
        assert torch.equal(actual, expected) and torch.equal(actual, in_eager)


def test_compile_follows_autocast():
    x = make_input((4, 6), torch.float32)
    weight = make_input((3, 6), torch.float32)
    compiled = torch.compile(lambda x, w: TF.softmax(TF.linear(x, w, activation="relu"), 1), backend="aot_eager",
                             fullgraph=True)
    expected_dtype = torch.float32 if DEVICE.type == "cuda" else torch.bfloat16  # CUDA softmax autocasts to fp32
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        assert compiled(x, weight).dtype == expected_dtype
    assert compiled(x, weight).dtype == torch.float32


def _t(*shape, dtype=torch.float64, layout="contiguous", requires_grad=True):
    return make_input(shape, dtype, layout, low=-1, high=1, requires_grad=requires_grad)


def _stats():
    return torch.zeros(3, dtype=torch.float64, device=DEVICE), torch.ones(3, dtype=torch.float64, device=DEVICE)


def _seed():
    return torch.tensor([5, 16], dtype=torch.int64)


ops = torch.ops.tritonlayers
# (op, arguments): tiny fp64 inputs, layouts that decide the outputs' strides (channels_last, permuted)
OPCHECK_CASES = {
    "activation": lambda: (ops.activation, (_t(3, 4, layout="permuted"), "gelu", 0.0, 0.0)),
    "activation_": lambda: (ops.activation_, (_t(3, 4) * 1, "silu", 0.0, 0.0)),
    "activation_backward": lambda: (ops.activation_backward, (_t(3, 4), _t(3, 4), "elu", 1.0, 0.0, False)),
    "softmax": lambda: (ops.softmax, (_t(2, 3, 2, 2, layout="channels_last"), 1, torch.float64, True)),
    "softmax_backward": lambda: (ops.softmax_backward, (_t(3, 4), _t(3, 4), 0, torch.float64, False)),
    "dropout": lambda: (ops.dropout, (_t(2, 3, 2, 2, layout="channels_last"), None, None, _seed(), 0.5, 1, 4, False,
                                      "identity", 0.0, 0.0, torch.float64)),
    "fused_dropout": lambda: (ops.dropout, (_t(4, 3), _t(3), _t(4, 3), _seed(), 0.5, 1, 1, True, "gelu", 0.0, 0.0,
                                            torch.float64)),
    "dropout_": lambda: (ops.dropout_, (_t(4, 3) * 1, _seed(), 0.5, 1, 1)),
    "dropout_backward": lambda: (ops.dropout_backward, (_t(4, 3), _t(4, 3), _t(3), _seed(), 0.5, 1, 1, True, "gelu",
                                                        0.0, 0.0, torch.float64, True)),
    "batch_norm_train": lambda: (ops.batch_norm, (_t(2, 3, 2, 2, layout="channels_last"), _t(3), _t(3), None,
                                                  *_stats(), True, 0.1, 1e-5, "relu", 0.0, 0.0, torch.float64)),
    "batch_norm_eval": lambda: (ops.batch_norm, (_t(2, 3, 2, 2), _t(3), None, _t(2, 3, 2, 2), *_stats(), False, 0.1,
                                                 1e-5, "gelu", 0.0, 0.0, torch.float64)),
    "batch_norm_backward": lambda: (ops.batch_norm_backward, (
        _t(2, 3, 2), _t(2, 3, 2), None, _t(3), _t(3), _t(3), _t(3).abs(), True, 1e-5, "identity", 0.0, 0.0, False,
        False, [True, True, True, False], None)),
    "linear": lambda: (ops.linear, (_t(2, 3, 4), _t(5, 4), _t(5), "gelu", 0.0, 0.0, None, True)),
    "linear_head": lambda: (ops.linear, (_t(3, 4), _t(5, 4), None, "identity", 0.0, 0.0, "log_softmax", False)),
    "linear_backward": lambda: (ops.linear_backward, (_t(3, 5), _t(3, 4), _t(5, 4), _t(3, 5), "relu", 0.0, 0.0,
                                                      None, [True, True, False])),
    "conv2d_1x1": lambda: (ops.conv2d_1x1, (_t(2, 4, 3, 3, layout="channels_last"), _t(6, 2, 1, 1), _t(6), [2, 1],
                                            2, "gelu", 0.0, 0.0, True)),
    "conv2d_1x1_backward": lambda: (ops.conv2d_1x1_backward, (_t(2, 6, 3, 3), _t(2, 4, 3, 3), _t(6, 4, 1, 1), None,
                                                              [1, 1], 1, "identity", 0.0, 0.0, [True, True, True])),
    "conv_transpose2d": lambda: (ops.conv_transpose2d, (_t(2, 4, 2, 2, layout="channels_last"), _t(4, 3, 2, 2),
                                                        _t(3), 1, "sigmoid", 0.0, 0.0, False)),
    "conv_transpose2d_backward": lambda: (ops.conv_transpose2d_backward, (
        _t(2, 3, 4, 4), _t(2, 4, 2, 2), _t(4, 3, 2, 2), None, 1, "identity", 0.0, 0.0, [True, False, True])),
    "pool2d_max": lambda: (ops.pool2d, (_t(1, 2, 5, 5, layout="channels_last"), "max", [2, 2], [3, 3], [2, 2],
                                        [1, 1], [1, 1], True, 0, True, True)),
    "pool2d_adaptive_avg": lambda: (ops.pool2d, (_t(1, 2, 5, 4), "adaptive_avg", [2, 3], [1, 1], [1, 1], [0, 0],
                                                 [1, 1], True, 0, True, False)),
    "pool2d_backward": lambda: (ops.pool2d_backward, (_t(1, 2, 2, 2), torch.zeros(1, 2, 2, 2, dtype=torch.int8,
                                                                                   device=DEVICE),
                                                      [1, 2, 5, 5], False, "max", [2, 2], [3, 3], [2, 2], [1, 1],
                                                      [1, 1], True, 0)),
}


@pytest.mark.parametrize("case", list(OPCHECK_CASES))
def test_opcheck(case):
    op, args = OPCHECK_CASES[case]()
    if case.endswith("_backward"):  # backward ops are not differentiated again (no double backward)
        args = tuple(arg.detach() if isinstance(arg, torch.Tensor) else arg for arg in args)
    torch.library.opcheck(op, args)


def test_opcheck_seed_draw():
    # its fake kernel only: opcheck's schema check cannot inspect a Device argument, and the op draws afresh on
    # every run, so the compiled and eager runs opcheck compares differ by design
    torch.library.opcheck(ops.philox_seed_offset_, (torch.empty(2, dtype=torch.int64), DEVICE, 64),
                          test_utils="test_faketensor")
