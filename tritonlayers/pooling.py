"""max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d: torch's shape rules and checks, the
window kernels, and the global path for 1x1 outputs (classifier heads' global pooling), as the op
tritonlayers::pool2d (autograd from register_autograd).

Backward is deterministic (each input element gathers from its windows) and max pooling saves its argmax
as the position inside the window in the smallest integer type (int8 for kernels up to 127 taps) instead
of torch's int64 indices, which are only produced when asked for.
"""
from typing import List, Optional, Tuple

import torch

from ._fast_launch import run_kernel
from ._launch import check_floating, check_tensor, int_pair, launch_device, sm_count
from ._layout import needs_wide_index
from ._library import custom_op, no_grads, or_placeholders, records_grad
from .kernels.host_math import cdiv
from .kernels.pooling import (MODE_IDS, global_pool_backward_kernel, global_pool_config, global_pool_forward_config,
                              global_pool_forward_kernel, pool2d_backward_kernel, pool2d_forward_kernel, window_tile)


def pooling_output_size(size, kernel, pad, stride, dilation, ceil_mode):
    """torch's pooling_output_shape: with ceil_mode the last window must start inside the input or its left
    padding."""
    numerator = size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _channels_last(tensor):
    return tensor.is_contiguous(memory_format=torch.channels_last) and not tensor.is_contiguous()


def _check_input(op_name, input, adaptive=False):
    check_tensor(op_name, "input", input)
    if adaptive:
        if input.dim() not in (3, 4):
            raise RuntimeError(f"{op_name}(): Expected 3D or 4D tensor, but got {list(input.shape)}")
        for d in range(input.dim() - 2, input.dim()):
            if input.shape[d] == 0:
                raise RuntimeError(f"{op_name}(): Expected input to have non-zero size for non-batch dimensions, but "
                                   f"input has sizes {list(input.shape)} with dimension {d} being empty")
    else:
        if input.dim() not in (3, 4):
            raise RuntimeError("non-empty 3D or 4D (batch mode) tensor expected for input")
        if any(size == 0 for size in input.shape[-3:]):
            raise RuntimeError("Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but "
                               f"got:{list(input.shape)}")
    check_floating(op_name, "input", input.dtype)


def check_padding(kernel, padding, dilation):
    """torch's pooling_output_shape checks of the padding (2-d and 3-d pooling alike)."""
    if min(padding) < 0:
        raise RuntimeError(f"pad must be non-negative, but got pad: {min(padding)}")
    for k, p, d in zip(kernel, padding, dilation):
        if p > ((k - 1) * d + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={p}, "
                               f"kernel_size={k} and dilation={d}")


def _check_window(kernel, stride, padding, dilation, input, out_size):
    """torch's pool2d_shape_check, in its order."""
    if stride[0] == 0 or stride[1] == 0:
        raise RuntimeError("stride should not be zero")
    if kernel[0] <= 0 or kernel[1] <= 0:
        raise RuntimeError(f"kernel size should be greater than zero, but got kH: {kernel[0]} kW: {kernel[1]}")
    if stride[0] < 0 or stride[1] < 0:
        raise RuntimeError(f"stride should be greater than zero, but got dH: {stride[0]} dW: {stride[1]}")
    if dilation[0] <= 0 or dilation[1] <= 0:
        raise RuntimeError(f"dilation should be greater than zero, but got dilationH: {dilation[0]} dilationW: "
                           f"{dilation[1]}")
    check_padding(kernel, padding, dilation)
    # then torch's shape check bounds padding again by half the undilated kernel
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise RuntimeError(f"pad should be smaller than or equal to half of kernel size, but got padW = {padding[1]}, "
                           f"padH = {padding[0]}, kW = {kernel[1]}, kH = {kernel[0]}")
    if out_size[0] < 1 or out_size[1] < 1:
        channels, height, width = input.shape[-3:]
        raise RuntimeError(f"Given input size: ({channels}x{height}x{width}). Calculated output size: "
                           f"({channels}x{out_size[0]}x{out_size[1]}). Output size is too small")


