"""fused_dropout = residual + dropout(activation(input + bias)) against the same composition in torch with
the same mask: values and the gradients of input, bias and residual."""
import pytest
import torch
import torch.nn.functional as F

import tritonlayers.functional as TF
from helpers import DEVICE, FLOAT_DTYPES, activate, assert_close, gradcheck, make_input

P = 0.3
SEED = 2024


def _bias(kind, shape, dtype):
    if kind is None:
        return None
    bias_shape = {"last": (shape[-1],), "channel": (shape[1],) + (1,) * (len(shape) - 2), "scalar": (1,)}[kind]
    return make_input(bias_shape, dtype, requires_grad=True)


def _check(shape, layout, bias_kind, activation, with_residual, dtype, p=P, training=True):
    x = make_input(shape, dtype, layout, requires_grad=True)
    bias = _bias(bias_kind, shape, dtype)
    residual = make_input(shape, dtype, requires_grad=True) if with_residual else None
    # The same seed gives plain dropout the same mask: keys are logical element indices.
    torch.manual_seed(SEED)
    scaled_mask = TF.dropout(torch.ones(shape, device=DEVICE, dtype=torch.float64), p, training)
    torch.manual_seed(SEED)
    y = TF.fused_dropout(x, p, training, bias=bias, activation=activation, residual=residual)
    leaves = [t for t in (x, bias, residual) if t is not None]
    grad_output = make_input(shape, y.dtype, low=-1, high=1)
    grads = torch.autograd.grad(y, leaves, grad_output)

    leaves64 = [t.detach().double().requires_grad_() for t in leaves]
    x64 = leaves64[0]
    bias64 = leaves64[1] if bias is not None else None
    residual64 = leaves64[-1] if residual is not None else None
    expected = activate(x64 + bias64 if bias is not None else x64, activation) * scaled_mask
    if residual is not None:
        expected = expected + residual64
    expected_grads = torch.autograd.grad(expected, leaves64, grad_output.double())
    assert y.dtype == dtype
    assert_close(y, expected, dtype, name="output")
    names = ["input"] + (["bias"] if bias is not None else []) + (["residual"] if residual is not None else [])
    for name, grad, expected_grad, leaf in zip(names, grads, expected_grads, leaves):
        assert grad.dtype == leaf.dtype and grad.shape == leaf.shape
        summed = x.numel() // leaf.numel()  # a bias gradient sums this many terms
        assert_close(grad, expected_grad, dtype, scale_atol=summed, name=f"grad {name}")
    return y


# (shape, layout, bias): why each is here
LAYOUT_CASES = [
    ((37, 33), "contiguous", "last"),  # Linear output + bias along features; several programs sum the bias grad
    ((300, 33), "contiguous", "last"),  # many column tiles per program in the bias-grad pass
    ((4, 6, 5, 7), "contiguous", "channel"),  # conv output + per-channel (C, 1, 1) bias, NCHW
    ((4, 6, 5, 7), "channels_last", "channel"),  # the same in NHWC memory
    ((4, 6, 5, 7), "channels_last", "last"),  # bias along W of an NHWC tensor
    ((3, 5, 7), "strided", "last"),  # a non-dense view
    ((4, 6, 5, 7), "contiguous", "scalar"),  # a one-element bias broadcast everywhere
    ((37, 33), "contiguous", None),  # no bias
]
ACTIVATIONS = [None, "relu", "gelu", torch.nn.LeakyReLU(0.2)]


@pytest.mark.parametrize("with_residual", [True, False], ids=["residual", "no-residual"])
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=["none", "relu", "gelu", "leaky0.2"])
@pytest.mark.parametrize("shape,layout,bias_kind", LAYOUT_CASES, ids=[f"{s}-{lay}-{b}" for s, lay, b in LAYOUT_CASES])
def test_matches_torch_composition_with_the_same_mask(shape, layout, bias_kind, activation, with_residual):
    _check(shape, layout, bias_kind, activation, with_residual, torch.float32)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("activation", ["silu", "gelu"])
