"""Activation family against torch: values, gradients, layouts, special values, in-place, gradcheck, errors."""
import pytest
import torch
import torch.nn.functional as F

import tritonlayers
import tritonlayers.functional as TF
from helpers import DEVICE, FLOAT_DTYPES, assert_close, gradcheck, make_input, raises_like, torch_error

# (functional name, keyword arguments): torch's defaults plus non-default parameters.
ACTIVATIONS = [
    ("relu", {}),
    ("relu6", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"negative_slope": 0.25}),
    ("leaky_relu", {"negative_slope": -0.5}),
    ("elu", {}),
    ("elu", {"alpha": 0.5}),
    ("gelu", {}),
    ("gelu", {"approximate": "tanh"}),
    ("silu", {}),
    ("mish", {}),
    ("hardswish", {}),
    ("hardsigmoid", {}),
    ("softplus", {}),
    ("softplus", {"beta": 2.0, "threshold": 5.0}),
    ("sigmoid", {}),
    ("tanh", {}),
]
ACTIVATION_IDS = [name + "".join(f"-{k}={v}" for k, v in kwargs.items()) for name, kwargs in ACTIVATIONS]
INPLACE = ["relu", "relu6", "leaky_relu", "elu", "silu", "mish", "hardswish", "hardsigmoid"]

# Kinks, clamps and thresholds of the formulas (where a wrong comparison shows), tails where exp
# under/overflows, and values that are tiny in magnitude (where expm1/log1p keep digits).
SPECIAL_POINTS = [-30.0, -20.5, -6.0, -3.0, -2.5, -1.0, -0.5, -1e-3, -1e-6, 0.0, 1e-6, 1e-3, 0.5, 1.0, 2.5, 2.9, 3.0,
                  6.0, 7.0, 10.0, 20.5, 25.0]

# (shape, layout), each with why it is here.
SHAPES = [
    ((3, 5, 7), "contiguous"),  # primes: no dim a multiple of a block
    ((3, 5, 7), "strided"),  # every other element: not dense, the 4-d strided path
    ((3, 5, 7), "permuted"),  # dense but not contiguous: flat path over a permuted layout
    ((2, 3, 5, 7), "channels_last"),  # NHWC memory, output must stay channels_last
    ((4097,), "contiguous"),  # two programs, the second holding one element
    ((1,), "contiguous"),  # a single element
]


def _input_with_specials(shape, dtype, layout):
    x = make_input(shape, dtype, layout, low=-8, high=8)
    flat = x.detach().reshape(-1)
    count = min(flat.numel(), len(SPECIAL_POINTS))
    specials = torch.tensor(SPECIAL_POINTS[:count], dtype=torch.float64).to(dtype=dtype, device=DEVICE)
    if x.is_contiguous():
        x.view(-1)[:count] = specials
    else:  # write through the view so the layout is kept
        index = torch.unravel_index(torch.arange(count), shape)
        x[index] = specials
    return x


