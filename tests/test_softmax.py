"""softmax / log_softmax against torch: both kernel paths, every dim and layout, dtype=, special rows,
gradcheck and errors."""
import pytest
import torch
import torch.nn.functional as F

import tritonlayers.functional as TF
from helpers import DEVICE, FLOAT_DTYPES, assert_close, gradcheck, make_input
from tritonlayers._layout import reduction_geometry
from tritonlayers.kernels import softmax as softmax_kernels
from tritonlayers.kernels.softmax import softmax_launch_config

FUNCTIONS = ["softmax", "log_softmax"]


def _kernel_path(x, dim, direction="fwd"):
    """'single' or 'multi': the kernel path a call on x takes in a direction (checked so a test named for a
    path reaches it)."""
    output = torch.empty_like(x)
    _, rows, columns, strides = reduction_geometry(dim % x.dim(), x, output)
    _, _, single_block, _ = softmax_launch_config(rows, columns, rows_contiguous=strides[0][1] == 1,
                                                  fp64=x.dtype == torch.float64,
                                                  live_tensors=1 if direction == "fwd" else 2)
    return "single" if single_block else "multi"


LOW_PRECISION = (torch.float16, torch.bfloat16)


def _reference_backward(name, output, grad_output, dim):
    """ATen's backward formulas in fp64 applied to a given (possibly rounded) output."""
    y, g = output.to(torch.float64), grad_output.to(torch.float64)
    if name == "softmax":
        return y * (g - (g * y).sum(dim, keepdim=True))
    return g - y.exp() * g.sum(dim, keepdim=True)


def _check(name, x, dim, dtype=None, grad_scale_atol=1.0):
    """Values and input gradient of tritonlayers vs an fp64 reference on the same inputs.

    fp16/bf16 outputs: backward works from the rounded output (as torch's does), so the gradient reference
    applies the backward formula to that output; otherwise it is torch's fp64 autograd end to end.
    """
    x = x.detach().requires_grad_()
    y = getattr(TF, name)(x, dim, dtype=dtype)
    grad_output = make_input(tuple(y.shape), y.dtype, low=-1, high=1)
    (grad,) = torch.autograd.grad(y, x, grad_output)
    x64 = x.detach().to(torch.float64).requires_grad_()
    # torch casts to dtype first; emulate that rounding before computing the fp64 reference.
    expected = getattr(F, name)(x64 if dtype is None else x64.to(dtype).to(torch.float64), dim)
    if y.dtype in LOW_PRECISION:
        expected_grad = _reference_backward(name, y, grad_output, dim)
    else:
        (expected_grad,) = torch.autograd.grad(expected, x64, grad_output.to(torch.float64))
    assert y.dtype == (dtype or x.dtype) and grad.dtype == x.dtype
    assert_close(y, expected, y.dtype, name="output")
    coarser = x.dtype if x.dtype in LOW_PRECISION else y.dtype
    assert_close(grad, expected_grad, coarser, scale_atol=grad_scale_atol, name="grad_input")
    return y


