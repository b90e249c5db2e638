"""Pooling against torch over a broad sweep of windows (kernel, stride, padding, dilation, ceil_mode, windows
hanging over the edge): values, indices and gradients; adaptive and global pooling; NaN / -inf; dtypes,
layouts, modules and torch's errors. A sweep case torch refuses must be refused with the same exception."""
import itertools

import pytest
import torch
import torch.nn.functional as F

import tritonlayers.functional as TF
import tritonlayers.nn as tnn
from helpers import (DEVICE, FLOAT_DTYPES, assert_close, far_apart, gradcheck, make_input, raises_like,
                     torch_error)

SHAPE = (2, 3, 9, 10)  # odd and even spatial sizes


def _compare(ours, theirs, x, dtype=torch.float64):
    """Values (and indices when returned) and input gradients of ours(x) and theirs(x), theirs in fp64 on the
    CPU (same memory format): torch 2.11's CUDA avg_pool2d backward is wrong for channels_last with padding
    (pytorch/pytorch#188344), its CPU kernels are the reference."""
    x = x.detach().requires_grad_()
    x64 = x.detach().double().cpu().requires_grad_()
    got, expected = ours(x), theirs(x64)
    if isinstance(got, tuple):
        assert torch.equal(got[1].cpu(), expected[1]), "indices differ"
        assert got[1].dtype == torch.int64
        got, expected = got[0], expected[0]
    assert got.dtype == dtype and got.shape == expected.shape
    assert_close(got, expected.to(got.device), dtype, name="output")
    if got.numel():
        grad_output = make_input(tuple(got.shape), dtype, low=-1, high=1)
        (grad,) = torch.autograd.grad(got, x, grad_output)
        (expected_grad,) = torch.autograd.grad(expected, x64, grad_output.double().cpu())
        assert_close(grad, expected_grad.to(grad.device), dtype, name="grad_input")
    return got


def compare_or_refused(ours, theirs, x, probe_shape):
    """_compare(ours, theirs, x), or, where torch refuses the call on a probe_shape tensor, ours refusing it with
    torch's exception and message (None returned)."""
    refused = torch_error(lambda: theirs(torch.empty(probe_shape, dtype=torch.float64)))
    if refused is None:
        return _compare(ours, theirs, x)
    with raises_like(refused):
        ours(x)
    return None


def compare_module_and_convert(name, kwargs, x):
    """tritonlayers.nn.<name> subclasses torch's, convert() swaps torch's for it, and both give torch's values,
    indices and gradients on x."""
    import tritonlayers
    ours, theirs = getattr(tnn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert isinstance(ours, type(theirs))
    converted, report = tritonlayers.convert(torch.nn.Sequential(getattr(torch.nn, name)(**kwargs)))
    assert type(converted[0]) is type(ours), report
    for module in (ours, converted):
        _compare(module, theirs, x)


MAX_CASES = list(itertools.product([1, 2, 3, (2, 3), 5], [None, 1, 2, (2, 1), 3], [0, 1, (1, 0), 2], [1, 2],
                                   [False, True]))


@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode", MAX_CASES)
def test_max_pool2d_sweep(kernel, stride, padding, dilation, ceil_mode):
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode,
                  return_indices=True)
    layout = "channels_last" if MAX_CASES.index((kernel, stride, padding, dilation, ceil_mode)) % 2 else "contiguous"
    x = make_input(SHAPE, torch.float64, layout)
    y = compare_or_refused(lambda t: TF.max_pool2d(t, **kwargs), lambda t: F.max_pool2d(t, **kwargs), x, SHAPE)
    if y is not None and layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)


AVG_CASES = list(itertools.product([1, 2, 3, (3, 2), 4], [None, 1, 2, (1, 3)], [0, 1, (0, 2)], [False, True],
                                   [True, False], [None, 5]))


@pytest.mark.parametrize("kernel,stride,padding,ceil_mode,count_include_pad,divisor_override", AVG_CASES)
def test_avg_pool2d_sweep(kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                  count_include_pad=count_include_pad, divisor_override=divisor_override)
    index = AVG_CASES.index((kernel, stride, padding, ceil_mode, count_include_pad, divisor_override))
    x = make_input(SHAPE, torch.float64, "channels_last" if index % 2 else "contiguous")
    compare_or_refused(lambda t: TF.avg_pool2d(t, **kwargs), lambda t: F.avg_pool2d(t, **kwargs), x, SHAPE)


