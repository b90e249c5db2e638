"""1-d pooling against torch: max / avg sweeps over windows (torch-refused geometries refused alike), adaptive
sizes, layouts of (N, C, L) tensors (contiguous, strided along L, channels innermost), unbatched inputs,
dtypes, modules and convert, and torch's argument errors with their messages."""
import itertools

import pytest
import torch
import torch.nn.functional as F

import tritonlayers.functional as TF
from helpers import DEVICE, FLOAT_DTYPES, check_refused_like_torch, gradcheck, make_input
from test_pooling import _compare, compare_adaptive, compare_module_and_convert, compare_or_refused

SHAPE = (2, 3, 11)
LAYOUTS = ["contiguous", "strided", "permuted"]  # permuted: channels innermost, as (N, L, C).transpose(1, 2)


def _input(layout, dtype=torch.float64, shape=SHAPE):
    if layout == "permuted":
        return make_input((shape[0], shape[2], shape[1]), dtype).transpose(1, 2)
    return make_input(shape, dtype, layout)



MAX_CASES = list(itertools.product([2, 3, 5, (4,)], [None, 2, (3,)], [0, 1, 2], [1, 3], [False, True]))


@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode", MAX_CASES)
def test_max_pool1d_sweep(kernel, stride, padding, dilation, ceil_mode):
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    index = MAX_CASES.index((kernel, stride, padding, dilation, ceil_mode))
    x = _input(LAYOUTS[index % 3])
    return_indices = index % 2 == 0
    compare_or_refused(lambda t: TF.max_pool1d(t, **kwargs, return_indices=return_indices),
                       lambda t: F.max_pool1d(t, **kwargs, return_indices=return_indices), x, SHAPE)


AVG_CASES = list(itertools.product([1, 3, (4,)], [None, (2,)], [0, 1, 2], [False, True], [True, False]))


@pytest.mark.parametrize("kernel,stride,padding,ceil_mode,count_include_pad", AVG_CASES)
def test_avg_pool1d_sweep(kernel, stride, padding, ceil_mode, count_include_pad):
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                  count_include_pad=count_include_pad)
    index = AVG_CASES.index((kernel, stride, padding, ceil_mode, count_include_pad))
    x = _input(LAYOUTS[index % 3])
    compare_or_refused(lambda t: TF.avg_pool1d(t, **kwargs), lambda t: F.avg_pool1d(t, **kwargs), x, SHAPE)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("output_size", [1, 3, (4,), 11, 13, 0])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_pool1d(kind, output_size, layout):
    # 1 takes the global path, 13 > L overlaps windows, 0 is empty as torch allows
    x = _input(layout)
    compare_adaptive(kind, 1, x, output_size)


CALLS = {
    "max": lambda m, t: m.max_pool1d(t, 3, 2, 1, return_indices=True),
    "avg": lambda m, t: m.avg_pool1d(t, 4, 3, 2, ceil_mode=True, count_include_pad=False),
    "adaptive_avg": lambda m, t: m.adaptive_avg_pool1d(t, 4),
    "adaptive_max": lambda m, t: m.adaptive_max_pool1d(t, 4, return_indices=True),
    "global_max": lambda m, t: m.adaptive_max_pool1d(t, 1),
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("case", list(CALLS))
def test_dtypes_and_unbatched(case, dtype):
    for x in (_input("contiguous", dtype, (2, 5, 13)), _input("permuted", dtype, (1, 5, 13))[0]):
        _compare(lambda t: CALLS[case](TF, t), lambda t: CALLS[case](F, t), x, dtype)


def test_empty_batch():
    x = _input("contiguous", shape=(0, 3, 11))
    for case in CALLS:
        _compare(lambda t: CALLS[case](TF, t), lambda t: CALLS[case](F, t), x)


@pytest.mark.parametrize("case", list(CALLS))
def test_gradcheck_fp64(case):
    x = make_input((2, 2, 7), torch.float64, requires_grad=True)
    gradcheck(lambda t: (lambda r: r[0] if isinstance(r, tuple) else r)(CALLS[case](TF, t)), x)


MODULES = {"MaxPool1d": dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True),
           "AvgPool1d": dict(kernel_size=3, stride=1, padding=1, count_include_pad=False),
           "AdaptiveAvgPool1d": dict(output_size=5), "AdaptiveMaxPool1d": dict(output_size=5, return_indices=True)}