# (shape, dim, layout, path): the path each case must reach, and why the case is here.
CASES = [
    ((5, 21), -1, "contiguous", "single"),  # classifier head with a prime class count, several rows per program
    ((5, 21), 0, "contiguous", "single"),  # reduce over the strided dim, columns contiguous
    ((7, 1152), -1, "contiguous", "single"),  # N=1152, where eager softmax has a cliff
    ((2, 32000), -1, "contiguous", "single"),  # a 32000-class head row in one tile (fp64 and backward: two)
    ((2, 3, 5, 7), 1, "contiguous", "single"),  # NCHW channel softmax (segmentation), no transposing copy
    ((2, 3, 5, 7), 1, "channels_last", "single"),  # NHWC: channel dim contiguous
    ((2, 3, 5, 7), 3, "channels_last", "single"),  # last dim strided, channels contiguous
    ((2, 3, 5, 7), 0, "permuted", "single"),  # dense, fully permuted
    ((3, 5, 7), 2, "strided", "single"),  # not dense: every other element
    ((4, 1), 1, "contiguous", "single"),  # rows of one element
    ((1, 1), 0, "contiguous", "single"),  # a single element
    ((3, 40009), -1, "contiguous", "multi"),  # prime row length past one tile: online multi-block path
    ((2, 600, 5, 7), 1, "contiguous", "multi"),  # long non-last dim: multi-block with contiguous columns
    ((2, 600, 5, 7), 1, "channels_last", "single"),  # the same tensor NHWC: rows contiguous, one tile
    ((8, 1000), -1, "contiguous", "single"),  # ImageNet head: 1000 = 8 x 125, ALIGN 8 (16-byte accesses)
    ((4, 20), 0, "contiguous", "single"),  # columns of 20 = 4 x 5: ALIGN 4 on the strided dim's offsets
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("shape,dim,layout,path", CASES, ids=[f"{s}-dim{d}-{lay}-{p}" for s, d, lay, p in CASES])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_values_and_gradients(name, shape, dim, layout, path, dtype):
    x = make_input(shape, dtype, layout, low=-6, high=6)
    if shape == (2, 32000) and dtype == torch.float64:
        path = "multi"
    assert _kernel_path(x, dim) == path
    if path == "multi":
        assert _kernel_path(x, dim, "bwd") == "multi"
    # a gradient summed over a long row carries that many roundings
    _check(name, x, dim, grad_scale_atol=max(1.0, shape[dim] / 1000))


@pytest.mark.parametrize("shape,dim,align", [((8, 1000), -1, 8), ((4, 20), 0, 4), ((6, 1000), -1, 2),
                                             ((16, 1152), -1, 0), ((5, 21), -1, 0)])
def test_kernels_get_the_alignment_triton_cannot_see(shape, dim, align, monkeypatch):
    """Sizes and strides that are multiples of 2, 4 or 8 but not all of 16 reach both kernels as ALIGN (on a
    GPU: 16-byte accesses along 1000-wide rows instead of single elements); a wrong one would drop
    elements, which the values would show."""
    import tritonlayers.softmax as host
    launched = []
    run_kernel = host.run_kernel
    monkeypatch.setattr(host, "run_kernel", lambda kernel, grid, *args, **kwargs: launched.append(
        kwargs.get("ALIGN", 0)) or run_kernel(kernel, grid, *args, **kwargs))
    _check("softmax", make_input(shape, torch.float32, low=-6, high=6), dim)
    assert launched == [align, align]


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("length", [262144, 262147])
def test_rows_past_256k_elements(name, length):
    x = make_input((2, length), torch.float32, low=-20, high=20)
    assert _kernel_path(x, 1) == "multi"
    _check(name, x, 1, grad_scale_atol=length / 1000)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape,dim,layout,path", [((5, 21), -1, "contiguous", "single"),
                                                   ((2, 3, 5, 7), 1, "channels_last", "single"),
                                                   ((3, 40009), -1, "contiguous", "multi")])
def test_int64_index_path(name, shape, dim, layout, path, wide_index):
    x = make_input(shape, torch.float32, layout, low=-6, high=6)
    assert _kernel_path(x, dim) == path
    _check(name, x, dim, grad_scale_atol=max(1.0, shape[dim] / 1000))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_output_keeps_channels_last(name):
    x = make_input((2, 4, 3, 5), torch.float32, "channels_last")
    assert getattr(TF, name)(x, 1).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("input_dtype,dtype", [(torch.float16, torch.float32), (torch.bfloat16, torch.float32),
                                               (torch.float32, torch.float16), (torch.float32, torch.float64),
                                               (torch.bfloat16, torch.float64), (torch.float64, torch.bfloat16)])
def test_dtype_argument_casts_like_torch(name, input_dtype, dtype):
    # fp64 <-> bf16: fp64 values reach bf16 through fp32, as torch's cast does (and Triton's interpreter needs)
    x = make_input((3, 37), input_dtype)
    _check(name, x, 1, dtype=dtype)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_integer_input_with_floating_dtype(name):
    x = torch.arange(-6, 6, device=DEVICE).reshape(3, 4)
    assert_close(getattr(TF, name)(x, 1, dtype=torch.float32), getattr(F, name)(x, 1, dtype=torch.float32))


