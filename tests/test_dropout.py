"""dropout, dropout1d/2d/3d: statistics with real bounds, the mask regenerated in backward, torch's semantics
and errors.

Statistical bounds: a keep count of n Bernoulli(1 - p) draws lies within 6 standard deviations of n(1 - p);
the sample correlation of n independent pairs has standard deviation 1/sqrt(n), so |r| <= 6/sqrt(n). Both
fail by chance with probability about 2e-9 per check: a failure is a bug, not bad luck.
"""
import math

import pytest
import torch
import torch.nn.functional as F

import tritonlayers.functional as TF
import tritonlayers.nn as tnn
from helpers import (DEVICE, FLOAT_DTYPES, assert_close, gpu_only, gradcheck, make_input, raises_like,
                     torch_error)

SIGMAS = 6.0


def _mask(y):
    return (y != 0).to(torch.float64)


def _assert_keep_fraction(mask, p):
    n, kept = mask.numel(), mask.sum().item()
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(kept - n * (1 - p)) <= SIGMAS * sigma, f"kept {kept} of {n} at p={p}: {SIGMAS} sigma is {sigma:.1f}"


def _assert_uncorrelated(a, b, what):
    a, b = a.reshape(-1).to(torch.float64), b.reshape(-1).to(torch.float64)
    a, b = a - a.mean(), b - b.mean()
    r = (a * b).sum() / (a.norm() * b.norm())
    bound = SIGMAS / math.sqrt(a.numel())
    assert abs(r.item()) <= bound, f"{what}: correlation {r.item():.4f} beyond {bound:.4f}"


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("numel", [1009, 65537])
def test_keep_fraction_within_binomial_bound(p, numel):
    y = TF.dropout(torch.ones(numel, device=DEVICE), p)
    _assert_keep_fraction(_mask(y), p)
    assert torch.all((y == 0) | (y == torch.tensor(1 / (1 - p), dtype=torch.float32)))


def test_no_correlation_between_neighbours_rows_programs_or_calls():
    x = torch.ones(256, 512, device=DEVICE)
    first, second = _mask(TF.dropout(x, 0.5)), _mask(TF.dropout(x, 0.5))
    flat = first.reshape(-1)
    _assert_uncorrelated(flat[:-1], flat[1:], "neighbouring elements")
    _assert_uncorrelated(flat[:-4], flat[4:], "elements 4 apart (one Philox counter)")
    _assert_uncorrelated(first[:-1], first[1:], "neighbouring rows")
    _assert_uncorrelated(flat[:-2048], flat[2048:], "elements one program tile apart")
    _assert_uncorrelated(first, second, "consecutive calls")
    assert not torch.equal(first[:8], first[8:16]), "a repeated stream"


def test_channel_decisions_are_uncorrelated_and_keep_fraction_holds():
    # 64 x 1024 maps of 2 elements: one decision per map
    y = TF.dropout2d(torch.ones(64, 1024, 1, 2, device=DEVICE), 0.3)
    decisions = _mask(y[:, :, 0, 0])
    _assert_keep_fraction(decisions, 0.3)
    _assert_uncorrelated(decisions[:, :-1], decisions[:, 1:], "neighbouring channels")
    _assert_uncorrelated(decisions[:-1], decisions[1:], "neighbouring samples")


CHANNEL_CASES = [
    # (function, shape, layout, the dims of one map), each a torch shape rule
    ("dropout1d", (3, 5, 7), "contiguous", (2,)),  # (N, C, L)
    ("dropout1d", (5, 7), "contiguous", (1,)),  # unbatched (C, L)
    ("dropout2d", (3, 5, 4, 7), "contiguous", (2, 3)),
    ("dropout2d", (3, 5, 4, 7), "channels_last", (2, 3)),  # NHWC memory, maps still (n, c)
    ("dropout2d", (3, 5, 4, 7), "strided", (2, 3)),
    ("dropout3d", (2, 3, 4, 2, 5), "channels_last", (2, 3, 4)),
    ("dropout3d", (3, 4, 2, 5), "contiguous", (1, 2, 3)),  # unbatched (C, D, H, W)
]


