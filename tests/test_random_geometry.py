"""Seeded random cases against torch's CPU kernels in fp64: geometry, layouts and fusions drawn together, as a
user's model combines them, where the other files pick cases one concern at a time. Each case number is its
own seed, so a failure names a reproducible case. Found this way: a 1-D linear input's bias gradient, the
layout torch gives a convolution fed a channels_last weight, a dilated max-pool window the size of its input
taken for a global pool, and a BatchNorm mean a plain fp32 sum left an ulp or two off. (2,500 such cases of
1-d and 3-d pooling found nothing but torch's CPU max_pool3d refusing an unbatched input laid out
channels_last.)"""
import random
import re

import pytest
import torch
import torch.nn.functional as F

import tritonlayers.functional as TF
from helpers import LAYOUTS, activate, assert_close, make_input

ACTIVATIONS = [None, "relu", "gelu", "silu", "sigmoid", "tanh", "leaky_relu", "elu", "hardswish", "hardsigmoid",
               "mish", "softplus", "relu6"]
CASES = 100


def _draw(shape, rng, low=-4.0, high=4.0, channels_last_dims=(4,)):
    """fp64 values on DEVICE in a layout drawn from helpers.LAYOUTS (channels_last for the ranks in
    channels_last_dims only: channels_last_3d for 5-D)."""
    layouts = [layout for layout in LAYOUTS if layout != "channels_last" or len(shape) in channels_last_dims]
    layout = rng.choice(layouts) if shape else "contiguous"
    return make_input(shape, torch.float64, layout, low, high, torch.Generator().manual_seed(rng.randrange(2**31)))


def _layout(tensor):
    return tensor.is_contiguous(), tensor.is_contiguous(memory_format=torch.channels_last)


def _leaves(tensors):
    """(ours, torch's CPU copies), each requiring grad; None stays None. Ours keep their layouts."""
    ours = [t.detach().requires_grad_() if t is not None else None for t in tensors]
    theirs = [t.detach().to("cpu", copy=True).requires_grad_() if t is not None else None for t in tensors]
    return ours, theirs


def _compare_with_grads(got, expected, ours, theirs, rng):
    assert_close(got, expected, name="output")
    generator = torch.Generator().manual_seed(rng.randrange(2**31))
    grad = torch.randn(expected.shape, dtype=expected.dtype, generator=generator)
    wanted = [(a, b) for a, b in zip(ours, theirs) if a is not None]
    got_grads = torch.autograd.grad(got, [a for a, _ in wanted], grad.to(got.device))
    expected_grads = torch.autograd.grad(expected, [b for _, b in wanted], grad)
    for index, (got_grad, expected_grad) in enumerate(zip(got_grads, expected_grads)):
        assert_close(got_grad, expected_grad, name=f"grad {index}")


