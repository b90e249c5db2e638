"""Activation math (value and derivative side by side) and the standalone activation kernels.

Every fused epilogue (BatchNorm, GEMM, dropout) applies an activation through `apply_activation` and
differentiates it through `activation_backward_from_input` / `_from_output`, selected by the same
constexpr id, so each formula is written once. Math runs in the compute dtype (fp32, or fp64 for fp64
tensors); formulas and boundary conventions follow ATen's so results and NaN handling match torch.
"""
import triton
import triton.language as tl

from .elementwise import block_offsets, tensor_offsets
from .precision import to_compute_dtype, typed

IDENTITY = tl.constexpr(0)
RELU = tl.constexpr(1)
RELU6 = tl.constexpr(2)
LEAKY_RELU = tl.constexpr(3)  # param_a: negative_slope
ELU = tl.constexpr(4)  # param_a: alpha
GELU = tl.constexpr(5)
GELU_TANH = tl.constexpr(6)
SILU = tl.constexpr(7)
MISH = tl.constexpr(8)
HARDSWISH = tl.constexpr(9)
HARDSIGMOID = tl.constexpr(10)
SOFTPLUS = tl.constexpr(11)  # param_a: beta, param_b: threshold
SIGMOID = tl.constexpr(12)
TANH = tl.constexpr(13)

# Host-side ids, by the names tritonlayers' `activation=` arguments take.
ACTIVATION_IDS = {
    "identity": IDENTITY.value,
    "relu": RELU.value,
    "relu6": RELU6.value,
    "leaky_relu": LEAKY_RELU.value,
    "elu": ELU.value,
    "gelu": GELU.value,
    "gelu_tanh": GELU_TANH.value,
    "silu": SILU.value,
    "mish": MISH.value,
    "hardswish": HARDSWISH.value,
    "hardsigmoid": HARDSIGMOID.value,
    "softplus": SOFTPLUS.value,
    "sigmoid": SIGMOID.value,
    "tanh": TANH.value,
}

# Activations whose derivative is a function of the output alone (given the parameter conditions the
# host checks: leaky_relu slope > 0, elu alpha >= 0); in-place forms and fused epilogues that keep only
# the output use this.
BACKWARD_FROM_OUTPUT = frozenset(
    {IDENTITY.value, RELU.value, RELU6.value, LEAKY_RELU.value, ELU.value, HARDSIGMOID.value, SIGMOID.value,
     TANH.value})


@triton.jit
def expm1(x):
    # Kahan's trick: (u - 1) * x / log(u) cancels the rounding of u = exp(x), so tiny x keeps its digits.
    u = tl.exp(x)
    um1 = u - 1
    small = tl.where(um1 == 0, x, um1 * x / tl.where(um1 == 0, 1, tl.log(u)))
    return tl.where((u == 0) | (u == float("inf")) | (um1 == -1), um1, small)


@triton.jit
def log1p(v):
    # Goldberg's trick, accurate for small v; callers pass finite v >= 0.
    u = 1 + v
    return tl.where(u == 1, v, tl.log(u) * v / tl.where(u == 1, 1, u - 1))


@triton.jit
def sigmoid_pair(x):
    """(sigmoid(x), 1 - sigmoid(x)), each without cancellation in either tail."""
    z = tl.exp(-tl.abs(x))
    large = 1 / (1 + z)
    small = z / (1 + z)
    return tl.where(x >= 0, large, small), tl.where(x >= 0, small, large)


@triton.jit
def sigmoid(x):
    s, _ = sigmoid_pair(x)
    return s


@triton.jit
def tanh(x):
    t = expm1(-2 * tl.abs(x))
    magnitude = -t / (2 + t)
    return tl.where(x < 0, -magnitude, magnitude)


@triton.jit
def softplus_unit(x):
    """log(1 + exp(x)) without overflow."""
    return tl.where(x > 0, x, 0) + log1p(tl.exp(-tl.abs(x)))


@triton.jit
def clamp_nan(x, low, high):
    """clamp that keeps NaN, like torch.clamp (tl.minimum/maximum may drop it)."""
    return tl.where(x < low, low, tl.where(x > high, high, x))


@triton.jit
def gelu_tanh_inner(x):
    # sqrt(2 / pi) * (x + 0.044715 x^3)
    return typed(0.7978845608028654, x) * (x + typed(0.044715, x) * x * x * x)