@pytest.mark.parametrize("name", list(MODULES))
def test_modules_and_convert(name):
    compare_module_and_convert(name, MODULES[name], _input("contiguous"))



BAD_CALLS = {
    "4-d max": lambda m, x: m.max_pool1d(x[None], 2),
    "1-d max": lambda m, x: m.max_pool1d(x[0, 0], 2),
    "empty length max": lambda m, x: m.max_pool1d(x[..., :0], 1),
    "empty channels max": lambda m, x: m.max_pool1d(x[:, :0], 2),
    "two kernel sizes": lambda m, x: m.max_pool1d(x, (2, 2)),
    "two strides": lambda m, x: m.max_pool1d(x, 2, (1, 1)),
    "two paddings": lambda m, x: m.max_pool1d(x, 2, 1, (1, 1)),
    "two dilations": lambda m, x: m.max_pool1d(x, 2, 1, 0, (1, 1)),
    "float kernel": lambda m, x: m.max_pool1d(x, 2.0),
    "bool kernel": lambda m, x: m.max_pool1d(x, True),
    "zero kernel": lambda m, x: m.max_pool1d(x, 0),
    "negative stride": lambda m, x: m.max_pool1d(x, 2, -1),
    "negative padding": lambda m, x: m.max_pool1d(x, 2, 1, -1),
    "zero dilation": lambda m, x: m.max_pool1d(x, 2, 1, 0, 0),
    "window too big": lambda m, x: m.max_pool1d(x, 12),
    "integer max": lambda m, x: m.max_pool1d(x.long(), 2),
    # with indices torch checks as avg_pool1d does, then defers to max_pool2d's checks and messages
    "4-d max with indices": lambda m, x: m.max_pool1d(x[None], 2, return_indices=True),
    "two kernel sizes with indices": lambda m, x: m.max_pool1d(x, (2, 2), return_indices=True),
    "zero kernel with indices": lambda m, x: m.max_pool1d(x, 0, return_indices=True),
    "window too big with indices": lambda m, x: m.max_pool1d(x, 12, return_indices=True),
    "empty length with indices": lambda m, x: m.max_pool1d(x[..., :0], 1, return_indices=True),
    "4-d avg": lambda m, x: m.avg_pool1d(x[None], 2),
    "two kernel sizes avg": lambda m, x: m.avg_pool1d(x, (2, 2)),
    "two strides avg": lambda m, x: m.avg_pool1d(x, 2, (1, 1)),
    "zero kernel avg": lambda m, x: m.avg_pool1d(x, 0),
    "negative padding avg": lambda m, x: m.avg_pool1d(x, 2, 1, -1),
    "padding over half avg": lambda m, x: m.avg_pool1d(x, 2, 1, 2),
    "window too big avg": lambda m, x: m.avg_pool1d(x, 12),
    "empty length avg": lambda m, x: m.avg_pool1d(x[..., :0], 1),
    "4-d adaptive avg": lambda m, x: m.adaptive_avg_pool1d(x[None], 2),
    "two sizes adaptive avg": lambda m, x: m.adaptive_avg_pool1d(x, (4, 4)),
    "two sizes adaptive max": lambda m, x: m.adaptive_max_pool1d(x, (4, 4)),
    "empty length adaptive max": lambda m, x: m.adaptive_max_pool1d(x[..., :0], 2),
    "None size adaptive avg": lambda m, x: m.adaptive_avg_pool1d(x, None),
}
SAME_TYPE_ONLY = {"integer max", "None size adaptive avg"}  # our messages name the op's argument in our words


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_inputs_raise_like_torch(case):
    x = torch.randn(SHAPE, dtype=torch.float64).to(DEVICE)
    check_refused_like_torch(BAD_CALLS[case], x, same_message=case not in SAME_TYPE_ONLY)
