"""3-d pooling (two passes of the 2-d kernels) against torch: max / avg window sweeps with torch's refusals,
adaptive sizes, layouts (contiguous, channels_last_3d, strided), ties and NaN (torch's first maximum in scan
order, its last NaN), unbatched, dtypes, gradcheck, modules and convert, torch's errors."""
import itertools

import pytest
import torch
import torch.nn.functional as F

import tritonlayers.functional as TF
from helpers import DEVICE, FLOAT_DTYPES, check_refused_like_torch, gradcheck, make_input
from test_pooling import _compare, compare_adaptive, compare_module_and_convert, compare_or_refused

SHAPE = (2, 3, 5, 6, 7)
LAYOUTS = ["contiguous", "channels_last", "strided"]  # channels_last: channels_last_3d for 5-d




def _keeps_layout(x, y):
    channels_last = x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous()
    assert y.is_contiguous(memory_format=torch.channels_last_3d if channels_last else torch.contiguous_format)


MAX_CASES = list(itertools.product([2, 3, (1, 2, 2), (3, 1, 2)], [None, (1, 2, 1)], [0, 1, (1, 0, 1)], [1, 2],
                                   [False, True]))


@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode", MAX_CASES)
def test_max_pool3d_sweep(kernel, stride, padding, dilation, ceil_mode):
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    index = MAX_CASES.index((kernel, stride, padding, dilation, ceil_mode))
    x = make_input(SHAPE, torch.float64, LAYOUTS[index % 3])
    return_indices = index % 2 == 0
    y = compare_or_refused(lambda t: TF.max_pool3d(t, **kwargs, return_indices=return_indices),
                           lambda t: F.max_pool3d(t, **kwargs, return_indices=return_indices), x, SHAPE)
    if y is not None:
        _keeps_layout(x, y)


AVG_CASES = list(itertools.product([2, 3, (1, 2, 2), (2, 3, 1)], [None, (2, 1, 2)], [0, 1, (1, 0, 1)], [False, True],
                                   [True, False]))


@pytest.mark.parametrize("kernel,stride,padding,ceil_mode,count_include_pad", AVG_CASES)
def test_avg_pool3d_sweep(kernel, stride, padding, ceil_mode, count_include_pad):
    index = AVG_CASES.index((kernel, stride, padding, ceil_mode, count_include_pad))
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                  count_include_pad=count_include_pad, divisor_override=5 if index % 4 == 1 else None)
    x = make_input(SHAPE, torch.float64, LAYOUTS[index % 3])
    y = compare_or_refused(lambda t: TF.avg_pool3d(t, **kwargs), lambda t: F.avg_pool3d(t, **kwargs), x, SHAPE)
    if y is not None:
        _keeps_layout(x, y)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("output_size", [1, (1, 1, 1), (3, 4, 5), (5, 6, 7), (7, 2, 9), (None, 2, 3), (0, 2, 2)],
                         ids=str)
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_pool3d(kind, output_size, layout):
    x = make_input(SHAPE, torch.float64, layout)
    compare_adaptive(kind, 3, x, output_size)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_ties_and_nan_choose_like_torch(layout):
    """Whole boxes of equal values (torch takes the first in (d, h, w) order), -inf boxes and NaN (the last
    NaN): the separable passes choose the same element. torch's reference runs on a contiguous copy: its CPU
    channels_last_3d kernel returns, for a box of -inf, an index outside the box (d 0 for a box at d 2)."""
    x = torch.zeros(1, 2, 4, 4, 4, dtype=torch.float64)
    x[0, 0, 1:, 2:, :2] = float("-inf")
    x[0, 1, 0, 1, 1] = x[0, 1, 1, 0, 0] = x[0, 1, 3, 3, 3] = float("nan")
    x = x.to(DEVICE).contiguous(memory_format=torch.channels_last_3d if layout == "channels_last" else
                                torch.contiguous_format)
    for call in (lambda m, t: m.max_pool3d(t, 2, return_indices=True),
                 lambda m, t: m.max_pool3d(t, 3, 1, 1, return_indices=True),
                 lambda m, t: m.adaptive_max_pool3d(t, (3, 2, 3), return_indices=True)):
        _compare(lambda t: call(TF, t), lambda t: call(F, t.contiguous()), x)


