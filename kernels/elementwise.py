"""Index helpers and launch heuristics shared by the elementwise kernels."""
import triton
import triton.language as tl
from .host_math import next_power_of_2


@triton.jit
def unravel4(flat, size1, size2, size3):
    """The 4-d coordinates (i0, i1, i2, i3) of row-major flat indices (size0 need not be known)."""
    i3 = flat % size3
    rest = flat // size3
    i2 = rest % size2
    rest = rest // size2
    return rest // size1, rest % size1, i2, i3


@triton.jit
def strided_offsets(flat, size1, size2, size3, stride0, stride1, stride2, stride3):
    """Memory offsets of row-major flat indices into a 4-d view with the given strides.

    The host collapses every tensor to at most 4 dims first, so one decomposition serves any rank.
    The arithmetic runs in flat's dtype: int64 when offsets may pass 2**31 (see block_offsets).
    """
    i0, i1, i2, i3 = unravel4(flat, size1, size2, size3)
    return i0 * stride0 + i1 * stride1 + i2 * stride2 + i3 * stride3


@triton.jit
def tensor_offsets(flat, DENSE: tl.constexpr, size1, size2, size3, stride0, stride1, stride2, stride3):
    """Memory offsets of one tensor: the flat indices themselves when DENSE (all tensors of the launch share
    one dense layout), else through its strides."""
    if DENSE:
        return flat
    else:
        return strided_offsets(flat, size1, size2, size3, stride0, stride1, stride2, stride3)


@triton.jit
def block_offsets(BLOCK_SIZE: tl.constexpr, WIDE_INDEX: tl.constexpr):
    """Flat indices of this program's block: int64 when WIDE_INDEX (some offset may pass 2**31), else int32,
    whose division and multiplication cost far fewer registers and instructions."""
    pid = tl.program_id(0)
    if WIDE_INDEX:
        pid = pid.to(tl.int64)
    return pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)


def elementwise_launch_config(numel):
    """(BLOCK_SIZE, num_warps) for a memory-bound elementwise pass: 8 elements per thread (two 16-byte loads
    in fp32, one in fp16/bf16); 16 made mish's and gelu-tanh's backward spill on sm_90. Small tensors get
    one right-sized block."""
    block_size = min(2048, max(128, next_power_of_2(numel)))
    return block_size, max(1, block_size // 256)
