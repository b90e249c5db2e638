"""Tiles over a (groups, rows, columns) view, shared by kernels that reduce or broadcast along one dim.

The host collapses a tensor to (groups, rows, columns): rows are the dim a kernel treats specially (a
bias's dim, BatchNorm's channels), groups and columns the rest. A program owns BLOCK_R rows and walks
`tiles_per_program` column tiles of (group, BLOCK_C columns), so per-row sums stay in registers.
"""
import triton
import triton.language as tl
from .host_math import cdiv, next_power_of_2


@triton.jit
def tile_coordinates(pid_rows, tile, num_columns, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
                     WIDE_INDEX: tl.constexpr):
    """(group, rows, columns) of column tile `tile` (groups x column blocks, flattened) in row block pid_rows;
    int64 when WIDE_INDEX (some offset may pass 2**31)."""
    column_blocks = tl.cdiv(num_columns, BLOCK_C)
    if WIDE_INDEX:
        tile = tl.cast(tile, tl.int64)
    group = tile // column_blocks
    rows = pid_rows * BLOCK_R + tl.arange(0, BLOCK_R)
    columns = (tile % column_blocks) * BLOCK_C + tl.arange(0, BLOCK_C)
    if WIDE_INDEX:
        rows = rows.to(tl.int64)
        columns = columns.to(tl.int64)
    return group, rows, columns


@triton.jit
def with_divisor(size, ALIGN: tl.constexpr):
    """size with the divisor ALIGN (host_math.alignment; 0: none) visible to the compiler: (size // 8) * 8 is
    size, and masks against it keep 16-byte accesses along rows of 8 x 125 elements."""
    if ALIGN > 1:
        size = (size // ALIGN) * ALIGN
    return size


@triton.jit
def tile_offsets(group, rows, columns, group_stride, row_stride, column_stride, ALIGN: tl.constexpr = 0):
    """Memory offsets of a [rows, columns] tile of one group. ALIGN (host_math.alignment): a power of two
    dividing the strides that are not 1, declared on the offsets along them (Triton specializes a stride of
    1 into a constant)."""
    row_offsets = rows * row_stride
    column_offsets = columns * column_stride
    if ALIGN > 1:
        if not isinstance(row_stride, tl.constexpr):
            row_offsets = tl.multiple_of(row_offsets, ALIGN)
        if not isinstance(column_stride, tl.constexpr):
            column_offsets = tl.multiple_of(column_offsets, ALIGN)
    return group * group_stride + row_offsets[:, None] + column_offsets[None, :]


# A reduction walking its column tiles should load the next ones while it sums this one: with one 16-byte
# load a thread in each step, a thread had a single load in flight, which held BatchNorm's statistics pass
# to about a third of the H200's bandwidth (56 us for 51 MB, where the normalizing pass read and wrote as
# much in 28). Its loops run over tl.range(..., num_stages=TILE_STAGES), which copies tiles ahead into
# shared memory (cp.async on sm_90). Passes that also store (normalizing, the input gradient) measured near
# the bandwidth without it.
TILE_STAGES = tl.constexpr(3)


@triton.jit
def program_tiles(num_groups, num_columns, tiles_per_program, BLOCK_C: tl.constexpr):
    """[first, last) column tiles of this program (axis 1 of the grid numbers the splits)."""
    first = tl.program_id(1) * tiles_per_program
    return first, tl.minimum(first + tiles_per_program, num_groups * tl.cdiv(num_columns, BLOCK_C))


# Values of a tile per program: 8 per thread at 8 warps.
TILE = 2048


def tile_launch_config(num_rows, num_columns, rows_contiguous, tile=TILE, max_block_r=TILE):
    """(BLOCK_R, BLOCK_C, num_warps): tiles long along whichever of rows / columns is contiguous (contiguous
    rows at most max_block_r of them)."""
    rows_pow2 = next_power_of_2(num_rows)
    columns_pow2 = next_power_of_2(num_columns)
    if rows_contiguous:
        block_r = min(rows_pow2, tile, max_block_r)
        block_c = max(1, min(columns_pow2, tile // block_r))
    else:
        block_c = min(columns_pow2, tile)
        block_r = max(1, min(rows_pow2, tile // block_c))
    return block_r, block_c, max(1, min(8, block_r * block_c // 256))


def split_columns(num_groups, num_columns, block_c, row_blocks, programs_wanted, max_splits=65535):
    """(tiles_per_program, splits): column tiles spread over about programs_wanted programs in all, and
    never more than max_splits splits (at most 65535: the grid's second axis)."""
    tiles = num_groups * cdiv(num_columns, block_c)
    target = max(1, programs_wanted // row_blocks)
    tiles_per_program = max(1, cdiv(tiles, target), cdiv(tiles, min(max_splits, 65535)))
    return tiles_per_program, cdiv(tiles, tiles_per_program)
