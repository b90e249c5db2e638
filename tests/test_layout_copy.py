"""The layout copy (kernels/layout_copy.py) that takes misaligned NCHW maps into channels_last and back
around the 1x1 convolution's GEMMs: exact copies in both directions, across tiles, with the alignment it
declares, in int64 indexing."""
import pytest
import torch

from helpers import DEVICE, make_input
from tritonlayers._layout_copy import copy_into, to_memory_format

# (shape, why)
SHAPES = [
    ((2, 5, 7, 7), "ResNet's 49-pixel maps, an odd channel count: nothing aligned"),
    ((3, 12, 14, 14), "196-pixel maps: ALIGN 4 on both sides"),
    ((2, 130, 9, 9), "130 channels x 81 pixels: several row and column tiles"),
    ((1, 3, 37, 5), "3 channels (an image): a short row tile, long column tiles, a batch of one"),
    ((2, 70, 1, 1), "one pixel a map: both layouts are the same memory"),
]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("shape", [shape for shape, _ in SHAPES], ids=[why.split(":")[0] for _, why in SHAPES])
def test_copies_between_nchw_and_channels_last_exactly(shape, dtype):
    x = make_input(shape, dtype)
    last = to_memory_format(x, torch.channels_last)
    assert last.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(last, x)
    back = torch.empty_like(x)
    copy_into(back, last)
    assert back.is_contiguous() and torch.equal(back, x)


def test_already_laid_out_is_returned_as_is():
    x = make_input((2, 5, 7, 7), torch.float32, "channels_last")
    assert to_memory_format(x, torch.channels_last) is x


@pytest.mark.usefixtures("wide_index")
def test_int64_indexing(monkeypatch):
    import tritonlayers._layout_copy as host
    from tritonlayers._cache import BoundedCache
    monkeypatch.setattr(host, "_PLANS", BoundedCache())
    x = make_input((2, 5, 7, 7), torch.float32)
    assert torch.equal(to_memory_format(x, torch.channels_last), x)
    assert [plan[2]["WIDE_INDEX"] for plan in host._PLANS.values()] == [True]