class PoolPlan:
    """A call's geometry: mode ("max", "avg", "adaptive_max", "adaptive_avg"), window (kernel, stride,
    padding, dilation; adaptive: the largest window as kernel), output size, and the global path's use."""

    def __init__(self, mode, input_size, out_size, kernel=(1, 1), stride=(1, 1), padding=(0, 0),
                 dilation=(1, 1), count_include_pad=True, divisor_override=None):
        self.mode, self.input_size, self.out_size = mode, tuple(input_size), tuple(out_size)
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override or 0
        if mode.startswith("adaptive"):
            self.kernel = tuple(max(self._adaptive_window(i, o, n) for o in range(n)) if n else 1
                                for i, n in zip(input_size, out_size))
        # a window covering the whole input, once: the 1x1 global reduction (a dilated one skips rows or
        # columns, though ceil_mode can leave it the only window)
        self.is_global = self.out_size == (1, 1) and (mode.startswith("adaptive") or (
            self.kernel == self.input_size and self.padding == (0, 0) and self.divisor_override == 0 and
            all(d == 1 or k == 1 for d, k in zip(self.dilation, self.kernel))))

    @staticmethod
    def _adaptive_window(size, o, out):
        return -(-(o + 1) * size // out) - (o * size) // out

    def reach(self):
        """How many windows along each dim can contain one input element (the backward's gather loops)."""
        if self.mode.startswith("adaptive"):
            reach = []
            for size, out in zip(self.input_size, self.out_size):
                counts = [0] * size
                for o in range(out):
                    for i in range((o * size) // out, -(-(o + 1) * size // out)):
                        counts[i] += 1
                reach.append(max(counts) if counts else 1)
            return tuple(reach)
        return tuple(-(-((k - 1) * d + 1) // s) for k, d, s in zip(self.kernel, self.dilation, self.stride))

    def op_args(self):
        """The plan as the pool2d ops' arguments (from mode to divisor_override)."""
        return (self.mode, list(self.out_size), list(self.kernel), list(self.stride), list(self.padding),
                list(self.dilation), self.count_include_pad, self.divisor_override)

    @classmethod
    def from_op_args(cls, input_size, mode, out_size, kernel, stride, padding, dilation, count_include_pad,
                     divisor_override):
        return cls(mode, input_size, out_size, tuple(kernel), tuple(stride), tuple(padding), tuple(dilation),
                   count_include_pad, divisor_override)

    def position_dtype(self):
        if self.mode == "max":
            taps = self.kernel[0] * self.kernel[1]
            return torch.int8 if taps <= 127 else torch.int16 if taps <= 32767 else torch.int32
        return torch.int32


def _window_args(plan):
    return (*plan.padding, plan.divisor_override)


# Adaptive windows scale output rows by input sizes (and back): products at or past this take int64.
WIDE_WINDOW_THRESHOLD = 2**31


def _constexprs(plan):
    wide_window = plan.mode.startswith("adaptive") and any(
        (out + 1) * size >= WIDE_WINDOW_THRESHOLD for size, out in zip(plan.input_size, plan.out_size))
    return dict(MODE=MODE_IDS[plan.mode], KERNEL_H=plan.kernel[0], KERNEL_W=plan.kernel[1], STRIDE_H=plan.stride[0],
                STRIDE_W=plan.stride[1], DILATION_H=plan.dilation[0], DILATION_W=plan.dilation[1],
                COUNT_INCLUDE_PAD=plan.count_include_pad, WIDE_WINDOW=wide_window)


def _window_grid(batch, channels, height, width, channels_last, wide_index):
    """(grid, tile constexprs) of a window kernel over (batch, channels, height, width) elements: a program a
    tile of one plane of the two innermost dims in memory, or of stacked planes when a plane has fewer rows
    than a tile (see _tile_coordinates)."""
    planes, rows, cols = (batch * height, width, channels) if channels_last else (batch * channels, height, width)
    block_rows, block_cols = window_tile(planes * rows, cols, wide_index)
    if rows < block_rows <= 2 * rows:  # a plane fills half a tile or more: tiles of one plane, fewer divisions
        block_rows = 1 << (rows.bit_length() - 1)
    stack = block_rows > rows
    row_blocks = cdiv(planes * rows, block_rows) if stack else planes * cdiv(rows, block_rows)
    return (row_blocks * cdiv(cols, block_cols),), dict(BLOCK_ROWS=block_rows, BLOCK_COLS=block_cols,
                                                        STACK_PLANES=stack)


def _global_view(tensor):
    """(n, c, spatial) strides when the spatial dims merge into one (contiguous or channels_last), else None."""
    if tensor.shape[3] != 1 and tensor.shape[2] != 1 and tensor.stride(2) != tensor.stride(3) * tensor.shape[3]:
        return None
    spatial_stride = tensor.stride(3) if tensor.shape[3] != 1 else tensor.stride(2)
    return tensor.stride(0), tensor.stride(1), spatial_stride


def _is_max(plan):
    return plan.mode in ("max", "adaptive_max")


def pool_outputs(input, plan, save_position, return_indices):
    """(output, position or None, indices or None) buffers, in the input's memory format."""
    shape = (*input.shape[:2], *plan.out_size)
    output = torch.empty(shape, dtype=input.dtype, device=input.device, memory_format=_memory_format(
        _channels_last(input)))
    position = torch.empty_like(output, dtype=plan.position_dtype()) if save_position and _is_max(plan) else None
    indices = torch.empty_like(output, dtype=torch.int64) if return_indices else None
    return output, position, indices


def pool_forward(input, plan, save_position, return_indices):
    """(output, position or None, indices or None) for a 4-d input."""
    batch, channels, height, width = input.shape
    output, position, indices = pool_outputs(input, plan, save_position, return_indices)
    is_max = _is_max(plan)
    if output.numel() == 0:
        return output, position, indices
    with launch_device(plan.mode + "_pool2d", input):
        view = _global_view(input) if plan.is_global else None
        if view is not None:
            wide = needs_wide_index(input)  # (the outputs' offsets are int64 per sample and channel)
            block_c, block_s, num_warps = global_pool_forward_config(batch, channels, height * width, view[1] == 1,
                                                                     2 * sm_count(input.device), wide)
            grid = (batch * cdiv(channels, block_c),)
            run_kernel(
                global_pool_forward_kernel, grid,
                input, output, position if position is not None else output, indices if indices is not None else output,
                channels, height * width, *view, output.stride(0), output.stride(1), IS_MAX=is_max,
                SAVE_POSITION=position is not None, RETURN_INDICES=indices is not None, BLOCK_C=block_c,
                BLOCK_S=block_s, WIDE_INDEX=wide, num_warps=num_warps)
        else:
            wide = needs_wide_index(input, output)
            grid, tile = _window_grid(batch, channels, *plan.out_size, _channels_last(input), wide)
            run_kernel(
                pool2d_forward_kernel, grid,
                input, output, position if position is not None else output, indices if indices is not None else output,
                batch, channels, height, width, *plan.out_size, *input.stride(), *output.stride(), *_window_args(plan),
                SAVE_POSITION=position is not None, RETURN_INDICES=indices is not None,
                CHANNELS_LAST=_channels_last(input), WIDE_INDEX=wide, num_warps=4, **tile, **_constexprs(plan))
    return output, position, indices


def _grad_input_buffer(grad_output, input_shape, input_format):
    return torch.empty(input_shape, dtype=grad_output.dtype, device=grad_output.device, memory_format=input_format)


def pool_backward(grad_output, position, plan, input_shape, input_format):
    batch, channels, height, width = input_shape
    grad_input = _grad_input_buffer(grad_output, input_shape, input_format)
    if grad_input.numel() == 0:
        return grad_input
    if position is not None and grad_output.stride() != position.stride():
        grad_output = torch.empty_like(position, dtype=grad_output.dtype).copy_(grad_output)  # position's layout
    is_max = _is_max(plan)
    with launch_device(plan.mode + "_pool2d", grad_output):
        view = _global_view(grad_input) if plan.is_global else None
        if view is not None:
            wide = needs_wide_index(grad_input)
            block_c, block_s, num_warps = global_pool_config(channels, height * width, view[1] == 1, wide)
            run_kernel(
                global_pool_backward_kernel, (batch * cdiv(channels, block_c),),
                grad_output, position if position is not None else grad_output, grad_input, channels, height * width,
                grad_output.stride(0), grad_output.stride(1), *view, IS_MAX=is_max, BLOCK_C=block_c, BLOCK_S=block_s,
                WIDE_INDEX=wide, num_warps=num_warps)
        else:
            reach_h, reach_w = plan.reach()
            channels_last = input_format == torch.channels_last
            wide = needs_wide_index(grad_output, grad_input)
            grid, tile = _window_grid(batch, channels, height, width, channels_last, wide)
            run_kernel(
                pool2d_backward_kernel, grid,
                grad_output, position if position is not None else grad_output, grad_input, batch, channels, height,
                width, *plan.out_size, *grad_output.stride(), *grad_input.stride(), *_window_args(plan),
                REACH_H=reach_h, REACH_W=reach_w, CHANNELS_LAST=channels_last, WIDE_INDEX=wide, num_warps=4, **tile,
                **_constexprs(plan))
    return grad_input


@custom_op("pool2d")
def _pool(input: torch.Tensor, mode: str, out_size: List[int], kernel: List[int], stride: List[int],
          padding: List[int], dilation: List[int], count_include_pad: bool, divisor_override: int,
          save_position: bool, return_indices: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(output, window positions for backward, int64 indices), placeholders for those not asked for."""
    plan = PoolPlan.from_op_args(input.shape[-2:], mode, out_size, kernel, stride, padding, dilation,
                                 count_include_pad, divisor_override)
    return or_placeholders(pool_forward(input, plan, save_position, return_indices), input)


@_pool.register_fake
def _(input, mode, out_size, kernel, stride, padding, dilation, count_include_pad, divisor_override, save_position,
      return_indices):
    plan = PoolPlan.from_op_args(input.shape[-2:], mode, out_size, kernel, stride, padding, dilation,
                                 count_include_pad, divisor_override)
    return or_placeholders(pool_outputs(input, plan, save_position, return_indices), input)


@custom_op("pool2d_backward")
def _pool_grad(grad_output: torch.Tensor, position: Optional[torch.Tensor], input_shape: List[int],
               channels_last: bool, mode: str, out_size: List[int], kernel: List[int], stride: List[int],
               padding: List[int], dilation: List[int], count_include_pad: bool,
               divisor_override: int) -> torch.Tensor:
    plan = PoolPlan.from_op_args(input_shape[-2:], mode, out_size, kernel, stride, padding, dilation,
                                 count_include_pad, divisor_override)
    return pool_backward(grad_output, position, plan, input_shape, _memory_format(channels_last))


@_pool_grad.register_fake
def _(grad_output, position, input_shape, channels_last, *plan_args):
    return _grad_input_buffer(grad_output, input_shape, _memory_format(channels_last))


def _memory_format(channels_last):
    return torch.channels_last if channels_last else torch.contiguous_format


def _setup_context(ctx, inputs, output):
    """Saves the window positions of max pooling's choices (small integers), nothing for average pooling."""
    input, mode, *plan_args, _, _ = inputs
    ctx.plan_args, ctx.input_shape, ctx.channels_last = (mode, *plan_args), input.shape, _channels_last(input)
    ctx.save_for_backward(output[1] if mode in ("max", "adaptive_max") else None)
    ctx.set_materialize_grads(False)  # else backward gets zero-filled position and index tensors


def _backward(ctx, grad_output, grad_position, grad_indices):
    if grad_output is None:
        return no_grads(ctx)
    (position,) = ctx.saved_tensors
    grad_input = _pool_grad(grad_output, position, list(ctx.input_shape), ctx.channels_last, *ctx.plan_args)
    return (grad_input,) + (None,) * 10


_pool.register_autograd(_backward, setup_context=_setup_context)


def _apply(input, plan, return_indices=False):
    """Run a plan on a 3-d (unbatched) or 4-d input."""
    unbatched = input.dim() == 3
    x = input.unsqueeze(0) if unbatched else input
    output, _, indices = _pool(x, *plan.op_args(), records_grad(x), return_indices)
    result = (output, indices) if return_indices else output
    if unbatched:
        result = tuple(t.squeeze(0) for t in result) if return_indices else result.squeeze(0)
    return result


def _window_plan(op_name, mode, input, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad=True,
                 divisor_override=None):
    _check_input(op_name, input)
    kernel = int_pair(kernel_size, "kernel_size", op_name)
    stride = kernel if stride is None or stride == [] or stride == () else int_pair(stride, "stride", op_name)
    padding, dilation = int_pair(padding, "padding", op_name), int_pair(dilation, "dilation", op_name)
    height, width = input.shape[-2:]
    if stride[0] != 0 and stride[1] != 0:
        out_size = tuple(pooling_output_size(size, k, p, s, d, ceil_mode)
                         for size, k, p, s, d in zip((height, width), kernel, padding, stride, dilation))
    else:
        out_size = (0, 0)
    _check_window(kernel, stride, padding, dilation, input, out_size)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    return PoolPlan(mode, (height, width), out_size, kernel, stride, padding, dilation, count_include_pad,
                    divisor_override)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    plan = _window_plan("max_pool2d", "max", input, kernel_size, stride, padding, dilation, ceil_mode)
    return _apply(input, plan, return_indices)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    plan = _window_plan("avg_pool2d", "avg", input, kernel_size, stride, padding, 1, ceil_mode, count_include_pad,
                        divisor_override)
    return _apply(input, plan)


def _adaptive_plan(op_name, mode, input, output_size):
    _check_input(op_name, input, adaptive=True)
    height, width = input.shape[-2:]
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    if not isinstance(output_size, (tuple, list)) or len(output_size) != 2:
        raise TypeError(f"{op_name}: 'output_size' must be an int or a pair of ints / None, got {output_size!r}")
    out_size = tuple(size if out is None else out for out, size in zip(output_size, (height, width)))
    if any(out < 0 for out in out_size):
        raise RuntimeError(f"{op_name}: elements of output_size must be greater than or equal to 0 but received "
                           f"{list(out_size)}")
    return PoolPlan(mode, (height, width), out_size)


def adaptive_avg_pool2d(input, output_size):
    return _apply(input, _adaptive_plan("adaptive_avg_pool2d", "adaptive_avg", input, output_size))


def adaptive_max_pool2d(input, output_size, return_indices=False):
    return _apply(input, _adaptive_plan("adaptive_max_pool2d", "adaptive_max", input, output_size), return_indices)