SPECIAL_ROWS = [
    [float("-inf")] * 4,  # all -inf: NaN in torch
    [float("-inf"), 0.0, 1.0, float("-inf")],  # masked positions
    [float("inf"), 0.0, 1.0, 2.0],  # +inf
    [float("inf"), float("inf"), 0.0, 0.0],
    [float("nan"), 0.0, 1.0, 2.0],  # NaN
    [1e30, -1e30, 0.0, 3.0],  # huge finite values
]


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dim", [0, 1])
def test_special_rows_match_torch(name, dim):
    x = torch.tensor(SPECIAL_ROWS, device=DEVICE)
    x = x if dim == 1 else x.t().contiguous()
    x.requires_grad_()
    y = getattr(TF, name)(x, dim)
    y.backward(torch.ones_like(y))
    reference_x = x.detach().clone().requires_grad_()
    expected = getattr(F, name)(reference_x, dim)
    expected.backward(torch.ones_like(expected))
    assert_close(y, expected, name="output")
    assert_close(x.grad, reference_x.grad, name="grad_input")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_multi_block_row_whose_first_chunks_are_all_minus_inf(name):
    # The online pass must not turn a column into NaN while its running max is still -inf.
    x = torch.full((2, 40009), float("-inf"), device=DEVICE)
    x[:, 36000:] = torch.randn(2, 4009, device=DEVICE)
    assert _kernel_path(x, 1) == "multi"
    y = getattr(TF, name)(x, 1)
    assert_close(y, getattr(F, name)(x, 1))
    assert not torch.isnan(y).any()


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (2, 0, 4)])
def test_empty_tensors(name, shape):
    x = torch.empty(shape, device=DEVICE, requires_grad=True)
    y = getattr(TF, name)(x, 1)
    assert y.shape == shape
    y.sum().backward()
    assert x.grad.shape == shape


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dim", [0, -1])
def test_zero_dim_tensor(name, dim):
    x = torch.tensor(1.5, device=DEVICE, requires_grad=True)
    y = getattr(TF, name)(x, dim)
    assert y.shape == () and y.item() == getattr(F, name)(x.detach(), dim).item()
    y.backward()
    assert x.grad.item() == 0.0


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape,dim", [((3, 4), 1), ((3, 2, 2), 0), ((2, 3, 2), 1), ((1, 2, 1, 3), 3)])
def test_gradcheck_fp64(name, shape, dim):
    x = make_input(shape, torch.float64, low=-3, high=3, requires_grad=True)
    gradcheck(lambda t: getattr(TF, name)(t, dim), x)


@pytest.fixture
def small_tile(monkeypatch):
    """Shrink the register tile so small tensors take the multi-block path (gradcheck needs small ones)."""
    monkeypatch.setattr(softmax_kernels, "MAX_TILE_BYTES", 128)  # 32 fp32 or 16 fp64 values


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape,dim", [((1, 37), 1), ((19, 2), 0)])
def test_gradcheck_fp64_multi_block(name, shape, dim, small_tile):
    x = make_input(shape, torch.float64, low=-3, high=3, requires_grad=True)
    assert _kernel_path(x, dim) == "multi"
    gradcheck(lambda t: getattr(TF, name)(t, dim), x, fast_mode=True)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("shape,dim,layout", [((3, 41), 1, "contiguous"), ((2, 41, 3, 5), 1, "contiguous"),
                                              ((2, 41, 3, 5), 1, "channels_last"), ((41, 6), 0, "strided")])
def test_multi_block_chunk_boundaries(name, dtype, shape, dim, layout, small_tile):
    # rows of 41 in chunks of at most 32 values: a partial last chunk, several chunks per row
    x = make_input(shape, dtype, layout, low=-6, high=6)
    assert _kernel_path(x, dim) == "multi"
    _check(name, x, dim)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_implicit_dim_warns_like_torch(name):
    x = make_input((2, 3, 4), torch.float32)
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        y = getattr(TF, name)(x)
    with pytest.warns(UserWarning):
        expected = getattr(F, name)(x)
    assert_close(y, expected)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_bad_inputs_raise_torch_exception_types(name):
    fn = getattr(TF, name)
    x = torch.randn(3, 4, device=DEVICE)
    with pytest.raises(IndexError, match=r"expected to be in range of \[-2, 1\], but got 2"):
        fn(x, 2)
    with pytest.raises(IndexError, match=r"range of \[-1, 0\], but got 1"):
        fn(torch.tensor(1.0, device=DEVICE), 1)
    with pytest.raises(NotImplementedError, match="'input' has dtype torch.int64"):
        fn(torch.arange(4, device=DEVICE), 0)
    with pytest.raises(NotImplementedError, match="'dtype' has dtype torch.int32"):
        fn(x, 1, dtype=torch.int32)
    with pytest.raises(TypeError, match="'input' must be Tensor"):
        fn([1.0, 2.0], 0)
