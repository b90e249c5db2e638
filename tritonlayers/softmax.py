"""softmax / log_softmax: host forward/backward, the op tritonlayers::softmax (autograd from register_autograd)
and the functional entry points."""
import warnings

import torch

from ._autocast import fp32_dtype_on_cuda
from ._fast_launch import run_kernel
from ._launch import check_floating, check_tensor, launch_device
from ._layout import empty_like_dense, needs_wide_index, reduction_geometry
from ._library import custom_op
from .kernels.host_math import alignment, cdiv
from .kernels.softmax import (normalize_launch_config, softmax_backward_kernel, softmax_forward_kernel,
                              softmax_launch_config, softmax_normalize_kernel, softmax_split_k_kernel,
                              split_k_softmax_launch_config)


def normalize_dim(dim, ndim):
    """torch's dim wrapping, with its IndexError for an out-of-range dim (0-dim tensors take -1 and 0)."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"argument 'dim' must be int, not {type(dim).__name__}")
    low, high = (-1, 0) if ndim == 0 else (-ndim, ndim - 1)
    if not low <= dim <= high:
        raise IndexError(f"Dimension out of range (expected to be in range of [{low}, {high}], but got {dim})")
    return dim % max(ndim, 1)


def _implicit_dim(name, ndim, stacklevel):
    # torch.nn.functional._get_softmax_dim, kept for dim=None calls.
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an "
                  "argument.", stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def _launch(kernel, tensors, dim, log):
    """Launch a softmax kernel over `tensors` (inputs first, output last), all of one shape; the first
    tensor's layout picks the tile shape, and each input is a tile the kernel holds in registers."""
    num_groups, num_rows, num_columns, strides = reduction_geometry(dim, *tensors)
    fp64 = tensors[-1].dtype == torch.float64 or tensors[0].dtype == torch.float64
    block_r, block_c, single_block, num_warps = softmax_launch_config(
        num_rows, num_columns, rows_contiguous=strides[0][1] == 1, fp64=fp64, live_tensors=len(tensors) - 1)
    grid = (num_groups * cdiv(num_columns, block_c),)
    align = alignment((num_rows, num_columns), [s for tensor_strides in strides for s in tensor_strides[1:]])
    run_kernel(kernel, grid, *tensors, num_rows, num_columns,
               *(s for tensor_strides in strides for s in tensor_strides), LOG=log, BLOCK_R=block_r,
               BLOCK_C=block_c, SINGLE_BLOCK=single_block, WIDE_INDEX=needs_wide_index(*tensors), ALIGN=align,
               num_warps=num_warps)


def _as_indexable(dim, *tensors):
    """Tensors (inputs first, output last) whose non-reduced dims collapse to two groups: strided inputs
    that do not are copied to contiguous, with a contiguous stand-in for the output unless it is one."""
    if reduction_geometry(dim, *tensors) is not None:
        return tensors
    inputs = [tensor.contiguous() for tensor in tensors[:-1]]
    output = tensors[-1]
    if not output.is_contiguous():
        output = torch.empty(output.shape, dtype=output.dtype, device=output.device)
    return (*inputs, output)


def softmax_forward(input, dim, output_dtype, log):
    """softmax or log_softmax of `input` over `dim`, in `output_dtype` (input cast to it first, as torch), in
    the input's layout where it is dense."""
    output = empty_like_dense(input, dtype=output_dtype)
    if input.numel() == 0:
        return output
    tensors = (input, output) if input.dim() > 0 else (input.reshape(1), output.reshape(1))
    tensors = _as_indexable(dim, *tensors)
    with launch_device("log_softmax" if log else "softmax", input):
        _launch(softmax_forward_kernel, tensors, dim, log)
    _copy_back(tensors[-1], output)
    return output


def softmax_backward(output, grad_output, dim, input_dtype, log):
    """Gradient w.r.t. the input, in the input's dtype, from the saved output."""
    grad_input = empty_like_dense(output, dtype=input_dtype)
    if output.numel() == 0:
        return grad_input
    tensors = (output, grad_output, grad_input)
    if output.dim() == 0:
        tensors = tuple(tensor.reshape(1) for tensor in tensors)
    tensors = _as_indexable(dim, *tensors)
    with launch_device("log_softmax" if log else "softmax", output, grad_output):
        _launch(softmax_backward_kernel, tensors, dim, log)
    _copy_back(tensors[-1], grad_input)
    return grad_input


