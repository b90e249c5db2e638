"""Every kernel variant compiles for sm_90 (H100) even where no GPU runs the suite."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ON_GPU


KERNELS = {"elementwise": "softmax_backward_kernel", "batch_norm": "batch_norm_merge_kernel",
           "gemm": "gemm_kernel", "pooling": "global_pool_backward_kernel"}


@pytest.mark.skipif(ON_GPU, reason="on a GPU every other test compiles and runs the kernels for real")
@pytest.mark.parametrize("family", list(KERNELS))
def test_all_kernel_variants_compile_for_sm90(family):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    script = Path(__file__).with_name("sm90_compile_sweep.py")
    result = subprocess.run([sys.executable, str(script), family], env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    assert "compiled" in result.stdout and KERNELS[family] in result.stdout, result.stdout


@pytest.mark.skipif(ON_GPU, reason="on a GPU every other test compiles and runs the kernels for real")
def test_codegen_report_reads_what_the_kernels_compile_to():
    """perf.sm90_codegen on the stem max-pool: both layouts' kernels, the channels_last one walking channels
    innermost (16-byte-or-wider vector loads, few divisions), which the values never show."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-m", "perf.sm90_codegen", "--quick", "--ops", "max_pool2d", "--dirs",
                             "fwd"], env=env, capture_output=True, text=True, timeout=600,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| pool2d_forward_kernel")]
    assert len(rows) == 2, result.stdout
    nchw, nhwc = rows
    assert "CHANNELS_LAST=True" in nhwc and "CHANNELS_LAST" not in nchw
    assert "| v2.b32" in nhwc or "| v4.b32" in nhwc, nhwc


@pytest.mark.skipif(ON_GPU, reason="on a GPU every other test compiles and runs the kernels for real")
def test_head_loads_16_bytes_at_a_time():
    """The ImageNet head (256 x 2048 -> 1000 + softmax): its 1000-wide rows are 8 x 125 elements, which only
    ALIGN tells the compiler; without it both backward GEMMs and the softmax kernels moved the rows one bf16
    at a time (the GEMMs past cp.async). No variant the tuner would try may load scalar halves."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-m", "perf.sm90_codegen", "--quick", "--ops", "linear_softmax",
                             "--dirs", "fwd+bwd"], env=env, capture_output=True, text=True, timeout=600,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith(("| gemm_kernel", "| softmax_"))]
    assert all("ALIGN=8" in row for row in rows), result.stdout
    backward_gemms = [row for row in rows if row.startswith("| gemm_kernel") and "SOFTMAX" not in row]
    softmax = [row for row in rows if row.startswith("| softmax_")]
    assert len(backward_gemms) >= 4 and len(softmax) == 2, result.stdout
    header = next(line for line in result.stdout.splitlines() if line.startswith("| kernel"))
    names = [cell.strip() for cell in header.split("|")]
    for cells in ([cell.strip() for cell in row.split("|")] for row in backward_gemms + softmax):
        assert "b16" not in cells[names.index("global loads")], cells
        assert "v4.b32" in cells[names.index("global stores")], cells


@pytest.mark.skipif(ON_GPU, reason="on a GPU every other test compiles and runs the kernels for real")
def test_codegen_report_compiles_a_converted_training_step():
    """perf.sm90_codegen --model: one training step of the dry ResNet, converted, compiles every kernel it
    launches: the forward's (1x1 convs, BatchNorm, pooling, the head) and the backward's."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-m", "perf.sm90_codegen", "--model", "dry"], env=env,
                            capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    forward, backward = result.stdout.split("## dry training step")[1:]
    assert ": forward" in forward and ": backward" in backward, result.stdout
    for kernel in ("gemm_kernel", "batch_norm_forward_resident_kernel", "pool2d_forward_kernel",
                   "global_pool_forward_kernel"):
        assert f"| {kernel} |" in forward, kernel
    for kernel in ("gemm_kernel", "batch_norm_backward_resident_kernel", "pool2d_backward_kernel",
                   "global_pool_backward_kernel"):
        assert f"| {kernel} |" in backward, kernel
