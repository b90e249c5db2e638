"""Index helpers and launch heuristics shared by the elementwise kernels."""
import triton
import triton.language as tl


@triton.jit
def strided_offsets(flat, size1, size2, size3, stride0, stride1, stride2, stride3):
    """Memory offsets of row-major flat indices into a 4-d view with the given strides.

    The host collapses every tensor to at most 4 dims first, so one decomposition serves any rank.
    `flat` must be int64 when the tensor may pass 2**31 elements.
    """
    i3 = flat % size3
    rest = flat // size3
    i2 = rest % size2
    rest = rest // size2
    i1 = rest % size1
    i0 = rest // size1
    return i0 * stride0 + i1 * stride1 + i2 * stride2 + i3 * stride3


@triton.jit
def block_offsets(BLOCK_SIZE: tl.constexpr):
    """int64 flat indices of this program's block (int64: tensors may pass 2**31 elements)."""
    start = tl.program_id(0).to(tl.int64) * BLOCK_SIZE
    return start + tl.arange(0, BLOCK_SIZE)


def elementwise_launch_config(numel):
    """(BLOCK_SIZE, num_warps) for a memory-bound elementwise pass: 4096-element blocks with 8 warps give
    each thread 16 elements in flight; small tensors get one right-sized block."""
    block_size = min(4096, max(128, triton.next_power_of_2(numel)))
    return block_size, (8 if block_size >= 4096 else 4)
