"""conv2d for 1x1 kernels and conv_transpose2d for kernel == stride, on the GEMM core: no im2col, no layout
copies, the activation fused into the epilogue, output in the input's memory format (as cuDNN).

1x1 convolution, per group: y[n, o, p] = sum_c W[o, c] x[n, c, p * stride]. M = output channels, K = input
channels, N = pixels (n, h, w): strided sampling is a stride in the pixel axis. Transposed convolution with
kernel == stride writes each input pixel's k x k patch: one GEMM per tap (i, j), taps and groups batched.
Backward: grad_input and grad_weight as GEMMs whose A operand is the output gradient (pixels x channels for
grad_input, channels x pixels for grad_weight), so the activation's derivative is applied as A is loaded
(linear.backward_operand) and the weight-gradient GEMM sums A's rows into grad_bias. The layers are the ops
tritonlayers::conv2d_1x1 and tritonlayers::conv_transpose2d (autograd from register_autograd).
"""
import functools
from typing import List, Optional, Tuple

import torch

from ._autocast import lower_precision
from ._gemm import Level, accumulator_dtype, axis, check_same_dtype, gemm
from ._launch import check_floating, check_tensor, int_pair
from ._layout_copy import copy_into, to_memory_format
from ._library import custom_op, no_grads, or_placeholders, records_grad, wanted
from .activation import ActivationSpec, resolve_activation
from .linear import (backward_operand, fuses_bias_grad, gemm_grads_like, materialized, save_for_gemm_backward,
                     saved_kind)


# torch's messages for out-of-range geometry (aten's check_shape_forward): (least value, what it says)
_LEAST = {"stride": (1, "non-positive stride"), "dilation": (1, "non-positive dilation"),
          "padding": (0, "negative padding"), "output_padding": (0, "negative output_padding")}


def _pair(value, name, op_name):
    """int_pair, out of range raising torch's RuntimeError."""
    pair = int_pair(value, name, op_name)
    least, says = _LEAST[name]
    if min(pair) < least:
        raise RuntimeError(f"{says} is not supported")
    return pair


def unsupported_transpose_geometry(kernel, stride, padding, output_padding, dilation):
    """(name, value) of the first transposed-convolution argument the GEMM cannot run, or None: it runs
    kernel_size == stride (non-overlapping taps), no padding or output_padding, and dilation 1 along any dim
    whose kernel is wider than 1 (a one-tap dim never dilates)."""
    dilation_wanted = tuple(d if k == 1 else 1 for d, k in zip(dilation, kernel))
    for name, value, wanted in (("stride", stride, kernel), ("padding", padding, (0, 0)),
                                ("output_padding", output_padding, (0, 0)), ("dilation", dilation, dilation_wanted)):
        if tuple(value) != tuple(wanted):
            return name, tuple(value)
    return None


def transpose_geometry_message(op_name, name, value, kernel):
    return (f"{op_name}: {name}={value} is not supported: tritonlayers runs kernel_size == stride ({kernel}), "
            "padding 0, output_padding 0, dilation 1 (or any, for 1-wide kernels)")


def _memory_format(input, weight):
    """The layout of a convolution's output and input gradient, by torch's rule (cuDNN's and oneDNN's):
    channels_last when the input's or the weight's strides are channels_last's (a network moved to
    channels_last whose first layer is fed an NCHW batch), else contiguous."""
    if _suggests_channels_last(input) or _suggests_channels_last(weight):
        return torch.channels_last
    return torch.contiguous_format


def _suggests_channels_last(tensor):
    sizes, strides = tuple(tensor.shape), tensor.stride()
    try:
        return _cached_channels_last_strides(sizes, strides)
    except TypeError:  # symbolic sizes (torch.compile with dynamic shapes) do not hash
        return _channels_last_strides(sizes, strides)


