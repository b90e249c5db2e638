"""Benchmark cases: one setup factory per op family, each yielding Case objects for a profile.

Profiles: "full" (every shape, dtype and layout), "quick" (a subset that fits a few minutes of a GPU lease)
and "dry" (tiny shapes for the CPU dry run through the interpreter).
"""
from dataclasses import dataclass, field
from typing import Callable

import torch

PROFILES = ("full", "quick", "dry")
DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@dataclass
class Case:
    op: str  # the functional's name, e.g. "softmax"
    family: str  # "activation", "softmax": --ops accepts either
    shape: tuple
    dtype: torch.dtype
    layout: str  # "contiguous" or "channels_last" (channels_last_3d for 5-d shapes)
    ours: Callable  # tritonlayers.functional call: ours(x, **extras)
    eager: Callable  # the same computation in eager torch
    # tensor-sized passes over memory that the op cannot avoid, per direction (its minimal byte count)
    passes: dict = field(default_factory=dict)
    note: str = ""  # what else identifies the case, e.g. "dim=1"
    low: float = -4.0  # input range
    high: float = 4.0
    # more inputs by keyword (e.g. bias, residual): extras(x) -> {name: tensor}; gradients flow to those
    # that require grad
    extras: Callable = None
    # GEMMs: the forward's (M, N, K); rows then carry TFLOP/s and % of cuBLAS (torch.mm of that size)
    gemm: tuple = None

    def flops(self, direction):
        if self.gemm is None:
            return None
        m, n, k = self.gemm
        return 2 * m * n * k * {"fwd": 1, "bwd": 2, "fwd+bwd": 3}[direction]

    def minimal_bytes(self, direction):
        numel = 1
        for size in self.shape:
            numel *= size
        return int(self.passes[direction] * numel * torch.empty(0, dtype=self.dtype).element_size())

    def make_input(self, device):
        x = torch.empty(self.shape, dtype=self.dtype, device=device).uniform_(self.low, self.high)
        if self.layout == "channels_last":  # channels_last_3d for 5-d shapes
            x = x.contiguous(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)
        return x

    def make_extras(self, x):
        return self.extras(x) if self.extras else {}


def all_cases(profile):
    from . import activation, batch_norm, dropout, gemm, pooling, softmax
    assert profile in PROFILES, profile
    # GEMMs first: a run stopped at its time limit keeps the measurements its open issue waits for
    return [*gemm.cases(profile), *pooling.cases(profile), *batch_norm.cases(profile), *softmax.cases(profile),
            *dropout.cases(profile), *activation.cases(profile)]


def select(cases, ops):
    """Cases whose op or family is named in `ops` (all when ops is empty)."""
    if not ops:
        return cases
    unknown = set(ops) - {case.op for case in all_cases("full")} - {case.family for case in all_cases("full")}
    if unknown:
        raise SystemExit(f"--ops: unknown op or family {sorted(unknown)}")
    return [case for case in cases if case.op in ops or case.family in ops]
