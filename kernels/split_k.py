"""Summing a split-K GEMM's partials: out[r, c] = sum over splits of partials[s, r, c], cast to out's dtype.

The partials are dense (splits, rows, columns) in the accumulator's dtype; out's row r is (outer, inner) =
divmod(r, row_size), at outer * outer_stride + inner * row_stride (a batch of M rows). One pass replaces a
torch sum and a copy into the strided output.
"""
import triton
import triton.language as tl

from .host_math import cdiv, next_power_of_2
from .tiles import TILE_STAGES


@triton.jit
def sum_partials_kernel(
    partials_ptr, out_ptr, splits, rows, columns, row_size, outer_stride, row_stride, column_stride,
    BLOCK_S: tl.constexpr, BLOCK: tl.constexpr, WIDE_INDEX: tl.constexpr,
):
    """BLOCK consecutive (row, column) sums a program, BLOCK_S splits a step, the next steps' splits loaded
    meanwhile: a split a step left a few programs walking ~100 splits one dependent load at a time (52 us
    for a 64x256 weight gradient)."""
    flat = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    split_ids = tl.arange(0, BLOCK_S)
    plane = rows * columns
    if WIDE_INDEX:
        flat = flat.to(tl.int64)
        split_ids = split_ids.to(tl.int64)
        plane = plane.to(tl.int64)
    out_mask = flat < plane
    total = tl.zeros((BLOCK,), dtype=partials_ptr.dtype.element_ty)
    for first_split in tl.range(0, splits, BLOCK_S, num_stages=TILE_STAGES):
        split = first_split + split_ids
        mask = (split[:, None] < splits) & out_mask[None, :]
        total += tl.sum(tl.load(partials_ptr + split[:, None] * plane + flat[None, :], mask=mask, other=0), axis=0)
    row_ids, column_ids = flat // columns, flat % columns
    out_offsets = (row_ids // row_size) * outer_stride + (row_ids % row_size) * row_stride + column_ids * column_stride
    tl.store(out_ptr + out_offsets, total.to(out_ptr.dtype.element_ty), mask=out_mask)


SUM_TILE = 4096  # splits x sums one program holds per step


def sum_partials_launch(splits, sums, programs_wanted):
    """(grid, BLOCK_S, BLOCK, num_warps): blocks of sums small enough to spread over about programs_wanted
    programs (at least 32 sums each, coalesced), then as many splits per step as fit the tile."""
    block = max(32, min(1024, next_power_of_2(cdiv(sums, programs_wanted))))
    block_s = max(1, min(next_power_of_2(splits), SUM_TILE // block))
    return (cdiv(sums, block),), block_s, block, 4
