"""Host side of kernels/layout_copy.py: a 4-D tensor copied into another memory layout in one launch (the
1x1 convolution's GEMMs read NCHW 7x7 and 14x14 maps in channels_last and write 7x7 ones there, as cuDNN's
kernels do)."""
import torch

from . import _layout
from ._cache import BoundedCache
from ._fast_launch import run_kernel
from ._launch import launch_device
from ._layout import needs_wide_index, reduction_geometry
from .kernels.host_math import alignment
from .kernels.layout_copy import layout_copy_kernel, layout_copy_launch_config

_PLANS = BoundedCache()  # (shapes, strides, ...) -> (grid, arguments, constexprs): every step repeats them


def to_memory_format(tensor, memory_format):
    """A copy of a 4-D `tensor` in `memory_format` (tensor itself when it is already laid out so)."""
    if tensor.is_contiguous(memory_format=memory_format):
        return tensor
    copy = torch.empty_like(tensor, memory_format=memory_format)
    copy_into(copy, tensor)
    return copy


def copy_into(dst, src):
    """dst.copy_(src) for same-shaped, same-dtype 4-D tensors in dense layouts (NCHW, channels_last)."""
    if dst.numel() == 0:
        return
    key = (src.shape, src.stride(), dst.stride(), src.dtype, src.device, _layout.WIDE_INDEX_THRESHOLD)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS.put(key, _plan(src, dst))
    grid, arguments, constexprs = plan
    with launch_device("layout copy", src, dst):
        run_kernel(layout_copy_kernel, grid, src, dst, *arguments, **constexprs)


def _plan(src, dst):
    num_groups, num_rows, num_columns, (src_strides, dst_strides) = reduction_geometry(1, src, dst)
    grid, block_r, block_c, num_warps = layout_copy_launch_config(num_groups, num_rows, num_columns)
    align = alignment((num_rows, num_columns), (*src_strides[1:], *dst_strides[1:]))
    return grid, (num_rows, num_columns, *src_strides, *dst_strides), dict(
        BLOCK_R=block_r, BLOCK_C=block_c, ALIGN=align, WIDE_INDEX=needs_wide_index(src, dst), num_warps=num_warps)