def _channels_last_strides(sizes, strides):
    """torch's Tensor.suggest_memory_format() == channels_last for a 4-D tensor (c10's
    is_channels_last_strides_2d): strides growing along C, W, H, N, ambiguous size-1 cases read as NCHW."""
    if len(sizes) != 4 or strides[1] == 0:
        return False
    least = 0
    for d in (1, 3, 2, 0):
        if sizes[d] == 0 or strides[d] < least or (d == 0 and least == strides[1]):
            return False
        least = strides[d] * (sizes[d] if sizes[d] > 1 else 1)
    return True


_cached_channels_last_strides = functools.lru_cache(maxsize=1024)(_channels_last_strides)


def _pixels(shape, strides_by_operand):
    """The pixel axis (n, h, w) of NCHW-shaped tensors; strides_by_operand: {operand: (n, h, w) strides}."""
    return axis(*(Level(size, {op: strides[d] for op, strides in strides_by_operand.items()})
                  for d, size in enumerate(shape)))


def _spatial(tensor_or_strides, step=(1, 1)):
    """(n, h, w) strides of an NCHW-indexed tensor (or of its strides), h and w multiplied by a step (a stride
    or a tap size)."""
    strides = tensor_or_strides.stride() if isinstance(tensor_or_strides, torch.Tensor) else tensor_or_strides
    return strides[0], step[0] * strides[2], step[1] * strides[3]


def _groups_axis(groups, strides, *taps):
    """The batch axis: groups, then (for transposed convolutions) the kernel taps."""
    return axis(Level(groups, strides), *taps)


def _bias_grad_buffer(needs_weight, needs_bias, grad, shape, prologue):
    """Where the weight-gradient GEMM writes the bias gradient (in the compute dtype), or None (see
    fuses_bias_grad)."""
    if not (needs_weight and needs_bias and fuses_bias_grad(prologue)):
        return None
    return torch.empty(shape, dtype=accumulator_dtype(grad.dtype), device=grad.device)


def _finish_bias_grad(needs_bias, spec, buffer, grad, a_saved, prologue, weight, sum_dims=None):
    """grad_bias from the GEMM's buffer (summed over sum_dims), or, without a weight gradient, from the
    gradient before the activation."""
    if buffer is not None:
        return (buffer.sum(sum_dims) if sum_dims else buffer).reshape(-1).to(weight.dtype)
    if needs_bias:
        return materialized(grad, a_saved, prologue, spec).sum((0, 2, 3))
    return None


def _forward_outputs(shape, input, weight, store_pre):
    """(output, pre-activation or None), in the layout torch's convolution gives (_memory_format)."""
    output = torch.empty(shape, dtype=input.dtype, device=input.device, memory_format=_memory_format(input, weight))
    return output, torch.empty_like(output) if store_pre else None


def _conv1x1_shape(input, weight, stride):
    batch, _, height, width = input.shape
    return batch, weight.shape[0], (height - 1) // stride[0] + 1, (width - 1) // stride[1] + 1


def _conv_transpose_shape(input, weight, groups):
    batch, _, height, width = input.shape
    return batch, weight.shape[1] * groups, height * weight.shape[2], width * weight.shape[3]


def _misaligned_maps(tensor, multiple):
    """NCHW maps whose pixel count is not a multiple of `multiple`: each channel's row starts where a GEMM
    cannot load or store 2 * multiple bytes of 16-bit values at a time along the pixels."""
    return tensor.is_contiguous() and (tensor.shape[2] * tensor.shape[3]) % multiple != 0 and \
        not tensor.is_contiguous(memory_format=torch.channels_last)


def channels_last_operand(input):
    """A GEMM operand as the GEMM reads it: NCHW maps of a pixel count not a multiple of 8 (ResNet's 7x7 and
    14x14) are read once into channels_last, where the GEMM loads 16 bytes at a time along the channels, as
    cuDNN does (kernels/layout_copy.py)."""
    return to_memory_format(input, torch.channels_last) if _misaligned_maps(input, 8) else input


