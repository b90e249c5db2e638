"""Test setup: CUDA when present, else the same kernels through Triton's interpreter.

TRITON_INTERPRET must be set before triton is imported (triton.jit picks the interpreter when the kernels are
defined), so this runs before any test module imports tritonlayers.
"""
import os

import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

from helpers import exact_fp32, releases_gpu_memory, wide_index  # noqa: E402,F401  (fixtures shared by the test modules)
