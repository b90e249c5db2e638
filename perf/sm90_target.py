"""Compiling kernels for an H100 (sm_90) on a machine with no GPU: a stand-in for Triton's driver that
answers what JITFunction.run asks (target, device, stream, properties) without a device, and reading a
cubin's register and stack use with the cuobjdump Triton ships. tests/sm90_compile_sweep.py and
perf.sm90_codegen compile through it; launches must be warmups (compile, no run)."""
import subprocess
import tempfile
from pathlib import Path

import torch
from triton.backends.compiler import GPUTarget

SM90_SHARED_BYTES = 232448  # opt-in shared memory per block
SM90_SMS = 132


class CompileOnlyDriver:
    """Just what JITFunction.run needs to compile for sm_90 without a device."""

    def __init__(self):
        self.utils = self

    def get_current_target(self):
        return GPUTarget("cuda", 90, 32)

    def get_current_device(self):
        return 0

    def get_current_stream(self, device=None):
        return 0

    def get_device_properties(self, device):
        return {"max_shared_mem": SM90_SHARED_BYTES, "multiprocessor_count": SM90_SMS}

    def get_active_torch_device(self):
        return torch.device("cpu")

    def is_active(self):
        return True


def resource_usage(cubin):
    """cuobjdump's register / stack line for a cubin, e.g. 'REG:96 STACK:0 SHARED:1024 ...'."""
    import triton
    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as file:
        file.write(cubin)
        file.flush()
        out = subprocess.run([str(tool), "-res-usage", file.name], capture_output=True, text=True).stdout
    return next((line.strip() for line in out.splitlines() if "REG:" in line), "no resource line: " + out[-200:])


def stack_bytes(usage):
    """Spilled bytes from a resource_usage line (-1 when it has none)."""
    return int(usage.split("STACK:")[1].split()[0]) if "STACK:" in usage else -1
