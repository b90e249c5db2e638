"""Integer helpers for launch heuristics and grids on the host. Triton's cdiv and next_power_of_2 do the
same, but in Triton 3.8 they are constexpr functions that cost microseconds per host call, paid on every
op call."""


def cdiv(a, b):
    return -(-a // b)


def next_power_of_2(n):
    """The smallest power of two >= n (0 for 0, as Triton's)."""
    return 1 << (n - 1).bit_length() if n > 0 else 0