@pytest.mark.parametrize("name,shape,layout,map_dims", CHANNEL_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CHANNEL_CASES])
def test_channel_dropout_zeroes_whole_maps(name, shape, layout, map_dims):
    x = make_input(shape, torch.float32, layout, low=0.5, high=2.0, requires_grad=True)
    y = getattr(TF, name)(x, 0.5)
    kept = y != 0
    assert torch.equal(kept.all(dim=map_dims), kept.any(dim=map_dims)), "a map partly zeroed"
    assert_close(y, torch.where(kept, x * 2, 0))
    (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert_close(grad, kept.to(grad.dtype) * 2)


def test_reproducible_under_manual_seed_and_calls_differ():
    x = torch.ones(97, 31, device=DEVICE)
    torch.manual_seed(1234)
    first, second = TF.dropout(x, 0.4), TF.dropout(x, 0.4)
    torch.manual_seed(1234)
    again = TF.dropout(x, 0.4)
    assert torch.equal(first, again)
    assert not torch.equal(first, second)


@pytest.mark.skipif(DEVICE.type != "cuda", reason="GPU only: the CPU draws seed and offset from MT19937")
def test_draw_advances_the_cuda_generator_like_torch():
    """A call takes the CUDA generator's seed and offset and moves the offset past its draws (rounded up to a
    multiple of 4, as torch's own Philox users do): torch's next random numbers are the ones that follow."""
    from tritonlayers._random import philox_seed_offset
    torch.manual_seed(321)
    generator = torch.cuda.default_generators[torch.cuda.current_device()]
    start = generator.get_offset()
    seed, offset = philox_seed_offset(DEVICE, 97 * 31)
    assert (seed, offset) == (321, start)
    assert generator.get_offset() == start + (97 * 31 + 3) // 4 * 4
    x = torch.ones(97, 31, device=DEVICE)
    torch.manual_seed(321)
    TF.dropout(x, 0.4)
    after_ours = torch.rand(5, device=DEVICE)
    torch.manual_seed(321)
    generator.set_offset(start + (97 * 31 + 3) // 4 * 4)
    assert torch.equal(after_ours, torch.rand(5, device=DEVICE))


def test_mask_is_the_same_whatever_the_layout(monkeypatch):
    # keys are logical indices: the same seed drops the same logical elements in any memory layout, whether
    # a Philox call decides four neighbouring elements (contiguous), a map's row or one element
    import tritonlayers.dropout
    from tritonlayers._cache import BoundedCache
    monkeypatch.setattr(tritonlayers.dropout, "_LAUNCHES", BoundedCache())  # every launch worked out afresh
    paths = []
    draw_mode = tritonlayers.dropout.draw_mode
    monkeypatch.setattr(tritonlayers.dropout, "draw_mode", lambda *args: paths.append(draw_mode(*args)) or paths[-1])
    base = make_input((2, 6, 5, 7), torch.float32, low=1, high=2)
    masks = []
    for x in (base, base.contiguous(memory_format=torch.channels_last), base.transpose(0, 3).contiguous()
              .transpose(0, 3)):
        torch.manual_seed(7)
        masks.append(TF.dropout(x, 0.5) != 0)
    assert torch.equal(masks[0], masks[1]) and torch.equal(masks[0], masks[2])
    # with a channel bias, NCHW tiles run along the pixels (fours across columns), channels_last ones along
    # the channels (one Philox call per element)
    bias, base = make_input((6, 1, 1), torch.float32, low=1, high=2), base[..., :4]  # 20-pixel maps
    for x in (base.contiguous(), base.contiguous(memory_format=torch.channels_last), base):
        torch.manual_seed(7)
        masks.append(TF.fused_dropout(x, 0.5, bias=bias) != 0)
    assert torch.equal(masks[3], masks[4]) and torch.equal(masks[3], masks[5])
    # channel-wise: NCHW decides element by element, channels_last tiles with one draw per (n, c) row
    maps = make_input((3, 5, 4, 7), torch.float32, low=1, high=2)
    for x in (maps, maps.contiguous(memory_format=torch.channels_last)):
        torch.manual_seed(7)
        masks.append(TF.dropout2d(x, 0.5) != 0)
    assert torch.equal(masks[6], masks[7])
    assert {1, 2, 3} <= set(paths) and 0 in paths, paths


@pytest.mark.parametrize("shape,mode", [
    ((2, 12, 5, 3), "MAPS_IN_FOURS"),  # C % 4 == 0: one Philox call per four channels; 12 rows: a partial row tile
    ((3, 5, 4, 7), "MAP_PER_ROW"),  # prime C: one call per channel, fours straddling samples
], ids=["C12", "C5"])
@pytest.mark.parametrize("wide", [False, True], ids=["int32", "int64"])
def test_channels_last_maps_match_contiguous_across_tiles(shape, mode, wide, monkeypatch, request):
    # channels_last channel-wise tiles take a map per row (the channels) and share its draw along the pixels;
    # 8 x 4 tiles spread rows, samples and pixels over several programs, each with the contiguous input's mask
    if wide:
        request.getfixturevalue("wide_index")
    import tritonlayers.dropout
    import tritonlayers.kernels.dropout as kernels
    from tritonlayers._cache import BoundedCache
    monkeypatch.setattr(tritonlayers.dropout, "_LAUNCHES", BoundedCache())
    monkeypatch.setattr(tritonlayers.dropout, "map_tile_config", lambda num_rows, num_columns: (8, 4, 1))
    paths = []
    draw_mode = tritonlayers.dropout.draw_mode
    monkeypatch.setattr(tritonlayers.dropout, "draw_mode", lambda *args: paths.append(draw_mode(*args)) or paths[-1])
    base = make_input(shape, torch.float32, low=1, high=2, requires_grad=True)
    masks = []
    for x in (base, base.contiguous(memory_format=torch.channels_last)):
        torch.manual_seed(5)
        y = TF.dropout2d(x, 0.5)
        (grad,) = torch.autograd.grad(y, x, torch.ones_like(y).contiguous(memory_format=torch.channels_last))
        masks += [y != 0, grad != 0]
    for name, mask in zip(["channels_last output", "contiguous grad", "channels_last grad"], masks[1:]):
        differ = (mask != masks[0]).nonzero()
        assert differ.numel() == 0, f"{name}: mask differs from the contiguous output's first at {differ[0].tolist()}"
    assert getattr(kernels, mode).value in paths, paths


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided", "permuted"])
def test_values_and_gradient_follow_the_mask(dtype, layout):
    p = 0.3
    x = make_input((2, 5, 7, 3), dtype, layout, low=0.5, high=2.0, requires_grad=True)
    y = TF.dropout(x, p)
    mask = _mask(y)
    assert_close(y, x.detach().double() * mask / (1 - p), dtype, name="output")
    grad_output = make_input((2, 5, 7, 3), dtype, "channels_last" if layout == "contiguous" else "contiguous")
    (grad,) = torch.autograd.grad(y, x, grad_output)  # a grad in another layout: the mask is regenerated
    assert grad.dtype == dtype
    assert_close(grad, grad_output.double() * mask / (1 - p), dtype, name="grad_input")
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)


def test_backward_saves_nothing_input_sized():
    x = torch.randn(4, 8, 3, 3, device=DEVICE, requires_grad=True)
    for y in (TF.dropout(x, 0.5), TF.dropout2d(x, 0.5)):
        assert y.grad_fn.saved_tensors == ()
        assert not [name for name in dir(y.grad_fn) if name.startswith("_saved")]


def test_int64_index_path(wide_index):
    x = torch.ones(37, 29, device=DEVICE, requires_grad=True)
    torch.manual_seed(3)
    y = TF.dropout(x, 0.5)
    (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert torch.equal(grad, y.detach())
    _assert_keep_fraction(_mask(y), 0.5)


@pytest.mark.parametrize("name", ["dropout", "dropout2d"])
def test_gradcheck_fp64(name):
    x = make_input((2, 3, 2, 2), torch.float64, requires_grad=True)

    def fixed_mask_dropout(t):
        torch.manual_seed(11)  # the same mask on every call gradcheck makes
        return getattr(TF, name)(t, 0.4)

    gradcheck(fixed_mask_dropout, x)


@pytest.mark.parametrize("name", ["dropout", "dropout1d", "dropout2d", "dropout3d"])
def test_eval_and_zero_p_return_the_input_itself(name):
    x = torch.randn(2, 3, 4, 5, device=DEVICE)
    if name == "dropout1d":
        x = x[0]
    assert getattr(TF, name)(x, 0.5, training=False) is x
    assert getattr(TF, name)(x, 0.0) is x


def test_empty_tensor_returns_the_input_itself():
    x = torch.empty(0, 3, device=DEVICE)
    assert TF.dropout(x, 0.5) is x


def test_p_one_gives_zeros_like_torch_multiplying_by_zero():
    x = torch.tensor([1.0, -2.0, float("inf"), float("nan")], device=DEVICE, requires_grad=True)
    y = TF.dropout(x, 1.0)
    assert_close(y, F.dropout(x, 1.0))  # inf * 0 and nan * 0 are nan, as in torch
    y.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_zero_dim_tensor():
    x = torch.tensor(3.0, device=DEVICE, requires_grad=True)
    kept = [TF.dropout(x, 0.5) for _ in range(40)]
    assert {round(value.item(), 4) for value in kept} <= {0.0, 6.0} and len({v.item() for v in kept}) == 2
    kept[0].backward()
    assert x.grad.item() in (0.0, 2.0)


@pytest.mark.parametrize("name", ["dropout", "dropout2d"])
def test_inplace_writes_input_and_backpropagates(name):
    leaf = make_input((3, 4, 5, 2), torch.float32, low=1, high=2, requires_grad=True)
    x = leaf * 1
    y = getattr(TF, name)(x, 0.5, inplace=True)
    assert y is x
    mask = _mask(y)
    y.backward(torch.ones_like(y))
    assert_close(leaf.grad, mask * 2)


def test_inplace_on_leaf_requiring_grad_raises_like_torch():
    x = torch.randn(4, device=DEVICE, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        TF.dropout(x, 0.5, inplace=True)


@pytest.mark.parametrize("name", ["dropout", "dropout2d"])
def test_inplace_into_shared_memory_raises_like_torch(name):
    """An expanded view's elements share memory: torch refuses to write it in place, and so do we (each row's
    mask would land on the same elements), before drawing from the generator."""
    expected = torch_error(lambda: getattr(F, name)(torch.ones(1, 3, 4, 5).expand(2, 3, 4, 5), 0.5, inplace=True))
    x = make_input((1, 3, 4, 5), torch.float32).expand(2, 3, 4, 5)
    state = torch.random.get_rng_state() if DEVICE.type == "cpu" else torch.cuda.get_rng_state(DEVICE)
    with raises_like(expected):
        getattr(TF, name)(x, 0.5, inplace=True)
    assert torch.equal(state, torch.random.get_rng_state() if DEVICE.type == "cpu" else
                       torch.cuda.get_rng_state(DEVICE))


def test_modules_match_torch_modules():
    x = make_input((2, 3, 4, 5), torch.float32, low=1, high=2)
    for name in ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d"):
        ours, theirs = getattr(tnn, name)(0.25), getattr(torch.nn, name)(0.25)
        assert isinstance(ours, type(theirs)) and repr(ours) == repr(theirs)
        assert ours.state_dict().keys() == theirs.state_dict().keys()
        data = x[0] if name == "Dropout1d" else x.unsqueeze(0) if name == "Dropout3d" else x
        y = ours(data)
        kept = y != 0
        assert_close(y[kept], (data / 0.75)[kept])
        ours.eval()
        assert ours(data) is data


@pytest.mark.parametrize("p", [-0.1, 1.5])
@pytest.mark.parametrize("name", ["dropout", "dropout1d", "dropout2d", "dropout3d"])
def test_p_outside_unit_interval_raises_torch_message(name, p):
    with pytest.raises(ValueError, match=f"dropout probability has to be between 0 and 1, but got {p}"):
        getattr(TF, name)(torch.randn(2, 3, 4, device=DEVICE), p)


def test_wrong_ranks_behave_like_torch():
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input, but received a 4D input"):
        TF.dropout1d(torch.randn(2, 3, 4, 5, device=DEVICE))
    with pytest.warns(UserWarning, match="Received a 5-D input to dropout2d"):
        TF.dropout2d(torch.randn(2, 3, 4, 5, 2, device=DEVICE))
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout"):
        y = TF.dropout2d(torch.ones(2, 8, 6, device=DEVICE), 0.5)
    assert torch.equal((y != 0).all(2), (y != 0).any(2))  # (N, C, L) maps, as torch
    with pytest.warns(UserWarning, match="Received a 3-D input to dropout3d"):
        TF.dropout3d(torch.randn(2, 3, 4, device=DEVICE))
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="Feature dropout requires at least 2"):
        TF.dropout2d(torch.randn(5, device=DEVICE))


def test_integer_input_raises_when_dropout_applies():
    x = torch.arange(6, device=DEVICE)
    with pytest.raises(RuntimeError, match="'input' has dtype torch.int64"):
        TF.dropout(x, 0.5)
    assert TF.dropout(x, 0.5, training=False) is x  # torch returns it untouched


@pytest.mark.parametrize("name", ["dropout", "dropout2d"])
def test_seed_read_on_the_device_decides_like_the_same_seed_passed_in(name):
    """Under CUDA graph capture the seed is a device tensor the kernels load (offset 0): the same seed must
    give the same masks, forward and backward, as when passed as a number."""
    from tritonlayers.dropout import DropoutPlan, dropout_backward, dropout_forward
    x = make_input((3, 8, 5, 7), torch.float32, "channels_last", low=1, high=2)
    plan = DropoutPlan(tuple(x.shape), 1, map_size=35 if name == "dropout2d" else 1)
    seed = 2**40 + 12345
    seed_tensor = torch.tensor([seed, 999], dtype=torch.int64, device=DEVICE)  # offset word ignored: 0
    expected = dropout_forward(x, 0.5, plan, seed, 0)
    assert torch.equal(dropout_forward(x, 0.5, plan, seed_tensor, 0), expected)
    assert not torch.equal(dropout_forward(x, 0.5, plan, seed + 1, 0), expected)
    grad = torch.ones_like(x)
    assert torch.equal(dropout_backward(grad, 0.5, plan, seed_tensor, 0)[0], dropout_backward(grad, 0.5, plan, seed, 0)[0])


def test_capture_preparation_launches_nothing():
    """Before a CUDA graph capture can use it, each launch's device-seed twin is compiled and loaded by a
    launch over an empty grid (on a GPU, at the launch's first eager call): it must write nothing."""
    from tritonlayers import dropout as dropout_host
    x = make_input((5, 7), torch.float32)
    out = torch.full_like(x, 3.0)
    plan = dropout_host.DropoutPlan((5, 7), 1)
    launch = dropout_host._Launch(dropout_host.dropout_forward_kernel, plan, (x, x, out), False)
    head = (x, x, out, x, *launch.scalars)
    dropout_host._prepare_capture(dropout_host.dropout_forward_kernel, head, (0, 0, 0.5, 2.0, 0.0, 0.0),
                                  dict(HAS_BIAS=False, ACTIVATION=0, DROPOUT=True, HAS_RESIDUAL=False,
                                       **launch.constexprs))
    assert torch.equal(out, torch.full_like(x, 3.0))


@gpu_only("CUDA graph capture")
@pytest.mark.parametrize("name", ["dropout", "dropout2d"])
def test_cuda_graph_replays_draw_new_masks_that_manual_seed_reproduces(name):
    x = torch.ones(64, 32, 4, 4, device=DEVICE, requires_grad=True)
    dropout = getattr(TF, name)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        dropout(x, 0.5).sum().backward()  # warm-up: compiles, tunes
    torch.cuda.current_stream().wait_stream(stream)
    x.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = dropout(x, 0.5)
        y.sum().backward()

    def replay():
        graph.replay()
        torch.cuda.synchronize()
        return y.detach().clone(), x.grad.clone()

    torch.manual_seed(7)
    first, first_grad = replay()
    second, _ = replay()
    torch.manual_seed(7)
    again, again_grad = replay()
    assert not torch.equal(first, second), "every replay repeated one mask"
    assert torch.equal(first, again) and torch.equal(first_grad, again_grad)
    assert torch.equal(first_grad, first)  # d(sum)/dx: the forward's own mask and scale
    _assert_keep_fraction(_mask(first if name == "dropout" else first[:, :, 0, 0]), 0.5)


@pytest.mark.parametrize("offset", [2**31 - 1, 2**32 - 1, 2**40 + 7])
def test_offsets_past_int32_continue_the_stream(offset):
    """The Philox offset reaches the kernels as two 31-bit words (as one int it would change the kernels'
    argument type mid-training). Counter = offset + unit // 4, so offset + 1 decides unit u as offset decides
    u + 4: masks across a word boundary must line up shifted by four."""
    from tritonlayers.dropout import DropoutPlan, dropout_forward
    x = torch.ones(4096, device=DEVICE)
    plan = DropoutPlan((4096,), 0)
    before = dropout_forward(x, 0.5, plan, 1234, offset) != 0
    after = dropout_forward(x, 0.5, plan, 1234, offset + 1) != 0
    assert torch.equal(after[:-4], before[4:])
    assert 0.4 < after.float().mean().item() < 0.6
