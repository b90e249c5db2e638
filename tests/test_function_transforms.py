"""torch.func transforms and forward-mode AD over the functional ops. vmap works: each call runs under its
per-sample fallback through the registered op (a batched tensor has no storage a kernel could read). The
differentiating transforms (grad, jvp) and forward_ad's dual tensors raise NotImplementedError naming the op:
they used to lose the derivative silently (a jvp of zeros, a tangent of None)."""
import pytest
import torch
import torch.autograd.forward_ad as forward_ad
import torch.nn.functional as TF

import tritonlayers.functional as F
from helpers import DEVICE, assert_close, make_input

WEIGHT = torch.linspace(-1, 1, 6 * 5, dtype=torch.float64).view(6, 5)
CASES = {
    "relu": (F.relu, TF.relu),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), lambda t: TF.gelu(t, approximate="tanh")),
    "softmax": (lambda t: F.softmax(t, -1), lambda t: TF.softmax(t, -1)),
    "linear_relu": (lambda t: F.linear(t, WEIGHT.to(DEVICE), activation="relu"),
                    lambda t: TF.relu(TF.linear(t, WEIGHT.to(DEVICE)))),
    "max_pool2d": (lambda t: F.max_pool2d(t[None], 2, 1)[0], lambda t: TF.max_pool2d(t[None], 2, 1)[0]),
    "conv2d": (lambda t: F.conv2d(t[None], WEIGHT.to(DEVICE)[:, :4, None, None])[0],
               lambda t: TF.conv2d(t[None], WEIGHT.to(DEVICE)[:, :4, None, None])[0]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_vmap_matches_torch(case):
    ours, reference = CASES[case]
    x = make_input((3, 4, 3, 5), torch.float64, generator=torch.Generator().manual_seed(0))
    assert_close(torch.func.vmap(ours)(x), torch.func.vmap(reference)(x))


def test_vmap_of_batch_norm_raises():
    """BatchNorm writes its running statistics: vmap's fallback refuses an op that writes (torch's error)."""
    x = make_input((3, 4, 2, 5), torch.float64)
    mean, var = torch.zeros(2, device=DEVICE, dtype=torch.float64), torch.ones(2, device=DEVICE, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="tritonlayers::batch_norm"):
        torch.func.vmap(lambda t: F.batch_norm(t, mean, var, training=True))(x)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("transform", ["grad", "jvp", "forward_ad"])
def test_differentiating_transforms_raise_naming_the_op(case, transform):
    ours, reference = CASES[case]
    x = make_input((4, 3, 5), torch.float64, generator=torch.Generator().manual_seed(0))
    tangent = torch.linspace(-1, 2, x.numel(), dtype=x.dtype, device=x.device).view(x.shape)

    def derivative(fn):
        if transform == "grad":
            return torch.func.grad(lambda t: fn(t).pow(2).sum())(x)
        if transform == "jvp":
            return torch.func.jvp(fn, (x,), (tangent,))[1]
        with forward_ad.dual_level():
            return forward_ad.unpack_dual(fn(forward_ad.make_dual(x, tangent))).tangent

    assert bool(derivative(reference).abs().sum() > 0)  # torch's op has a derivative to lose
    with pytest.raises(NotImplementedError, match=r"tritonlayers::\w+: .*(torch.func|forward-mode)"):
        derivative(ours)


def test_forward_ad_level_without_tangents_runs():
    """Inside a dual level, tensors without tangents still run (through the registered op)."""
    x = make_input((4, 3, 5), torch.float64)
    with forward_ad.dual_level():
        assert_close(F.softmax(x, -1), TF.softmax(x, -1))
