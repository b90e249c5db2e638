"""Seeds and Philox offsets from torch's generators, so torch.manual_seed reproduces every random kernel."""
import torch


def philox_seed_offset(device, count):
    """(seed, offset) for a call that uses Philox counters offset .. offset + count - 1.

    CUDA: read from the device's default generator, whose offset is then advanced past them (rounded to a
    multiple of 4, as torch's own Philox users do), with no device sync. CPU (Triton's interpreter): the
    CPU generator is MT19937, which has no Philox offset, so both numbers are drawn from it.
    """
    if device.type == "cuda":
        if torch.cuda.is_current_stream_capturing():
            raise NotImplementedError("tritonlayers dropout under CUDA graph capture is not supported: the seed "
                                      "and offset would be frozen into the graph and every replay would repeat "
                                      "one mask")
        index = device.index if device.index is not None else torch.cuda.current_device()
        generator = torch.cuda.default_generators[index]
        state = generator.get_state()
        seed, offset = state.view(torch.int64).tolist()
        state.view(torch.int64)[1] = offset + (count + 3) // 4 * 4
        generator.set_state(state)
        return seed, offset
    seed, offset = torch.randint(0, 2**62, (2,), dtype=torch.int64).tolist()
    return seed, offset
