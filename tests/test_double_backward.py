"""Gradients taken with create_graph=True: first-order values as without it, and differentiating them again
(a gradient penalty through the layer) raises an error naming the op, where detached gradients would drop
every second-order term silently."""
import pytest
import torch
import torch.nn.functional as TF

import tritonlayers.functional as F
from helpers import DEVICE, assert_close, make_input


def _weights(*shapes):
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(shape, generator=generator, dtype=torch.float64).to(DEVICE) for shape in shapes]


# name -> (the registered op named in the error, input shape, input layout, parameter shapes, ours, torch's)
CASES = {
    "linear_relu": ("linear", (5, 7), "contiguous", [(3, 7), (3,)],
                    lambda x, w, b: F.linear(x, w, b, activation="relu"),
                    lambda x, w, b: TF.relu(TF.linear(x, w, b))),
    "linear_log_softmax": ("linear", (5, 7), "contiguous", [(3, 7)],
                           lambda x, w: F.linear(x, w, activation="log_softmax"),
                           lambda x, w: TF.log_softmax(TF.linear(x, w), -1)),
    "conv2d_gelu": ("conv2d_1x1", (2, 4, 3, 5), "channels_last", [(6, 4, 1, 1), (6,)],
                    lambda x, w, b: F.conv2d(x, w, b, activation="gelu"),
                    lambda x, w, b: TF.gelu(TF.conv2d(x, w, b))),
    "conv_transpose2d": ("conv_transpose2d", (2, 4, 3, 5), "contiguous", [(4, 3, 2, 2)],
                         lambda x, w: F.conv_transpose2d(x, w, stride=2),
                         lambda x, w: TF.conv_transpose2d(x, w, stride=2)),
    "batch_norm": ("batch_norm", (3, 4, 2, 5), "channels_last", [(4,), (4,)],
                   lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                   lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True)),
    "gelu": ("activation", (4, 9), "strided", [], F.gelu, TF.gelu),
    "silu_inplace": ("activation_", (4, 9), "contiguous", [], lambda x: F.silu(x * 1, inplace=True),
                     lambda x: TF.silu(x * 1, inplace=True)),
    "softmax": ("softmax", (4, 9), "contiguous", [], lambda x: F.softmax(x, 1),
                lambda x: TF.softmax(x, 1)),
    "max_pool2d": ("pool2d", (2, 3, 5, 7), "channels_last", [], lambda x: F.max_pool2d(x, 3, 2, 1),
                   lambda x: TF.max_pool2d(x, 3, 2, 1)),
    "adaptive_avg_pool2d": ("pool2d", (2, 3, 5, 7), "contiguous", [], lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
                            lambda x: TF.adaptive_avg_pool2d(x, (2, 3))),
    "dropout": ("dropout", (4, 9), "contiguous", [], lambda x: F.dropout(x, 0.3), None),
    "fused_dropout": ("dropout", (4, 9), "contiguous", [(9,)],
                      lambda x, b: F.fused_dropout(x, 0.3, bias=b, activation="relu"), None),
}


def _leaves(case):
    _, shape, layout, param_shapes, _, _ = CASES[case]
    x = make_input(shape, torch.float64, layout, generator=torch.Generator().manual_seed(0))
    return [t.requires_grad_() for t in (x, *_weights(*param_shapes))]


def _gradients(fn, leaves, create_graph):
    """Gradients of a loss whose weights make every output element count differently, and whose square term
    gives even piecewise-linear layers (pooling) second-order terms."""
    torch.manual_seed(3)  # dropout draws the same mask each time
    y = fn(*leaves)
    weights = torch.linspace(-1, 2, y.numel(), dtype=y.dtype, device=y.device).view(y.shape)
    return torch.autograd.grad((y * weights + 0.1 * y * y).sum(), leaves, create_graph=create_graph)


@pytest.mark.parametrize("case", list(CASES))
def test_gradients_taken_with_create_graph_match(case):
    leaves = _leaves(case)
    plain = _gradients(CASES[case][4], leaves, create_graph=False)
    graphed = _gradients(CASES[case][4], leaves, create_graph=True)
    for index, (a, b) in enumerate(zip(graphed, plain)):
        assert_close(a, b, name=f"gradient {index}")


@pytest.mark.parametrize("case", list(CASES))
def test_differentiating_a_gradient_raises_naming_the_op(case):
    op_name, _, _, _, ours, reference = CASES[case]
    if reference is not None:  # the same penalty through torch's op has second-order terms to lose
        leaves = _leaves(case)
        penalty = sum(g.pow(2).sum() for g in _gradients(reference, leaves, create_graph=True))
        assert any(bool(g.abs().sum() > 0) for g in torch.autograd.grad(penalty, leaves, allow_unused=True)
                   if g is not None)
    leaves = _leaves(case)
    penalty = sum(g.pow(2).sum() for g in _gradients(ours, leaves, create_graph=True))
    with pytest.raises(RuntimeError, match=f"tritonlayers::{op_name}: double backward .*create_graph=True"):
        penalty.backward()


def test_module_gradient_penalty_raises():
    """A converted model's layers in a gradient penalty (WGAN-GP style: the gradient of the critic's output
    with respect to its input, squared)."""
    import tritonlayers
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1)).double().to(DEVICE)
    model, _ = tritonlayers.convert(model)
    x = make_input((4, 6), torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        grad.pow(2).sum().backward()
