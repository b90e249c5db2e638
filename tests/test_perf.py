"""The perf pipeline and the showcase run end to end on the CPU (tiny shapes, Triton's interpreter)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ON_GPU

REPO = Path(__file__).resolve().parents[1]
ROW_KEYS = {"op", "direction", "shape", "dtype", "layout", "impl", "ms", "gbps", "pct_copy_bw", "tflops", "device",
            "torch", "triton", "commit", "date"}


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_dry_run_writes_results_report_and_plots(tmp_path):
    result = _run("-m", "perf", "--dry-run", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads((tmp_path / "results.json").read_text())
    assert rows and all(ROW_KEYS <= row.keys() for row in rows)
    assert {row["impl"] for row in rows} == {"tritonlayers", "eager", "compile"}
    assert {row["direction"] for row in rows} == {"fwd", "bwd", "fwd+bwd"}
    assert {row["op"] for row in rows} >= {"softmax", "log_softmax", "relu"}
    assert all(row["ms"] > 0 and row["gbps"] > 0 and row["error"] is None for row in rows)
    report = (tmp_path / "report.md").read_text()
    assert "## softmax" in report and "Dry run" in report and "% copy BW" in report
    assert (tmp_path / "bandwidth.png").read_bytes()[:4] == b"\x89PNG"
    assert {row["family"] for row in rows} >= {"softmax", "activation", "pooling", "gemm"}
    assert ("- timers: cuda-graph" if ON_GPU else "- timers: wall-clock") in report  # tiny shapes: graph replays


def test_graphs_option_is_accepted_and_timers_are_reported(tmp_path):
    # on a GPU every case would be timed as CUDA-graph replays; the CPU dry run has only its wall clock
    result = _run("-m", "perf", "--dry-run", "--graphs", "--ops", "log_softmax", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "results.json").read_text())
    expected = "cuda-graph" if ON_GPU else "wall-clock"
    assert {row["timer"] for row in rows if row["impl"] != "compile" or not ON_GPU} == {expected}
    assert f"- timers: {expected}" in (tmp_path / "report.md").read_text()


def test_ops_filter_selects_by_op_and_family(tmp_path):
    result = _run("-m", "perf", "--dry-run", "--ops", "log_softmax", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert {row["op"] for row in json.loads((tmp_path / "results.json").read_text())} == {"log_softmax"}
    result = _run("-m", "perf", "--dry-run", "--ops", "nosuchop", "--out", str(tmp_path))
    assert result.returncode != 0 and "unknown op" in result.stderr


@pytest.mark.skipif(ON_GPU, reason="checks the refusal on a machine without a GPU")
def test_without_gpu_perf_says_so_and_fails():
    result = _run("-m", "perf", "--quick")
    assert result.returncode == 2
    assert "no CUDA GPU" in result.stderr and "--dry-run" in result.stderr


def test_kernel_times_dry_run_writes_its_table(tmp_path):
    result = _run("-m", "perf.kernel_times", "--dry-run", "--ops", "relu,linear_softmax", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads((tmp_path / "kernel_times.json").read_text())
    assert {(row["impl"], row["direction"]) for row in rows} == {
        (impl, direction) for impl in ("tritonlayers", "eager") for direction in ("fwd", "fwd+bwd")}
    assert all(row["host_us"] > 0 for row in rows)
    assert "| relu |" in result.stdout


def test_kernel_times_lists_the_last_call_in_launch_order():
    from perf.kernel_times import last_call
    events = [(5.0, "gemm_kernel", 3.0), (0.0, "gemm_kernel", 1.0), (7.0, "sum_partials_kernel", 4.0),
              (2.0, "sum_partials_kernel", 2.0)]  # two calls of two kernels, out of order
    assert last_call(events, 2) == [("gemm_kernel", 3.0), ("sum_partials_kernel", 4.0)]
    assert last_call([], 3) == []


def test_kernel_times_lists_the_tuned_gemm_configs(monkeypatch):
    import triton
    from perf.kernel_times import gemm_configs
    from tritonlayers.kernels import gemm
    monkeypatch.setattr(gemm.gemm_autotuned, "cache", {}, raising=False)
    assert gemm_configs() == []  # the interpreter runs untuned
    config = triton.Config({"BLOCK_M": 128, "BLOCK_N": 64}, num_warps=8, num_stages=3)
    monkeypatch.setattr(gemm.gemm_autotuned, "cache", {(1568, 2048, 512, "torch.bfloat16"): config})
    lines = gemm_configs()
    assert lines[-1].startswith("| 1568, 2048, 512, torch.bfloat16 | ") and "BLOCK_M: 128" in lines[-1]
    small = triton.Config({"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 32}, num_warps=4, num_stages=4)
    lines = gemm_configs({(1568, 2048, 512, "torch.bfloat16"): {config: [0.054, 0.05, 0.06], small: [0.012]}})
    assert lines[-1].endswith("| 32x64x32/w4s4 12.0, 128x64xNone/w8s3 54.0 |")


def test_kernel_times_records_every_tuned_keys_candidates():
    from perf.kernel_times import record_tuning

    class Tuner:  # Triton's Autotuner keeps the last key's timings only
        cache, configs_timings = {}, None

        def run(self, key):
            if key not in self.cache:
                self.cache[key], self.configs_timings = "best", {"a": key, "b": key * 2}

    tuner = Tuner()
    timings = record_tuning(tuner)
    for key in (1, 2, 1):
        tuner.run(key)
    assert timings == {1: {"a": 1, "b": 2}, 2: {"a": 2, "b": 4}}


def test_host_profile_dry_run_prints_the_launch_floor_and_a_profile():
    result = _run("-m", "perf.host_profile", "--dry-run", "--ops", "relu", "--top", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| triton kernel[grid](...), 2 args |" in result.stdout
    assert "| forward + autograd.grad, 10 x Python autograd.Function |" in result.stdout
    assert "| forward + autograd.grad, 10 x Python autograd.Function, on the calling thread |" in result.stdout
    assert "backward on the calling thread: host us per call" in result.stdout
    assert "## relu" in result.stdout and "host us per call" in result.stdout and "ncalls" in result.stdout


def test_python_host_times_ours_with_launches_stubbed():
    result = _run("-m", "perf.python_host", "--ops", "relu,batch_norm", "--calls", "3", "--batches", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines()[2:]]
    assert {row[0].strip() for row in rows} == {"relu", "batch_norm", "batch_norm_add_relu"}
    assert all(float(row[5]) > 0 and float(row[6]) > 0 for row in rows)


def test_stub_launches_replaces_every_imported_launcher():
    code = ("import os; os.environ['TRITON_INTERPRET'] = '1'\n"
            "import sys; from perf.python_host import stub_launches, _no_launch; stub_launches()\n"
            "from tritonlayers import _fast_launch\n"
            "left = [n for n, m in sys.modules.items() if n.startswith('tritonlayers') and m is not _fast_launch\n"
            "        and getattr(m, 'run_kernel', _no_launch) is not _no_launch]\n"
            "assert not left, left")
    result = _run("-c", code)
    assert result.returncode == 0, result.stdout + result.stderr


def test_showcase_checks_every_op_within_tolerance():
    result = _run("-m", "perf.showcase", "--no-timing")  # timing on a GPU compiles 14 graphs: perf covers it
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all within tolerance" in result.stdout
    for op in ("relu", "gelu", "softmax", "log_softmax"):
        assert f"\n{op} " in result.stdout


def test_e2e_kernel_tables_list_each_profiled_step():
    from perf.e2e import kernel_tables
    rows = [{"impl": "eager", "gpu_ms": 3.1, "kernels": 410.0, "top_kernels": [["nvjet_gemm", 900.0]]},
            {"impl": "tritonlayers+graph"},  # graphed steps are not profiled
            {"impl": "tritonlayers", "gpu_ms": 5.5, "kernels": 520.0,
             "top_kernels": [["batch_norm_merge_kernel", 2000.0], ["gemm_kernel", 1500.0]]}]
    text = kernel_tables(rows)
    assert "eager: GPU 3.10 ms in 410 kernels a step" in text and "| nvjet_gemm | 900.0 |" in text
    assert "tritonlayers: GPU 5.50 ms in 520 kernels a step" in text and "| gemm_kernel | 1500.0 |" in text
    assert "graph" not in text


def test_e2e_dry_run_trains_all_three_alike(tmp_path):
    result = _run("-m", "perf.e2e", "--dry-run", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads((tmp_path / "e2e.json").read_text())
    graphed = ["eager+graph", "tritonlayers+graph"] if ON_GPU else []  # whole steps captured: CUDA only
    assert [row["impl"] for row in rows] == ["eager", "tritonlayers", "compile", *graphed]
    assert all(row["step_ms"] > 0 and row["images_per_s"] > 0 for row in rows)
    # one seed, one batch: the three start from the same loss (fp16 autocast on the CPU)
    assert max(row["first_loss"] for row in rows) - min(row["first_loss"] for row in rows) < 0.05
    assert "fused" in rows[1]["conversion"] and "| tritonlayers |" in result.stdout


def test_profile_dry_run_times_each_converted_layer(tmp_path):
    result = _run("-m", "perf.profile", "--dry-run", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    profile = json.loads((tmp_path / "profile.json").read_text())
    rows = profile["rows"]
    assert {row["direction"] for row in rows} == {"fwd", "fwd+bwd"}
    assert any(row["type"] == "BatchNorm2d+add+relu" and row["ours_ms"] > 0 for row in rows)
    assert any(row["type"] == "MaxPool2d" and row["converted"] for row in rows)
    assert any(not row["converted"] and row["ours_ms"] is None for row in rows)  # 3x3 convs: eager in both
    assert all(row["eager_ms"] > 0 and row["roofline_ms"] > 0 for row in rows)
    assert "| **total** |" in (tmp_path / "profile.md").read_text()
    assert (tmp_path / "profile.png").read_bytes()[:4] == b"\x89PNG"
