"""conv2d for 1x1 kernels and conv_transpose2d for kernel == stride, on the GEMM core: no im2col, no layout
copies, the activation fused into the epilogue, output in the input's memory format (as cuDNN).

1x1 convolution, per group: y[n, o, p] = sum_c W[o, c] x[n, c, p * stride]. M = output channels, K = input
channels, N = pixels (n, h, w): strided sampling is a stride in the pixel axis. Transposed convolution with
kernel == stride writes each input pixel's k x k patch: one GEMM per tap (i, j), taps and groups batched.
Backward: grad_input and grad_weight as GEMMs whose A operand is the output gradient (pixels x channels for
grad_input, channels x pixels for grad_weight), so the activation's derivative is applied as A is loaded
(linear.backward_operand) and the weight-gradient GEMM sums A's rows into grad_bias.
"""
import torch

from ._gemm import Level, axis, check_same_dtype, gemm
from ._launch import check_floating, check_tensor
from .activation import resolve_activation
from .linear import backward_operand, materialized, saved_kind


def _pair(value, name, op_name):
    if isinstance(value, int):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise TypeError(f"{op_name}: '{name}' must be an int or a pair of ints, got {value!r}")


def _memory_format(input):
    if input.dim() == 4 and input.is_contiguous(memory_format=torch.channels_last) and not input.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def _pixels(shape, strides_by_operand):
    """The pixel axis (n, h, w) of NCHW-shaped tensors; strides_by_operand: {operand: (n, h, w) strides}."""
    return axis(*(Level(size, {op: strides[d] for op, strides in strides_by_operand.items()})
                  for d, size in enumerate(shape)))


def _spatial(tensor, step=(1, 1)):
    """(n, h, w) strides of an NCHW-indexed tensor, h and w multiplied by a step (a stride or a tap size)."""
    return tensor.stride(0), step[0] * tensor.stride(2), step[1] * tensor.stride(3)


def _groups_axis(groups, strides, *taps):
    """The batch axis: groups, then (for transposed convolutions) the kernel taps."""
    return axis(Level(groups, strides), *taps)


def _bias_grad_buffer(needs_weight, needs_bias, grad, shape):
    """Where the weight-gradient GEMM writes the bias gradient (in the compute dtype), or None."""
    if not (needs_weight and needs_bias):
        return None
    return torch.empty(shape, dtype=torch.float64 if grad.dtype == torch.float64 else torch.float32,
                       device=grad.device)


def _finish_bias_grad(ctx, buffer, grad, a_saved, prologue, weight, sum_dims=None):
    """grad_bias from the GEMM's buffer (summed over sum_dims), or, without a weight gradient, from the
    gradient before the activation."""
    if buffer is not None:
        return (buffer.sum(sum_dims) if sum_dims else buffer).reshape(-1).to(weight.dtype)
    if ctx.needs_input_grad[2]:
        return materialized(grad, a_saved, prologue, ctx.spec).sum((0, 2, 3))
    return None


def _forward_outputs(ctx, spec, shape, input):
    """(output, pre-activation or None), in the input's memory format."""
    ctx.spec, ctx.saved_kind = spec, saved_kind(spec, None)
    output = torch.empty(shape, dtype=input.dtype, device=input.device).contiguous(
        memory_format=_memory_format(input))
    pre = torch.empty_like(output) if ctx.saved_kind == "pre" and any(ctx.needs_input_grad[:3]) else None
    return output, pre


