"""Activation functions: host forward/backward, the ops tritonlayers::activation (autograd from
register_autograd) and tritonlayers::activation_ (in place), and the functional entry points.

`resolve_activation` turns what users pass as `activation=` (a name, or a torch.nn activation module) into
the kernel id and parameters, so fused ops elsewhere accept the same vocabulary.
"""
from typing import NamedTuple

import torch

from ._autocast import fp32_on_cuda
from ._elementwise import launch_elementwise
from ._launch import check_floating, check_no_internal_overlap, check_tensor, launch_device
from ._layout import empty_like_dense
from ._library import below_autograd, custom_op, mark_written, writing_op
from .kernels.activation import (ACTIVATION_IDS, BACKWARD_FROM_OUTPUT, activation_backward_kernel,
                                 activation_forward_kernel)


class ActivationSpec(NamedTuple):
    name: str
    param_a: float = 0.0
    param_b: float = 0.0

    @property
    def kernel_id(self):
        return ACTIVATION_IDS[self.name]

    @property
    def output_determines_gradient(self):
        """The derivative is a function of the output (needs a monotone map: slope > 0, alpha >= 0)."""
        if self.name == "leaky_relu":
            return self.param_a > 0
        if self.name == "elu":
            return self.param_a >= 0
        return self.kernel_id in BACKWARD_FROM_OUTPUT


def _module_spec(module):
    nn = torch.nn
    if isinstance(module, nn.LeakyReLU):
        return ActivationSpec("leaky_relu", float(module.negative_slope))
    if isinstance(module, nn.ELU):
        return ActivationSpec("elu", float(module.alpha))
    if isinstance(module, nn.Softplus):
        return ActivationSpec("softplus", float(module.beta), float(module.threshold))
    if isinstance(module, nn.GELU):
        return ActivationSpec("gelu_tanh" if module.approximate == "tanh" else "gelu")
    plain = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.SiLU: "silu", nn.Mish: "mish", nn.Hardswish: "hardswish",
             nn.Hardsigmoid: "hardsigmoid", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Identity: "identity"}
    for module_type, name in plain.items():
        if isinstance(module, module_type):
            return ActivationSpec(name)
    return None


_DEFAULT_PARAMS = {"leaky_relu": (0.01, 0.0), "elu": (1.0, 0.0), "softplus": (1.0, 20.0)}


def resolve_activation(activation, argument="activation"):
    """ActivationSpec for an `activation=` argument: None, a name from ACTIVATION_IDS (torch's defaults for
    parameters), an ActivationSpec, or a torch.nn activation module (its parameters are kept)."""
    if activation is None:
        return ActivationSpec("identity")
    if isinstance(activation, ActivationSpec):
        return activation
    if isinstance(activation, str):
        if activation not in ACTIVATION_IDS:
            raise ValueError(f"'{argument}' must be one of {sorted(ACTIVATION_IDS)} or a torch.nn activation "
                             f"module, got '{activation}'")
        return ActivationSpec(activation, *_DEFAULT_PARAMS.get(activation, (0.0, 0.0)))
    if isinstance(activation, torch.nn.Module):
        spec = _module_spec(activation)
        if spec is not None:
            return spec
    raise ValueError(f"'{argument}' must be one of {sorted(ACTIVATION_IDS)} or a torch.nn activation module, "
                     f"got {activation!r}")


def activation_forward(input, spec, inplace=False):
    """activation(input), written into input when inplace."""
    output = input if inplace else empty_like_dense(input)
    with launch_device(spec.name, input):
        launch_elementwise(activation_forward_kernel, [input], [output], (spec.param_a, spec.param_b),
                           ACTIVATION=spec.kernel_id)
    return output


def activation_backward(grad_output, saved, spec, saved_is_output):
    """grad_output * activation'(x), from the saved input x or (saved_is_output) the output."""
    grad_input = empty_like_dense(saved)
    with launch_device(spec.name, grad_output, saved):
        launch_elementwise(activation_backward_kernel, [grad_output, saved], [grad_input],
                           (spec.param_a, spec.param_b), ACTIVATION=spec.kernel_id, SAVED_IS_OUTPUT=saved_is_output)
    return grad_input


# Ops that save the output for backward even out of place: their derivative is cheapest from it.
_SAVES_OUTPUT = ("sigmoid", "tanh")


@custom_op("activation")
def _activation(input: torch.Tensor, name: str, param_a: float, param_b: float) -> torch.Tensor:
    return activation_forward(input, ActivationSpec(name, param_a, param_b))


@_activation.register_fake
def _(input, name, param_a, param_b):
    return empty_like_dense(input)


@custom_op("activation_backward")
def _activation_grad(grad_output: torch.Tensor, saved: torch.Tensor, name: str, param_a: float, param_b: float,
                     saved_is_output: bool) -> torch.Tensor:
    return activation_backward(grad_output, saved, ActivationSpec(name, param_a, param_b), saved_is_output)