ADAPTIVE_SIZES = [(1, 1), 1, (4, 3), 7, (3, None), (9, 10), (13, 4), (0, 2)]


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("output_size", ADAPTIVE_SIZES, ids=str)
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_pooling(kind, output_size, layout):
    # (1, 1) and 1 take the global path; (13, 4) windows overlap; (0, 2) is empty, as torch allows
    compare_adaptive(kind, 2, make_input(SHAPE, torch.float64, layout), output_size)


def compare_adaptive(kind, dims, x, output_size):
    """adaptive_{kind}_pool{dims}d of x against torch's, max with its indices."""
    name, args = f"adaptive_{kind}_pool{dims}d", (output_size, True) if kind == "max" else (output_size,)
    _compare(lambda t: getattr(TF, name)(t, *args), lambda t: getattr(F, name)(t, *args), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("case", ["stem_max", "transition_avg", "adaptive_7", "global_avg", "global_max"])
def test_dtypes_and_network_geometries(case, layout, dtype):
    calls = {
        "stem_max": lambda m, t: m.max_pool2d(t, 3, 2, 1),  # ResNet stem
        "transition_avg": lambda m, t: m.avg_pool2d(t, 2, 2),  # DenseNet transition
        "adaptive_7": lambda m, t: m.adaptive_avg_pool2d(t, 7),  # VGG head
        "global_avg": lambda m, t: m.adaptive_avg_pool2d(t, 1),  # classifier head
        "global_max": lambda m, t: m.adaptive_max_pool2d(t, 1),
    }
    x = make_input((2, 5, 13, 11), dtype, layout)
    _compare(lambda t: calls[case](TF, t), lambda t: calls[case](F, t), x, dtype)


WINDOW_CALLS = {
    "max": lambda m, t: m.max_pool2d(t, 3, 2, 1, return_indices=True),
    "avg": lambda m, t: m.avg_pool2d(t, (3, 2), (1, 2), 1, ceil_mode=True, count_include_pad=False),
    "adaptive_avg": lambda m, t: m.adaptive_avg_pool2d(t, (4, 7)),  # overlapping windows
}


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("case", list(WINDOW_CALLS))
@pytest.mark.parametrize("shape,stacked", [((2, 5, 9, 11), False), ((3, 5, 1, 1), True)], ids=["planes", "stacked"])
def test_window_tiles_split_planes(case, layout, shape, stacked, monkeypatch):
    """The window kernels take the planes of the two innermost dims, (h, w) or (w, c), in [BLOCK_ROWS,
    BLOCK_COLS] tiles: the real tiles cover the small planes of the other tests, stacked, these forced 4x4 ones
    split 9 rows / 5 channels / 11 columns (outputs: 4 to 6 columns, 5 rows) into several blocks each, the last
    ones partial, or stack planes of one row, four to a tile. Several samples: planes past the first
    sample's."""
    import tritonlayers.kernels.pooling
    from tritonlayers.pooling import _window_grid
    monkeypatch.setattr(tritonlayers.kernels.pooling, "WINDOW_COLS", 4)
    monkeypatch.setattr(tritonlayers.kernels.pooling, "WINDOW_TILE", 16)
    assert tritonlayers.kernels.pooling.window_tile(9, 11) == (4, 4)
    assert _window_grid(*shape, layout == "channels_last", False)[1]["STACK_PLANES"] == stacked
    x = make_input(shape, torch.float32, layout)
    _compare(lambda t: WINDOW_CALLS[case](TF, t), lambda t: WINDOW_CALLS[case](F, t), x, torch.float32)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_global_pool_over_several_steps_and_channel_blocks(kind, layout, monkeypatch):
    """The global path's programs take BLOCK_C channels and walk positions BLOCK_S at a time: the real tiles
    cover the small maps of the other tests in one step, these forced ones take 13x11 = 143 positions in 18
    steps (the last partial) and 5 channels in 3 blocks (the last partial). Integer values tie across steps
    (argmax: the first), channel 1 of sample 0 has NaNs in two steps (the last wins), channel 2 of sample 1
    is all -inf (position 0)."""
    import tritonlayers.pooling
    monkeypatch.setattr(tritonlayers.pooling, "global_pool_forward_config", lambda *args: (2, 8, 1))
    monkeypatch.setattr(tritonlayers.pooling, "global_pool_config", lambda *args: (2, 8, 1))
    blocks = []
    launch = tritonlayers.pooling.run_kernel
    monkeypatch.setattr(tritonlayers.pooling, "run_kernel", lambda kernel, grid, *args, **kwargs: (
        blocks.append((kernel.__name__, kwargs["BLOCK_C"], kwargs["BLOCK_S"])),
        launch(kernel, grid, *args, **kwargs))[1])
    x = make_input((2, 5, 13, 11), torch.float32, layout).round()
    if kind == "max":
        x[0, 1, 5, 3] = x[0, 1, 12, 0] = float("nan")  # positions 58 and 132
        x[1, 2] = float("-inf")
        _compare(lambda t: TF.adaptive_max_pool2d(t, 1, True), lambda t: F.adaptive_max_pool2d(t, 1, True), x,
                 torch.float32)
    else:
        _compare(lambda t: TF.adaptive_avg_pool2d(t, 1), lambda t: F.adaptive_avg_pool2d(t, 1), x, torch.float32)
    assert blocks == [("global_pool_forward_kernel", 2, 8), ("global_pool_backward_kernel", 2, 8)], blocks


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dilation", [2, (2, 1), (1, 2)])
def test_dilated_window_the_size_of_the_input_is_not_global(dilation, layout):
    """A kernel the size of the input, dilated, with ceil_mode: one output whose window skips rows or columns
    (and hangs over the edge), so not the global reduction (which took the maximum of the whole map)."""
    x = make_input((2, 3, 2, 3), torch.float64, layout)
    _compare(lambda t: TF.max_pool2d(t, (2, 3), 3, dilation=dilation, ceil_mode=True, return_indices=True),
             lambda t: F.max_pool2d(t, (2, 3), 3, dilation=dilation, ceil_mode=True, return_indices=True), x)


@pytest.mark.parametrize("call", [lambda m, t: m.max_pool2d(t, 2, 1, return_indices=True),
                                  lambda m, t: m.adaptive_max_pool2d(t, 1, True),
                                  lambda m, t: m.max_pool2d(t, (2, 3), return_indices=True)],
                         ids=["window", "global", "kernel-covers-input"])
def test_nan_and_minus_inf_like_torch(call):
    values = torch.tensor([[float("nan"), 1.0, 3.0], [float("nan"), float("-inf"), 2.0]], device=DEVICE)
    for x in (values, torch.full((2, 3), float("-inf"), device=DEVICE), values.flip(0)):
        x = x.reshape(1, 1, 2, 3)
        ours, theirs = call(TF, x), call(F, x)
        assert_close(ours[0], theirs[0])
        assert torch.equal(ours[1], theirs[1])


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_window_kernels_walk_memory_order(layout, monkeypatch):
    """The window kernels number elements in the tensor's memory order (channels innermost for
    channels_last, so neighbouring lanes read neighbouring addresses), forward and backward: values are
    right in either order, so only the launch shows it (the forward once walked channels_last as NCHW)."""
    import tritonlayers.pooling
    walks = []
    launch = tritonlayers.pooling.run_kernel
    monkeypatch.setattr(tritonlayers.pooling, "run_kernel", lambda kernel, grid, *args, **kwargs: (
        walks.append((kernel.__name__, kwargs.get("CHANNELS_LAST"))), launch(kernel, grid, *args, **kwargs))[1])
    x = make_input(SHAPE, torch.float32, layout)
    _compare(lambda t: TF.max_pool2d(t, 3, 2, 1), lambda t: F.max_pool2d(t, 3, 2, 1), x, torch.float32)
    channels_last = layout == "channels_last"
    assert walks == [("pool2d_forward_kernel", channels_last), ("pool2d_backward_kernel", channels_last)], walks


def test_unbatched_strided_and_empty_batch():
    x = make_input((3, 9, 10), torch.float64)
    _compare(lambda t: TF.max_pool2d(t, 3, 2, 1), lambda t: F.max_pool2d(t, 3, 2, 1), x)
    wide = make_input((2, 3, 9, 20), torch.float64)[..., ::2]  # a non-dense view
    _compare(lambda t: TF.avg_pool2d(t, 3, 2, 1), lambda t: F.avg_pool2d(t, 3, 2, 1), wide)
    assert TF.max_pool2d(torch.empty(0, 3, 4, 4, device=DEVICE), 2).shape == (0, 3, 2, 2)


@pytest.mark.parametrize("kernel,dtype", [(3, torch.int8), (13, torch.int16)])
def test_max_pool_saves_small_window_positions(kernel, dtype):
    x = make_input((1, 2, 16, 16), torch.float32, requires_grad=True)
    y = TF.max_pool2d(x, kernel, 1)
    (position,) = y.grad_fn.saved_tensors
    assert position.dtype == dtype  # torch would keep int64 indices
    assert TF.avg_pool2d(x, 3).grad_fn.saved_tensors == (None,)


@pytest.mark.parametrize("call", [lambda t: TF.avg_pool2d(t, 3, 2, 1, count_include_pad=False),
                                  lambda t: TF.adaptive_avg_pool2d(t, (2, 3)),
                                  lambda t: TF.max_pool2d(t, 2, 1, 1),
                                  lambda t: TF.adaptive_max_pool2d(t, 1)],
                         ids=["avg", "adaptive_avg", "max", "global_max"])
def test_gradcheck_fp64(call):
    x = make_input((1, 2, 4, 5), torch.float64, requires_grad=True)
    gradcheck(call, x)


MODULES = [("MaxPool2d", dict(kernel_size=3, stride=2, padding=1, return_indices=True)),
           ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
           ("AdaptiveAvgPool2d", dict(output_size=(3, None))), ("AdaptiveMaxPool2d", dict(output_size=2))]


@pytest.mark.parametrize("name,kwargs", MODULES, ids=[m[0] for m in MODULES])
def test_modules_match_torch_twins(name, kwargs):
    ours, theirs = getattr(tnn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert isinstance(ours, type(theirs)) and repr(ours) == repr(theirs)
    _compare(ours, theirs, make_input(SHAPE, torch.float64))


@pytest.mark.parametrize("flatten", [False, True])
def test_global_pool_modules(flatten):
    x = make_input(SHAPE, torch.float64, "channels_last")
    avg, biggest = tnn.GlobalAvgPool2d(flatten), tnn.GlobalMaxPool2d(flatten, return_indices=True)
    assert isinstance(avg, torch.nn.AdaptiveAvgPool2d) and f"flatten={flatten}" in repr(avg)
    expected_avg, (expected_max, expected_index) = F.adaptive_avg_pool2d(x, 1), F.adaptive_max_pool2d(x, 1, True)
    if flatten:
        expected_avg, expected_max, expected_index = (t.flatten(1) for t in (expected_avg, expected_max,
                                                                             expected_index))
    assert_close(avg(x), expected_avg)
    values, index = biggest(x)
    assert_close(values, expected_max)
    assert torch.equal(index, expected_index)


def test_bad_inputs_raise_like_torch():
    x = torch.randn(1, 3, 4, 4, device=DEVICE)
    cases = [
        (RuntimeError, "stride should not be zero", lambda: TF.max_pool2d(x, 0)),
        (RuntimeError, "kernel size should be greater than zero, but got kH: -1 kW: -1", lambda: TF.avg_pool2d(x, -1)),
        (RuntimeError, "dilation should be greater than zero, but got dilationH: 0 dilationW: 0",
         lambda: TF.max_pool2d(x, 2, 1, 0, 0)),
        (RuntimeError, "pad should be at most half of effective kernel size, but got pad=2, kernel_size=3 and "
                       "dilation=1", lambda: TF.max_pool2d(x, 3, 1, 2)),
        (RuntimeError, "pad should be smaller than or equal to half of kernel size, but got padW = 2, padH = 2, "
                       "kW = 3, kH = 3", lambda: TF.max_pool2d(x, 3, 1, 2, 2)),
        (RuntimeError, "Given input size: \\(3x4x4\\). Calculated output size: \\(3x0x0\\). Output size is too small",
         lambda: TF.max_pool2d(x, 5)),
        (RuntimeError, "non-empty 3D or 4D \\(batch mode\\) tensor expected for input",
         lambda: TF.max_pool2d(torch.randn(4, 4, device=DEVICE), 2)),
        (RuntimeError, "optional 0 dim batch size for input, but got:\\[1, 3, 0, 4\\]",
         lambda: TF.max_pool2d(torch.randn(1, 3, 0, 4, device=DEVICE), 2)),
        (RuntimeError, "adaptive_avg_pool2d\\(\\): Expected 3D or 4D tensor, but got \\[4, 4\\]",
         lambda: TF.adaptive_avg_pool2d(torch.randn(4, 4, device=DEVICE), 2)),
        (RuntimeError, "with dimension 2 being empty",
         lambda: TF.adaptive_avg_pool2d(torch.randn(1, 3, 0, 4, device=DEVICE), 2)),
        (RuntimeError, "divisor must be not zero", lambda: TF.avg_pool2d(x, 2, divisor_override=0)),
        (RuntimeError, "pad must be non-negative, but got pad: -1", lambda: TF.avg_pool2d(x, 3, 1, (0, -1))),
        (TypeError, "'kernel_size' must be an int or a pair of ints, got True", lambda: TF.max_pool2d(x, True)),
        (NotImplementedError, "'input' has dtype torch.int64",
         lambda: TF.max_pool2d(torch.ones(1, 3, 4, 4, dtype=torch.int64, device=DEVICE), 2)),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_int64_index_path(layout, wide_index, monkeypatch):
    # int64 offsets, and int64 adaptive window arithmetic (else int32: the products fit below 2**31)
    import tritonlayers.pooling
    monkeypatch.setattr(tritonlayers.pooling, "WIDE_WINDOW_THRESHOLD", 0)
    assert tritonlayers.pooling._constexprs(tritonlayers.pooling.PoolPlan("adaptive_avg", (9, 10), (4, 3)))[
        "WIDE_WINDOW"]
    x = make_input(SHAPE, torch.float64, layout)
    _compare(lambda t: TF.adaptive_avg_pool2d(t, (4, 3)), lambda t: F.adaptive_avg_pool2d(t, (4, 3)), x)
    _compare(lambda t: TF.max_pool2d(t, 3, 2, 1, return_indices=True),
             lambda t: F.max_pool2d(t, 3, 2, 1, return_indices=True), x)
    _compare(lambda t: TF.avg_pool2d(t, 2, 1, 1, count_include_pad=False),
             lambda t: F.avg_pool2d(t, 2, 1, 1, count_include_pad=False), x)
    _compare(lambda t: TF.adaptive_max_pool2d(t, (4, 3)), lambda t: F.adaptive_max_pool2d(t, (4, 3)), x)
    for op in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):  # the global kernels
        _compare(lambda t: getattr(TF, op)(t, 1), lambda t: getattr(F, op)(t, 1), x)


@pytest.mark.usefixtures("releases_gpu_memory")
@pytest.mark.parametrize("op", ["adaptive_avg_pool2d", "adaptive_max_pool2d", "max_pool2d", "avg_pool2d"])
def test_offsets_past_int32(op):
    """Maps whose rows lie 2**30 + 64 elements apart (one value a row: the global kernels walk them as one
    position axis) and samples as far apart: offsets past int32, taken in int64 (the global kernels read
    outside the map before: a segfault through the interpreter)."""
    samples = far_apart((3, 2, 4, 1), torch.float16)
    maps = far_apart((3, 2, 1, 1), torch.float16).permute(3, 1, 0, 2)  # (1, 2, 3, 1): rows (H) far apart
    for x in (samples, maps):
        kernel = {"max_pool2d": (2, 1), "avg_pool2d": (2, 1)}.get(op, 1)
        _compare(lambda t: getattr(TF, op)(t, kernel), lambda t: getattr(F, op)(t, kernel), x.detach(), torch.float16)
