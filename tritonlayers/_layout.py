"""Memory-layout helpers: decide when flat offsets are memory offsets, and collapse strided views to the
fixed rank the kernels index with, so channels_last and sliced tensors run without layout copies."""
import torch

from ._cache import BoundedCache

KERNEL_RANK = 4  # strided elementwise kernels decompose flat indices over this many dims


def is_dense(tensor):
    """True when the tensor's elements fill its memory span exactly once, in some dim order (contiguous,
    channels_last, permuted views): a flat index then walks memory directly."""
    if tensor.is_contiguous():  # torch keeps this flag: the common case costs no Python loop
        return True
    expected = 1
    for size, stride in sorted(zip(tensor.shape, tensor.stride()), key=lambda pair: pair[1]):
        if size == 1:
            continue
        if stride != expected:
            return False
        expected *= size
    return True


def share_dense_layout(*tensors):
    """True when all tensors have one shape and one dense layout, so one flat offset addresses all."""
    first = tensors[0]
    if all(tensor.is_contiguous() for tensor in tensors) and all(t.shape == first.shape for t in tensors):
        return True
    if not is_dense(first):
        return False
    for other in tensors[1:]:
        if other.shape != first.shape:
            return False
        for size, stride_a, stride_b in zip(first.shape, first.stride(), other.stride()):
            if size != 1 and stride_a != stride_b:
                return False
    return True


def collapse_dims(shape, *strides, rank=KERNEL_RANK):
    """Merge neighbouring dims that every tensor walks as one, drop size-1 dims, and pad in front to `rank`.

    Returns (sizes, [strides per tensor]) with `rank` entries each, or None when more than `rank` dims
    remain (callers then copy to contiguous).
    """
    sizes = []
    merged = [[] for _ in strides]
    for dim, size in enumerate(shape):
        if size == 1:
            continue
        can_merge = bool(sizes) and all(
            tensor_merged[-1] == tensor_strides[dim] * size for tensor_merged, tensor_strides in zip(merged, strides))
        if can_merge:
            sizes[-1] *= size
            for tensor_merged, tensor_strides in zip(merged, strides):
                tensor_merged[-1] = tensor_strides[dim]
        else:
            sizes.append(size)
            for tensor_merged, tensor_strides in zip(merged, strides):
                tensor_merged.append(tensor_strides[dim])
    if len(sizes) > rank:
        return None
    pad = rank - len(sizes)
    return [1] * pad + sizes, [[0] * pad + tensor_merged for tensor_merged in merged]


def elementwise_geometry(*tensors):
    """Launch geometry shared by elementwise kernels over same-shaped tensors.

    Returns (dense, sizes, strides per tensor): dense means one flat offset addresses every tensor;
    otherwise sizes/strides describe a KERNEL_RANK-d view. None when the views need more dims than that.
    """
    if share_dense_layout(*tensors):
        return True, [1] * KERNEL_RANK, [[0] * KERNEL_RANK for _ in tensors]
    collapsed = collapse_dims(tensors[0].shape, *(tensor.stride() for tensor in tensors))
    if collapsed is None:
        return None
    sizes, strides = collapsed
    return False, sizes, strides


def empty_like_dense(tensor, dtype=None):
    """Output buffer in the input's layout when that layout is dense (channels_last stays channels_last),
    else contiguous."""
    if is_dense(tensor):
        return torch.empty_strided(tensor.shape, tensor.stride(), dtype=dtype or tensor.dtype, device=tensor.device)
    return torch.empty(tensor.shape, dtype=dtype or tensor.dtype, device=tensor.device)


def reduction_geometry(dim, *tensors):
    """View same-shaped tensors as (groups, rows, columns) for a reduction over `dim`.

    rows is `dim`; the other dims collapse into at most two groups, and the one the first tensor walks with
    the smaller stride becomes the columns a program vectorizes over. Returns (num_groups, num_rows,
    num_columns, ((group_stride, row_stride, column_stride) per tensor)), or None when the other dims do
    not collapse into two groups (callers then copy to contiguous, where they always do).
    """
    key = (dim, tensors[0].shape, *(tensor.stride() for tensor in tensors))
    geometry = _GEOMETRIES.get(key, _MISSING)
    if geometry is _MISSING:  # every training step repeats its shapes: the analysis runs once per layout
        geometry = _GEOMETRIES.put(key, _reduction_geometry(dim, key[1], key[2:]))
    return geometry


_GEOMETRIES = BoundedCache()
_MISSING = object()


def _reduction_geometry(dim, shape, tensor_strides):
    others = [d for d in range(len(shape)) if d != dim]
    # Merge candidates must be neighbours: order the other dims by the first tensor's strides, outermost first.
    others.sort(key=lambda d: -tensor_strides[0][d])
    collapsed = collapse_dims([shape[d] for d in others], *([strides[d] for d in others] for strides in tensor_strides),
                              rank=2)
    if collapsed is None:
        return None
    (outer_size, inner_size), group_strides = collapsed
    columns_first = group_strides[0][0] < group_strides[0][1] and outer_size > 1
    if columns_first:
        outer_size, inner_size = inner_size, outer_size
    geometry_strides = []
    for strides, (outer_stride, inner_stride) in zip(tensor_strides, group_strides):
        if columns_first:
            outer_stride, inner_stride = inner_stride, outer_stride
        geometry_strides.append((outer_stride, strides[dim], inner_stride))
    return outer_size, shape[dim], inner_size, tuple(geometry_strides)


# Offsets at or past this need int64 index arithmetic (a margin below 2**31 covers a block's overhang).
WIDE_INDEX_THRESHOLD = 2**31 - 2**20


def needs_wide_index(*tensors):
    """True when some element offset of some tensor may not fit int32."""
    for tensor in tensors:
        if tensor.untyped_storage().nbytes() < WIDE_INDEX_THRESHOLD * tensor.element_size():
            continue  # every offset from the tensor's start lies inside its storage: a cheap, common answer
        extent = sum((size - 1) * abs(stride) for size, stride in zip(tensor.shape, tensor.stride()) if size > 0)
        if max(extent, tensor.numel()) >= WIDE_INDEX_THRESHOLD:
            return True
    return False
