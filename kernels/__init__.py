"""Triton kernels and their launch heuristics; shipped as tritonlayers.kernels. Nothing here touches a GPU at
import time."""
