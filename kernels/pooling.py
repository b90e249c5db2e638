"""2-d pooling: max, average and adaptive windows, forward and a deterministic gather backward, and a
global (1x1 output) reduction path.

Window kernels walk output elements (backward: input elements) in tiles of the planes of the tensor's two
innermost dims in memory, (h, w), or (w, c) for channels_last (small planes stacked several to a tile), so
neighbouring lanes touch neighbouring addresses and only program ids or tile rows are divided; stride and
dilation are constexprs like the kernel size, so the window arithmetic has no run-time divisions either. Each element visits its window with unrolled loops over
the kernel (or, for adaptive pooling, over the largest window). Max pooling keeps torch's choice: the first
maximum in scan order, the last NaN (NaN propagates); backward sends each output's gradient to that element
by having every input element gather from the windows that contain it: no atomics. Instead of int64 indices the
forward saves each output's position inside its window in the smallest integer type that holds it.
"""
import triton
import triton.language as tl

from .precision import compute_full, compute_full_2d, to_compute_dtype
from .host_math import cdiv, next_power_of_2

MAX_POOL = tl.constexpr(0)
AVG_POOL = tl.constexpr(1)
ADAPTIVE_MAX = tl.constexpr(2)
ADAPTIVE_AVG = tl.constexpr(3)
MODE_IDS = {"max": MAX_POOL.value, "avg": AVG_POOL.value, "adaptive_max": ADAPTIVE_MAX.value,
            "adaptive_avg": ADAPTIVE_AVG.value}


