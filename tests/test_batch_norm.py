"""batch_norm and BatchNorm1d/2d/3d against torch: outputs, gradients and running statistics over shapes,
layouts, dtypes and both kernel paths; the fused activation(BN(x) + residual); torch's errors."""
import pytest
import torch
import torch.nn.functional as F

import tritonlayers.functional as TF
import tritonlayers.nn as tnn
from helpers import DEVICE, activate, assert_close, far_apart, gradcheck, make_input
from tritonlayers import batch_norm as bn_host
from tritonlayers.kernels import batch_norm as bn_kernels


def _path(x):
    """'resident' or 'split': the training forward path a call on x takes."""
    output = torch.empty_like(x)
    geometry = bn_host.reduction_geometry(1, x, x, output)
    resident = bn_host._resident(geometry, 1, None, bn_host.needs_wide_index(x, x, output))
    return "resident" if resident is not None else "split"


@pytest.fixture
def split_only(monkeypatch):
    """Force the split kernels (resident tiles of zero values never fit)."""
    monkeypatch.setattr(bn_kernels, "RESIDENT_TILE", 0)


def _params(num_channels, dtype, affine=True):
    if not affine:
        return None, None
    weight = make_input((num_channels,), dtype, low=0.5, high=1.5, requires_grad=True)
    bias = make_input((num_channels,), dtype, low=-1, high=1, requires_grad=True)
    return weight, bias


def _check(shape, layout, dtype, training=True, param_dtype=None, affine=True, running=True, momentum=0.1,
           eps=1e-5, activation=None, with_residual=False, mean=0.0, std=1.0, output_atol=None):
    """Output, every gradient and the running statistics of tritonlayers vs torch in fp64. layout: one of
    helpers.make_input's, or far_apart (helpers.far_apart: offsets past int32)."""
    num_channels = shape[1]
    x = far_apart(shape, dtype) if layout == "far_apart" else make_input(shape, dtype, layout)
    with torch.no_grad():
        x.mul_(std).add_(mean)
    x.requires_grad_()
    weight, bias = _params(num_channels, param_dtype or dtype, affine)
    residual = make_input(shape, dtype, requires_grad=True) if with_residual else None
    stats_dtype = param_dtype or (dtype if dtype == torch.float64 else torch.float32)
    running_mean = (torch.randn(num_channels, dtype=stats_dtype, device=DEVICE) if running else None)
    running_var = (torch.rand(num_channels, dtype=stats_dtype, device=DEVICE) + 0.5 if running else None)
    ref_running = [t.double().clone() if t is not None else None for t in (running_mean, running_var)]

    y = TF.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, activation=activation,
                      residual=residual)
    leaves = [t for t in (x, weight, bias, residual) if t is not None]
    grad_output = make_input(shape, y.dtype, low=-1, high=1)
    grads = torch.autograd.grad(y, leaves, grad_output)

    leaves64 = [t.detach().double().requires_grad_() for t in leaves]
    x64 = leaves64[0]
    w64, b64 = (leaves64[1], leaves64[2]) if affine else (None, None)
    r64 = leaves64[-1] if with_residual else None
    z = F.batch_norm(x64, *ref_running, w64, b64, training, momentum, eps)
    expected = activate(z + r64 if with_residual else z, activation)
    expected_grads = torch.autograd.grad(expected, leaves64, grad_output.double())

    assert y.dtype == dtype and y.shape == x.shape
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last if len(shape) == 4 else torch.channels_last_3d)
    assert_close(y, expected, dtype, atol=output_atol, name="output")
    if output_atol is not None:  # the same slack for gradients, which use the same centered values
        return y
    reduced = x.numel() // num_channels  # weight / bias gradients sum this many terms
    for name, grad, expected_grad, leaf in zip(["input", "weight", "bias", "residual"] if affine else
                                               ["input", "residual"], grads, expected_grads, leaves):
        assert grad.dtype == leaf.dtype
        # input gradients in training subtract per-channel means of sums: rounding grows with the count
        scale = reduced if name in ("weight", "bias") or training else 1
        if name == "input" and training:  # and is amplified by |weight| * invstd (large for a few close values)
            dims = [d for d in range(x64.dim()) if d != 1]
            invstd = (x64.detach().var(dims, unbiased=False) + eps).rsqrt()
            gain = invstd * (w64.detach().abs() if affine else 1)
            scale *= max(1.0, gain.max().item())
        assert_close(grad, expected_grad, dtype, scale_atol=scale, name=f"grad {name}")
    if running:
        for name, ours, theirs in zip(("running_mean", "running_var"), (running_mean, running_var), ref_running):
            assert_close(ours, theirs, stats_dtype if dtype == torch.float64 else torch.float32, name=name)
    return y


