"""Copying a tensor into another memory layout (NCHW <-> channels_last) in 2-D tiles.

Both tensors are viewed as (groups, rows, columns) with their own strides (tritonlayers._layout's
reduction_geometry over the channel dim): NCHW is contiguous along the columns (pixels), channels_last
along the rows (channels). A program loads a (BLOCK_R, BLOCK_C) tile along the source's contiguous dim and
stores it along the destination's: Triton gives each access its own coalesced layout and moves the tile
between them through shared memory. torch's copy between these layouts is a generic strided elementwise
kernel (~0.6 TB/s on an H200 for the ResNet stage-4 maps); this is the transpose cuDNN runs around its
NHWC convolutions of NCHW tensors.
"""
import triton
import triton.language as tl

from .host_math import cdiv, next_power_of_2
from .tiles import tile_coordinates, tile_offsets, with_divisor


@triton.jit
def layout_copy_kernel(
    src_ptr, dst_ptr, num_rows, num_columns,
    src_group_stride, src_row_stride, src_column_stride, dst_group_stride, dst_row_stride, dst_column_stride,
    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, ALIGN: tl.constexpr, WIDE_INDEX: tl.constexpr,
):
    """dst[g, r, c] = src[g, r, c] for the tile (program_id(0): row block, program_id(1): (group, column
    block)). ALIGN (host_math.alignment): a divisor of the sizes and non-unit strides, so 14x14 maps (196
    pixels) keep 8-byte accesses."""
    num_rows = with_divisor(num_rows, ALIGN)
    num_columns = with_divisor(num_columns, ALIGN)
    group, rows, columns = tile_coordinates(tl.program_id(0), tl.program_id(1), num_columns, BLOCK_R, BLOCK_C,
                                            WIDE_INDEX)
    mask = (rows < num_rows)[:, None] & (columns < num_columns)[None, :]
    tile = tl.load(src_ptr + tile_offsets(group, rows, columns, src_group_stride, src_row_stride,
                                          src_column_stride, ALIGN), mask=mask)
    tl.store(dst_ptr + tile_offsets(group, rows, columns, dst_group_stride, dst_row_stride, dst_column_stride,
                                    ALIGN), tile, mask=mask)


# Elements a program moves: 32 a thread at 4 warps, through 8 KiB of shared memory in 16-bit dtypes.
COPY_TILE = 4096


def layout_copy_launch_config(num_groups, num_rows, num_columns, tile=COPY_TILE):
    """(grid, BLOCK_R, BLOCK_C, num_warps): square-ish tiles, so the load's contiguous dim and the store's
    both span whole memory sectors; a short dim (49 pixels) takes its power of two and the other the rest of
    the tile."""
    block_c = min(next_power_of_2(num_columns), 64)
    block_r = min(next_power_of_2(num_rows), max(64, tile // block_c))
    block_c = min(next_power_of_2(num_columns), max(block_c, tile // block_r))
    return (cdiv(num_rows, block_r), num_groups * cdiv(num_columns, block_c)), block_r, block_c, 4