@triton.jit
def _tile_coordinates(batch, channels, height, width, CHANNELS_LAST: tl.constexpr, WIDE_INDEX: tl.constexpr,
                      BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr, STACK_PLANES: tl.constexpr):
    """(n, c, h, w, mask) of this program's [BLOCK_ROWS, BLOCK_COLS] tile of the planes of the two innermost
    dims in memory, (h, w), or (w, c) for channels_last: a tile of one plane, or (STACK_PLANES, planes with
    fewer rows than a tile: one a program made the interpreter's tests 6x slower) of the planes' rows one
    after another. Only the program id, or the tile's rows, are divided, never each element (a division is a
    long sequence: once an element they cost more than the memory traffic); rows come as [BLOCK_ROWS, 1],
    columns as [1, BLOCK_COLS]. int32 arithmetic unless some offset may pass 2^31."""
    pid = tl.program_id(0)
    if WIDE_INDEX:
        pid = pid.to(tl.int64)
    if CHANNELS_LAST:
        row_count, col_count, plane_count = width, channels, height
    else:
        row_count, col_count, plane_count = height, width, channels
    col_blocks = tl.cdiv(col_count, BLOCK_COLS)
    cols = (pid % col_blocks) * BLOCK_COLS + tl.arange(0, BLOCK_COLS)[None, :]
    if STACK_PLANES:
        stacked_rows = (pid // col_blocks) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)[:, None]
        plane = stacked_rows // row_count
        rows = stacked_rows - plane * row_count
        n = plane // plane_count
        mask = (n < batch) & (cols < col_count)
    else:
        row_blocks = tl.cdiv(row_count, BLOCK_ROWS)
        rows = ((pid // col_blocks) % row_blocks) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)[:, None]
        # [1, 1], not a scalar: the interpreter turns a scalar bool & a tile into int32, which masks refuse
        plane = pid // (col_blocks * row_blocks) + tl.zeros([1, 1], pid.dtype)
        n = plane // plane_count
        mask = (rows < row_count) & (cols < col_count)
    if CHANNELS_LAST:
        return n, cols, plane - n * plane_count, rows, mask
    else:
        return n, plane - n * plane_count, rows, cols, mask


@triton.jit
def _scaled_floor(a, b, c, add, WIDE_WINDOW: tl.constexpr):
    """(a * b + add) // c for non-negative ints, in int64 when the product may pass 2^31 (WIDE_WINDOW), else
    in a's type: an int64 division is several times the instructions of an int32 one."""
    if WIDE_WINDOW:
        return ((a.to(tl.int64) * b + add) // c).to(a.dtype)
    return (a * b + add) // c


@triton.jit
def _window_start(o, size, out_size, stride, pad, MODE: tl.constexpr, WIDE_WINDOW: tl.constexpr):
    """First input row (or column) of output o's window: stride * o - pad, or floor(o * size / out_size)."""
    if MODE == ADAPTIVE_MAX or MODE == ADAPTIVE_AVG:
        return _scaled_floor(o, size, out_size, 0, WIDE_WINDOW)
    else:
        return o * stride - pad


@triton.jit
def _window_end(o, size, out_size, start, kernel, pad, MODE: tl.constexpr, WIDE_WINDOW: tl.constexpr):
    """One past the last input row of the window: adaptive ceil((o + 1) * size / out_size); otherwise the
    window clipped to the padded input (torch's bound for count_include_pad)."""
    if MODE == ADAPTIVE_MAX or MODE == ADAPTIVE_AVG:
        return _scaled_floor(o + 1, size, out_size, out_size - 1, WIDE_WINDOW)
    else:
        return tl.minimum(start + kernel, size + pad)


@triton.jit
def _avg_divisor(h_start, h_end, w_start, w_end, height, width, divisor_override, COUNT_INCLUDE_PAD: tl.constexpr,
                 MODE: tl.constexpr):
    """torch's average-pooling divisor for windows [start, end) (ends already clipped to the padded input)."""
    if MODE == ADAPTIVE_AVG:
        return (h_end - h_start) * (w_end - w_start)
    if COUNT_INCLUDE_PAD:
        divisor = (h_end - h_start) * (w_end - w_start)
    else:
        divisor = (tl.minimum(h_end, height) - tl.maximum(h_start, 0)) * \
            (tl.minimum(w_end, width) - tl.maximum(w_start, 0))
    return tl.where(divisor_override != 0, divisor_override, divisor)


@triton.jit
def pool2d_forward_kernel(
    input_ptr, output_ptr, position_ptr, indices_ptr, batch, channels, height, width, out_height, out_width,
    input_stride_n, input_stride_c, input_stride_h, input_stride_w,
    output_stride_n, output_stride_c, output_stride_h, output_stride_w, pad_h, pad_w, divisor_override,
    MODE: tl.constexpr, KERNEL_H: tl.constexpr, KERNEL_W: tl.constexpr, STRIDE_H: tl.constexpr,
    STRIDE_W: tl.constexpr, DILATION_H: tl.constexpr, DILATION_W: tl.constexpr, COUNT_INCLUDE_PAD: tl.constexpr,
    SAVE_POSITION: tl.constexpr, RETURN_INDICES: tl.constexpr, CHANNELS_LAST: tl.constexpr,
    WIDE_INDEX: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr, STACK_PLANES: tl.constexpr,
    WIDE_WINDOW: tl.constexpr = False,
):
    """One output element per lane of a tile (see _tile_coordinates). Adaptive modes: KERNEL_H / KERNEL_W
    bound the largest window. position: the argmax's position in its window (i * KERNEL_W + j; adaptive:
    h * width + w)."""
    n, c, oh, ow, mask = _tile_coordinates(batch, channels, out_height, out_width, CHANNELS_LAST, WIDE_INDEX, BLOCK_ROWS,
                                           BLOCK_COLS, STACK_PLANES)
    h_start = _window_start(oh, height, out_height, STRIDE_H, pad_h, MODE, WIDE_WINDOW)
    w_start = _window_start(ow, width, out_width, STRIDE_W, pad_w, MODE, WIDE_WINDOW)
    h_end = _window_end(oh, height, out_height, h_start, KERNEL_H, pad_h, MODE, WIDE_WINDOW)
    w_end = _window_end(ow, width, out_width, w_start, KERNEL_W, pad_w, MODE, WIDE_WINDOW)
    base = input_ptr + n * input_stride_n + c * input_stride_c
    is_max = MODE == MAX_POOL or MODE == ADAPTIVE_MAX
    best = compute_full_2d(float("-inf"), input_ptr, BLOCK_ROWS, BLOCK_COLS)
    total = compute_full_2d(0.0, input_ptr, BLOCK_ROWS, BLOCK_COLS)
    best_index = tl.full([BLOCK_ROWS, BLOCK_COLS], -1, tl.int64)
    first_index = tl.full([BLOCK_ROWS, BLOCK_COLS], -1, tl.int64)
    for i in tl.static_range(KERNEL_H):
        for j in tl.static_range(KERNEL_W):
            if MODE == ADAPTIVE_MAX or MODE == ADAPTIVE_AVG:
                ih = h_start + i
                iw = w_start + j
                valid = mask & (ih < h_end) & (iw < w_end)
            else:
                ih = h_start + i * DILATION_H
                iw = w_start + j * DILATION_W
                valid = mask & (ih >= 0) & (ih < height) & (iw >= 0) & (iw < width)
            value = to_compute_dtype(tl.load(base + ih * input_stride_h + iw * input_stride_w, mask=valid, other=0))
            if is_max:
                if MODE == MAX_POOL:
                    index = tl.full([BLOCK_ROWS, BLOCK_COLS], i * KERNEL_W + j, tl.int64)
                else:
                    index = (ih * width + iw).to(tl.int64)
                take = valid & ((value > best) | (value != value))
                best = tl.where(take, value, best)
                best_index = tl.where(take, index, best_index)
                first_index = tl.where(valid & (first_index < 0), index, first_index)
            else:
                total += tl.where(valid, value, 0)
    out_offsets = n * output_stride_n + c * output_stride_c + oh * output_stride_h + ow * output_stride_w
    if is_max:
        # all -inf (or nothing compared greater): torch keeps the window's first element
        best_index = tl.where(best_index < 0, first_index, best_index)
        tl.store(output_ptr + out_offsets, best.to(output_ptr.dtype.element_ty), mask=mask)
        if SAVE_POSITION:
            tl.store(position_ptr + out_offsets, best_index.to(position_ptr.dtype.element_ty), mask=mask)
        if RETURN_INDICES:
            if MODE == MAX_POOL:  # new names: Triton refuses to retype the loop's int32 ih / iw in a branch
                best_h = h_start + (best_index // KERNEL_W) * DILATION_H
                best_w = w_start + (best_index % KERNEL_W) * DILATION_W
                best_index = best_h * width + best_w
            tl.store(indices_ptr + out_offsets, best_index, mask=mask)
    else:
        divisor = _avg_divisor(h_start, h_end, w_start, w_end, height, width, divisor_override, COUNT_INCLUDE_PAD,
                               MODE)
        average = tl.where(divisor == 0, 0, total / tl.where(divisor == 0, 1, divisor).to(total.dtype))
        tl.store(output_ptr + out_offsets, average.to(output_ptr.dtype.element_ty), mask=mask)


@triton.jit
def pool2d_backward_kernel(
    grad_output_ptr, position_ptr, grad_input_ptr, batch, channels, height, width, out_height, out_width,
    grad_output_stride_n, grad_output_stride_c, grad_output_stride_h, grad_output_stride_w,
    grad_input_stride_n, grad_input_stride_c, grad_input_stride_h, grad_input_stride_w, pad_h, pad_w,
    divisor_override, MODE: tl.constexpr, KERNEL_H: tl.constexpr, KERNEL_W: tl.constexpr, STRIDE_H: tl.constexpr,
    STRIDE_W: tl.constexpr, DILATION_H: tl.constexpr, DILATION_W: tl.constexpr, COUNT_INCLUDE_PAD: tl.constexpr,
    REACH_H: tl.constexpr, REACH_W: tl.constexpr, CHANNELS_LAST: tl.constexpr, WIDE_INDEX: tl.constexpr,
    BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr, STACK_PLANES: tl.constexpr, WIDE_WINDOW: tl.constexpr = False,
):
    """One input element per lane, gathering from every window that contains it (at most REACH_H x REACH_W
    of them): max modes add the gradient of windows whose saved position is this element, average modes
    every window's gradient over its divisor."""
    n, c, ih, iw, mask = _tile_coordinates(batch, channels, height, width, CHANNELS_LAST, WIDE_INDEX, BLOCK_ROWS,
                                           BLOCK_COLS, STACK_PLANES)
    adaptive = MODE == ADAPTIVE_MAX or MODE == ADAPTIVE_AVG
    if adaptive:  # windows containing ih: o from floor(ih * out / size) up
        first_oh = _scaled_floor(ih, out_height, height, 0, WIDE_WINDOW)
        first_ow = _scaled_floor(iw, out_width, width, 0, WIDE_WINDOW)
    else:  # the last window whose span can reach ih, counting down
        first_oh = (ih + pad_h) // STRIDE_H
        first_ow = (iw + pad_w) // STRIDE_W
    grad_base = grad_output_ptr + n * grad_output_stride_n + c * grad_output_stride_c
    accumulated = compute_full_2d(0.0, grad_output_ptr, BLOCK_ROWS, BLOCK_COLS)
    for a in tl.static_range(REACH_H):
        for b in tl.static_range(REACH_W):
            if adaptive:
                oh = first_oh + a
                ow = first_ow + b
            else:
                oh = first_oh - a
                ow = first_ow - b
            h_start = _window_start(oh, height, out_height, STRIDE_H, pad_h, MODE, WIDE_WINDOW)
            w_start = _window_start(ow, width, out_width, STRIDE_W, pad_w, MODE, WIDE_WINDOW)
            h_end = _window_end(oh, height, out_height, h_start, KERNEL_H, pad_h, MODE, WIDE_WINDOW)
            w_end = _window_end(ow, width, out_width, w_start, KERNEL_W, pad_w, MODE, WIDE_WINDOW)
            inside = mask & (oh >= 0) & (oh < out_height) & (ow >= 0) & (ow < out_width)
            if adaptive:
                inside = inside & (ih >= h_start) & (ih < h_end) & (iw >= w_start) & (iw < w_end)
                position = ih * width + iw
            else:  # on the window's dilated grid, within the kernel
                kh = (ih - h_start) // DILATION_H
                kw = (iw - w_start) // DILATION_W
                inside = inside & ((ih - h_start) % DILATION_H == 0) & ((iw - w_start) % DILATION_W == 0) & \
                    (kh < KERNEL_H) & (kw < KERNEL_W)
                position = kh * KERNEL_W + kw
            out_offsets = oh * grad_output_stride_h + ow * grad_output_stride_w
            grad = to_compute_dtype(tl.load(grad_base + out_offsets, mask=inside, other=0))
            if MODE == MAX_POOL or MODE == ADAPTIVE_MAX:
                saved = tl.load(position_ptr + n * grad_output_stride_n + c * grad_output_stride_c + out_offsets,
                                mask=inside, other=-1)
                accumulated += tl.where(inside & (saved.to(tl.int64) == position), grad, 0)
            else:
                divisor = _avg_divisor(h_start, h_end, w_start, w_end, height, width, divisor_override,
                                       COUNT_INCLUDE_PAD, MODE)
                accumulated += tl.where(inside & (divisor != 0), grad / tl.where(divisor == 0, 1, divisor).to(
                    grad.dtype), 0)
    in_offsets = n * grad_input_stride_n + c * grad_input_stride_c + ih * grad_input_stride_h + iw * grad_input_stride_w
    tl.store(grad_input_ptr + in_offsets, accumulated.to(grad_input_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _plane_tile(pid, channels, spatial, BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr, WIDE_INDEX: tl.constexpr):
    """(sample, channels, positions) of a global-pool program (positions in int64 with WIDE_INDEX: a plane's
    offsets past int32)."""
    channel_blocks = tl.cdiv(channels, BLOCK_C)
    n = pid // channel_blocks
    c = (pid % channel_blocks) * BLOCK_C + tl.arange(0, BLOCK_C)
    s = tl.arange(0, BLOCK_S)
    if WIDE_INDEX:
        s = s.to(tl.int64)
    return n, c, s


@triton.jit
def global_pool_forward_kernel(
    input_ptr, output_ptr, position_ptr, indices_ptr, channels, spatial,
    input_stride_n, input_stride_c, input_stride_s, output_stride_n, output_stride_c,
    IS_MAX: tl.constexpr, SAVE_POSITION: tl.constexpr, RETURN_INDICES: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr, WIDE_INDEX: tl.constexpr,
):
    """Mean or max over all spatial positions of BLOCK_C channels of one sample (the 1x1-output path).
    Max keeps torch's argmax: the first maximum, or the last NaN. Mean adds whole tiles into a tile of
    partial sums and reduces it once after the loop: a reduction per step crosses warps through shared
    memory, with a barrier, at every step."""
    n, c, s = _plane_tile(tl.program_id(0).to(tl.int64), channels, spatial, BLOCK_C, BLOCK_S, WIDE_INDEX)
    c_mask = c < channels
    base = input_ptr + n * input_stride_n + c[:, None] * input_stride_c
    best = compute_full(float("-inf"), input_ptr, BLOCK_C)
    partial = compute_full_2d(0.0, input_ptr, BLOCK_C, BLOCK_S)
    best_index = tl.zeros([BLOCK_C], tl.int64)
    seen_nan = best != best
    for s_start in range(0, spatial, BLOCK_S):
        positions = s_start + s
        mask = c_mask[:, None] & (positions[None, :] < spatial)
        if IS_MAX:
            x = to_compute_dtype(tl.load(base + positions[None, :] * input_stride_s, mask=mask,
                                         other=float("-inf")))
            is_nan = mask & (x != x)
            chunk_nan = tl.max(is_nan.to(tl.int32), axis=1) > 0
            last_nan = tl.max(tl.where(is_nan, positions[None, :], -1), axis=1)
            chunk_max = tl.max(tl.where(is_nan, float("-inf"), x), axis=1)
            first_max = tl.min(tl.where(mask & (x == chunk_max[:, None]), positions[None, :], spatial), axis=1)
            better = (chunk_max > best) & ~seen_nan
            best = tl.where(chunk_nan, float("nan"), tl.where(better, chunk_max, best))
            best_index = tl.where(chunk_nan, last_nan, tl.where(better, first_max, best_index))
            seen_nan = seen_nan | chunk_nan
        else:
            partial += to_compute_dtype(tl.load(base + positions[None, :] * input_stride_s, mask=mask, other=0))
    out_offsets = n * output_stride_n + c * output_stride_c
    if IS_MAX:
        tl.store(output_ptr + out_offsets, best.to(output_ptr.dtype.element_ty), mask=c_mask)
        if SAVE_POSITION:
            tl.store(position_ptr + out_offsets, best_index.to(position_ptr.dtype.element_ty), mask=c_mask)
        if RETURN_INDICES:
            tl.store(indices_ptr + out_offsets, best_index, mask=c_mask)
    else:
        total = tl.sum(partial, axis=1)
        tl.store(output_ptr + out_offsets, (total / spatial).to(output_ptr.dtype.element_ty), mask=c_mask)


@triton.jit
def global_pool_backward_kernel(
    grad_output_ptr, position_ptr, grad_input_ptr, channels, spatial,
    grad_output_stride_n, grad_output_stride_c, grad_input_stride_n, grad_input_stride_c, grad_input_stride_s,
    IS_MAX: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr, WIDE_INDEX: tl.constexpr,
):
    """grad_input: each channel's gradient over its spatial size (mean), or at its argmax (max)."""
    n, c, s = _plane_tile(tl.program_id(0).to(tl.int64), channels, spatial, BLOCK_C, BLOCK_S, WIDE_INDEX)
    c_mask = c < channels
    grad_offsets = n * grad_output_stride_n + c * grad_output_stride_c
    grad = to_compute_dtype(tl.load(grad_output_ptr + grad_offsets, mask=c_mask, other=0))
    if IS_MAX:
        argmax = tl.load(position_ptr + grad_offsets, mask=c_mask, other=-1).to(tl.int64)
    else:
        grad = grad / spatial
    base = grad_input_ptr + n * grad_input_stride_n + c[:, None] * grad_input_stride_c
    for s_start in range(0, spatial, BLOCK_S):
        positions = s_start + s
        mask = c_mask[:, None] & (positions[None, :] < spatial)
        if IS_MAX:
            value = tl.where(positions[None, :] == argmax[:, None], grad[:, None], 0)
        else:
            value = tl.zeros([BLOCK_C, BLOCK_S], grad.dtype) + grad[:, None]
        tl.store(base + positions[None, :] * grad_input_stride_s, value.to(grad_input_ptr.dtype.element_ty),
                 mask=mask)


WINDOW_TILE = 1024  # elements a window program takes at most: 8 a lane at 4 warps
WINDOW_COLS = 128  # widest column block


def window_tile(rows, cols, wide_index=False):
    """(BLOCK_ROWS, BLOCK_COLS) of the window kernels' tiles over `rows` rows (of every plane) of cols
    elements; half the elements with int64 indices (whose offsets spilled registers at 1024)."""
    block_cols = min(next_power_of_2(cols), WINDOW_COLS)
    tile = WINDOW_TILE // 2 if wide_index else WINDOW_TILE
    return max(1, min(next_power_of_2(rows), tile // block_cols)), block_cols


GLOBAL_TILE = 4096
GLOBAL_FORWARD_TILE = 8192  # elements a forward program reads per step: a 128-channel by 64-position tile
GLOBAL_CHANNELS_MIN = 32  # narrowest channel block (16-byte loads need 8 bf16 / 4 fp32 channels a lane)


def global_pool_forward_config(batch, channels, spatial, channels_contiguous, programs_wanted, wide_index=False):
    """(BLOCK_C, BLOCK_S, num_warps) of the forward reduction. Channels contiguous (channels_last): blocks
    of up to 128 channels, narrowed while the batch gives fewer than programs_wanted programs, each reading
    its positions in as few steps as the tile allows (one for 7x7 maps), so that a program issues all its
    loads at once; positions contiguous: the backward's tiles. Half the positions with int64 offsets."""
    if not channels_contiguous:
        return global_pool_config(channels, spatial, channels_contiguous, wide_index)
    block_c = min(next_power_of_2(channels), 128)
    while block_c > GLOBAL_CHANNELS_MIN and batch * cdiv(channels, block_c) < programs_wanted:
        block_c //= 2
    block_s = max(1, min(next_power_of_2(spatial), GLOBAL_FORWARD_TILE // block_c // (2 if wide_index else 1)))
    return block_c, block_s, max(1, min(8, block_c * block_s // 1024))


def global_pool_config(channels, spatial, channels_contiguous, wide_index=False):
    """(BLOCK_C, BLOCK_S, num_warps): tiles long along whichever of channels / positions is contiguous, of
    half the elements with int64 offsets."""
    tile = GLOBAL_TILE // 2 if wide_index else GLOBAL_TILE
    if channels_contiguous:
        block_c = min(next_power_of_2(channels), 256)
        block_s = max(1, min(next_power_of_2(spatial), tile // block_c))
    else:
        block_s = min(next_power_of_2(spatial), 1024)
        block_c = max(1, min(next_power_of_2(channels), tile // block_s))
    return block_c, block_s, max(1, min(8, block_c * block_s // 256))