class Conv1x1Function(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias, stride, groups, spec):
        batch, channels, height, width = input.shape
        out_channels = weight.shape[0]
        in_group, out_group = channels // groups, out_channels // groups
        out_h, out_w = (height - 1) // stride[0] + 1, (width - 1) // stride[1] + 1
        output, pre = _forward_outputs(ctx, spec, (batch, out_channels, out_h, out_w), input)
        gemm(weight, input, output,
             batch=_groups_axis(groups, {"a": out_group * weight.stride(0), "b": in_group * input.stride(1),
                                         "c": out_group * output.stride(1), "bias": out_group}),
             m=axis(Level(out_group, {"a": weight.stride(0), "c": output.stride(1)})),
             n=_pixels((batch, out_h, out_w), {"b": _spatial(input, stride), "c": _spatial(output)}),
             k=axis(Level(in_group, {"a": weight.stride(1), "b": input.stride(1)})),
             bias=bias, bias_along="m", spec=spec, pre=pre, allow_tf32=torch.backends.cudnn.allow_tf32,
             op_name="conv2d")
        ctx.save_for_backward(input, weight, output if ctx.saved_kind == "output" else pre)
        ctx.stride, ctx.groups = stride, groups
        return output

    @staticmethod
    def backward(ctx, grad_output):
        input, weight, saved = ctx.saved_tensors
        grad, a_saved, prologue = backward_operand(ctx, grad_output, saved)
        stride, groups = ctx.stride, ctx.groups
        batch, channels = input.shape[:2]
        out_h, out_w = grad.shape[2:]
        in_group, out_group = channels // groups, weight.shape[0] // groups
        needs_input, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad_input = grad_weight = None
        common = dict(a_saved=a_saved, prologue=prologue, spec=ctx.spec, allow_tf32=torch.backends.cudnn.allow_tf32,
                      op_name="conv2d")
        if needs_input:  # (pixels x in channels) = (pixels x out channels) @ W
            # pixels the strided forward skipped get no gradient: start from zeros then
            grad_input = (torch.zeros_like if stride != (1, 1) else torch.empty_like)(
                input, memory_format=_memory_format(input))
            gemm(grad, weight, grad_input,
                 batch=_groups_axis(groups, {"a": out_group * grad.stride(1), "b": out_group * weight.stride(0),
                                             "c": in_group * grad_input.stride(1)}),
                 m=_pixels((batch, out_h, out_w), {"a": _spatial(grad), "c": _spatial(grad_input, stride)}),
                 n=axis(Level(in_group, {"b": weight.stride(1), "c": grad_input.stride(1)})),
                 k=axis(Level(out_group, {"a": grad.stride(1), "b": weight.stride(0)})), **common)
        bias_buffer = _bias_grad_buffer(needs_weight, needs_bias, grad, (groups, out_group))
        if needs_weight:  # (out channels x in channels) = (out channels x pixels) @ x
            grad_weight = torch.empty_like(weight)
            gemm(grad, input, grad_weight,
                 batch=_groups_axis(groups, {"a": out_group * grad.stride(1), "b": in_group * input.stride(1),
                                             "c": out_group * grad_weight.stride(0), "bias": out_group}),
                 m=axis(Level(out_group, {"a": grad.stride(1), "c": grad_weight.stride(0)})),
                 n=axis(Level(in_group, {"b": input.stride(1), "c": grad_weight.stride(1)})),
                 k=_pixels((batch, out_h, out_w), {"a": _spatial(grad), "b": _spatial(input, stride)}),
                 bias_grad=bias_buffer, **common)
        grad_bias = _finish_bias_grad(ctx, bias_buffer, grad, a_saved, prologue, weight)
        return grad_input, grad_weight, grad_bias, None, None, None


class ConvTranspose2dFunction(torch.autograd.Function):
    """kernel == stride: output pixel (h * kh + i, w * kw + j) = W[:, :, i, j]^T x[:, h, w], per group."""

    @staticmethod
    def forward(ctx, input, weight, bias, groups, spec):
        batch, channels, height, width = input.shape
        kh, kw = weight.shape[2:]
        in_group, out_group = channels // groups, weight.shape[1]
        output, pre = _forward_outputs(ctx, spec, (batch, out_group * groups, height * kh, width * kw), input)
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
        ctx.save_for_backward(input, weight, output if ctx.saved_kind == "output" else pre)
        ctx.groups = groups
        return output

    @staticmethod
    def backward(ctx, grad_output):
        input, weight, saved = ctx.saved_tensors
        grad, a_saved, prologue = backward_operand(ctx, grad_output, saved)
        groups = ctx.groups
        batch, channels, height, width = input.shape
        kh, kw = weight.shape[2:]
        in_group, out_group = channels // groups, weight.shape[1]
        needs_input, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad_input = grad_weight = None
        common = dict(a_saved=a_saved, prologue=prologue, spec=ctx.spec, allow_tf32=torch.backends.cudnn.allow_tf32,
                      op_name="conv_transpose2d")
        if needs_input:  # (pixels x in channels): a sum over output channels and taps
            grad_input = torch.empty_like(input, memory_format=_memory_format(input))
            gemm(grad, weight, grad_input,
                 batch=_groups_axis(groups, {"a": out_group * grad.stride(1), "b": in_group * weight.stride(0),
                                             "c": in_group * grad_input.stride(1)}),
                 m=_pixels((batch, height, width), {"a": _spatial(grad, (kh, kw)), "c": _spatial(grad_input)}),
                 n=axis(Level(in_group, {"b": weight.stride(0), "c": grad_input.stride(1)})),
                 k=axis(Level(out_group, {"a": grad.stride(1), "b": weight.stride(1)}),
                        Level(kh, {"a": grad.stride(2), "b": weight.stride(2)}),
                        Level(kw, {"a": grad.stride(3), "b": weight.stride(3)})), **common)
        bias_buffer = _bias_grad_buffer(needs_weight, needs_bias, grad, (groups, kh, kw, out_group))
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
        grad_bias = _finish_bias_grad(ctx, bias_buffer, grad, a_saved, prologue, weight, sum_dims=(1, 2))
        return grad_input, grad_weight, grad_bias, None, None