def normalize_partial_softmax(logits, stats, log):
    """Turn contiguous [..., features] logits into their softmax / log_softmax over the features, in place,
    from the (2, rows, slots) partial statistics a PARTIAL_SOFTMAX GEMM stored with them."""
    num_columns = logits.shape[-1]
    num_rows, num_slots = stats.shape[1:]
    if num_rows == 0 or num_columns == 0:
        return
    block_r, block_c, block_s, num_warps = normalize_launch_config(num_rows, num_columns, num_slots)
    with launch_device("log_softmax" if log else "softmax", logits, stats):
        align = alignment((num_columns,), (num_columns,))
        run_kernel(softmax_normalize_kernel, (cdiv(num_rows, block_r),), logits, stats, num_rows, num_columns,
                   num_columns, num_slots, LOG=log, BLOCK_R=block_r, BLOCK_C=block_c, BLOCK_S=block_s,
                   WIDE_INDEX=needs_wide_index(logits, stats), ALIGN=align, num_warps=num_warps)


def softmax_from_split_k(partials, bias, output, log):
    """output (contiguous [..., features], a row within one tile) = softmax / log_softmax over the features of
    the dense (splits, ..., features) partial logits of a split-K GEMM, summed, plus bias (or None)."""
    num_columns = output.shape[-1]
    if output.numel() == 0:
        return
    num_rows = output.numel() // num_columns
    if bias is not None and not bias.is_contiguous():
        bias = bias.contiguous()  # indexed by feature with unit stride
    block_r, block_c, num_warps = split_k_softmax_launch_config(num_rows, num_columns)
    with launch_device("log_softmax" if log else "softmax", partials, bias, output):
        run_kernel(softmax_split_k_kernel, (cdiv(num_rows, block_r),), partials,
                   bias if bias is not None else partials, output, partials.shape[0], num_rows, num_columns,
                   HAS_BIAS=bias is not None, LOG=log, BLOCK_R=block_r, BLOCK_C=block_c,
                   WIDE_INDEX=needs_wide_index(partials, output), ALIGN=alignment((num_columns,), (num_columns,)),
                   num_warps=num_warps)


def _copy_back(written, result):
    """Copy a contiguous stand-in into the result the op allocated (ops return the layout their fake says)."""
    if written.data_ptr() != result.data_ptr():
        result.copy_(written.reshape(result.shape))


@custom_op("softmax")
def _softmax(input: torch.Tensor, dim: int, dtype: torch.dtype, log: bool) -> torch.Tensor:
    return softmax_forward(input, dim, dtype, log)


@_softmax.register_fake
def _(input, dim, dtype, log):
    return empty_like_dense(input, dtype=dtype)


@custom_op("softmax_backward")
def _softmax_grad(output: torch.Tensor, grad_output: torch.Tensor, dim: int, input_dtype: torch.dtype,
                  log: bool) -> torch.Tensor:
    return softmax_backward(output, grad_output, dim, input_dtype, log)


@_softmax_grad.register_fake
def _(output, grad_output, dim, input_dtype, log):
    return empty_like_dense(output, dtype=input_dtype)


def _setup_context(ctx, inputs, output):
    """Saves only the output: both gradients are functions of it."""
    input, dim, _, log = inputs
    ctx.save_for_backward(output)
    ctx.dim, ctx.log, ctx.input_dtype = dim, log, input.dtype


def _backward(ctx, grad_output):
    (output,) = ctx.saved_tensors
    return _softmax_grad(output, grad_output, ctx.dim, ctx.input_dtype, ctx.log), None, None, None


_softmax.register_autograd(_backward, setup_context=_setup_context)


def _softmax_op(name, input, dim, stacklevel, dtype, log):
    check_tensor(name, "input", input)
    dtype = fp32_dtype_on_cuda(input, dtype)  # torch's CUDA autocast policy for softmax / log_softmax
    if dim is None:
        dim = _implicit_dim(name, input.dim(), stacklevel + 1)
    dim = normalize_dim(dim, input.dim())
    if dtype is None:
        check_floating(name, "input", input.dtype)
        output_dtype = input.dtype
    else:
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"{name}(): argument 'dtype' must be torch.dtype, not {type(dtype).__name__}")
        check_floating(name, "dtype", dtype)
        output_dtype = dtype
    return _softmax(input, dim, output_dtype, log)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    return _softmax_op("softmax", input, dim, _stacklevel, dtype, log=False)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    return _softmax_op("log_softmax", input, dim, _stacklevel, dtype, log=True)
