"""Integer helpers for launch heuristics and grids on the host. Triton's cdiv and next_power_of_2 do the
same, but in Triton 3.8 they are constexpr functions that cost microseconds per host call, paid on every
op call."""


def cdiv(a, b):
    return -(-a // b)


def next_power_of_2(n):
    """The smallest power of two >= n (0 for 0, as Triton's)."""
    return 1 << (n - 1).bit_length() if n > 0 else 0


def alignment(sizes, strides):
    """A kernel's ALIGN: the largest power of two up to 8 dividing every size and every stride but unit ones
    (kernels leave dims with a unit stride alone) when some are not multiples of 16, which Triton alone
    would see; else 0. Told that divisor, a kernel keeps 16-byte loads and stores along rows whose length is
    8 x 125 (a 1000-class head) instead of splitting them into single elements."""
    values = [*sizes, *(stride for stride in strides if stride != 1)]
    if all(value % 16 == 0 for value in values):
        return 0
    align = 8
    while align > 1 and any(value % align for value in values):
        align //= 2
    return align if align > 1 else 0