def test_dtypes(dtype, activation):
    _check((37, 33), "contiguous", "last", activation, True, dtype)
    _check((2, 6, 5, 7), "channels_last", "channel", activation, True, dtype)


@pytest.mark.parametrize("p,training", [(0.0, True), (P, False)])
def test_without_dropout_no_randomness_is_drawn(p, training):
    _check((37, 33), "contiguous", "last", "gelu", True, torch.float32, p=p, training=training)
    x, bias = torch.randn(5, 4, device=DEVICE), torch.randn(4, device=DEVICE)
    state = torch.cuda.get_rng_state() if DEVICE.type == "cuda" else torch.get_rng_state()
    TF.fused_dropout(x, p, training, bias=bias, activation="relu")
    assert torch.equal(state, torch.cuda.get_rng_state() if DEVICE.type == "cuda" else torch.get_rng_state())


def test_p_one_keeps_only_the_residual():
    y = _check((8, 9), "contiguous", "last", "relu", True, torch.float32, p=1.0)
    assert y is not None


def test_plain_call_without_extras_returns_input_when_not_training():
    x = torch.randn(3, 4, device=DEVICE)
    assert TF.fused_dropout(x, 0.5, training=False) is x


def test_bias_and_residual_of_other_dtypes_promote_like_torch():
    x = make_input((16, 8), torch.float16, requires_grad=True)
    bias = make_input((8,), torch.float32, requires_grad=True)
    residual = make_input((16, 8), torch.float16, requires_grad=True)
    torch.manual_seed(SEED)
    y = TF.fused_dropout(x, 0.0, bias=bias, activation="relu", residual=residual)
    expected = residual.double() + F.relu(x.double() + bias.double())
    assert y.dtype == torch.float32
    assert_close(y, expected, torch.float16)
    grads = torch.autograd.grad(y, [x, bias, residual], torch.ones_like(y))
    assert [g.dtype for g in grads] == [torch.float16, torch.float32, torch.float16]


@pytest.mark.parametrize("activation,saves_input", [(None, False), ("gelu", True)])
def test_saves_input_only_when_the_activation_needs_it(activation, saves_input):
    x = torch.randn(6, 5, device=DEVICE, requires_grad=True)
    bias = torch.randn(5, device=DEVICE, requires_grad=True)
    y = TF.fused_dropout(x, 0.5, bias=bias, activation=activation, residual=torch.randn(6, 5, device=DEVICE))
    saved = [t for t in y.grad_fn.saved_tensors if t is not None]
    assert len(saved) == (2 if saves_input else 0)


def test_int64_index_path(wide_index):
    _check((37, 33), "contiguous", "last", "gelu", True, torch.float32)


def test_gradcheck_fp64():
    x = make_input((3, 4), torch.float64, requires_grad=True)
    bias = make_input((4,), torch.float64, requires_grad=True)
    residual = make_input((3, 4), torch.float64, requires_grad=True)

    def fixed_mask(x, bias, residual):
        torch.manual_seed(5)
        return TF.fused_dropout(x, 0.4, bias=bias, activation="silu", residual=residual)

    gradcheck(fixed_mask, x, bias, residual)


def test_bad_inputs():
    x = torch.randn(4, 5, device=DEVICE)
    with pytest.raises(NotImplementedError, match="'bias' of shape \\(4, 5\\) must broadcast along a single dim"):
        TF.fused_dropout(x, bias=torch.randn(4, 5, device=DEVICE))
    with pytest.raises(NotImplementedError, match="'bias'"):
        TF.fused_dropout(x, bias=torch.randn(3, device=DEVICE))
    with pytest.raises(ValueError, match="'residual' must have input's shape"):
        TF.fused_dropout(x, residual=torch.randn(5, device=DEVICE))
    with pytest.raises(ValueError, match="'activation' must be one of"):
        TF.fused_dropout(x, activation="swish")
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        TF.fused_dropout(x, 2.0)
    with pytest.raises(RuntimeError, match="'input' has dtype torch.int64"):
        TF.fused_dropout(torch.arange(4, device=DEVICE))