@triton.jit
def apply_activation(x, ACTIVATION: tl.constexpr, param_a, param_b):
    """activation(x) for x in the compute dtype."""
    if ACTIVATION == IDENTITY:
        y = x
    elif ACTIVATION == RELU:
        y = tl.where(x <= 0, 0, x)
    elif ACTIVATION == RELU6:
        y = clamp_nan(x, 0, 6)
    elif ACTIVATION == LEAKY_RELU:
        y = tl.where(x > 0, x, x * param_a)
    elif ACTIVATION == ELU:
        y = tl.where(x <= 0, expm1(x) * param_a, x)
    elif ACTIVATION == GELU:
        y = 0.5 * x * (1 + tl.erf(x * typed(0.7071067811865476, x)))
    elif ACTIVATION == GELU_TANH:
        # 0.5 * (1 + tanh(u)) == sigmoid(2u): no cancellation where tanh(u) is near -1.
        y = x * sigmoid(2 * gelu_tanh_inner(x))
    elif ACTIVATION == SILU:
        y = x * sigmoid(x)
    elif ACTIVATION == MISH:
        y = x * tanh(softplus_unit(x))
    elif ACTIVATION == HARDSWISH:
        y = x * clamp_nan(x + 3, 0, 6) / 6
    elif ACTIVATION == HARDSIGMOID:
        y = clamp_nan(x + 3, 0, 6) / 6
    elif ACTIVATION == SOFTPLUS:
        scaled = x * param_a
        y = tl.where(scaled > param_b, x, softplus_unit(scaled) / param_a)
    elif ACTIVATION == SIGMOID:
        y = sigmoid(x)
    else:
        tl.static_assert(ACTIVATION == TANH, "unknown activation id")
        y = tanh(x)
    return y


@triton.jit
def activation_backward_from_input(grad, x, ACTIVATION: tl.constexpr, param_a, param_b):
    """grad * activation'(x), both in the compute dtype."""
    if ACTIVATION == IDENTITY:
        grad_x = grad
    elif ACTIVATION == RELU:
        grad_x = tl.where(x <= 0, 0, grad)
    elif ACTIVATION == RELU6:
        grad_x = tl.where((x <= 0) | (x >= 6), 0, grad)
    elif ACTIVATION == LEAKY_RELU:
        grad_x = tl.where(x > 0, grad, grad * param_a)
    elif ACTIVATION == ELU:
        grad_x = tl.where(x <= 0, grad * param_a * tl.exp(x), grad)
    elif ACTIVATION == GELU:
        cdf = 0.5 * (1 + tl.erf(x * typed(0.7071067811865476, x)))
        pdf = tl.exp(-0.5 * x * x) * typed(0.3989422804014327, x)
        grad_x = grad * (cdf + x * pdf)
    elif ACTIVATION == GELU_TANH:
        s, one_minus_s = sigmoid_pair(2 * gelu_tanh_inner(x))
        inner_grad = typed(0.7978845608028654, x) * (1 + typed(0.134145, x) * x * x)
        grad_x = grad * (s + 2 * x * s * one_minus_s * inner_grad)
    elif ACTIVATION == SILU:
        s, one_minus_s = sigmoid_pair(x)
        grad_x = grad * s * (1 + x * one_minus_s)
    elif ACTIVATION == MISH:
        tanh_sp = tanh(softplus_unit(x))
        grad_x = grad * (tanh_sp + x * sigmoid(x) * (1 - tanh_sp * tanh_sp))
    elif ACTIVATION == HARDSWISH:
        grad_x = tl.where(x <= -3, 0, tl.where(x < 3, grad * (x / 3 + 0.5), grad))
    elif ACTIVATION == HARDSIGMOID:
        grad_x = tl.where((x > -3) & (x < 3), grad / 6, 0)
    elif ACTIVATION == SOFTPLUS:
        scaled = x * param_a
        z = tl.exp(scaled)
        grad_x = tl.where(scaled > param_b, grad, grad * z / (z + 1))
    elif ACTIVATION == SIGMOID:
        s, one_minus_s = sigmoid_pair(x)
        grad_x = grad * one_minus_s * s
    else:
        tl.static_assert(ACTIVATION == TANH, "unknown activation id")
        t = tanh(x)
        grad_x = grad * (1 - t * t)
    return grad_x


