"""Ops whose autograd node has outputs that carry no gradient (BatchNorm's saved statistics, a GEMM layer's
stored pre-activation, pooling's window positions and indices) must not have autograd fill zero tensors for
them before backward: each would be an allocation and a fill kernel per step, output-sized for the
pre-activation and the positions. Checked by the aten ops the backward runs, with values against torch."""
import pytest
import torch
import torch.nn.functional as F

import tritonlayers.functional as TF
from helpers import DEVICE, assert_close, make_input

FILLS = ("aten::zeros", "aten::zero_", "aten::fill_", "aten::zeros_like")


def _bn(x):
    return TF.batch_norm(x, None, None, training=True), F.batch_norm(x, None, None, training=True)


def _linear_gelu(x):
    weight = make_input((5, x.shape[-1]), x.dtype, low=-1, high=1)
    return TF.linear(x, weight, activation="gelu"), F.gelu(F.linear(x, weight))


def _linear_softmax(x):
    weight = make_input((5, x.shape[-1]), x.dtype, low=-1, high=1)
    return TF.linear(x, weight, activation="softmax"), F.softmax(F.linear(x, weight), -1)


def _conv_silu(x):
    weight = make_input((4, x.shape[1], 1, 1), x.dtype, low=-1, high=1)
    return TF.conv2d(x, weight, activation="silu"), F.silu(F.conv2d(x, weight))


def _conv_transpose_gelu(x):
    weight = make_input((x.shape[1], 2, 2, 2), x.dtype, low=-1, high=1)
    return TF.conv_transpose2d(x, weight, stride=2, activation="gelu"), F.gelu(F.conv_transpose2d(x, weight, stride=2))


def _max_pool_indices(x):
    return TF.max_pool2d(x, 3, 2, 1, return_indices=True)[0], F.max_pool2d(x, 3, 2, 1)


CASES = {"batch_norm": (_bn, (3, 4, 5, 6)), "linear_gelu": (_linear_gelu, (7, 6)),
         "linear_softmax": (_linear_softmax, (7, 6)), "conv1x1_silu": (_conv_silu, (2, 3, 5, 4)),
         "conv_transpose_gelu": (_conv_transpose_gelu, (2, 3, 3, 4)),
         "max_pool2d": (lambda x: (TF.max_pool2d(x, 3, 2, 1), F.max_pool2d(x, 3, 2, 1)), (2, 3, 7, 6)),
         "max_pool2d_indices": (_max_pool_indices, (2, 3, 7, 6))}


@pytest.mark.parametrize("name", list(CASES))
def test_backward_fills_nothing(name):
    fn, shape = CASES[name]
    x = make_input(shape, torch.float32, requires_grad=True)
    ours, theirs = fn(x)
    grad_output = make_input(ours.shape, torch.float32, low=-1, high=1)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        (grad,) = torch.autograd.grad(ours, x, grad_output)
    fills = [event.name for event in profiler.events() if event.name in FILLS]
    assert not fills, f"backward ran {fills}"
    (expected,) = torch.autograd.grad(theirs, x, grad_output)
    assert_close(grad, expected, torch.float32, scale_atol=10, name="grad input")


def test_an_output_gradient_of_none_gives_none():
    # a node reached only through an input whose gradient came back undefined gets None, not zeros
    class DropsGradient(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            return None

    x = make_input((2, 3, 4, 5), torch.float32, requires_grad=True)
    weight = make_input((3,), torch.float32, requires_grad=True)
    y = TF.batch_norm(x, None, None, weight, training=True)
    grads = torch.autograd.grad(DropsGradient.apply(y).sum(), (x, weight), allow_unused=True)
    assert grads == (None, None)
    assert DEVICE.type in ("cpu", "cuda")