# (shape, layout): why each is here
SHAPES = [
    ((7, 5), "contiguous"),  # BatchNorm1d on (N, C)
    ((4, 6, 9), "contiguous"),  # (N, C, L)
    ((3, 5, 4, 7), "contiguous"),  # NCHW, odd sizes
    ((3, 5, 4, 7), "channels_last"),  # NHWC memory, no layout copy
    ((3, 5, 4, 7), "strided"),  # a sliced (non-dense) view
    ((2, 3, 3, 4, 5), "channels_last"),  # channels_last_3d
    ((2, 3, 3, 4, 5), "contiguous"),  # (N, C, D, H, W)
    ((1, 4, 3, 1), "contiguous"),  # batch of one, size-1 spatial dim
]


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("path", ["resident", "split"])
@pytest.mark.parametrize("shape,layout", SHAPES, ids=[f"{s}-{lay}" for s, lay in SHAPES])
def test_matches_torch_fp32(shape, layout, path, training, request):
    if path == "split":
        request.getfixturevalue("split_only")
    if training:
        assert _path(make_input(shape, torch.float32, layout)) == path
    _check(shape, layout, torch.float32, training)


@pytest.mark.parametrize("dtype,param_dtype", [(torch.float64, None), (torch.float16, None), (torch.bfloat16, None),
                                               (torch.float16, torch.float32), (torch.bfloat16, torch.float32)],
                         ids=["fp64", "fp16", "bf16", "fp16-fp32-params", "bf16-fp32-params"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_dtypes(dtype, param_dtype, layout, training):
    _check((3, 5, 4, 7), layout, dtype, training, param_dtype=param_dtype)


def test_split_path_on_a_large_map():
    # 2 x 3 x 65 x 70: 9100 values per channel, past the resident tile: statistics split over programs
    x = make_input((2, 3, 65, 70), torch.float32)
    assert _path(x) == "split"
    geometry = bn_host.reduction_geometry(1, x, x)
    assert bn_host._split_config(geometry, x.device, x.element_size())["splits"] > 1  # partials merged, summed
    _check((2, 3, 65, 70), "contiguous", torch.float32)


@pytest.mark.parametrize("shape,layout", [
    ((32, 2048, 4, 4), "channels_last"),  # ResNet stage 4 at 128x128: was 512 splits of 2048-channel tiles
    ((32, 1024, 8, 8), "channels_last"), ((32, 256, 56, 56), "channels_last"),
    ((32, 2048, 7, 7), "contiguous"), ((32, 64, 112, 112), "contiguous")])
def test_split_sums_stay_small_against_the_input(shape, layout, monkeypatch):
    """On a 132-SM GPU, the split path's partial sums (3 fp32 per channel and split) stay within an eighth
    of a bf16 input's bytes, channels_last tiles at most 64 channels wide, and the grid still fills the SMs
    where the input has the tiles for it."""
    monkeypatch.setattr(bn_host, "sm_count", lambda device: 132)
    x = torch.empty(shape, dtype=torch.bfloat16).contiguous(
        memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format)
    config = bn_host._split_config(bn_host.reduction_geometry(1, x, x), x.device, x.element_size())
    assert config["splits"] * 3 * shape[1] * 4 <= x.numel() * x.element_size() / bn_host.PARTIAL_SHARE, config
    if layout == "channels_last":
        assert config["block_r"] <= bn_host.CHANNEL_BLOCK, config
    assert config["grid"][0] * config["grid"][1] >= 132, config


@pytest.mark.parametrize("wanted", [("weight", "bias"), ("weight",), ("input", "bias")],
                         ids=["params-only", "weight-only", "input-and-bias"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("path", ["resident", "split"])
def test_some_gradients_only(wanted, training, path, request):
    # the kernel reading the sums stores the parameter gradients, or, without an input gradient, they are
    # copied from the sums; bf16 parameters take the cast in the store
    if path == "split":
        request.getfixturevalue("split_only")
    shape = (5, 3, 7, 11)
    x = make_input(shape, torch.float32, "channels_last", requires_grad="input" in wanted)
    weight, bias = _params(3, torch.bfloat16)
    weight.requires_grad_("weight" in wanted)
    bias.requires_grad_("bias" in wanted)
    running = (torch.zeros(3, device=DEVICE), torch.ones(3, device=DEVICE))
    leaves = {"input": x, "weight": weight, "bias": bias}
    grad_output = make_input(shape, torch.float32, low=-1, high=1)
    y = TF.batch_norm(x, *(t.clone() for t in running), weight, bias, training)
    grads = torch.autograd.grad(y, [leaves[name] for name in wanted], grad_output)
    leaves64 = {name: t.detach().double().requires_grad_() for name, t in leaves.items()}
    expected = F.batch_norm(leaves64["input"], *(t.double() for t in running), leaves64["weight"],
                            leaves64["bias"], training)
    expected_grads = torch.autograd.grad(expected, [leaves64[name] for name in wanted], grad_output.double())
    for name, grad, expected_grad in zip(wanted, grads, expected_grads):
        assert grad.dtype == leaves[name].dtype
        # parameter gradients: an fp32 sum rounded once to bf16; the input's subtracts means of such sums
        scale = x.numel() // 3 if name == "input" and training else 1
        assert_close(grad, expected_grad, grad.dtype, scale_atol=scale, name=f"grad {name}")


@pytest.mark.parametrize("path", ["resident", "split"])
def test_large_mean_keeps_its_variance(path, request):
    if path == "split":
        request.getfixturevalue("split_only")
    # mean 1e4, std 1: a one-pass E[x^2] - E[x]^2 in fp32 would lose the variance entirely. Outputs carry
    # the fp32 mean's own rounding (half an ulp of 1e4 is 4.9e-4), the variance must not.
    shape = (16, 3, 8, 8)
    x = (make_input(shape, torch.float32) + 1e4)
    running_mean, running_var = torch.zeros(3, device=DEVICE), torch.ones(3, device=DEVICE)
    y = TF.batch_norm(x, running_mean, running_var, training=True, momentum=1.0)
    x64 = x.double()
    expected_var = x64.var(dim=(0, 2, 3), unbiased=True)
    naive_var = (x * x).mean(dim=(0, 2, 3)) - x.mean(dim=(0, 2, 3)) ** 2  # fp32 E[x^2] - E[x]^2
    assert ((naive_var.double() - expected_var).abs() / expected_var).max() > 0.1  # the case is hard
    assert_close(running_var, expected_var, atol=0, rtol=1e-4, name="running_var")
    assert_close(running_mean, x64.mean(dim=(0, 2, 3)), name="running_mean")
    assert_close(y, F.batch_norm(x64, None, None, training=True), atol=1e-3, name="output")


@pytest.mark.parametrize("path", ["resident", "split"])
@pytest.mark.parametrize("shape,offset", [((4, 8, 5, 5), 100.0), ((3, 16, 7, 7), 1e4)])
def test_mean_is_rounded_once(shape, offset, path, request):
    """The batch mean of channels far from zero within 0.6 ulp of the exact one in a resident tile (torch's
    is correctly rounded; a plain fp32 sum of values near the offset rounds at the sum's magnitude: 1.4-1.8
    ulps off in these cases, and every xhat carries the error), within about an ulp from split partials (each
    part's mean is rounded to fp32 before the merge rounds again)."""
    if path == "split":
        request.getfixturevalue("split_only")
    x = make_input(shape, torch.float32) + offset
    running_mean, running_var = torch.zeros(shape[1], device=DEVICE), torch.ones(shape[1], device=DEVICE)
    TF.batch_norm(x, running_mean, running_var, training=True, momentum=1.0)
    error = (running_mean.double() - x.double().mean(dim=(0, 2, 3))).abs()
    ulp = (torch.nextafter(running_mean, torch.full_like(running_mean, float("inf"))) - running_mean).double()
    assert (error <= (0.6 if path == "resident" else 1.05) * ulp).all(), error / ulp  # split: two roundings


@pytest.mark.parametrize("path", ["resident", "split"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_strided_parameters_and_buffers(training, path, request):
    """Weight, bias and running buffers that are strided views (every other element of a buffer): the kernels
    index them by channel with unit stride, so they are read through dense copies and the running buffers
    written back (the strided views gave other channels' values)."""
    if path == "split":
        request.getfixturevalue("split_only")
    x = make_input((3, 5, 4, 3), torch.float64, requires_grad=True)
    weight, bias = (make_input((5,), torch.float64, "strided", 0.5, 1.5, requires_grad=True) for _ in range(2))
    running_mean = make_input((5,), torch.float64, "strided")
    running_var = make_input((5,), torch.float64, "strided", 0.5, 1.5)
    expected_running = [running_mean.cpu().clone(), running_var.cpu().clone()]
    y = TF.batch_norm(x, running_mean, running_var, weight, bias, training, 0.3, activation="relu")
    leaves64 = [t.detach().double().cpu().requires_grad_() for t in (x, weight, bias)]
    expected = F.relu(F.batch_norm(leaves64[0], *expected_running, leaves64[1], leaves64[2], training, 0.3))
    assert_close(y, expected, name="output")
    assert_close(running_mean, expected_running[0], name="running_mean")
    assert_close(running_var, expected_running[1], name="running_var")
    grad_output = make_input(tuple(y.shape), torch.float64)
    grads = torch.autograd.grad(y, [x, weight, bias], grad_output)
    expected_grads = torch.autograd.grad(expected, leaves64, grad_output.cpu())
    for name, grad, expected_grad in zip(("input", "weight", "bias"), grads, expected_grads):
        assert_close(grad, expected_grad, name=f"grad {name}")


@pytest.mark.parametrize("num_parts", [1, 7, 300])
def test_merge_of_many_parts_keeps_mean_and_variance(num_parts):
    # Partial (count, mean, M2) as the split pass leaves them in fp32 (some parts empty, means near 1e4, std
    # 1), merged in tiles of parts (300 parts: several steps of the merge loop), against their exact fp64
    # merge: count n = sum n_i, mean = sum n_i mean_i / n, M2 = sum M2_i + sum n_i (mean_i - mean)^2.
    num_channels = 37
    generator = torch.Generator().manual_seed(num_parts)
    counts = torch.randint(0, 6, (num_parts, num_channels), generator=generator).double()
    counts[-1].clamp_(min=1)  # every channel has values
    if num_parts > 1:
        counts[0, :3] = 0  # part 0 is the reference for the others' means: an empty one must not matter
    means = torch.where(counts > 0, 1e4 + torch.randn(num_parts, num_channels, generator=generator, dtype=torch.float64), 0)
    m2s = torch.where(counts > 1, counts * torch.rand(num_parts, num_channels, generator=generator, dtype=torch.float64), 0)
    partial = torch.stack([counts, means, m2s], dim=1).float()
    merged = bn_host._merge(partial.to(DEVICE), num_channels).double().cpu()
    count, mean, m2 = partial.double().unbind(1)
    expected_mean = (count * mean).sum(0) / count.sum(0)
    expected_m2 = m2.sum(0) + (count * (mean - expected_mean) ** 2).sum(0)
    assert_close(merged[0], count.sum(0), atol=0, rtol=0, name="count")
    assert_close(merged[1], expected_mean, atol=1e-3, rtol=0, name="mean")  # an ulp of 1e4 in fp32
    assert_close(merged[2], expected_m2, atol=1e-4, rtol=1e-5, name="M2")


@pytest.mark.parametrize("momentum", [0.0, 0.5, 1.0, 2.0, -0.5])
def test_every_momentum_torch_accepts(momentum):
    _check((4, 3, 5), "contiguous", torch.float32, momentum=momentum)


@pytest.mark.parametrize("affine,running,training", [(False, True, True), (True, False, True), (False, False, True),
                                                     (False, True, False)])
def test_without_affine_or_running_statistics(affine, running, training):
    _check((4, 3, 5), "contiguous", torch.float32, training, affine=affine, running=running)


@pytest.mark.parametrize("with_residual", [True, False], ids=["residual", "no-residual"])
@pytest.mark.parametrize("activation", ["relu", "gelu", "silu", torch.nn.LeakyReLU(0.2)],
                         ids=["relu", "gelu", "silu", "leaky0.2"])
@pytest.mark.parametrize("path", ["resident", "split"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_fused_activation_and_residual(activation, with_residual, path, training, request):
    if path == "split":
        request.getfixturevalue("split_only")
    _check((3, 5, 4, 7), "channels_last", torch.float32, training, activation=activation,
           with_residual=with_residual)


def test_fused_resident_with_many_channels():
    # 21 channels with relu + residual: three live tensors in the resident backward, a non-power-of-two share
    x = make_input((3, 21, 7, 9), torch.float32)
    assert _path(x) == "resident"
    _check((3, 21, 7, 9), "channels_last", torch.float32, activation="relu", with_residual=True)


@pytest.mark.parametrize("activation,with_residual,saved", [
    (None, True, None), ("relu", True, "output"), ("gelu", True, "residual"),
    ("relu", False, None), ("sigmoid", False, None)])  # without a residual, backward recomputes it from x
def test_saves_the_cheapest_thing(activation, with_residual, saved):
    x = make_input((4, 3, 5, 5), torch.float16, requires_grad=True)
    weight, bias = _params(3, torch.float32)
    residual = make_input((4, 3, 5, 5), torch.float16) if with_residual else None
    y = TF.batch_norm(x, None, None, weight, bias, True, activation=activation, residual=residual)
    _, _, _, mean, invstd, extra = y.grad_fn.saved_tensors
    assert mean.dtype == torch.float32 and invstd.dtype == torch.float32  # fp32 statistics for fp16 input
    expected = {None: None, "output": y, "residual": residual}[saved]
    assert (extra is None) if expected is None else torch.equal(extra, expected)


@pytest.mark.parametrize("path", ["resident", "split"])
def test_relu_at_zero_on_a_constant_channel(path, request):
    """A constant channel with zero bias puts BN + relu exactly at 0, where relu's derivative is 0 (torch's,
    from the output): backward's recomputed pre-activation must be that same 0, not a rounding away. (torch's
    own fp64 reference is no judge there: its mean can miss 2.5 by an ulp, which 1 / sqrt(eps) turns into
    +-100 gradients; the other channels are compared with it.)"""
    if path == "split":
        request.getfixturevalue("split_only")
    x = make_input((4, 3, 5, 5), torch.float32)
    x[:, 0] = 2.5
    x.requires_grad_()
    weight = make_input((3,), torch.float32, low=0.5, high=1.5, requires_grad=True)
    bias = torch.tensor([0.0, 0.3, -0.2], device=DEVICE, requires_grad=True)
    grad_output = make_input(x.shape, torch.float32, low=-1, high=1)
    grads = torch.autograd.grad(TF.batch_norm(x, None, None, weight, bias, True, activation="relu"),
                                (x, weight, bias), grad_output)
    leaves64 = [t.detach().double().requires_grad_() for t in (x, weight, bias)]
    expected = torch.autograd.grad(F.relu(F.batch_norm(leaves64[0], None, None, *leaves64[1:], True)), leaves64,
                                   grad_output.double())
    for name, grad, expected_grad in zip(("input", "weight", "bias"), grads, expected):
        if name == "input":
            assert torch.all(grad[:, 0] == 0), name
            assert_close(grad[:, 1:], expected_grad[:, 1:], torch.float32, scale_atol=100, name=name)
        else:
            assert grad[0] == 0, name
            assert_close(grad[1:], expected_grad[1:], torch.float32, scale_atol=100, name=name)


def test_int64_index_path(wide_index, split_only):
    _check((3, 5, 4, 7), "channels_last", torch.float32, activation="relu", with_residual=True)


@pytest.mark.usefixtures("releases_gpu_memory")
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_offsets_past_int32(training):
    """A few values a channel, far apart (a narrow view of a huge tensor): the resident kernels, which index in
    int32, step aside for the split ones' int64 path (they read outside the tensor before: a segfault through
    the interpreter)."""
    x = far_apart((3, 5, 4, 7), torch.float16)
    assert _path(make_input((3, 5, 4, 7), torch.float16)) == "resident" and _path(x) == "split"
    _check((3, 5, 4, 7), "far_apart", torch.float16, training=training, activation="relu", with_residual=True)


def test_empty_batch_leaves_running_statistics():
    running_mean, running_var = torch.zeros(3, device=DEVICE), torch.ones(3, device=DEVICE)
    y = TF.batch_norm(torch.empty(0, 3, 4, device=DEVICE), running_mean, running_var, training=True)
    assert y.shape == (0, 3, 4)
    assert torch.equal(running_mean, torch.zeros(3, device=DEVICE))
    assert torch.equal(running_var, torch.ones(3, device=DEVICE))


@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_fp64(training):
    x = make_input((3, 2, 2, 2), torch.float64, requires_grad=True)
    weight = make_input((2,), torch.float64, low=0.5, high=1.5, requires_grad=True)
    bias = make_input((2,), torch.float64, requires_grad=True)
    residual = make_input((3, 2, 2, 2), torch.float64, requires_grad=True)
    running = (torch.zeros(2, dtype=torch.float64, device=DEVICE), torch.ones(2, dtype=torch.float64, device=DEVICE))

    def fn(x, weight, bias, residual):
        return TF.batch_norm(x, *(t.clone() for t in running), weight, bias, training, activation="silu",
                             residual=residual)

    gradcheck(fn, x, weight, bias, residual)


MODULES = [("BatchNorm1d", (6, 4)), ("BatchNorm1d", (5, 4, 7)), ("BatchNorm2d", (3, 4, 5, 6)),
           ("BatchNorm3d", (2, 4, 3, 2, 5))]


@pytest.mark.parametrize("kwargs", [{}, {"momentum": None}, {"affine": False}, {"track_running_stats": False},
                                    {"eps": 1e-3, "momentum": 0.3}],
                         ids=["default", "cumulative", "no-affine", "no-running", "eps-momentum"])
@pytest.mark.parametrize("name,shape", MODULES, ids=[f"{n}-{len(s)}d" for n, s in MODULES])
def test_modules_match_torch_over_train_and_eval_steps(name, shape, kwargs):
    ours, theirs = getattr(tnn, name)(shape[1], **kwargs), getattr(torch.nn, name)(shape[1], **kwargs)
    assert isinstance(ours, type(theirs)) and repr(ours) == repr(theirs)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    if ours.affine:
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
            theirs.bias.uniform_(-1, 1)
    ours.load_state_dict(theirs.state_dict())
    ours.to(DEVICE), theirs.to(DEVICE)
    for step, training in enumerate([True, True, True, False]):
        ours.train(training), theirs.train(training)
        x = make_input(shape, torch.float32, low=-2 + step, high=3 + step, requires_grad=True)
        y, expected = ours(x), theirs(x)
        assert_close(y, expected, name=f"step {step} output")
        grad_output = make_input(shape, torch.float32)
        params = [x, *ours.parameters()]
        ours_grads = torch.autograd.grad(y, params, grad_output)
        theirs_grads = torch.autograd.grad(expected, [x, *theirs.parameters()], grad_output)
        for grad, expected_grad in zip(ours_grads, theirs_grads):
            assert_close(grad, expected_grad, scale_atol=x.numel(), name=f"step {step} grad")
        for (key, value), expected_value in zip(ours.state_dict().items(), theirs.state_dict().values()):
            if value.dtype == torch.int64:
                assert torch.equal(value, expected_value), key
            else:
                assert_close(value, expected_value, name=f"step {step} {key}")


def test_module_fused_relu_with_residual():
    module = tnn.BatchNorm2d(4, activation="relu").to(DEVICE)
    assert "activation='relu'" in repr(module)
    assert module.state_dict().keys() == torch.nn.BatchNorm2d(4).state_dict().keys()
    x = make_input((2, 4, 3, 3), torch.float32)
    residual = make_input((2, 4, 3, 3), torch.float32)
    reference = torch.nn.BatchNorm2d(4).to(DEVICE)
    assert_close(module(x, residual), F.relu(reference(x) + residual))
    assert_close(module.running_var, reference.running_var)


def test_errors_match_torch_and_leave_running_statistics_alone():
    x = torch.randn(4, 3, 5, device=DEVICE)
    running_mean, running_var = torch.zeros(3, device=DEVICE), torch.ones(3, device=DEVICE)
    cases = [
        (ValueError, "Expected more than 1 value per channel when training, got input size torch.Size\\(\\[1, 3\\]\\)",
         lambda: TF.batch_norm(torch.randn(1, 3, device=DEVICE), running_mean, running_var, training=True)),
        (RuntimeError, "weight should contain 3 elements not 4",
         lambda: TF.batch_norm(x, running_mean, running_var, torch.ones(4, device=DEVICE), training=True)),
        (RuntimeError, "bias should contain 3 elements not 2",
         lambda: TF.batch_norm(x, running_mean, running_var, bias=torch.ones(2, device=DEVICE), training=True)),
        (RuntimeError, "running_mean should contain 3 elements not 4",
         lambda: TF.batch_norm(x, torch.zeros(4, device=DEVICE), torch.ones(4, device=DEVICE), training=True)),
        (ValueError, "running_mean and running_var must either both be None or neither be None",
         lambda: TF.batch_norm(x, running_mean, None, training=True)),
        (RuntimeError, "running_mean must be defined in evaluation mode", lambda: TF.batch_norm(x, None, None)),
        (TypeError, "argument 'momentum' must be float, not NoneType",
         lambda: TF.batch_norm(x, running_mean, running_var, training=True, momentum=None)),
        (NotImplementedError, "'input' has dtype torch.int64",
         lambda: TF.batch_norm(x.long(), running_mean, running_var, training=True)),
        (ValueError, "'activation' must be one of",
         lambda: TF.batch_norm(x, running_mean, running_var, training=True, activation="swish")),
        (ValueError, "'residual' must have input's shape",
         lambda: TF.batch_norm(x, running_mean, running_var, training=True, residual=x[:2])),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
    assert torch.equal(running_mean, torch.zeros(3, device=DEVICE))
    assert torch.equal(running_var, torch.ones(3, device=DEVICE))


def test_failing_module_call_changes_nothing():
    # torch counts the batch before F.batch_norm refuses it; tritonlayers checks first
    module = tnn.BatchNorm2d(3).to(DEVICE)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        module(torch.randn(1, 3, 1, 1, device=DEVICE))
    assert module.num_batches_tracked.item() == 0
    assert torch.equal(module.running_mean, torch.zeros(3, device=DEVICE))


@pytest.mark.parametrize("name,shape,message", [("BatchNorm1d", (2, 3, 4, 5), "expected 2D or 3D input \\(got 4D"),
                                                ("BatchNorm2d", (2, 3, 4), "expected 4D input \\(got 3D"),
                                                ("BatchNorm3d", (2, 3, 4, 5), "expected 5D input \\(got 4D")])
def test_module_rank_errors_match_torch(name, shape, message):
    module = getattr(tnn, name)(3)
    with pytest.raises(ValueError, match=message):
        module(torch.randn(shape, device=DEVICE))
    assert module.num_batches_tracked.item() == 0

