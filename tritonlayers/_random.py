"""Seeds and Philox offsets from torch's generators, so torch.manual_seed reproduces every random kernel.

The draw is an op, tritonlayers::philox_seed_offset_, that writes (seed, offset) into a fresh CPU int64 tensor
the random kernels' ops take: a compiled graph then draws on every call, in program order, like eager, and
no two draws merge (each writes its own tensor, where a pure op with equal arguments could be deduplicated).
Under CUDA graph capture the draw is a device tensor instead, [seed] from torch's own random kernel, which
torch's graphs advance on every replay; the kernels then read the seed on the device (offset 0).
"""
import torch

from ._library import custom_op, runs_eagerly


def philox_seed_offset(device, count):
    """(seed, offset) for a call that uses Philox counters offset .. offset + count - 1.

    CUDA: read from the device's default generator, whose offset is then advanced past them (rounded to a
    multiple of 4, as torch's own Philox users do), with no device sync. CPU (Triton's interpreter): the
    CPU generator is MT19937, which has no Philox offset, so both numbers are drawn from it.
    """
    if device.type == "cuda":
        if torch.cuda.is_current_stream_capturing():  # a traced graph's CPU draw (eager ones take the device's)
            raise NotImplementedError("tritonlayers dropout: a compiled graph's draw under CUDA graph capture is "
                                      "not supported: the seed and offset would be frozen into the graph and every "
                                      "replay would repeat one mask")
        index = device.index if device.index is not None else torch.cuda.current_device()
        generator = torch.cuda.default_generators[index]
        seed, offset = generator.initial_seed(), generator.get_offset()  # the current seed, as get_state's
        generator.set_offset(offset + (count + 3) // 4 * 4)
        return (seed - 2**64 if seed >= 2**63 else seed), offset  # the seed as int64, like get_state's view
    seed, offset = torch.randint(0, 2**62, (2,), dtype=torch.int64).tolist()
    return seed, offset


@custom_op("philox_seed_offset_", mutates_args=("seed_offset",))
def _draw_into(seed_offset: torch.Tensor, device: torch.device, count: int) -> None:
    seed_offset.copy_(torch.tensor(philox_seed_offset(device, count), dtype=torch.int64))


@_draw_into.register_fake
def _(seed_offset, device, count):
    return None


def draw_seed_offset(device, count):
    """A CPU int64 tensor [seed, offset] for a call that uses `count` Philox counters on `device` (a CPU
    tensor: kernels on any device read it on the host without a sync). Eager calls draw directly; what
    traces sees the op. Under CUDA graph capture (eager): a device tensor (see the module's notes)."""
    if device.type == "cuda" and torch.cuda.is_current_stream_capturing() and runs_eagerly(()):
        return torch.randint(0, 2**62, (1,), dtype=torch.int64, device=device)
    if runs_eagerly(()):
        return torch.tensor(philox_seed_offset(device, count), dtype=torch.int64)
    seed_offset = torch.empty(2, dtype=torch.int64, device="cpu")
    _draw_into(seed_offset, device, count)
    return seed_offset


def seed_offset_values(seed_offset):
    """(seed, offset) as the kernels take them: Python ints from a CPU draw; from a device one (CUDA graph
    capture), the tensor itself as the seed (a pointer the kernels read) and offset 0."""
    if seed_offset.device.type != "cpu":
        return seed_offset, 0
    seed, offset = seed_offset.tolist()
    return seed, offset
