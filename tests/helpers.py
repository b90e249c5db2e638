"""Shared test helpers: the device, per-dtype tolerances, a mismatch report that names indices, inputs in
awkward layouts, and fp64 gradcheck."""
import re

import pytest
import torch

ON_GPU = torch.cuda.is_available()
DEVICE = torch.device("cuda" if ON_GPU else "cpu")

# (atol, rtol) for results compared with an fp64 reference evaluated on the same (rounded) inputs.
TOLERANCES = {
    torch.float64: (1e-10, 1e-7),
    torch.float32: (1e-6, 1e-5),
    torch.float16: (1e-3, 2e-3),
    torch.bfloat16: (8e-3, 1.6e-2),
}
FLOAT_DTYPES = list(TOLERANCES)

def gpu_only(reason):
    """Mark a case the interpreter cannot check (e.g. bf16 tl.dot, which it computes wrongly): skipped on the
    CPU with `reason` in the summary (pytest -rs), run on a GPU."""
    return pytest.mark.skipif(not ON_GPU, reason=f"GPU only: {reason}")


def assert_close(actual, expected, dtype=None, atol=None, rtol=None, equal_nan=True, scale_atol=1.0, name="value"):
    """allclose with torch's NaN/inf rules; on failure names the count and the first mismatching indices.

    Tolerances default to TOLERANCES[dtype or actual.dtype]; scale_atol widens atol for long reductions.
    """
    default_atol, default_rtol = TOLERANCES[dtype or actual.dtype]
    atol = default_atol * scale_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != expected {tuple(expected.shape)}"
    a = actual.detach().to(torch.float64).cpu()
    e = expected.detach().to(torch.float64).cpu()
    close = torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if bool(close.all()):
        return
    bad = (~close).nonzero()
    lines = [f"{name}: {len(bad)} of {a.numel()} elements differ (atol={atol:g}, rtol={rtol:g}); first ones:"]
    for index in bad[:8].tolist():
        index = tuple(index)
        lines.append(f"  at {index}: got {a[index].item()!r}, expected {e[index].item()!r}")
    raise AssertionError("\n".join(lines))


LAYOUTS = ["contiguous", "channels_last", "strided", "permuted"]


def make_input(shape, dtype, layout="contiguous", low=-4.0, high=4.0, generator=None, requires_grad=False):
    """Random tensor of `shape` on DEVICE laid out as asked:
    channels_last (4-d) / channels_last_3d (5-d); strided: every other element of the last dim (not dense);
    permuted: a transposed view of a contiguous tensor (dense, not contiguous)."""
    def draw(draw_shape):
        values = torch.rand(draw_shape, generator=generator, dtype=torch.float64) * (high - low) + low
        return values.to(dtype=dtype, device=DEVICE)

    if layout == "contiguous":
        tensor = draw(shape)
    elif layout == "channels_last":
        format = {4: torch.channels_last, 5: torch.channels_last_3d}[len(shape)]
        tensor = draw(shape).contiguous(memory_format=format)
    elif layout == "strided":
        tensor = draw((*shape[:-1], 2 * shape[-1]))[..., ::2]
    elif layout == "permuted":
        tensor = draw(tuple(reversed(shape))).permute(*reversed(range(len(shape))))
    else:
        raise ValueError(layout)
    assert tensor.shape == torch.Size(shape)
    return tensor.requires_grad_(requires_grad)


HUGE_STRIDE = 2**30 + 64  # two steps of it pass int32


def far_apart(shape, dtype, generator=None, requires_grad=False):
    """Random values on DEVICE in a view whose first dim steps HUGE_STRIDE elements: element offsets past
    2**31 with few elements (shape[0] >= 3). Its storage spans 2**31 elements and more, which costs only the
    pages written on the CPU (the OS commits memory on first touch) and 4 GiB of fp16 on a GPU."""
    assert shape[0] >= 3
    storage = torch.empty(HUGE_STRIDE * (shape[0] - 1) + 2**20, dtype=dtype, device=DEVICE)
    tensor = storage.as_strided(shape, (HUGE_STRIDE, *torch.empty(shape[1:]).stride()))
    tensor.copy_(make_input(shape, dtype, generator=generator))
    return tensor.requires_grad_(requires_grad)


@pytest.fixture
def releases_gpu_memory():
    """Hands the caching allocator's blocks back to the driver after the test: far_apart's storage spans 4 GiB
    of fp16 on a GPU, which the test's worker would otherwise keep from the suite's other workers."""
    yield
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def torch_error(call):
    """The exception torch's `call()` raises, or None (the tests mirror whatever torch refuses)."""
    try:
        call()
    except Exception as error:  # any type: the caller expects the same one from tritonlayers
        return error
    return None


def raises_like(error, same_message=True):
    """pytest.raises for torch's `error`: its type, and its whole message unless same_message is False."""
    return pytest.raises(type(error), match=f"^{re.escape(str(error))}$" if same_message else None)


def check_refused_like_torch(call, x, same_message=True):
    """call(functional, x) raises with tritonlayers.functional what it raises with torch.nn.functional (on the
    CPU): the same type and, unless same_message is False, the same message."""
    import torch.nn.functional as F

    import tritonlayers.functional as TF
    expected = torch_error(lambda: call(F, x.cpu()))
    assert expected is not None, "torch accepts the call"
    with raises_like(expected, same_message):
        call(TF, x)


def gradcheck(fn, *inputs, **kwargs):
    """torch.autograd.gradcheck in fp64 (inputs must already be fp64 leaves requiring grad)."""
    for tensor in inputs:
        assert tensor.dtype == torch.float64 and tensor.requires_grad
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, **kwargs)


@pytest.fixture
def wide_index(monkeypatch):
    """Force the int64 index path (taken for real only past 2**31 elements, too big for CPU tests)."""
    import tritonlayers._layout
    monkeypatch.setattr(tritonlayers._layout, "WIDE_INDEX_THRESHOLD", 0)


@pytest.fixture
def exact_fp32():
    """TF32 off for the test (torch allows it for convolutions by default, and tritonlayers follows torch's
    switches), restored after; torch.backends' switch modules do not take monkeypatch's undo."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def activate(z, activation):
    """torch's activation by a tritonlayers `activation=` value: None, a torch.nn.functional name or a module."""
    if activation is None:
        return z
    if isinstance(activation, torch.nn.Module):
        return activation(z)
    return getattr(torch.nn.functional, activation)(z)