def _gemm_targets(*tensors):
    """Where a GEMM writes each output tensor (None stays None): NCHW maps of a pixel count not a multiple of 4
    (7x7's 49) get a channels_last twin, copied out by _copy_out, else the tensor itself. Stored along
    49-pixel rows, every element of a tile took its own 64-bit address: 255 registers and spills in the large
    tiles on sm_90 (the ResNet-50 stage-4 expand's GEMM took 55 us on the H200, cuDNN 11 us in channels_last
    plus its transposes). 196-pixel rows (14x14) store 8 bytes at a time without spills: a copy would cost
    more."""
    return tuple(torch.empty_like(tensor, memory_format=torch.channels_last)
                 if tensor is not None and _misaligned_maps(tensor, 4) else tensor for tensor in tensors)


def _copy_out(tensors, targets):
    for tensor, target in zip(tensors, targets):
        if target is not tensor:
            copy_into(tensor, target)


def conv1x1_forward(input, weight, bias, stride, groups, spec, store_pre):
    """(output, pre-activation or None) of a 1x1 convolution."""
    batch, out_channels, out_h, out_w = shape = _conv1x1_shape(input, weight, stride)
    in_group, out_group = input.shape[1] // groups, out_channels // groups
    outputs = _forward_outputs(shape, input, weight, store_pre)
    output, pre = targets = _gemm_targets(*outputs)
    input = channels_last_operand(input)
    batch_axis, m, n, k = _forward_axes(shape, in_group, out_group, input.stride(), weight.stride(), output.stride(),
                                        stride, groups)
    gemm(weight, input, output, batch=batch_axis, m=m, n=n, k=k, bias=bias, bias_along="m", spec=spec, pre=pre,
         allow_tf32=torch.backends.cudnn.allow_tf32, op_name="conv2d")
    _copy_out(outputs, targets)
    return outputs


# The axes of a layer's GEMMs depend on shapes and strides only: cached, as each training step repeats them.
@functools.lru_cache(maxsize=1024)
def _forward_axes(shape, in_group, out_group, input_strides, weight_strides, output_strides, stride, groups):
    batch, _, out_h, out_w = shape
    return (_groups_axis(groups, {"a": out_group * weight_strides[0], "b": in_group * input_strides[1],
                                  "c": out_group * output_strides[1], "bias": out_group}),
            axis(Level(out_group, {"a": weight_strides[0], "c": output_strides[1]})),
            _pixels((batch, out_h, out_w), {"b": _spatial(input_strides, stride), "c": _spatial(output_strides)}),
            axis(Level(in_group, {"a": weight_strides[1], "b": input_strides[1]})))


def conv1x1_backward(grad_output, input, weight, saved, stride, groups, spec, needs):
    """(grad_input, grad_weight, grad_bias), each None unless `needs` (three booleans) asks."""
    grad, a_saved, prologue = backward_operand(saved_kind(spec, None), grad_output, saved)
    # NCHW maps of 7x7 / 14x14 pixels: read like the forward's input (grad and a_saved alike: the prologue
    # walks both with one set of strides)
    grad = channels_last_operand(grad)
    a_saved = channels_last_operand(a_saved) if a_saved is not None else None
    batch, channels = input.shape[:2]
    out_h, out_w = grad.shape[2:]
    in_group, out_group = channels // groups, weight.shape[0] // groups
    needs_input, needs_weight, needs_bias = needs
    grad_input = grad_weight = None
    common = dict(a_saved=a_saved, prologue=prologue, spec=spec, allow_tf32=torch.backends.cudnn.allow_tf32,
                  op_name="conv2d")
    if needs_input:  # (pixels x in channels) = (pixels x out channels) @ W
        grad_input = torch.empty_like(input, memory_format=_memory_format(input, weight))
        target, = _gemm_targets(grad_input)
        if stride != (1, 1):  # pixels the strided forward skipped get no gradient
            target.zero_()
        batch_axis, m, n, k = _input_grad_axes((batch, out_h, out_w), in_group, out_group, grad.stride(),
                                               weight.stride(), target.stride(), stride, groups)
        gemm(grad, weight, target, batch=batch_axis, m=m, n=n, k=k, **common)
        _copy_out((grad_input,), (target,))
    bias_buffer = _bias_grad_buffer(needs_weight, needs_bias, grad, (groups, out_group), prologue)
    if needs_weight:  # (out channels x in channels) = (out channels x pixels) @ x
        grad_weight = torch.empty_like(weight)
        input = channels_last_operand(input)
        batch_axis, m, n, k = _weight_grad_axes((batch, out_h, out_w), in_group, out_group, grad.stride(),
                                                input.stride(), grad_weight.stride(), stride, groups)
        gemm(grad, input, grad_weight, batch=batch_axis, m=m, n=n, k=k, bias_grad=bias_buffer, **common)
    grad_bias = _finish_bias_grad(needs_bias, spec, bias_buffer, grad, a_saved, prologue, weight)
    return grad_input, grad_weight, grad_bias


