"""Launcher shared by the elementwise kernels (activations now, dropout later)."""
import triton

from ._layout import elementwise_geometry, needs_wide_index
from .kernels.elementwise import elementwise_launch_config


def launch_elementwise(kernel, inputs, outputs, scalars=(), **constexprs):
    """Run `kernel(*inputs, *outputs, numel, size1, size2, size3, <4 strides per tensor>, *scalars,
    **constexprs, DENSE=, WIDE_INDEX=, BLOCK_SIZE=)` over same-shaped tensors.

    Layouts that need more than 4 dims to index run on contiguous copies, and the results are copied into
    `outputs` (in-place outputs included).
    """
    numel = outputs[0].numel()
    if numel == 0:
        return
    geometry = elementwise_geometry(*inputs, *outputs)
    targets = outputs
    if geometry is None:
        inputs = [tensor.contiguous() for tensor in inputs]
        targets = [tensor.new_empty(tensor.shape) for tensor in outputs]
        geometry = elementwise_geometry(*inputs, *targets)
    dense, sizes, strides = geometry
    block_size, num_warps = elementwise_launch_config(numel)
    flat_strides = [stride for tensor_strides in strides for stride in tensor_strides]
    kernel[(triton.cdiv(numel, block_size),)](
        *inputs, *targets, numel, *sizes[1:], *flat_strides, *scalars,
        DENSE=dense, WIDE_INDEX=needs_wide_index(*inputs, *targets), BLOCK_SIZE=block_size, num_warps=num_warps,
        **constexprs)
    for output, target in zip(outputs, targets):
        if target is not output:
            output.copy_(target)
