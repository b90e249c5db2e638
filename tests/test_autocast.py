"""torch.autocast: each functional op returns the dtype its torch twin returns under the same autocast (on the
CPU: linear and convolutions in the autocast dtype, the rest in the input's; on CUDA also softmax and softplus
in fp32), with the twin's values and gradient dtypes.

On the CPU, bf16 tl.dot computes wrong numbers in Triton's interpreter, so the GEMM layers' values are
checked on a GPU only (their dtypes and shapes everywhere).
"""
import pytest
import torch
import torch.nn.functional as F

import tritonlayers.functional as TF
from helpers import DEVICE, ON_GPU, assert_close, gpu_only, make_input

AUTOCAST_DTYPES = [torch.bfloat16] + ([torch.float16] if ON_GPU else [])


def _params(channels):
    """(weight, bias, running_mean, running_var) in fp32, as a model keeps them under autocast (drawn from a
    generator of their own: made at collection, they must not move the global generator)."""
    generator = torch.Generator().manual_seed(0)
    weight = make_input((channels,), torch.float32, low=0.5, high=1.5, generator=generator)
    bias = make_input((channels,), torch.float32, generator=generator)
    return weight, bias, torch.zeros(channels, device=DEVICE), torch.ones(channels, device=DEVICE)


BN_PARAMS = _params(3)

# name: f(module, x) over an (N, C, H, W) input, run with tritonlayers.functional (ours) and
# torch.nn.functional (the twin) as the module
CASES = {
    "relu": lambda f, x: f.relu(x),
    "gelu": lambda f, x: f.gelu(x),
    "silu": lambda f, x: f.silu(x),
    "sigmoid": lambda f, x: torch.sigmoid(x) if f is F else f.sigmoid(x),
    "softplus": lambda f, x: f.softplus(x),  # CUDA autocast: fp32
    "softmax": lambda f, x: f.softmax(x, 1),  # CUDA autocast: fp32
    "log_softmax": lambda f, x: f.log_softmax(x, 1),
    "softmax_given_dtype": lambda f, x: f.softmax(x, 1, dtype=torch.float16),  # an explicit dtype is kept
    "batch_norm_train": lambda f, x: f.batch_norm(x, *[t.clone() for t in BN_PARAMS[2:]], *BN_PARAMS[:2], True),
    "batch_norm_eval": lambda f, x: f.batch_norm(x, *BN_PARAMS[2:], *BN_PARAMS[:2], False),
    "max_pool2d": lambda f, x: f.max_pool2d(x, 2),
    "avg_pool2d": lambda f, x: f.avg_pool2d(x, 3, 1, 1),
    "adaptive_avg_pool2d": lambda f, x: f.adaptive_avg_pool2d(x, 1),
    "adaptive_max_pool2d": lambda f, x: f.adaptive_max_pool2d(x, (2, 3)),
}


def _run(fn, module, x, autocast_dtype):
    """(output, input gradient for a fixed random cotangent) of fn under autocast, the backward outside it as
    usual."""
    x = x.detach().requires_grad_()
    with torch.autocast(DEVICE.type, dtype=autocast_dtype):
        y = fn(module, x)
    cotangent = make_input(y.shape, y.dtype, low=-1, high=1, generator=torch.Generator().manual_seed(0))
    (grad,) = torch.autograd.grad(y, x, cotangent)
    return y, grad


@pytest.mark.parametrize("autocast_dtype", AUTOCAST_DTYPES, ids=str)
@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", list(CASES))
def test_op_follows_torch_autocast(case, input_dtype, autocast_dtype):
    x = make_input((2, 3, 4, 6), input_dtype)
    y, grad = _run(CASES[case], TF, x, autocast_dtype)
    expected, expected_grad = _run(CASES[case], F, x, autocast_dtype)
    assert y.dtype == expected.dtype and grad.dtype == expected_grad.dtype
    tolerance_dtype = torch.bfloat16 if torch.bfloat16 in (y.dtype, input_dtype) else y.dtype
    assert_close(y, expected, dtype=tolerance_dtype, name="output")
    assert_close(grad, expected_grad, dtype=tolerance_dtype, scale_atol=4, name="input gradient")


