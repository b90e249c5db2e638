"""Summing a split-K GEMM's partials: out[r, c] = sum over splits of partials[s, r, c], cast to out's dtype.

The partials are dense (splits, rows, columns) in the accumulator's dtype; out's row r is (outer, inner) =
divmod(r, row_size), at outer * outer_stride + inner * row_stride (a batch of M rows). One pass replaces a
torch sum and a copy into the strided output.
"""
import triton
import triton.language as tl

from .host_math import next_power_of_2


@triton.jit
def sum_partials_kernel(
    partials_ptr, out_ptr, splits, rows, columns, row_size, outer_stride, row_stride, column_stride,
    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, WIDE_INDEX: tl.constexpr,
):
    row_ids = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    column_ids = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    if WIDE_INDEX:
        row_ids = row_ids.to(tl.int64)
        column_ids = column_ids.to(tl.int64)
    mask = (row_ids[:, None] < rows) & (column_ids[None, :] < columns)
    offsets = row_ids[:, None] * columns + column_ids[None, :]
    plane = rows * columns
    if WIDE_INDEX:
        plane = plane.to(tl.int64)
    total = tl.zeros((BLOCK_R, BLOCK_C), dtype=partials_ptr.dtype.element_ty)
    for split in range(splits):
        total += tl.load(partials_ptr + split * plane + offsets, mask=mask, other=0)
    out_rows = (row_ids // row_size) * outer_stride + (row_ids % row_size) * row_stride
    tl.store(out_ptr + out_rows[:, None] + column_ids[None, :] * column_stride,
             total.to(out_ptr.dtype.element_ty), mask=mask)


def sum_partials_config(rows, columns):
    """(BLOCK_R, BLOCK_C, num_warps): up to 2048 sums a program, columns (contiguous in the partials) first."""
    block_c = min(next_power_of_2(columns), 128)
    block_r = max(1, min(next_power_of_2(rows), 2048 // block_c))
    return block_r, block_c, max(1, min(4, block_r * block_c // 256))