def _gemm_case(rng):
    kind = rng.choice(["conv2d", "conv_transpose2d", "linear"])
    activation = rng.choice(ACTIVATIONS + (["softmax", "log_softmax"] if kind == "linear" else []))
    bias_wanted = rng.random() < 0.6
    if kind == "conv2d":
        groups = rng.choice([1, 1, 2, 3])
        in_channels, out_channels = groups * rng.randint(1, 5), groups * rng.randint(1, 4)
        x = _draw((rng.randint(1, 3), in_channels, rng.randint(1, 9), rng.randint(1, 9)), rng)
        weight = _draw((out_channels, in_channels // groups, 1, 1), rng)
        extra = dict(stride=(rng.randint(1, 3), rng.randint(1, 3)), groups=groups)
    elif kind == "conv_transpose2d":
        groups = rng.choice([1, 1, 2])
        in_channels, out_group = groups * rng.randint(1, 4), rng.randint(1, 3)
        kernel = (rng.randint(1, 3), rng.randint(1, 3))
        x = _draw((rng.randint(1, 3), in_channels, rng.randint(1, 5), rng.randint(1, 5)), rng)
        weight = _draw((in_channels, out_group, *kernel), rng)
        out_channels = out_group * groups
        extra = dict(stride=kernel, groups=groups)
    else:
        lead = tuple(rng.randint(1, 4) for _ in range(rng.randint(0, 3)))
        in_features, out_channels = rng.randint(1, 40), rng.randint(1, 40)
        x = _draw((*lead, in_features), rng)
        weight = _draw((out_channels, in_features), rng)
        extra = {}
    bias = _draw((out_channels,), rng) if bias_wanted else None
    return kind, activation, x, weight, bias, extra


@pytest.mark.parametrize("case", range(CASES))
def test_gemm_layers(case):
    rng = random.Random(case)
    kind, activation, x, weight, bias, extra = _gemm_case(rng)
    ours, theirs = _leaves([x, weight, bias])
    got = getattr(TF, kind)(*ours, activation=activation, **extra)
    expected = getattr(F, kind)(*theirs, **extra)
    if activation in ("softmax", "log_softmax"):
        expected = getattr(F, activation)(expected, -1)
    else:
        expected = activate(expected, activation)
    if kind != "linear":
        assert _layout(got) == _layout(expected)
    _compare_with_grads(got, expected, ours, theirs, rng)


def _pool_case(rng):
    x = _draw((rng.randint(1, 3), rng.randint(1, 5), rng.randint(1, 11), rng.randint(1, 11)), rng)
    if rng.random() < 0.2:
        x.round_()  # ties: the first maximum in scan order wins
    op = rng.choice(["max_pool2d", "avg_pool2d", "adaptive_max_pool2d", "adaptive_avg_pool2d"])
    if op.startswith("adaptive"):
        extra = dict(output_size=rng.choice([1, (rng.randint(1, 6), rng.randint(1, 6)), (None, rng.randint(1, 4))]))
    else:
        kernel = (rng.randint(1, 4), rng.randint(1, 4))
        extra = dict(kernel_size=kernel, stride=rng.choice([None, 1, 2, (rng.randint(1, 3), rng.randint(1, 3))]),
                     padding=(rng.randint(0, kernel[0] // 2), rng.randint(0, kernel[1] // 2)),
                     ceil_mode=rng.random() < 0.4)
        if op == "max_pool2d":
            extra["dilation"] = rng.choice([1, 2, (1, 2)])
        else:
            extra["count_include_pad"] = rng.random() < 0.5
            extra["divisor_override"] = rng.choice([None, None, rng.randint(1, 5)])
    if op.endswith("max_pool2d"):
        extra["return_indices"] = rng.random() < 0.4
    return op, x, extra


def _pool_1d_3d_case(rng):
    """A 1-d or 3-d pooling op, batched or not: the 2-d kernels on a view (1-d) or in two passes (3-d)."""
    dims = rng.choice([1, 3])
    shape = [rng.randint(1, 3)] * rng.randint(0, 1) + [rng.randint(1, 4)] + [rng.randint(1, 14 if dims == 1 else 7)
                                                                            for _ in range(dims)]
    # channels_last_3d for batched 3-d input only: torch's CPU max_pool3d refuses an unbatched (C, D, H, W)
    # input laid out channels_last (ours pools it)
    x = _draw(tuple(shape), rng, channels_last_dims=(5,))
    if rng.random() < 0.2:
        x.round_()  # ties: the first maximum in scan order wins
    kind = rng.choice(["max", "avg", "adaptive_max", "adaptive_avg"])

    def sizes(low, high):  # an int, or one per spatial dim
        return rng.choice([rng.randint(low, high), tuple(rng.randint(low, high) for _ in range(dims))])
    if kind.startswith("adaptive"):
        extra = dict(output_size=sizes(1, 5))
        if dims == 3 and rng.random() < 0.3:
            extra["output_size"] = (None, rng.randint(1, 4), None)
    else:
        kernel = [rng.randint(1, 4) for _ in range(dims)]
        extra = dict(kernel_size=tuple(kernel), stride=rng.choice([None, 1, 2, sizes(1, 3)]),
                     padding=rng.choice([0, tuple(rng.randint(0, size // 2) for size in kernel)]),
                     ceil_mode=rng.random() < 0.4)
        if kind == "max":
            extra["dilation"] = rng.choice([1, 2, sizes(1, 2)])
        else:
            extra["count_include_pad"] = rng.random() < 0.5
            if dims == 3:  # avg_pool1d has none
                extra["divisor_override"] = rng.choice([None, None, rng.randint(1, 5)])
    if kind.endswith("max"):
        extra["return_indices"] = rng.random() < 0.4
    return f"{kind}_pool{dims}d", x, extra


@pytest.mark.parametrize("draw", [_pool_case, _pool_1d_3d_case], ids=["2d", "1d_3d"])
@pytest.mark.parametrize("case", range(CASES))
def test_pooling(case, draw):
    rng = random.Random(case)
    op, x, extra = draw(rng)
    try:
        expected = getattr(F, op)(x.cpu(), **extra)
    except RuntimeError as error:  # geometry torch refuses: refused alike
        with pytest.raises(RuntimeError, match=re.escape(str(error)[:40])):
            getattr(TF, op)(x, **extra)
        return
    ours, theirs = _leaves([x])
    got, expected = getattr(TF, op)(*ours, **extra), getattr(F, op)(*theirs, **extra)
    if extra.get("return_indices"):
        got, got_indices = got
        expected, expected_indices = expected
    if not torch.isfinite(expected).all():  # a window wholly in padding: torch's backward scatters out of bounds
        assert_close(got, expected, name="output")
        return
    if extra.get("return_indices"):
        assert torch.equal(got_indices.cpu(), expected_indices)
    _compare_with_grads(got, expected, ours, theirs, rng)


@pytest.mark.parametrize("case", range(CASES))
def test_batch_norm(case):
    rng = random.Random(case)
    channels = rng.randint(1, 6)
    shape = (rng.randint(2, 4), channels) + tuple(rng.randint(1, 6) for _ in range(rng.choice([0, 1, 2, 2, 3])))
    spread, offset = rng.choice([1, 10]), rng.choice([0, 3, -100])
    x = _draw(shape, rng, offset - 2 * spread, offset + 2 * spread)
    training, affine, running = rng.random() < 0.7, rng.random() < 0.7, rng.random() < 0.8
    running = running or not training
    activation = rng.choice([None, "relu", "silu", "leaky_relu", "sigmoid"])
    residual = _draw(shape, rng) if rng.random() < 0.3 else None
    weight, bias = (_draw((channels,), rng) for _ in range(2)) if affine else (None, None)
    stats = (_draw((channels,), rng), _draw((channels,), rng, 0.5, 1.5)) if running else (None, None)
    momentum = rng.choice([0.1, 0.5, 1.0, 0.0])
    ours, theirs = _leaves([x, weight, bias, residual])
    our_stats = list(stats)
    their_stats = [s.to("cpu", copy=True) if s is not None else None for s in stats]
    got = TF.batch_norm(ours[0], *our_stats, ours[1], ours[2], training, momentum, activation=activation,
                        residual=ours[3])
    expected = F.batch_norm(theirs[0], *their_stats, theirs[1], theirs[2], training, momentum)
    expected = activate(expected + theirs[3] if residual is not None else expected, activation)
    for name, our_stat, their_stat in zip(("running_mean", "running_var"), our_stats, their_stats):
        if our_stat is not None:
            assert_close(our_stat, their_stat, name=name)
    _compare_with_grads(got, expected, ours, theirs, rng)