def test_dropout_keeps_the_input_dtype():
    x = make_input((4, 8), torch.float32, low=1, high=2)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        y, expected = TF.dropout(x, 0.5), F.dropout(x, 0.5)
        fused = TF.fused_dropout(x, 0.5, bias=torch.ones(8, device=DEVICE), activation="relu")
    assert y.dtype == expected.dtype == fused.dtype == torch.float32
    kept = y != 0
    assert_close(y[kept], x[kept] * 2)


# name: f(module, x, weight, bias), with its input and weight shapes
GEMM_CASES = {
    "linear": (lambda f, x, w, b: f.linear(x, w, b), (5, 7), (4, 7)),
    "linear_fused": (lambda f, x, w, b: TF.linear(x, w, b, activation="gelu") if f is TF else F.gelu(F.linear(x, w, b)),
                     (5, 7), (4, 7)),
    "conv2d": (lambda f, x, w, b: f.conv2d(x, w, b), (2, 4, 3, 5), (6, 4, 1, 1)),
    "conv_transpose2d": (lambda f, x, w, b: f.conv_transpose2d(x, w, b, stride=2), (2, 4, 3, 5), (4, 3, 2, 2)),
}


def _gemm(case, module, input_dtype, autocast_dtype):
    fn, input_shape, weight_shape = GEMM_CASES[case]
    x = make_input(input_shape, input_dtype, low=-1, high=1, generator=torch.Generator().manual_seed(0))
    weight = make_input(weight_shape, torch.float32, low=-1, high=1, generator=torch.Generator().manual_seed(1),
                        requires_grad=True)
    bias = make_input((weight_shape[1] if case == "conv_transpose2d" else weight_shape[0],), torch.float32,
                      generator=torch.Generator().manual_seed(2), requires_grad=True)  # the same bias for both
    with torch.autocast(DEVICE.type, dtype=autocast_dtype):
        y = fn(module, x, weight, bias)
    y.float().sum().backward()
    return y, weight.grad


def _check_gemm(case, input_dtype, autocast_dtype, values):
    y, grad = _gemm(case, TF, input_dtype, autocast_dtype)
    expected, expected_grad = _gemm(case, F, input_dtype, autocast_dtype)
    assert y.dtype == expected.dtype == autocast_dtype and y.shape == expected.shape
    assert grad.dtype == expected_grad.dtype == torch.float32  # the fp32 weight's gradient, through the cast
    if values:
        assert_close(y, expected, dtype=autocast_dtype, scale_atol=4, name="output")
        assert_close(grad, expected_grad, dtype=autocast_dtype, scale_atol=16, name="weight gradient")


@pytest.mark.parametrize("autocast_dtype", AUTOCAST_DTYPES, ids=str)
@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", list(GEMM_CASES))
def test_gemm_layer_runs_in_the_autocast_dtype(case, input_dtype, autocast_dtype):
    _check_gemm(case, input_dtype, autocast_dtype, values=False)


@gpu_only("bf16 tl.dot gives wrong numbers in Triton's interpreter")
@pytest.mark.parametrize("autocast_dtype", AUTOCAST_DTYPES, ids=str)
@pytest.mark.parametrize("case", list(GEMM_CASES))
def test_gemm_layer_values_under_autocast(case, autocast_dtype):
    _check_gemm(case, torch.float32, autocast_dtype, values=True)


def test_fp64_is_left_alone():
    # autocast never casts fp64 (torch's is_eligible), so fp64 layers keep fp64
    x = make_input((3, 4), torch.float64)
    weight = make_input((2, 4), torch.float64)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        assert TF.linear(x, weight).dtype == F.linear(x, weight).dtype == torch.float64
        assert TF.softmax(x, 1).dtype == F.softmax(x, 1).dtype == torch.float64