def _reference(name, x, kwargs, grad_output):
    """torch's values and input gradient, evaluated in fp64 on the same (rounded) inputs."""
    x64 = x.detach().to(torch.float64).requires_grad_()
    out = getattr(F, name)(x64, **kwargs)
    (grad,) = torch.autograd.grad(out, x64, grad_output.to(torch.float64))
    return out, grad


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("shape,layout", SHAPES, ids=[f"{s}-{layout}" for s, layout in SHAPES])
@pytest.mark.parametrize("name,kwargs", ACTIVATIONS, ids=ACTIVATION_IDS)
def test_values_and_gradients(name, kwargs, shape, layout, dtype):
    x = _input_with_specials(shape, dtype, layout).requires_grad_()
    y = getattr(TF, name)(x, **kwargs)
    grad_output = make_input(shape, dtype, low=-1, high=1)
    (grad,) = torch.autograd.grad(y, x, grad_output)
    expected, expected_grad = _reference(name, x, kwargs, grad_output)
    assert y.dtype == dtype and grad.dtype == dtype
    assert_close(y, expected, dtype, name="output")
    assert_close(grad, expected_grad, dtype, name="grad_input")
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("name,kwargs", ACTIVATIONS, ids=ACTIVATION_IDS)
def test_non_finite_values_match_torch(name, kwargs):
    values = [float("nan"), float("inf"), float("-inf"), 0.0, -0.0, 1.0, -1.0, 1e30, -1e30]
    x = torch.tensor(values, device=DEVICE).requires_grad_()
    y = getattr(TF, name)(x, **kwargs)
    y.backward(torch.ones_like(y))
    # torch's reference element by element: on its vectorized CPU path (AVX-512) fp32 gelu gives NaN at +inf;
    # its scalar path, like CUDA's kernels, gives inf
    reference_x = x.detach().clone().requires_grad_()
    expected = torch.cat([getattr(F, name)(element, **kwargs) for element in reference_x.split(1)])
    expected.backward(torch.ones_like(expected))
    assert_close(y, expected, atol=0, rtol=1e-6, name="output")
    assert_close(x.grad, reference_x.grad, atol=0, rtol=1e-6, name="grad_input")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_tensor_spanning_several_strided_dims_is_copied_correctly(dtype):
    # Five dims none of which merge: more than the kernels' 4-d indexing, so the launcher copies.
    base = make_input((4, 3, 6, 5, 4), dtype)
    x = base[::2, :, ::2, :, ::2].requires_grad_()
    y = TF.silu(x)
    (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
    expected, expected_grad = _reference("silu", x, {}, torch.ones_like(y))
    assert_close(y, expected, name="output")
    assert_close(grad, expected_grad, name="grad_input")


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("name", ["gelu", "mish", "sigmoid"])
def test_int64_index_path(name, layout, wide_index):
    x = _input_with_specials((3, 5, 7), torch.float32, layout).requires_grad_()
    y = getattr(TF, name)(x)
    (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
    expected, expected_grad = _reference(name, x, {}, torch.ones_like(y))
    assert_close(y, expected, name="output")
    assert_close(grad, expected_grad, name="grad_input")


def test_empty_tensor():
    x = torch.empty(0, 4, device=DEVICE, requires_grad=True)
    y = TF.gelu(x)
    assert y.shape == (0, 4)
    y.sum().backward()
    assert x.grad.shape == (0, 4)


@pytest.mark.parametrize("name", INPLACE)
def test_inplace_matches_torch(name):
    kwargs = {"negative_slope": 0.25} if name == "leaky_relu" else {}
    leaf = _input_with_specials((3, 7), torch.float64, "contiguous").requires_grad_()
    x = leaf * 1  # a non-leaf: in-place on a leaf that requires grad is an error, as in torch
    y = getattr(TF, name)(x, inplace=True, **kwargs)
    assert y is x
    y.backward(torch.linspace(-1, 1, 21, dtype=torch.float64, device=DEVICE).reshape(3, 7))
    ref_leaf = leaf.detach().clone().requires_grad_()
    expected = getattr(F, name)(ref_leaf * 1, inplace=True, **kwargs)
    expected.backward(torch.linspace(-1, 1, 21, dtype=torch.float64, device=DEVICE).reshape(3, 7))
    assert_close(y, expected)
    assert_close(leaf.grad, ref_leaf.grad)


def test_inplace_on_leaf_requiring_grad_raises_like_torch():
    x = torch.randn(4, device=DEVICE, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        TF.relu(x, inplace=True)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "hardswish", "silu"])
def test_inplace_into_shared_memory_raises_like_torch(name):
    """An expanded view's elements share memory: torch refuses to write it in place, and so do we (our
    programs would race on the shared elements)."""
    expected = torch_error(lambda: getattr(F, name)(torch.zeros(1, 5).expand(3, 5), inplace=True))
    with raises_like(expected):
        getattr(TF, name)(make_input((1, 5), torch.float32).expand(3, 5), inplace=True)


def test_inplace_without_grad_writes_input():
    x = torch.tensor([-1.0, 2.0, -3.0], device=DEVICE)
    out = TF.relu6(x, inplace=True)
    assert out is x
    assert x.tolist() == [0.0, 2.0, 0.0]


@pytest.mark.parametrize("name,kwargs", [("leaky_relu", {"negative_slope": -0.5}), ("elu", {"alpha": -1.0})])
def test_inplace_negative_slope_backward_raises_like_torch(name, kwargs):
    x = torch.randn(5, device=DEVICE, requires_grad=True) * 1
    y = getattr(TF, name)(x, inplace=True, **kwargs)
    with pytest.raises(RuntimeError, match="negative slope which is not supported"):
        y.sum().backward()


@pytest.mark.parametrize("name,expect", [("relu", "input"), ("sigmoid", "output"), ("tanh", "output"),
                                         ("gelu", "input")])
def test_backward_saves_one_tensor(name, expect):
    x = torch.randn(6, device=DEVICE, requires_grad=True)
    y = getattr(TF, name)(x)
    saved = y.grad_fn.saved_tensors
    assert len(saved) == 1
    assert torch.equal(saved[0], x if expect == "input" else y)


@pytest.mark.parametrize("name,kwargs", ACTIVATIONS, ids=ACTIVATION_IDS)
def test_gradcheck_fp64(name, kwargs):
    # Points away from kinks, where finite differences are undefined.
    x = torch.tensor([-4.1, -2.2, -0.7, 0.35, 1.3, 4.6, 7.3], dtype=torch.float64, device=DEVICE,
                     requires_grad=True)
    gradcheck(lambda t: getattr(TF, name)(t, **kwargs), x)


def test_integer_input_is_refused_by_name():
    with pytest.raises(NotImplementedError, match="'input' has dtype torch.int64"):
        TF.relu(torch.tensor([1, -2], device=DEVICE))


def test_non_tensor_input_raises_type_error():
    with pytest.raises(TypeError, match="argument 'input' must be Tensor"):
        TF.silu([1.0, 2.0])


def test_gelu_approximate_is_validated_like_torch():
    x = torch.randn(3, device=DEVICE)
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        TF.gelu(x, approximate="fast")
    with pytest.raises(TypeError, match="'approximate' must be str"):
        TF.gelu(x, approximate=None)


def test_cpu_tensor_without_interpreter_says_how_to_enable_it(tmp_path):
    import subprocess
    import sys
    env = {k: v for k, v in __import__("os").environ.items() if k != "TRITON_INTERPRET"}
    script = "import torch, tritonlayers.functional as F\nF.relu(torch.randn(3))\n"
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0
    assert "TRITON_INTERPRET=1" in result.stderr and "RuntimeError" in result.stderr


@pytest.mark.parametrize("module,expected", [
    (torch.nn.LeakyReLU(0.2), ("leaky_relu", 0.2, 0.0)),
    (torch.nn.ELU(0.5), ("elu", 0.5, 0.0)),
    (torch.nn.Softplus(2.0, 10.0), ("softplus", 2.0, 10.0)),
    (torch.nn.GELU("tanh"), ("gelu_tanh", 0.0, 0.0)),
    (torch.nn.ReLU(), ("relu", 0.0, 0.0)),
    ("softplus", ("softplus", 1.0, 20.0)),
    (None, ("identity", 0.0, 0.0)),
])
def test_resolve_activation(module, expected):
    spec = tritonlayers.resolve_activation(module)
    assert (spec.name, spec.param_a, spec.param_b) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["swish", torch.nn.Linear(2, 2), 3])
def test_resolve_activation_rejects_unknown(bad):
    with pytest.raises(ValueError, match="'activation' must be one of"):
        tritonlayers.resolve_activation(bad)