@triton.jit
def activation_backward_from_output(grad, y, ACTIVATION: tl.constexpr, param_a, param_b):
    """grad * activation'(x) written with y = activation(x); only ids in BACKWARD_FROM_OUTPUT."""
    if ACTIVATION == IDENTITY:
        grad_x = grad
    elif ACTIVATION == RELU:
        grad_x = tl.where(y <= 0, 0, grad)
    elif ACTIVATION == RELU6:
        grad_x = tl.where((y <= 0) | (y >= 6), 0, grad)
    elif ACTIVATION == LEAKY_RELU:
        grad_x = tl.where(y > 0, grad, grad * param_a)
    elif ACTIVATION == ELU:
        grad_x = tl.where(y <= 0, grad * (y + param_a), grad)
    elif ACTIVATION == HARDSIGMOID:
        grad_x = tl.where((y > 0) & (y < 1), grad / 6, 0)
    elif ACTIVATION == SIGMOID:
        grad_x = grad * (1 - y) * y
    else:
        tl.static_assert(ACTIVATION == TANH, "activation has no output-only derivative")
        grad_x = grad * (1 - y * y)
    return grad_x


@triton.jit
def activation_forward_kernel(
    input_ptr, output_ptr, numel, size1, size2, size3,
    input_stride0, input_stride1, input_stride2, input_stride3,
    output_stride0, output_stride1, output_stride2, output_stride3,
    param_a, param_b,
    ACTIVATION: tl.constexpr, DENSE: tl.constexpr, WIDE_INDEX: tl.constexpr, BLOCK_SIZE: tl.constexpr,
):
    """output = activation(input). DENSE: both share one dense layout, so flat offsets are memory offsets."""
    flat = block_offsets(BLOCK_SIZE, WIDE_INDEX)
    mask = flat < numel
    input_offsets = tensor_offsets(flat, DENSE, size1, size2, size3, input_stride0, input_stride1, input_stride2,
                                   input_stride3)
    output_offsets = tensor_offsets(flat, DENSE, size1, size2, size3, output_stride0, output_stride1,
                                    output_stride2, output_stride3)
    x = to_compute_dtype(tl.load(input_ptr + input_offsets, mask=mask))
    y = apply_activation(x, ACTIVATION, param_a, param_b)
    tl.store(output_ptr + output_offsets, y.to(output_ptr.dtype.element_ty), mask=mask)


@triton.jit
def activation_backward_kernel(
    grad_output_ptr, saved_ptr, grad_input_ptr, numel, size1, size2, size3,
    grad_output_stride0, grad_output_stride1, grad_output_stride2, grad_output_stride3,
    saved_stride0, saved_stride1, saved_stride2, saved_stride3,
    grad_input_stride0, grad_input_stride1, grad_input_stride2, grad_input_stride3,
    param_a, param_b,
    ACTIVATION: tl.constexpr, SAVED_IS_OUTPUT: tl.constexpr, DENSE: tl.constexpr, WIDE_INDEX: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
):
    """grad_input = grad_output * activation'(x), from the saved input x or, if SAVED_IS_OUTPUT, the output."""
    flat = block_offsets(BLOCK_SIZE, WIDE_INDEX)
    mask = flat < numel
    grad_output_offsets = tensor_offsets(flat, DENSE, size1, size2, size3, grad_output_stride0, grad_output_stride1,
                                         grad_output_stride2, grad_output_stride3)
    saved_offsets = tensor_offsets(flat, DENSE, size1, size2, size3, saved_stride0, saved_stride1, saved_stride2,
                                   saved_stride3)
    grad_input_offsets = tensor_offsets(flat, DENSE, size1, size2, size3, grad_input_stride0, grad_input_stride1,
                                        grad_input_stride2, grad_input_stride3)
    grad = to_compute_dtype(tl.load(grad_output_ptr + grad_output_offsets, mask=mask))
    saved = to_compute_dtype(tl.load(saved_ptr + saved_offsets, mask=mask))
    if SAVED_IS_OUTPUT:
        grad_x = activation_backward_from_output(grad, saved, ACTIVATION, param_a, param_b)
    else:
        grad_x = activation_backward_from_input(grad, saved, ACTIVATION, param_a, param_b)
    tl.store(grad_input_ptr + grad_input_offsets, grad_x.to(grad_input_ptr.dtype.element_ty), mask=mask)

