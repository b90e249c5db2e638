"""Host side of kernels/split_k.py: summing split partials (a split-K GEMM's, BatchNorm backward's per-split
channel sums) into a strided output in one launch."""
from ._fast_launch import run_kernel
from ._launch import sm_count
from ._layout import needs_wide_index
from .kernels.split_k import sum_partials_kernel, sum_partials_launch


def sum_partials(partials, out, rows, columns, row_size, outer_stride, row_stride, column_stride):
    """out[r, c] = sum over splits of the dense partials[s, r, c], cast to out's dtype; out's row r lies at
    (r // row_size) * outer_stride + (r % row_size) * row_stride (kernels/split_k.py)."""
    grid, block_s, block, num_warps = sum_partials_launch(partials.shape[0], rows * columns,
                                                          2 * sm_count(partials.device))
    run_kernel(sum_partials_kernel, grid, partials, out, partials.shape[0], rows, columns, row_size, outer_stride,
               row_stride, column_stride, BLOCK_S=block_s, BLOCK=block, WIDE_INDEX=needs_wide_index(partials, out),
               num_warps=num_warps)
