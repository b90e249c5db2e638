"""max_pool3d, avg_pool3d, adaptive_avg_pool3d, adaptive_max_pool3d: 3-d pooling as two passes of the 2-d
kernels, over the (H, W) planes, then over depth (a (D, H'W') plane, windows one column wide), with torch's 3-d
argument checks.

Box windows separate exactly. A box's maximum is the depth maximum of its slices' maxima, and torch's choice,
the first maximum in (d, h, w) scan order (the last NaN), is the first such slice's own choice, so values,
indices and gradients match. A box average is the depth average of the slices' averages: its divisor, with or
without the padding, is a product of per-dim counts (divisor_override divides the second pass's sum of the
first pass's sums). A pass whose windows are single elements is skipped. The intermediate is in the input's
dtype: half-precision averages round once more than torch's (within the dtype's tolerance).
"""
import torch

from ._launch import check_floating, check_tensor
from .pooling import (adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, check_padding, max_pool2d,
                      pooling_output_size)


def _triple(value, op, name, position, message):
    """An int, or a sequence of one or three ints (torch's 3-d pooling reads them so), as a triple."""
    if isinstance(value, (tuple, list)):
        if len(value) not in (1, 3):
            raise RuntimeError(message)
        value = tuple(value) * (3 // len(value))
    else:
        value = (value,) * 3
    for item in value:
        if not isinstance(item, int) or isinstance(item, bool):
            raise TypeError(f"{op}(): argument '{name}' (position {position}) must be tuple of ints, not "
                            f"{type(item).__name__}")
    return value


def _check_batch(op, input):
    check_tensor(op, "input", input)
    if input.dim() not in (4, 5):
        raise RuntimeError("non-empty 4D or 5D (batch mode) tensor expected for input")
    for index in range(input.dim() - 4, input.dim()):
        if input.shape[index] == 0:
            raise RuntimeError(f"{op}(): Expected input's non-batch dimensions to have positive length, but input "
                               f"has a shape of {list(input.shape)} and dimension {index} has length zero!")
    check_floating(op, "input", input.dtype)


def _window_geometry(op, input, kernel_size, stride, padding, dilation, ceil_mode, check_input_size=False):
    """(kernel, stride, padding, dilation) triples and the output's (D, H, W), after torch's pool3d checks in
    its order."""
    kernel = _triple(kernel_size, op, "kernel_size", 2,
                     f"{op}: kernel_size must either be a single int, or a tuple of three ints")
    empty_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    stride = kernel if empty_stride else _triple(
        stride, op, "stride", 3, f"{op}: stride must either be omitted, a single int, or a tuple of three ints")
    padding = _triple(padding, op, "padding", 4, f"{op}: padding must either be a single int, or a tuple of three ints")
    dilation = _triple(dilation, op, "dilation", 5,
                       f"{op}: dilation must be either a single int, or a tuple of three ints")
    _check_batch(op, input)
    if 0 in stride:
        raise RuntimeError("stride should not be zero")
    if min(kernel) <= 0:
        raise RuntimeError("kernel size should be greater than zero, but got kT: {} kH: {} kW: {}".format(*kernel))
    if min(stride) <= 0:
        raise RuntimeError("stride should be greater than zero, but got dT: {} dH: {} dW: {}".format(*stride))
    if min(dilation) <= 0:
        raise RuntimeError("dilation should be greater than zero, but got dilationT: {} dilationH: {} "
                           "dilationW: {}".format(*dilation))
    check_padding(kernel, padding, dilation)
    if any(p > k // 2 for k, p in zip(kernel, padding)):
        raise RuntimeError("pad should be smaller than or equal to half of kernel size, but got kT: {} kW: {} kH: {} "
                           "padT: {} padW: {} padH: {}".format(kernel[0], kernel[2], kernel[1], padding[0],
                                                               padding[2], padding[1]))
    sizes = tuple(input.shape[-3:])
    if check_input_size and any(size < k for size, k in zip(sizes, kernel)):
        raise RuntimeError("input image (T: {} H: {} W: {}) smaller than kernel size (kT: {} kH: {} kW: {})".format(
            *sizes, *kernel))
    out = tuple(pooling_output_size(*args, ceil_mode) for args in zip(sizes, kernel, padding, stride, dilation))
    if min(out) < 1:
        raise RuntimeError(f"Given input size: ({input.shape[-4]}x{'x'.join(map(str, sizes))}). Calculated output "
                           f"size: ({input.shape[-4]}x{'x'.join(map(str, out))}). Output size is too small")
    return kernel, stride, padding, dilation


def _two_passes(input, over_planes, over_depth, return_indices=False, planes_trivial=False, depth_trivial=False):
    """over_depth(over_planes(x)) on 2-d views of a 4-d (unbatched) or 5-d input: over_planes pools the (H, W)
    planes of an (N', C', H, W) view, over_depth the (D, H'W') planes of an (N, C, D, H'W') view. A trivial
    pass (its windows single elements, each element its own value) is skipped, unless indices are asked for
    or the other pass is skipped too (the result would alias the input). Both views are contiguous, or
    channels_last when channels are innermost (a channels_last_3d input, whose layout the output keeps)."""
    if return_indices:
        planes_trivial = depth_trivial = False
    over_planes = None if planes_trivial else over_planes
    over_depth = None if depth_trivial and not planes_trivial else over_depth
    unbatched = input.dim() == 4
    x = input.unsqueeze(0) if unbatched else input
    n, c, d, h, w = x.shape
    channels_inner = x.stride(1) == 1 and c > 1
    planes = x.transpose(1, 2).reshape(n * d, c, h, w) if channels_inner else x.reshape(n, c * d, h, w)
    first = over_planes(planes) if over_planes is not None else planes
    y1, i1 = first if isinstance(first, tuple) else (first, None)
    h_out, w_out = y1.shape[-2:]

    def columns(t):
        if channels_inner:
            return t.reshape(n, d, c, h_out * w_out).transpose(1, 2)
        return t.reshape(n, c, d, h_out * w_out)

    second = over_depth(columns(y1)) if over_depth is not None else columns(y1)
    y2, i2 = second if isinstance(second, tuple) else (second, None)
    result = y2.unflatten(3, (h_out, w_out))
    if return_indices:
        depth = torch.div(i2, h_out * w_out, rounding_mode="floor")
        indices = (depth * (h * w) + columns(i1).gather(2, depth)).unflatten(3, (h_out, w_out))
        result = (result, indices)
    if unbatched:
        result = tuple(t.squeeze(0) for t in result) if return_indices else result.squeeze(0)
    return result


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    (kd, kh, kw), (sd, sh, sw), (pd, ph, pw), (dd, dh, dw) = _window_geometry(
        "max_pool3d", input, kernel_size, stride, padding, dilation, ceil_mode)
    return _two_passes(
        input, lambda t: max_pool2d(t, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode, return_indices),
        lambda t: max_pool2d(t, (kd, 1), (sd, 1), (pd, 0), (dd, 1), ceil_mode, return_indices), return_indices,
        (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0), (kd, sd, pd) == (1, 1, 0))


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    (kd, kh, kw), (sd, sh, sw), (pd, ph, pw), _ = _window_geometry(
        "avg_pool3d", input, kernel_size, stride, padding, 1, ceil_mode, check_input_size=True)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    # with an override the first pass sums (divides by 1) and the second divides the sums of sums
    first_divisor = None if divisor_override is None else 1
    return _two_passes(
        input, lambda t: avg_pool2d(t, (kh, kw), (sh, sw), (ph, pw), ceil_mode, count_include_pad, first_divisor),
        lambda t: avg_pool2d(t, (kd, 1), (sd, 1), (pd, 0), ceil_mode, count_include_pad, divisor_override),
        planes_trivial=(kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0) and divisor_override is None,
        depth_trivial=(kd, sd, pd) == (1, 1, 0) and divisor_override is None)


def _adaptive_size(op, input, output_size, size_message, rank_message):
    check_tensor(op, "input", input)
    if input.dim() not in (4, 5):
        raise RuntimeError(f"{op}(): Expected 4D or 5D tensor, but got{rank_message}{list(input.shape)}")
    check_floating(op, "input", input.dtype)
    if isinstance(output_size, int):
        output_size = (output_size,) * 3
    if not isinstance(output_size, (tuple, list)) or len(output_size) != 3:
        raise RuntimeError(size_message)
    for index in range(input.dim() - 3, input.dim()):
        if input.shape[index] == 0:
            raise RuntimeError(f"{op}(): Expected input to have non-zero size for non-batch dimensions, but input has "
                               f"sizes {list(input.shape)} with dimension {index} being empty")
    out = tuple(size if o is None else o for o, size in zip(output_size, input.shape[-3:]))
    if min(out) < 0:
        raise RuntimeError(f"{op}: elements of output_size must be greater than or equal to 0 but received "
                           f"{list(out)}")
    return out


def adaptive_avg_pool3d(input, output_size):
    od, oh, ow = _adaptive_size("adaptive_avg_pool3d", input, output_size, "adaptive_avg_pool3d: output_size must be 3",
                                " ")
    d, h, w = input.shape[-3:]
    return _two_passes(input, lambda t: adaptive_avg_pool2d(t, (oh, ow)),
                       lambda t: adaptive_avg_pool2d(t, (od, t.shape[-1])),
                       planes_trivial=(oh, ow) == (h, w), depth_trivial=od == d)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    od, oh, ow = _adaptive_size("adaptive_max_pool3d", input, output_size,
                                "adaptive_max_pool3d(): internal error: output_size.size() must be 3", ": ")
    d, h, w = input.shape[-3:]
    return _two_passes(input, lambda t: adaptive_max_pool2d(t, (oh, ow), return_indices),
                       lambda t: adaptive_max_pool2d(t, (od, t.shape[-1]), return_indices), return_indices,
                       (oh, ow) == (h, w), od == d)
