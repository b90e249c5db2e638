"""Launcher shared by the elementwise kernels (activations, the backward of in-place ones)."""
from . import _layout
from ._cache import BoundedCache
from ._fast_launch import run_kernel
from ._layout import elementwise_geometry, needs_wide_index
from .kernels.elementwise import elementwise_launch_config
from .kernels.host_math import cdiv

# Launch plans by kernel (its id: hashing a JITFunction hashes its source), tensor shapes / strides / dtypes
# and constexprs: a repeated call (every training step's) skips the layout analysis, which costs as much host
# time as the rest of the call.
_PLANS = BoundedCache()


def _plan(kernel, tensors, constexprs):
    """(grid, numel and the sizes / strides arguments, constexprs with the launch's own), or None when the
    views need more dims than the kernels index (callers copy to contiguous first)."""
    geometry = elementwise_geometry(*tensors)
    if geometry is None:
        return None
    dense, sizes, strides = geometry
    numel = tensors[-1].numel()
    block_size, num_warps = elementwise_launch_config(numel)
    arguments = (numel, *sizes[1:], *(stride for tensor_strides in strides for stride in tensor_strides))
    return ((cdiv(numel, block_size),), arguments,
            dict(constexprs, DENSE=dense, WIDE_INDEX=needs_wide_index(*tensors), BLOCK_SIZE=block_size,
                 num_warps=num_warps))


def launch_elementwise(kernel, inputs, outputs, scalars=(), **constexprs):
    """Run `kernel(*inputs, *outputs, numel, size1, size2, size3, <4 strides per tensor>, *scalars,
    **constexprs, DENSE=, WIDE_INDEX=, BLOCK_SIZE=)` over same-shaped tensors.

    Layouts that need more than 4 dims to index run on contiguous copies, and the results are copied into
    `outputs` (in-place outputs included).
    """
    if outputs[0].numel() == 0:
        return
    tensors = (*inputs, *outputs)
    key = (id(kernel), _layout.WIDE_INDEX_THRESHOLD, tuple(constexprs.items()),
           *((tensor.shape, tensor.stride(), tensor.dtype) for tensor in tensors))
    plan = _PLANS.get(key)
    if plan is None:
        plan = _plan(kernel, tensors, constexprs)
        if plan is not None:
            _PLANS.put(key, plan)
    targets = outputs
    if plan is None:
        inputs = [tensor.contiguous() for tensor in inputs]
        targets = [tensor.new_empty(tensor.shape) for tensor in outputs]
        plan = _plan(kernel, (*inputs, *targets), constexprs)
    grid, arguments, launch_constexprs = plan
    run_kernel(kernel, grid, *inputs, *targets, *arguments, *scalars, **launch_constexprs)
    for output, target in zip(outputs, targets):
        if target is not output:
            output.copy_(target)