@functools.lru_cache(maxsize=1024)
def _input_grad_axes(pixels, in_group, out_group, grad_strides, weight_strides, grad_input_strides, stride, groups):
    """(pixels x in channels) = (pixels x out channels) @ W."""
    return (_groups_axis(groups, {"a": out_group * grad_strides[1], "b": out_group * weight_strides[0],
                                  "c": in_group * grad_input_strides[1]}),
            _pixels(pixels, {"a": _spatial(grad_strides), "c": _spatial(grad_input_strides, stride)}),
            axis(Level(in_group, {"b": weight_strides[1], "c": grad_input_strides[1]})),
            axis(Level(out_group, {"a": grad_strides[1], "b": weight_strides[0]})))


@functools.lru_cache(maxsize=1024)
def _weight_grad_axes(pixels, in_group, out_group, grad_strides, input_strides, grad_weight_strides, stride, groups):
    """(out channels x in channels) = (out channels x pixels) @ x."""
    return (_groups_axis(groups, {"a": out_group * grad_strides[1], "b": in_group * input_strides[1],
                                  "c": out_group * grad_weight_strides[0], "bias": out_group}),
            axis(Level(out_group, {"a": grad_strides[1], "c": grad_weight_strides[0]})),
            axis(Level(in_group, {"b": input_strides[1], "c": grad_weight_strides[1]})),
            _pixels(pixels, {"a": _spatial(grad_strides), "b": _spatial(input_strides, stride)}))


def conv_transpose_forward(input, weight, bias, groups, spec, store_pre):
    """(output, pre-activation or None) of a transposed convolution with kernel == stride: output pixel
    (h * kh + i, w * kw + j) = W[:, :, i, j]^T x[:, h, w], per group."""
    batch, channels, height, width = input.shape
    kh, kw = weight.shape[2:]
    in_group, out_group = channels // groups, weight.shape[1]
    output, pre = _forward_outputs(_conv_transpose_shape(input, weight, groups), input, weight, store_pre)
    taps = (Level(kh, {"a": weight.stride(2), "c": output.stride(2)}),
            Level(kw, {"a": weight.stride(3), "c": output.stride(3)}))
    gemm(weight, input, output,
         batch=_groups_axis(groups, {"a": in_group * weight.stride(0), "b": in_group * input.stride(1),
                                     "c": out_group * output.stride(1), "bias": out_group}, *taps),
         m=axis(Level(out_group, {"a": weight.stride(1), "c": output.stride(1)})),
         n=_pixels((batch, height, width), {"b": _spatial(input), "c": _spatial(output, (kh, kw))}),
         k=axis(Level(in_group, {"a": weight.stride(0), "b": input.stride(1)})),
         bias=bias, bias_along="m", spec=spec, pre=pre, allow_tf32=torch.backends.cudnn.allow_tf32,
         op_name="conv_transpose2d")
    return output, pre


