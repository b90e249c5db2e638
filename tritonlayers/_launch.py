"""Where kernels run: CUDA tensors run compiled kernels, CPU tensors run the same kernels through Triton's
interpreter when TRITON_INTERPRET=1 was set before the kernels were defined."""
import contextlib
import functools

import torch
from triton.runtime.interpreter import InterpretedFunction

from .kernels import activation as _activation_kernels

# triton.jit picks the interpreter when the decorator runs, so what counts is the mode the kernels were
# built in, not the environment now.
KERNELS_INTERPRETED = isinstance(_activation_kernels.activation_forward_kernel, InterpretedFunction)

INTERPRETER_HINT = (
    "set TRITON_INTERPRET=1 in the environment before importing tritonlayers (or triton) to run the "
    "kernels on the CPU through Triton's interpreter, or move the tensors to a CUDA device")


def launch_device(op_name, *tensors):
    """Context manager to launch `op_name`'s kernels on the device of `tensors` (None entries ignored).

    Raises RuntimeError for mixed devices or a CPU tensor without the interpreter, NotImplementedError for
    device types Triton does not target here.
    """
    present = [tensor for tensor in tensors if tensor is not None]
    device = present[0].device
    for tensor in present[1:]:
        if tensor.device != device:
            raise RuntimeError(f"{op_name}: expected all tensors to be on the same device, but found at least two "
                               f"devices, {device} and {tensor.device}")
    if device.type == "cuda":
        # launches go to the current device: switch only when the tensors live on another one
        return _SAME_DEVICE if device.index == torch.cuda.current_device() else torch.cuda.device(device)
    if device.type == "cpu":
        if not KERNELS_INTERPRETED:
            raise RuntimeError(f"{op_name}: input is a CPU tensor but Triton's interpreter is off; {INTERPRETER_HINT}")
        return contextlib.nullcontext()
    raise NotImplementedError(f"{op_name}: tensors on device type '{device.type}' are not supported "
                              "(CUDA, or CPU through Triton's interpreter)")


_SAME_DEVICE = contextlib.nullcontext()


def check_tensor(op_name, name, value):
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{op_name}(): argument '{name}' must be Tensor, not {type(value).__name__}")


def check_no_internal_overlap(tensor):
    """torch's refusal to write in place into a tensor whose elements share memory (an expanded view): the
    kernels' programs would race on the shared elements (dropout's masks would disagree with the stored
    values). Eager calls only: dynamo cannot trace the probe, and a compiled graph writes through copies
    that torch's own copy_ refuses alike."""
    if not torch.compiler.is_compiling() and torch._debug_has_internal_overlap(tensor) == 1:  # 2: unknown, let through
        raise RuntimeError("unsupported operation: more than one element of the written-to tensor refers to a "
                           "single memory location. Please clone() the tensor before performing the operation.")


FLOATING_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def int_pair(value, name, op_name):
    """An int, or a sequence of one or two ints (torch expands one to both dims), as a pair (bools refused, as
    torch's argument parser does)."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and \
            all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    raise TypeError(f"{op_name}: '{name}' must be an int or a pair of ints, got {value!r}")


def check_floating(op_name, name, dtype):
    """Kernels take fp16, bf16, fp32 and fp64; anything else is refused by name (torch's exception type
    for a dtype a kernel lacks is NotImplementedError)."""
    if dtype not in FLOATING_DTYPES:
        raise NotImplementedError(f"{op_name}: '{name}' has dtype {dtype}; tritonlayers supports "
                                  "torch.float16, torch.bfloat16, torch.float32 and torch.float64")


def sm_count(device):
    """Streaming multiprocessors of a CUDA device; the interpreter runs programs one after another, so CPU
    launches want few, long programs."""
    if device.type == "cuda":
        return _cuda_sm_count(device.index if device.index is not None else torch.cuda.current_device())
    return 4


@functools.lru_cache(maxsize=None)
def _cuda_sm_count(index):
    return torch.cuda.get_device_properties(index).multi_processor_count
