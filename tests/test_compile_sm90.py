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
    cases = _codegen_rows("linear_softmax", "fwd+bwd", ("gemm_kernel", "softmax_"))
    rows = [row for case_rows in cases.values() for row in case_rows]
    assert all("ALIGN=8" in row["constexprs"] for row in rows), rows
    backward_gemms = [row for row in rows if row["kernel"] == "gemm_kernel" and "SOFTMAX" not in row["constexprs"]]
    softmax = [row for row in rows if row["kernel"].startswith("softmax_")]
    assert len(backward_gemms) >= 4 and len(softmax) == 2, rows
    for row in backward_gemms + softmax:
        assert "b16" not in row["global loads"], row
        assert "v4.b32" in row["global stores"], row


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


def _codegen_rows(ops, dirs, kernel_prefixes):
    """{case heading: [row cells by column name]} of perf.sm90_codegen's tables, the kernels named."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-m", "perf.sm90_codegen", "--quick", "--ops", ops, "--dirs", dirs],
                            env=env, capture_output=True, text=True, timeout=600,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    cases, heading, names = {}, None, None
    for line in result.stdout.splitlines():
        if line.startswith("## "):
            heading = line[3:]
            cases[heading] = []
        elif line.startswith("| kernel"):
            names = [cell.strip() for cell in line.split("|")]
        elif line.startswith(tuple(f"| {prefix}" for prefix in kernel_prefixes)):
            cases[heading].append(dict(zip(names, (cell.strip() for cell in line.split("|")))))
    return cases


@pytest.mark.skipif(ON_GPU, reason="on a GPU every other test compiles and runs the kernels for real")
def test_reductions_load_tiles_ahead():
    """BatchNorm's statistics, their merge, the backward sums and the sum of their split partials copy their
    next tiles into shared memory while summing one (cp.async): one load a thread in flight held them to a
    third of the bandwidth."""
    kernels = {"batch_norm_stats_kernel", "batch_norm_merge_kernel", "batch_norm_backward_reduce_kernel",
               "sum_partials_kernel"}
    cases = _codegen_rows("batch_norm", "fwd+bwd", tuple(kernels))
    rows = [row for case_rows in cases.values() for row in case_rows]
    assert {row["kernel"] for row in rows} == kernels, cases
    assert all(int(row["cp.async"]) > 0 for row in rows), rows


@pytest.mark.skipif(ON_GPU, reason="on a GPU every other test compiles and runs the kernels for real")
def test_nchw_7x7_conv_stores_16_bytes_at_a_time():
    """The NCHW 7x7 stage-4 1x1 conv's forward GEMMs write a channels_last twin (copied out by the layout
    copy): no variant the tuner would try stores single halves along 49-pixel rows or spills."""
    cases = _codegen_rows("conv1x1_bias_relu", "fwd", ("gemm_kernel", "layout_copy_kernel"))
    rows = next(rows for heading, rows in cases.items() if "7x7" in heading and "contiguous" in heading)
    gemms = [row for row in rows if row["kernel"] == "gemm_kernel"]
    assert len(gemms) >= 4 and any(row["kernel"] == "layout_copy_kernel" for row in rows), rows
    for row in gemms:
        assert row["global stores"].startswith("v4.b32") and row["spill B"] == "0", row

