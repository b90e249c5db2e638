"""The compute-dtype rule shared by every kernel: fp64 tensors compute in fp64, all others in fp32."""
import triton
import triton.language as tl


@triton.jit
def to_compute_dtype(x):
    """fp64 stays fp64; every other dtype computes in fp32."""
    if x.dtype == tl.float64:
        return x
    else:
        return x.to(tl.float32)


@triton.jit
def to_storage(x, ptr):
    """x in ptr's element dtype, fp64 reaching bf16 through fp32 as torch's cast does (c10's BFloat16 is built
    from a float; Triton's interpreter also turns a direct fp64 -> bf16 cast into NaN)."""
    if x.dtype == tl.float64 and ptr.dtype.element_ty == tl.bfloat16:
        return x.to(tl.float32).to(tl.bfloat16)
    else:
        return x.to(ptr.dtype.element_ty)


@triton.jit
def compute_full(value: tl.constexpr, like_ptr, BLOCK: tl.constexpr):
    """[BLOCK] filled with value in the compute dtype of like_ptr's element type. (Built in fp32 and cast:
    Triton 3.6's interpreter cannot fill bf16 directly.)"""
    return to_compute_dtype(tl.full([BLOCK], value, tl.float32).to(like_ptr.dtype.element_ty))


@triton.jit
def compute_full_2d(value: tl.constexpr, like_ptr, ROWS: tl.constexpr, COLUMNS: tl.constexpr):
    """[ROWS, COLUMNS] filled likewise."""
    return to_compute_dtype(tl.full([ROWS, COLUMNS], value, tl.float32).to(like_ptr.dtype.element_ty))


@triton.jit
def typed(value: tl.constexpr, like):
    """`value` in `like`'s dtype without passing through fp32 (plain float literals are fp32 in Triton)."""
    return tl.full([], value, like.dtype)