CALLS = {
    "max": lambda m, t: m.max_pool3d(t, 3, 2, 1, return_indices=True),
    "c3d_max": lambda m, t: m.max_pool3d(t, (1, 2, 2)),  # C3D's first pool: the depth pass is skipped
    "avg": lambda m, t: m.avg_pool3d(t, 2, 2, ceil_mode=True),
    "adaptive_avg": lambda m, t: m.adaptive_avg_pool3d(t, (2, 3, 3)),
    "global_avg": lambda m, t: m.adaptive_avg_pool3d(t, 1),
    "global_max": lambda m, t: m.adaptive_max_pool3d(t, 1, return_indices=True),
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("case", list(CALLS))
def test_dtypes_and_unbatched(case, dtype):
    for x in (make_input((2, 4, 5, 6, 7), dtype, "channels_last"), make_input((4, 5, 6, 7), dtype)):
        _compare(lambda t: CALLS[case](TF, t), lambda t: CALLS[case](F, t), x, dtype)


def test_single_element_windows_do_not_alias_the_input():
    x = make_input(SHAPE, torch.float64)
    for y in (TF.max_pool3d(x, 1), TF.avg_pool3d(x, 1), TF.adaptive_avg_pool3d(x, SHAPE[2:]),
              TF.adaptive_max_pool3d(x, SHAPE[2:])):
        assert torch.equal(y, x) and y.data_ptr() != x.data_ptr()


def test_empty_batch():
    x = make_input((0, 3, 5, 6, 7), torch.float64)
    for case in CALLS:
        _compare(lambda t: CALLS[case](TF, t), lambda t: CALLS[case](F, t), x)


@pytest.mark.parametrize("case", ["max", "avg"])  # the sweeps compare every case's gradient with torch's
def test_gradcheck_fp64(case):
    x = make_input((1, 1, 3, 4, 3), torch.float64, requires_grad=True)
    gradcheck(lambda t: (lambda r: r[0] if isinstance(r, tuple) else r)(CALLS[case](TF, t)), x)


MODULES = {"MaxPool3d": dict(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), return_indices=True),
           "AvgPool3d": dict(kernel_size=2, stride=1, padding=1, count_include_pad=False),
           "AdaptiveAvgPool3d": dict(output_size=(2, 3, None)), "AdaptiveMaxPool3d": dict(output_size=2)}


@pytest.mark.parametrize("name", list(MODULES))
def test_modules_and_convert(name):
    compare_module_and_convert(name, MODULES[name], make_input(SHAPE, torch.float64, "channels_last"))


BAD_CALLS = {
    "3-d max": lambda m, x: m.max_pool3d(x[0, 0], 2),
    "6-d max": lambda m, x: m.max_pool3d(x[None], 2),
    "empty depth max": lambda m, x: m.max_pool3d(x[:, :, :0], 1),
    "two kernel sizes": lambda m, x: m.max_pool3d(x, (2, 2)),
    "float kernel": lambda m, x: m.max_pool3d(x, 2.0),
    "zero kernel": lambda m, x: m.max_pool3d(x, 0),
    "zero stride": lambda m, x: m.max_pool3d(x, 2, 0),
    "negative stride": lambda m, x: m.max_pool3d(x, 2, -1),
    "negative padding": lambda m, x: m.max_pool3d(x, 2, 1, -1),
    "padding over half": lambda m, x: m.max_pool3d(x, 2, 1, 2),
    "zero dilation": lambda m, x: m.max_pool3d(x, 2, 1, 0, 0),
    "window too big": lambda m, x: m.max_pool3d(x, 6),
    "3-d avg": lambda m, x: m.avg_pool3d(x[0, 0], 2),
    "zero kernel avg": lambda m, x: m.avg_pool3d(x, 0),
    "negative padding avg": lambda m, x: m.avg_pool3d(x, 2, 1, -1),
    "window too big avg": lambda m, x: m.avg_pool3d(x, 6),
    "zero divisor": lambda m, x: m.avg_pool3d(x, 2, divisor_override=0),
    "empty depth avg": lambda m, x: m.avg_pool3d(x[:, :, :0], 1),
    "3-d adaptive avg": lambda m, x: m.adaptive_avg_pool3d(x[0, 0], 2),
    "3-d adaptive max": lambda m, x: m.adaptive_max_pool3d(x[0, 0], 2),
    "two sizes adaptive avg": lambda m, x: m.adaptive_avg_pool3d(x, (2, 2)),
    "two sizes adaptive max": lambda m, x: m.adaptive_max_pool3d(x, (2, 2)),
    "empty depth adaptive": lambda m, x: m.adaptive_avg_pool3d(x[:, :, :0], 2),
    "negative size adaptive": lambda m, x: m.adaptive_avg_pool3d(x, -1),
}
# torch prints the sizes as {-1, -1,-1}; calls every empty dim "non-batch dimension 0" (ours names it)
SAME_TYPE_ONLY = {"negative size adaptive", "empty depth max", "empty depth avg"}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_inputs_raise_like_torch(case):
    x = torch.randn(SHAPE, dtype=torch.float64).to(DEVICE)
    check_refused_like_torch(BAD_CALLS[case], x, same_message=case not in SAME_TYPE_ONLY)


def test_integer_input_raises_naming_the_op():
    with pytest.raises(NotImplementedError, match="max_pool3d"):
        TF.max_pool3d(torch.zeros(SHAPE, dtype=torch.int64, device=DEVICE), 2)
