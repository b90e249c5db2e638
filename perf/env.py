"""Where a benchmark runs and what it runs with: the interpreter switch (before triton is imported) and the
identity of the run (device, versions, commit, date) stamped on every result row."""
import datetime
import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def use_interpreter_without_cuda():
    """Run kernels through Triton's interpreter when there is no GPU. Must run before triton is imported."""
    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def benchmark_device(prog, dry_run):
    """The device a benchmark runs on, or None (after saying why) when there is no GPU and no --dry-run.
    Sets up the interpreter without a GPU, so call it before tritonlayers (and so triton) is imported."""
    device = use_interpreter_without_cuda()
    if device.type != "cuda" and not dry_run:
        print(f"{prog}: no CUDA GPU here. It times GPU kernels; --dry-run runs the pipeline on tiny shapes "
              "through Triton's interpreter.", file=sys.stderr)
        return None
    return device


def commit():
    """The code's commit: $TRITONLAYERS_COMMIT (the device machine gets no .git), else git, else unknown."""
    if os.environ.get("TRITONLAYERS_COMMIT"):
        return os.environ["TRITONLAYERS_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_identity(device):
    import triton
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = "cpu (Triton interpreter)"
    return {
        "device": name,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "commit": commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