def _check_common(op_name, input, weight, bias):
    """Tensors, ranks and dtypes; returns (input as 4-D, whether it was unbatched)."""
    check_tensor(op_name, "input", input)
    check_tensor(op_name, "weight", weight)
    if weight.dim() != 4:
        raise RuntimeError(f"{op_name}: expected a 4-D weight, got weight of size {list(weight.shape)}")
    if input.dim() not in (3, 4):
        raise RuntimeError(f"Expected 3D (unbatched) or 4D (batched) input to {op_name}, but got input of size: "
                           f"{list(input.shape)}")
    check_same_dtype(op_name, input=input, weight=weight, bias=bias)
    check_floating(op_name, "input", input.dtype)
    unbatched = input.dim() == 3
    return (input.unsqueeze(0) if unbatched else input), unbatched


def _check_groups_and_bias(groups, weight, bias, out_channels, transposed=False):
    if not isinstance(groups, int) or groups < 1:
        raise RuntimeError("non-positive groups is not supported")
    if weight.shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but "
                           f"got weight of size [{list(weight.shape)}] instead")
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != out_channels):
        raise RuntimeError(f"Given {'transposed=1, ' if transposed else ''}weight of size {list(weight.shape)}, "
                           f"expected bias to be 1-dimensional with {out_channels} elements, but got bias of size "
                           f"{list(bias.shape)} instead")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, activation=None):
    """F.conv2d for 1x1 kernels (any stride, dilation, groups), plus keyword-only `activation` fused into the
    epilogue. Other kernel sizes and nonzero padding raise NotImplementedError."""
    x, unbatched = _check_common("conv2d", input, weight, bias)
    stride = _pair(stride, "stride", "conv2d")
    _pair(dilation, "dilation", "conv2d")  # a 1x1 kernel never dilates
    if tuple(weight.shape[2:]) != (1, 1):
        raise NotImplementedError(f"conv2d: kernel size {tuple(weight.shape[2:])} is not supported: tritonlayers' "
                                  "conv2d runs 1x1 kernels (weight of shape (out, in / groups, 1, 1))")
    if padding == "same" and stride != (1, 1):
        raise RuntimeError("padding='same' is not supported for strided convolutions")
    if padding not in ("same", "valid") and _pair(padding, "padding", "conv2d") != (0, 0):
        raise NotImplementedError(f"conv2d: padding={padding!r} is not supported: tritonlayers' 1x1 conv2d "
                                  "runs without padding")
    _check_groups_and_bias(groups, weight, bias, weight.shape[0])
    if weight.shape[1] * groups != x.shape[1]:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected input"
                           f"{list(x.shape)} to have {weight.shape[1] * groups} channels, but got {x.shape[1]} "
                           "channels instead")
    output = Conv1x1Function.apply(x, weight, bias, stride, groups, resolve_activation(activation))
    return output.squeeze(0) if unbatched else output


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     activation=None):
    """F.conv_transpose2d when kernel_size == stride, padding 0, output_padding 0 and dilation 1 (the
    non-overlapping upsampling of decoders), plus keyword-only `activation`; other geometry raises
    NotImplementedError naming the argument."""
    x, unbatched = _check_common("conv_transpose2d", input, weight, bias)
    kernel = tuple(weight.shape[2:])
    for name, value, wanted in (("stride", _pair(stride, "stride", "conv_transpose2d"), kernel),
                                ("padding", _pair(padding, "padding", "conv_transpose2d"), (0, 0)),
                                ("output_padding", _pair(output_padding, "output_padding", "conv_transpose2d"),
                                 (0, 0)),
                                ("dilation", _pair(dilation, "dilation", "conv_transpose2d"), (1, 1))):
        if value != wanted:
            raise NotImplementedError(f"conv_transpose2d: {name}={value} is not supported: tritonlayers runs "
                                      f"kernel_size == stride ({kernel}), padding 0, output_padding 0, dilation 1")
    if not isinstance(groups, int) or groups < 1:
        raise RuntimeError("non-positive groups is not supported")
    if weight.shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but "
                           f"got weight of size [{list(weight.shape)}] instead")
    if weight.shape[0] != x.shape[1]:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected input{list(x.shape)} "
                           f"to have {weight.shape[0]} channels, but got {x.shape[1]} channels instead")
    _check_groups_and_bias(groups, weight, bias, weight.shape[1] * groups, transposed=True)
    output = ConvTranspose2dFunction.apply(x, weight, bias, groups, resolve_activation(activation))
    return output.squeeze(0) if unbatched else output