@_activation_grad.register_fake
def _(grad_output, saved, name, param_a, param_b, saved_is_output):
    return empty_like_dense(saved)


def _setup_context(ctx, inputs, output):
    """Saves one tensor: the output for sigmoid and tanh, else the input."""
    input, name, param_a, param_b = inputs
    ctx.spec, ctx.inplace_error = ActivationSpec(name, param_a, param_b), None
    ctx.saved_is_output = name in _SAVES_OUTPUT
    ctx.save_for_backward(output if ctx.saved_is_output else input)


def _backward(ctx, grad_output):
    if ctx.inplace_error is not None:
        raise RuntimeError(ctx.inplace_error)
    (saved,) = ctx.saved_tensors
    return _activation_grad(grad_output, saved, *ctx.spec, ctx.saved_is_output), None, None, None


_activation.register_autograd(_backward, setup_context=_setup_context)


_INPLACE_NEGATIVE_SLOPE = {
    "leaky_relu": ("In-place leakyReLu backward calculation is triggered with a negative slope which is not "
                   "supported. This is caused by calling in-place forward function with a negative slope, please "
                   "call out-of-place version instead."),
    "elu": ("In-place elu backward calculation is triggered with a negative slope which is not supported. This is "
            "caused by calling in-place forward function with a negative slope, please call out-of-place version "
            "instead."),
}


class ActivationInplaceFunction(torch.autograd.Function):
    """Autograd of tritonlayers::activation_. Saves one tensor: the output wherever it determines the gradient,
    else the input, cloned before it is overwritten (as torch does)."""

    @staticmethod
    def forward(ctx, input, name, param_a, param_b):
        spec = ActivationSpec(name, param_a, param_b)
        ctx.spec, ctx.inplace_error = spec, None
        ctx.saved_is_output = name in _SAVES_OUTPUT or spec.output_determines_gradient
        saved = None
        if not ctx.saved_is_output:
            if name in _INPLACE_NEGATIVE_SLOPE:
                ctx.inplace_error = _INPLACE_NEGATIVE_SLOPE[name]
            else:
                saved = input.clone()
        below_autograd(_activation_inplace, input, name, param_a, param_b)
        ctx.mark_dirty(input)
        ctx.save_for_backward(input if ctx.saved_is_output else saved)
        return input

    backward = staticmethod(_backward)


def _activation_inplace_impl(input, name, param_a, param_b):
    activation_forward(input, ActivationSpec(name, param_a, param_b), inplace=True)
    mark_written(input)


_activation_inplace = writing_op("activation_(Tensor(a!) input, str name, float param_a, float param_b) -> ()",
                                 _activation_inplace_impl, lambda input, name, param_a, param_b: None,
                                 ActivationInplaceFunction)


def _activation_op(op_name, input, spec, inplace=False):
    """Validated entry used by every functional activation."""
    check_tensor(op_name, "input", input)
    check_floating(op_name, "input", input.dtype)
    if spec.name == "softplus":  # in torch's CUDA autocast fp32 list
        input = fp32_on_cuda(input)
    if inplace:
        check_no_internal_overlap(input)
        _activation_inplace(input, *spec)
        return input
    return _activation(input, *spec)


def relu(input, inplace=False):
    return _activation_op("relu", input, ActivationSpec("relu"), inplace)


def relu6(input, inplace=False):
    return _activation_op("relu6", input, ActivationSpec("relu6"), inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _activation_op("leaky_relu", input, ActivationSpec("leaky_relu", float(negative_slope)), inplace)


def elu(input, alpha=1.0, inplace=False):
    return _activation_op("elu", input, ActivationSpec("elu", float(alpha)), inplace)


def gelu(input, approximate="none"):
    if not isinstance(approximate, str):
        raise TypeError(f"gelu(): argument 'approximate' must be str, not {type(approximate).__name__}")
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    return _activation_op("gelu", input, ActivationSpec("gelu_tanh" if approximate == "tanh" else "gelu"))


def silu(input, inplace=False):
    return _activation_op("silu", input, ActivationSpec("silu"), inplace)


def mish(input, inplace=False):
    return _activation_op("mish", input, ActivationSpec("mish"), inplace)


def hardswish(input, inplace=False):
    return _activation_op("hardswish", input, ActivationSpec("hardswish"), inplace)


def hardsigmoid(input, inplace=False):
    return _activation_op("hardsigmoid", input, ActivationSpec("hardsigmoid"), inplace)


def softplus(input, beta=1.0, threshold=20.0):
    return _activation_op("softplus", input, ActivationSpec("softplus", float(beta), float(threshold)))


def sigmoid(input):
    return _activation_op("sigmoid", input, ActivationSpec("sigmoid"))


def tanh(input):
    return _activation_op("tanh", input, ActivationSpec("tanh"))