def conv_transpose_backward(grad_output, input, weight, saved, groups, spec, needs):
    """(grad_input, grad_weight, grad_bias), each None unless `needs` (three booleans) asks."""
    grad, a_saved, prologue = backward_operand(saved_kind(spec, None), grad_output, saved)
    batch, channels, height, width = input.shape
    kh, kw = weight.shape[2:]
    in_group, out_group = channels // groups, weight.shape[1]
    needs_input, needs_weight, needs_bias = needs
    grad_input = grad_weight = None
    common = dict(a_saved=a_saved, prologue=prologue, spec=spec, allow_tf32=torch.backends.cudnn.allow_tf32,
                  op_name="conv_transpose2d")
    if needs_input:  # (pixels x in channels): a sum over output channels and taps
        grad_input = torch.empty_like(input, memory_format=_memory_format(input, weight))
        gemm(grad, weight, grad_input,
             batch=_groups_axis(groups, {"a": out_group * grad.stride(1), "b": in_group * weight.stride(0),
                                         "c": in_group * grad_input.stride(1)}),
             m=_pixels((batch, height, width), {"a": _spatial(grad, (kh, kw)), "c": _spatial(grad_input)}),
             n=axis(Level(in_group, {"b": weight.stride(0), "c": grad_input.stride(1)})),
             k=axis(Level(out_group, {"a": grad.stride(1), "b": weight.stride(1)}),
                    Level(kh, {"a": grad.stride(2), "b": weight.stride(2)}),
                    Level(kw, {"a": grad.stride(3), "b": weight.stride(3)})), **common)
    bias_buffer = _bias_grad_buffer(needs_weight, needs_bias, grad, (groups, kh, kw, out_group), prologue)
    if needs_weight:  # per group and tap, (out channels x in channels) reduced over pixels
        grad_weight = torch.empty_like(weight)
        taps = (Level(kh, {"a": grad.stride(2), "c": grad_weight.stride(2), "bias": kw * out_group}),
                Level(kw, {"a": grad.stride(3), "c": grad_weight.stride(3), "bias": out_group}))
        gemm(grad, input, grad_weight,
             batch=_groups_axis(groups, {"a": out_group * grad.stride(1), "b": in_group * input.stride(1),
                                         "c": in_group * grad_weight.stride(0), "bias": kh * kw * out_group},
                                *taps),
             m=axis(Level(out_group, {"a": grad.stride(1), "c": grad_weight.stride(1)})),
             n=axis(Level(in_group, {"b": input.stride(1), "c": grad_weight.stride(0)})),
             k=_pixels((batch, height, width), {"a": _spatial(grad, (kh, kw)), "b": _spatial(input)}),
             bias_grad=bias_buffer, **common)
    grad_bias = _finish_bias_grad(needs_bias, spec, bias_buffer, grad, a_saved, prologue, weight,
                                  sum_dims=(1, 2))
    return grad_input, grad_weight, grad_bias


@custom_op("conv2d_1x1")
def _conv1x1(input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], stride: List[int],
             groups: int, activation: str, param_a: float, param_b: float,
             store_pre: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """(output, pre-activation or a placeholder)."""
    output, pre = conv1x1_forward(input, weight, bias, tuple(stride), groups,
                                  ActivationSpec(activation, param_a, param_b), store_pre)
    return or_placeholders((output, pre), output)


@_conv1x1.register_fake
def _(input, weight, bias, stride, groups, activation, param_a, param_b, store_pre):
    output, pre = _forward_outputs(_conv1x1_shape(input, weight, stride), input, weight, store_pre)
    return or_placeholders((output, pre), output)


@custom_op("conv2d_1x1_backward")
def _conv1x1_grad(grad_output: torch.Tensor, input: torch.Tensor, weight: torch.Tensor,
                  saved: Optional[torch.Tensor], stride: List[int], groups: int, activation: str, param_a: float,
                  param_b: float, needs: List[bool]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    grads = conv1x1_backward(grad_output, input, weight, saved, tuple(stride), groups,
                             ActivationSpec(activation, param_a, param_b), needs)
    return or_placeholders(grads, input)


@_conv1x1_grad.register_fake
def _(grad_output, input, weight, saved, stride, groups, activation, param_a, param_b, needs):
    grad_input = torch.empty_like(input, memory_format=_memory_format(input, weight))
    return gemm_grads_like(grad_input, weight, weight.shape[0], needs)


def _conv1x1_setup_context(ctx, inputs, output):
    input, weight, _, stride, groups, activation, param_a, param_b, _ = inputs
    save_for_gemm_backward(ctx, input, weight, ActivationSpec(activation, param_a, param_b), None, *output)
    ctx.stride, ctx.groups = stride, groups


def _conv1x1_backward(ctx, grad_output, grad_pre):
    if grad_output is None:
        return no_grads(ctx)
    input, weight, saved = ctx.saved_tensors
    needs = ctx.needs_input_grad[:3]
    grads = _conv1x1_grad(grad_output, input, weight, saved, ctx.stride, ctx.groups, *ctx.spec, list(needs))
    return (*wanted(grads, needs), None, None, None, None, None, None)


_conv1x1.register_autograd(_conv1x1_backward, setup_context=_conv1x1_setup_context)


@custom_op("conv_transpose2d")
def _conv_transpose(input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], groups: int,
                    activation: str, param_a: float, param_b: float,
                    store_pre: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """(output, pre-activation or a placeholder)."""
    output, pre = conv_transpose_forward(input, weight, bias, groups, ActivationSpec(activation, param_a, param_b),
                                         store_pre)
    return or_placeholders((output, pre), output)


@_conv_transpose.register_fake
def _(input, weight, bias, groups, activation, param_a, param_b, store_pre):
    output, pre = _forward_outputs(_conv_transpose_shape(input, weight, groups), input, weight, store_pre)
    return or_placeholders((output, pre), output)


@custom_op("conv_transpose2d_backward")
def _conv_transpose_grad(grad_output: torch.Tensor, input: torch.Tensor, weight: torch.Tensor,
                         saved: Optional[torch.Tensor], groups: int, activation: str, param_a: float, param_b: float,
                         needs: List[bool]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    grads = conv_transpose_backward(grad_output, input, weight, saved, groups,
                                    ActivationSpec(activation, param_a, param_b), needs)
    return or_placeholders(grads, input)


@_conv_transpose_grad.register_fake
def _(grad_output, input, weight, saved, groups, activation, param_a, param_b, needs):
    grad_input = torch.empty_like(input, memory_format=_memory_format(input, weight))
    return gemm_grads_like(grad_input, weight, weight.shape[1] * groups, needs)


def _conv_transpose_setup_context(ctx, inputs, output):
    input, weight, _, groups, activation, param_a, param_b, _ = inputs
    save_for_gemm_backward(ctx, input, weight, ActivationSpec(activation, param_a, param_b), None, *output)
    ctx.groups = groups


def _conv_transpose_backward(ctx, grad_output, grad_pre):
    if grad_output is None:
        return no_grads(ctx)
    input, weight, saved = ctx.saved_tensors
    needs = ctx.needs_input_grad[:3]
    grads = _conv_transpose_grad(grad_output, input, weight, saved, ctx.groups, *ctx.spec, list(needs))
    return (*wanted(grads, needs), None, None, None, None, None)


_conv_transpose.register_autograd(_conv_transpose_backward, setup_context=_conv_transpose_setup_context)


def _store_pre(spec, *tensors):
    """Whether the forward keeps the pre-activation: backward will need it (see linear.saved_kind)."""
    return saved_kind(spec, None) == "pre" and records_grad(*tensors)


def _check_common(op_name, input, weight, bias):
    """Tensors, ranks and dtypes, after torch's autocast casts; returns (input as 4-D, weight, bias, whether the
    input was unbatched)."""
    check_tensor(op_name, "input", input)
    check_tensor(op_name, "weight", weight)
    input, weight, bias = lower_precision(input, weight, bias)
    if weight.dim() != 4:
        raise RuntimeError(f"{op_name}: expected a 4-D weight, got weight of size {list(weight.shape)}")
    if input.dim() not in (3, 4):
        raise RuntimeError(f"Expected 3D (unbatched) or 4D (batched) input to {op_name}, but got input of size: "
                           f"{list(input.shape)}")
    check_same_dtype(op_name, input=input, weight=weight, bias=bias)
    check_floating(op_name, "input", input.dtype)
    unbatched = input.dim() == 3
    return (input.unsqueeze(0) if unbatched else input), weight, bias, unbatched


def _check_groups(groups, weight):
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise RuntimeError("non-positive groups is not supported")
    if weight.shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but "
                           f"got weight of size [{list(weight.shape)}] instead")


def _check_bias(weight, bias, out_channels, transposed=False):
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != out_channels):
        raise RuntimeError(f"Given {'transposed=1, ' if transposed else ''}weight of size {list(weight.shape)}, "
                           f"expected bias to be 1-dimensional with {out_channels} elements, but got bias of size "
                           f"{list(bias.shape)} instead")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, activation=None):
    """F.conv2d for 1x1 kernels (any stride, dilation, groups), plus keyword-only `activation` fused into the
    epilogue. Other kernel sizes and nonzero padding raise NotImplementedError."""
    x, weight, bias, unbatched = _check_common("conv2d", input, weight, bias)
    stride = _pair(stride, "stride", "conv2d")
    _pair(dilation, "dilation", "conv2d")  # a 1x1 kernel never dilates
    if tuple(weight.shape[2:]) != (1, 1):
        raise NotImplementedError(f"conv2d: kernel size {tuple(weight.shape[2:])} is not supported: tritonlayers' "
                                  "conv2d runs 1x1 kernels (weight of shape (out, in / groups, 1, 1))")
    if isinstance(padding, str) and padding not in ("same", "valid"):
        raise RuntimeError(f"Invalid padding string: '{padding}'")
    if padding == "same" and stride != (1, 1):
        raise RuntimeError("padding='same' is not supported for strided convolutions")
    if not isinstance(padding, str) and _pair(padding, "padding", "conv2d") != (0, 0):
        raise NotImplementedError(f"conv2d: padding={padding!r} is not supported: tritonlayers' 1x1 conv2d "
                                  "runs without padding")
    _check_groups(groups, weight)
    _check_bias(weight, bias, weight.shape[0])
    if weight.shape[1] * groups != x.shape[1]:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected input"
                           f"{list(x.shape)} to have {weight.shape[1] * groups} channels, but got {x.shape[1]} "
                           "channels instead")
    spec = resolve_activation(activation)
    output = _conv1x1(x, weight, bias, list(stride), groups, *spec, _store_pre(spec, x, weight, bias))[0]
    return output.squeeze(0) if unbatched else output


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     activation=None):
    """F.conv_transpose2d when kernel_size == stride, padding 0, output_padding 0 and dilation 1 (the
    non-overlapping upsampling of decoders), plus keyword-only `activation`; other geometry raises
    NotImplementedError naming the argument."""
    x, weight, bias, unbatched = _check_common("conv_transpose2d", input, weight, bias)
    kernel = tuple(weight.shape[2:])
    unsupported = unsupported_transpose_geometry(
        kernel, _pair(stride, "stride", "conv_transpose2d"), _pair(padding, "padding", "conv_transpose2d"),
        _pair(output_padding, "output_padding", "conv_transpose2d"), _pair(dilation, "dilation", "conv_transpose2d"))
    if unsupported is not None:
        raise NotImplementedError(transpose_geometry_message("conv_transpose2d", *unsupported, kernel))
    _check_groups(groups, weight)
    if weight.shape[0] != x.shape[1]:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected input{list(x.shape)} "
                           f"to have {weight.shape[0]} channels, but got {x.shape[1]} channels instead")
    _check_bias(weight, bias, weight.shape[1] * groups, transposed=True)
    spec = resolve_activation(activation)
    output = _conv_transpose(x, weight, bias, groups, *spec, _store_pre(spec, x, weight, bias))[0]
    return output.squeeze(0) if unbatched else output
