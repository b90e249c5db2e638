"""linear, conv2d (1x1) and conv_transpose2d (kernel == stride) against torch: values and gradients over
shapes, strides, groups, layouts and dtypes; fused activations and softmax heads; modules; fold_batchnorm;
torch's errors. bf16 GEMMs run on the GPU only: Triton's interpreter computes bf16 tl.dot wrongly."""
import pytest
import torch
import torch.nn.functional as F

import tritonlayers
import tritonlayers.functional as TF
import tritonlayers.nn as tnn
from helpers import DEVICE, activate, assert_close, far_apart, gpu_only, gradcheck, make_input

DTYPES = [torch.float64, torch.float32, torch.float16,
          pytest.param(torch.bfloat16, marks=gpu_only("bf16 tl.dot gives wrong numbers in Triton's interpreter"))]


@pytest.fixture(autouse=True)
def exact_fp32_everywhere(exact_fp32):
    """fp32 GEMMs compared with fp64 need TF32 off (torch's switches, which the kernels follow)."""


def _compare(ours, reference, leaves, dtype, reduced):
    """Run ours() and reference(*fp64 leaves); compare values and every leaf's gradient. reduced: the
    longest sum a result carries (K, or pixels for weight gradients), which scales atol."""
    y = ours()
    grad_output = make_input(tuple(y.shape), y.dtype, low=-1, high=1)
    grads = torch.autograd.grad(y, leaves, grad_output)
    leaves64 = [t.detach().double().requires_grad_() for t in leaves]
    expected = reference(*leaves64)
    expected_grads = torch.autograd.grad(expected, leaves64, grad_output.double())
    assert y.dtype == dtype
    assert_close(y, expected, dtype, scale_atol=reduced, name="output")
    for i, (grad, expected_grad) in enumerate(zip(grads, expected_grads)):
        assert grad.dtype == leaves[i].dtype and grad.shape == leaves[i].shape
        assert_close(grad, expected_grad, dtype, scale_atol=reduced, name=f"grad of leaf {i}")
    return y


def _head(z, activation):
    if activation in ("softmax", "log_softmax"):
        return getattr(F, activation)(z, -1)
    return activate(z, activation)


# (input shape, out_features, layout): why each is here
LINEAR_CASES = [
    ((7, 33), 45, "contiguous"),  # odd M, K, N, several N tiles
    ((2, 3, 33), 45, "contiguous"),  # leading dims become one M axis
    ((5, 33), 45, "strided"),  # a sliced input: strides, no copy
    ((3, 4, 33), 45, "permuted"),  # leading dims that do not merge into one
    ((37, 300), 17, "contiguous"),  # K spans many K tiles
    ((1, 1), 1, "contiguous"),  # everything size 1
    ((33,), 45, "contiguous"),  # one sample without leading dims: the bias gradient is the gradient itself
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape,out_features,layout", LINEAR_CASES, ids=[f"{s}-{n}-{lay}" for s, n, lay in LINEAR_CASES])
def test_linear_matches_torch(shape, out_features, layout, dtype):
    x = make_input(shape, dtype, layout, low=-1, high=1, requires_grad=True)
    weight = make_input((out_features, shape[-1]), dtype, low=-1, high=1, requires_grad=True)
    bias = make_input((out_features,), dtype, requires_grad=True)
    _compare(lambda: TF.linear(x, weight, bias), F.linear, [x, weight, bias], dtype, shape[-1])


@pytest.mark.skipif(DEVICE.type == "cuda", reason="on a GPU the autotuner runs the persistent configs")
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_persistent_variant_loops_over_tiles(layout, monkeypatch):
    """The persistent kernel (a few programs per batch, each looping over tiles: 4 on the CPU) with 16x16
    tiles: a linear with 9 x 4 tiles and a batched NCHW 1x1 convolution, values and gradients."""
    import tritonlayers._gemm
    from tritonlayers._cache import BoundedCache
    monkeypatch.setattr(tritonlayers._gemm, "_PLANS", BoundedCache())  # plans made under these tiles stay here
    monkeypatch.setattr(tritonlayers._gemm, "INTERPRETER_CONFIG",
                        {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16, "GROUP_M": 2, "PERSISTENT": True})
    x = make_input((131, 40), torch.float32, low=-1, high=1, requires_grad=True)
    weight = make_input((61, 40), torch.float32, low=-1, high=1, requires_grad=True)
    bias = make_input((61,), torch.float32, requires_grad=True)
    _compare(lambda: TF.linear(x, weight, bias, activation="relu"), lambda x, w, b: F.relu(F.linear(x, w, b)),
             [x, weight, bias], torch.float32, 40)
    image = make_input((2, 24, 7, 9), torch.float32, layout, low=-1, high=1, requires_grad=True)
    kernel = make_input((35, 24, 1, 1), torch.float32, low=-1, high=1, requires_grad=True)
    _compare(lambda: TF.conv2d(image, kernel), F.conv2d, [image, kernel], torch.float32, 2 * 7 * 9)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float64], ids=str)
def test_partial_softmax_tunes_over_its_thin_tiles(dtype, monkeypatch):
    """The head's GEMM tunes over 128-column tiles only (a stats slot each), thin rows included for the
    ImageNet head's 256 rows; fp64 keeps tiles whose shared memory fits (32-deep K steps, 2048 values)."""
    from tritonlayers.kernels import gemm as gemm_kernels
    monkeypatch.setattr(gemm_kernels, "PRUNE_BY_SHAPE", True)
    a = torch.empty(256, 2048, dtype=dtype)
    kept = gemm_kernels.prune_configs(gemm_kernels.CONFIGS, {"a_ptr": a, "M": 256, "N": 1000},
                                      SOFTMAX=gemm_kernels.PARTIAL_SOFTMAX.value, INPUT_PRECISION="ieee")
    tiles = {(c.kwargs["BLOCK_M"], c.kwargs["BLOCK_K"]) for c in kept}
    assert {c.kwargs["BLOCK_N"] for c in kept} == {gemm_kernels.STATS_COLUMNS}
    if dtype == torch.bfloat16:
        assert {(32, 64), (16, 64)} <= tiles
    else:
        assert (16, 32) in tiles
    if dtype == torch.float64:
        assert tiles == {(16, 32)}


@pytest.mark.parametrize("rows,columns,depth,dtype,extra", [
    (100352, 64, 256, torch.bfloat16, "skinny"),  # ResNet-50's stage-1 reduce: 32x56x56 pixels, 64 channels
    (100352, 256, 64, torch.bfloat16, "short"),  # its stage-1 expand from 64 channels (and the reduce's dx)
    (100352, 256, 128, torch.float16, "short"),  # two 64-deep steps
    (100352, 65, 256, torch.bfloat16, None), (1000, 64, 256, torch.bfloat16, None),
    (100352, 64, 256, torch.float32, None),  # exact fp32: no tensor-core tiles this big
    (100352, 256, 129, torch.bfloat16, None), (4096, 512, 64, torch.bfloat16, None),  # K past 2 steps; small C
    (100352, 256, 64, torch.float32, None)])
def test_tall_and_short_gemms_also_tune_over_their_tiles(rows, columns, depth, dtype, extra, monkeypatch):
    """Tall 16-bit GEMMs of at most 64 columns add tall tiles (SKINNY_CONFIGS); large ones whose K takes one or
    two steps add two-stage tiles (SHORT_K_CONFIGS); the rest tune over the usual configs only."""
    from tritonlayers.kernels import gemm as gemm_kernels
    monkeypatch.setattr(gemm_kernels, "PRUNE_BY_SHAPE", True)
    kept = gemm_kernels.prune_configs(gemm_kernels.CONFIGS, {"a_ptr": torch.empty(1, dtype=dtype), "M": rows,
                                                             "N": columns, "K": depth}, INPUT_PRECISION="ieee")
    for name, extras in (("skinny", gemm_kernels.SKINNY_CONFIGS), ("short", gemm_kernels.SHORT_K_CONFIGS)):
        assert all(config in kept for config in extras) == (extra == name), name
        assert any(config in kept for config in extras) == (extra == name), name


@pytest.mark.parametrize("activation", [None, "relu", "gelu", "sigmoid", "softmax", "log_softmax",
                                        torch.nn.LeakyReLU(0.2)], ids=str)
@pytest.mark.parametrize("out_features", [45, 1030], ids=["fused-epilogue", "tiles-then-normalize"])
def test_linear_fused_activations_and_heads(activation, out_features):
    # 1030 features do not fit the softmax epilogue's tile: logits and per-tile statistics, then normalized
    x = make_input((6, 40), torch.float32, low=-1, high=1, requires_grad=True)
    weight = make_input((out_features, 40), torch.float32, low=-0.3, high=0.3, requires_grad=True)
    bias = make_input((out_features,), torch.float32, requires_grad=True)
    _compare(lambda: TF.linear(x, weight, bias, activation=activation),
             lambda x, w, b: _head(F.linear(x, w, b), activation), [x, weight, bias], torch.float32, 40)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("head", ["softmax", "log_softmax"])
@pytest.mark.parametrize("rows,features,why", [((3, 4), 300, "long-rows"), ((5,), 45, "few-row-tiles")],
                         ids=["3-column-tiles", "few-row-tiles"])
def test_linear_head_across_tiles(rows, features, why, head, dtype, monkeypatch):
    """The online softmax across column tiles (rows too long for one tile, made so here for 300 features: 3
    stats slots, the last one partial; or, on a GPU with many SMs, rows too few for the one-tile epilogue),
    values and gradients, with a leading-dims M axis. A bias of -inf over the whole first slot makes it
    contribute nothing (its max is -inf) and a NaN input makes its row NaN, as in torch."""
    import tritonlayers.linear
    if why == "long-rows":
        monkeypatch.setattr(tritonlayers.linear, "softmax_epilogue_config", lambda features: None)
    else:
        monkeypatch.setattr(tritonlayers.linear, "sm_count", lambda device: 132)
    x = make_input((*rows, 24), dtype, low=-1, high=1, requires_grad=True)
    weight = make_input((features, 24), dtype, low=-1, high=1, requires_grad=True)
    bias = make_input((features,), dtype, requires_grad=True)
    _compare(lambda: TF.linear(x, weight, bias, activation=head),
             lambda x, w, b: _head(F.linear(x, w, b), head), [x, weight, bias], dtype, 24)
    with torch.no_grad():
        masked_bias = bias.clone()
        masked_bias[:min(features, 128)] = float("-inf")
        masked_bias[-1] = float("-inf")
        nan_x = x.clone()
        nan_x.view(-1, 24)[1, 3] = float("nan")
    y = TF.linear(nan_x, weight, masked_bias, activation=head)
    expected = _head(F.linear(nan_x.double(), weight.double(), masked_bias.double()), head)
    assert bool(torch.isnan(y.view(-1, features)[1]).all())
    assert_close(y, expected, dtype, scale_atol=24)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("head", ["softmax", "log_softmax"])
@pytest.mark.parametrize("features,bias_layout", [(45, "contiguous"), (45, "strided"), (130, None)],
                         ids=["45-features", "45-strided-bias", "130-no-bias"])
def test_linear_head_split_k(features, bias_layout, head, dtype, monkeypatch):
    """A head with fewer output tiles than SMs splits K (here 40 into 5 chunks of 8, on a pretend 132-SM GPU):
    partial logits from a batch of GEMMs, summed with the bias and normalized by one pass; values and
    gradients, leading dims, a -inf bias column and a NaN input row as in torch."""
    import tritonlayers._gemm
    import tritonlayers.linear
    for module in (tritonlayers.linear, tritonlayers._gemm):
        monkeypatch.setattr(module, "sm_count", lambda device: 132)
    monkeypatch.setattr(tritonlayers.linear, "HEAD_SPLIT_DEPTH", 8)
    assert tritonlayers.linear.head_splits(6, features, 40, DEVICE) == 5
    calls = []
    finish = tritonlayers.linear.softmax_from_split_k
    monkeypatch.setattr(tritonlayers.linear, "softmax_from_split_k",
                        lambda partials, *args, **kwargs: calls.append(partials.shape) or finish(partials, *args,
                                                                                                   **kwargs))
    x = make_input((2, 3, 40), dtype, low=-1, high=1, requires_grad=True)
    weight = make_input((features, 40), dtype, low=-1, high=1, requires_grad=True)
    with_bias = bias_layout is not None
    bias = make_input((features,), dtype, bias_layout, requires_grad=True) if with_bias else None
    leaves = [x, weight] + ([bias] if with_bias else [])
    _compare(lambda: TF.linear(x, weight, bias, activation=head),
             lambda x, w, b=None: _head(F.linear(x, w, b), head), leaves, dtype, 40)
    assert calls == [(5, 2, 3, features)]
    with torch.no_grad():
        nan_x = x.clone()
        nan_x[0, 1, 3] = float("nan")
        masked_bias = torch.zeros(features, dtype=dtype, device=DEVICE)
        masked_bias[0] = float("-inf")
    y = TF.linear(nan_x, weight, masked_bias, activation=head)
    expected = _head(F.linear(nan_x.double(), weight.double(), masked_bias.double()), head)
    assert bool(torch.isnan(y[0, 1]).all())
    assert_close(y, expected, dtype, scale_atol=40)


@pytest.mark.parametrize("shape", [(0, 40), (2, 0, 40), (3, 0)], ids=["no-rows", "empty-leading-dim", "no-inputs"])
@pytest.mark.parametrize("sms", [4, 132])
def test_linear_head_on_empty_inputs(shape, sms, monkeypatch):
    """Heads over no rows, or over no input features (the bias alone, here zeros: a uniform softmax), as torch;
    on a pretend 132-SM GPU as well (where the head split would divide by the tiles of no rows)."""
    import tritonlayers._gemm
    import tritonlayers.linear
    for module in (tritonlayers.linear, tritonlayers._gemm):
        monkeypatch.setattr(module, "sm_count", lambda device: sms)
    x = make_input(shape, torch.float32, requires_grad=True)
    weight = make_input((45, shape[-1]), torch.float32, requires_grad=True)
    for head in ("softmax", "log_softmax"):
        y = TF.linear(x, weight, activation=head)
        assert_close(y, _head(F.linear(x.double(), weight.double()), head), torch.float32)
        grad_x, grad_weight = torch.autograd.grad(y.sum(), (x, weight))
        assert grad_x.shape == x.shape and grad_weight.shape == weight.shape


def test_linear_head_normalize_walks_slots_and_columns_in_chunks(monkeypatch):
    """The normalization pass with tiny tiles: the row's 9 stats slots in 3 chunks (the online combine across
    chunks) and its 1030 logits in chunks of 4."""
    import functools

    import tritonlayers.softmax
    monkeypatch.setattr(tritonlayers.softmax, "normalize_launch_config",
                        functools.partial(tritonlayers.softmax.normalize_launch_config, tile=4))
    assert tritonlayers.softmax.normalize_launch_config(2, 1030, 9) == (1, 4, 4, 1)
    x = make_input((2, 8), torch.float32, low=-1, high=1, requires_grad=True)
    weight = make_input((1030, 8), torch.float32, low=-1, high=1, requires_grad=True)
    _compare(lambda: TF.linear(x, weight, activation="softmax"), lambda x, w: F.softmax(F.linear(x, w), -1),
             [x, weight], torch.float32, 8)


def test_linear_without_bias_and_frozen_weight():
    x = make_input((4, 9), torch.float32, requires_grad=True)
    weight = make_input((5, 9), torch.float32)
    y = TF.linear(x, weight, activation="tanh")
    (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
    x64 = x.detach().double().requires_grad_()
    (expected,) = torch.autograd.grad(torch.tanh(F.linear(x64, weight.double())).sum(), x64)
    assert_close(grad, expected, scale_atol=9)


@pytest.mark.parametrize("op", ["linear", "conv2d", "conv_transpose2d"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_bias_gradient_with_a_frozen_weight(op, activation):
    # without a weight gradient there is no weight GEMM to sum the bias gradient: it is reduced directly
    if op == "linear":
        x, weight = make_input((5, 7), torch.float32), make_input((6, 7), torch.float32)
        call = lambda module, x, w, b: module.linear(x, w, b)  # noqa: E731
    elif op == "conv2d":
        x, weight = make_input((2, 7, 3, 3), torch.float32), make_input((6, 7, 1, 1), torch.float32)
        call = lambda module, x, w, b: module.conv2d(x, w, b)  # noqa: E731
    else:
        x, weight = make_input((2, 7, 3, 3), torch.float32), make_input((7, 6, 2, 2), torch.float32)
        call = lambda module, x, w, b: module.conv_transpose2d(x, w, b, 2)  # noqa: E731
    bias = make_input((6,), torch.float32, requires_grad=True)
    y = {"linear": TF.linear, "conv2d": TF.conv2d, "conv_transpose2d": TF.conv_transpose2d}[op]
    ours = y(x, weight, bias, activation=activation) if op != "conv_transpose2d" else y(
        x, weight, bias, 2, activation=activation)
    (grad,) = torch.autograd.grad(ours.sum(), bias)
    bias64 = bias.detach().double().requires_grad_()
    (expected,) = torch.autograd.grad(activate(call(F, x.double(), weight.double(), bias64), activation).sum(), bias64)
    assert_close(grad, expected, scale_atol=50)


@pytest.mark.parametrize("activation,saved", [(None, None), ("relu", "output"), ("gelu", "pre")])
def test_linear_saves_output_or_pre_activation(activation, saved):
    x = make_input((4, 9), torch.float32, requires_grad=True)
    weight = make_input((5, 9), torch.float32, requires_grad=True)
    y = TF.linear(x, weight, activation=activation)
    _, _, extra = y.grad_fn.saved_tensors
    if saved is None:
        assert extra is None
    elif saved == "output":
        assert torch.equal(extra, y)
    else:
        assert_close(extra, F.linear(x, weight), scale_atol=9)


SPLIT_K_CASES = [  # (layer, input shape, layout, stride, groups, activation): why each is here
    ("linear", (4, 9, 30), "contiguous", 1, 1, "relu"),  # K = 36 rows in one dim; the relu prologue
    ("conv2d", (4, 6, 5, 7), "contiguous", 1, 1, None),  # NCHW: K = (n, pixel), split along n
    ("conv2d", (4, 6, 7, 9), "channels_last", 2, 1, "gelu"),  # strided NHWC pixels, gelu prologue
    ("conv2d", (4, 6, 5, 7), "contiguous", 1, 3, None),  # grouped: split batches beside the group batches
    ("conv_transpose2d", (4, 6, 3, 5), "contiguous", 2, 1, "relu"),  # batches of (group, tap): partials summed
    # by torch into the strided taps (the other cases by sum_partials_kernel)
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("layer,shape,layout,stride,groups,activation", SPLIT_K_CASES,
                         ids=[f"{c[0]}-{c[2]}-s{c[3]}-g{c[4]}" for c in SPLIT_K_CASES])
def test_split_k_weight_gradients(layer, shape, layout, stride, groups, activation, dtype, monkeypatch):
    """Weight gradients reduce over every pixel into a small C: K is split into chunks summed afterwards.
    Forced here on small shapes (chunks of 4); the spy proves the split ran."""
    import tritonlayers._gemm as gemm_host
    from tritonlayers._cache import BoundedCache
    monkeypatch.setattr(gemm_host, "_PLANS", BoundedCache())  # plans made under these settings stay here
    monkeypatch.setattr(gemm_host, "SPLIT_K_MIN_DEPTH", 4)
    splits, summed_by_kernel = [], []
    factor = gemm_host.split_k_factor
    monkeypatch.setattr(gemm_host, "split_k_factor", lambda *args: splits.append(factor(*args)) or splits[-1])
    launch_sum = gemm_host.sum_partials
    monkeypatch.setattr(gemm_host, "sum_partials", lambda *args: summed_by_kernel.append(True) or launch_sum(*args))
    x = make_input(shape, dtype, layout, low=-1, high=1, requires_grad=True)
    if layer == "linear":
        weight = make_input((7, shape[-1]), dtype, low=-1, high=1, requires_grad=True)
        bias = make_input((7,), dtype, requires_grad=True)
        ours = lambda: TF.linear(x, weight, bias, activation=activation)  # noqa: E731
        reference = lambda x, w, b: activate(F.linear(x, w, b), activation)  # noqa: E731
        reduced = x.numel() // shape[-1]
    elif layer == "conv_transpose2d":
        weight = make_input((shape[1], 5, stride, stride), dtype, low=-1, high=1, requires_grad=True)
        bias = make_input((5,), dtype, requires_grad=True)
        ours = lambda: TF.conv_transpose2d(x, weight, bias, stride, activation=activation)  # noqa: E731
        reference = lambda x, w, b: activate(F.conv_transpose2d(x, w, b, stride), activation)  # noqa: E731
        reduced = x.numel() // shape[1]
    else:
        weight = make_input((9, shape[1] // groups, 1, 1), dtype, low=-1, high=1, requires_grad=True)
        bias = make_input((9,), dtype, requires_grad=True)
        ours = lambda: TF.conv2d(x, weight, bias, stride, groups=groups, activation=activation)  # noqa: E731
        reference = lambda x, w, b: activate(F.conv2d(x, w, b, stride, groups=groups), activation)  # noqa: E731
        reduced = x.numel() // shape[1]
    _compare(ours, reference, [x, weight, bias], dtype, reduced)
    assert max(splits) > 1, splits
    assert bool(summed_by_kernel) == (layer != "conv_transpose2d")


@pytest.mark.parametrize("splits", [1, 300])
def test_sum_partials_over_many_splits_into_strided_batches(splits):
    """sum_partials_kernel against torch: 300 splits take several steps of its loop; out rows (outer, inner)
    land at strided places (a batch of 3 x 5 rows of 7 columns inside a bigger buffer), the rest untouched."""
    import tritonlayers._gemm as gemm_host
    partials = make_input((splits, 15, 7), torch.float32, low=-1, high=1)
    buffer = torch.full((3, 9, 8), 7.0, device=DEVICE)
    gemm_host.sum_partials(partials, buffer[:, 2:7, :7], 15, 7, 5, 72, 8, 1)  # strides of that view
    expected = torch.full((3, 9, 8), 7.0, device=DEVICE)
    expected[:, 2:7, :7] = partials.double().sum(0).view(3, 5, 7).float()
    assert_close(buffer, expected, atol=1e-5, rtol=1e-5)


# (input shape, out channels, stride, groups, layout): why each is here
CONV_CASES = [
    ((2, 6, 7, 9), 10, 1, 1, "contiguous"),  # NCHW, 63-pixel maps: read once into channels_last
    ((2, 6, 4, 6), 10, 1, 1, "contiguous"),  # NCHW as (n, pixel) columns (24-pixel maps)
    ((2, 8, 6, 2), 12, 1, 1, "contiguous"),  # NCHW 12-pixel maps: read into channels_last, stored 4 at a time
    ((2, 6, 7, 9), 10, 1, 1, "channels_last"),  # NHWC: one plain GEMM, output stays channels_last
    ((2, 6, 7, 9), 10, 2, 1, "contiguous"),  # strided 1x1 (ResNet downsample): stride in the load
    ((2, 6, 7, 9), 10, (1, 3), 1, "channels_last"),  # different strides per dim
    ((2, 6, 7, 9), 9, 1, 3, "contiguous"),  # grouped
    ((2, 6, 5, 5), 12, 2, 6, "channels_last"),  # depthwise with a channel multiplier, strided
    ((6, 5, 7), 4, 1, 1, "contiguous"),  # unbatched (C, H, W)
    ((1, 33, 1, 1), 40, 1, 1, "contiguous"),  # a single pixel, K past one tile
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape,out_channels,stride,groups,layout", CONV_CASES,
                         ids=[f"{c[0]}-{c[1]}-s{c[2]}-g{c[3]}-{c[4]}" for c in CONV_CASES])
def test_conv2d_1x1_matches_torch(shape, out_channels, stride, groups, layout, dtype):
    x = make_input(shape, dtype, layout, low=-1, high=1, requires_grad=True)
    weight = make_input((out_channels, shape[-3] // groups, 1, 1), dtype, low=-1, high=1, requires_grad=True)
    bias = make_input((out_channels,), dtype, requires_grad=True)
    y = _compare(lambda: TF.conv2d(x, weight, bias, stride, groups=groups),
                 lambda x, w, b: F.conv2d(x, w, b, stride, groups=groups), [x, weight, bias], dtype,
                 x.numel() // shape[-3])
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("kind", ["conv2d", "conv_transpose2d"])
def test_layout_follows_torch(kind):
    """The output and the input gradient are channels_last when the input's or the weight's strides are (torch's
    rule: a channels_last network fed an NCHW batch), and strided channels_last inputs count too."""
    def layout(t):
        return t.is_contiguous(), t.is_contiguous(memory_format=torch.channels_last)

    for input_format in ("contiguous", "channels_last", "sliced channels_last"):
        for weight_format in (torch.contiguous_format, torch.channels_last):
            sliced = input_format == "sliced channels_last"
            x = make_input((2, 12 if sliced else 6, 5, 6), torch.float32, "channels_last" if "channels_last" in
                           input_format else "contiguous", low=-1, high=1)
            if sliced:
                x = x[:, ::2]
            x.requires_grad_()
            shape = (4, 6, 1, 1) if kind == "conv2d" else (6, 4, 2, 2)
            weight = make_input(shape, torch.float32, low=-1, high=1).contiguous(memory_format=weight_format)
            ours, theirs = getattr(TF, kind), getattr(F, kind)
            stride = 1 if kind == "conv2d" else 2
            y, expected = ours(x, weight, stride=stride), theirs(x, weight, stride=stride)
            assert_close(y, expected)
            assert layout(y) == layout(expected), (input_format, weight_format)
            grad, expected_grad = (torch.autograd.grad(out, x, torch.ones_like(out))[0] for out in (y, expected))
            assert layout(grad) == layout(expected_grad), (input_format, weight_format)


def test_nchw_small_maps_run_in_channels_last(monkeypatch):
    """7x7-like NCHW maps go to the GEMMs as channels_last: the forward's input, and in backward the gradient,
    the saved output the activation's derivative reads, and the input; the GEMMs write the output and the
    input gradient in channels_last too, copied out to NCHW. 8-pixel multiples stay as they are."""
    import tritonlayers.conv
    formats, copied = [], []
    operand, copy_into = tritonlayers.conv.channels_last_operand, tritonlayers.conv.copy_into
    monkeypatch.setattr(tritonlayers.conv, "channels_last_operand",
                        lambda x: formats.append(operand(x).is_contiguous(memory_format=torch.channels_last)) or
                        operand(x))
    monkeypatch.setattr(tritonlayers.conv, "copy_into", lambda dst, src: copied.append(
        (dst.is_contiguous(), src.is_contiguous(memory_format=torch.channels_last))) or copy_into(dst, src))
    weight = make_input((5, 6, 1, 1), torch.float32, requires_grad=True)
    bias = make_input((5,), torch.float32, requires_grad=True)
    for shape in [(2, 6, 7, 7), (2, 6, 4, 4)]:
        formats.clear()
        copied.clear()
        x = make_input(shape, torch.float32, requires_grad=True)
        _compare(lambda: TF.conv2d(x, weight, bias, activation="relu"),
                 lambda x, w, b: F.relu(F.conv2d(x, w, b)), [x, weight, bias], torch.float32,
                 shape[0] * shape[2] * shape[3])
        assert TF.conv2d(x, weight).is_contiguous()
        assert formats == [shape[2] == 7] * len(formats) and len(formats) >= 5, formats
        # the output and the input gradient in _compare, the last forward's output: NCHW from channels_last
        assert copied == ([(True, True)] * 3 if shape[2] == 7 else []), copied


@pytest.mark.parametrize("shape,stride,constant_sizes,constant_axes", [
    ((2, 6, 4, 6), 1, {"N": (1, 24)}, 3),  # NCHW pixels (n, hw), 24 per image: forward N, backward's M and K
    ((2, 6, 7, 9), 1, {}, 0),  # NCHW 63-pixel maps: every GEMM runs in channels_last (one-level pixel axes)
    ((2, 6, 8, 8), 2, {"N": (4, 4)}, 3),  # strided: (n, h, w) in three levels, forward; backward's M and K too
    ((2, 6, 4, 8), 1, {}, 0),  # 32 pixels a map: runtime sizes (Triton knows they divide by 16)
], ids=["24-pixel-maps", "63-pixel-maps", "strided-4x4-of-8x8", "32-pixel-maps"])
def test_gemm_gets_sizes_not_multiple_of_16_as_constants(shape, stride, constant_sizes, constant_axes, monkeypatch):
    """Multi-level GEMM axes whose inner sizes are not multiples of 16 pass them to the kernel as constants
    (M_SIZE1 / M_SIZE2, ...), the rest as runtime ints; values and gradients match either way."""
    import tritonlayers._gemm
    from tritonlayers._cache import BoundedCache
    monkeypatch.setattr(tritonlayers._gemm, "_PLANS", BoundedCache())
    x = make_input(shape, torch.float32, low=-1, high=1, requires_grad=True)
    weight = make_input((5, 6, 1, 1), torch.float32, low=-1, high=1, requires_grad=True)
    bias = make_input((5,), torch.float32, requires_grad=True)
    _compare(lambda: TF.conv2d(x, weight, bias, stride, activation="gelu"),
             lambda x, w, b: activate(F.conv2d(x, w, b, stride), "gelu"), [x, weight, bias], torch.float32,
             x.numel() // 6)
    plans = list(tritonlayers._gemm._PLANS.values())
    assert len(plans) == 3  # forward, grad input, grad weight
    forward = plans[0].constexprs
    for name in "MNK":
        expected = constant_sizes.get(name)
        assert (forward.get(f"{name}_SIZE1"), forward.get(f"{name}_SIZE2")) == (expected or (None, None))
    found = sum(f"{name}_SIZE2" in plan.constexprs for plan in plans for name in "MNK")
    assert found == constant_axes, found


INT64_SHAPES = {"linear": (3, 40), "linear-log-softmax": (3, 40), "conv2d-stride-2": (3, 40, 5, 7),
                "conv_transpose2d": (3, 40, 2, 3)}  # the layers' GEMMs and a head


def _int64_case(layer, x):
    """(our call, the reference on fp64 leaves, leaves) for layer on input x (40 channels or features)."""
    weight = make_input((40, 12), x.dtype, low=-1, high=1, requires_grad=True)
    bias = make_input((12,), x.dtype, requires_grad=True)
    calls = {
        "linear": lambda f, x, w, b: f.linear(x, w.t(), b),
        "linear-log-softmax": lambda f, x, w, b: F.log_softmax(F.linear(x, w.t(), b), -1) if f is F else
        f.linear(x, w.t(), b, activation="log_softmax"),
        "conv2d-stride-2": lambda f, x, w, b: f.conv2d(x, w.t()[:, :, None, None], b, stride=2),
        "conv_transpose2d": lambda f, x, w, b: f.conv_transpose2d(x, w.reshape(40, 3, 2, 2), b[:3], stride=2)}
    call = calls[layer]
    return lambda: call(TF, x, weight, bias), lambda *leaves: call(F, *leaves), [x, weight, bias]


@pytest.mark.parametrize("layer", list(INT64_SHAPES))
def test_int64_index_path(layer, wide_index, monkeypatch):
    """With WIDE_INDEX forced, every GEMM of the layer (forward, both gradients) indexes in int64 and agrees."""
    import tritonlayers._gemm
    from tritonlayers._cache import BoundedCache
    monkeypatch.setattr(tritonlayers._gemm, "_PLANS", BoundedCache())
    x = make_input(INT64_SHAPES[layer], torch.float32, low=-1, high=1, requires_grad=True)
    ours, reference, leaves = _int64_case(layer, x)
    _compare(ours, reference, leaves, torch.float32, 80)
    plans = list(tritonlayers._gemm._PLANS.values())
    assert plans and all(plan.constexprs["WIDE_INDEX"] for plan in plans)


@pytest.mark.usefixtures("releases_gpu_memory")
@pytest.mark.parametrize("layer", list(INT64_SHAPES))
def test_offsets_past_int32(layer):
    """An input whose first dim steps 2**30 + 64 elements: its offsets pass int32, which the GEMMs must index
    in int64 (with int32 products of index and stride they read outside the tensor: a segfault through
    the interpreter, before the GEMMs learned WIDE_INDEX)."""
    x = far_apart(INT64_SHAPES[layer], torch.float16, requires_grad=True)
    ours, reference, leaves = _int64_case(layer, x)
    _compare(ours, reference, leaves, torch.float16, 80)


@pytest.mark.parametrize("features,align", [(20, 4), (24, 8), (32, 0), (7, 0)],
                         ids=["20-features", "24-features", "32-features", "7-features"])
def test_gemm_declares_alignment_triton_cannot_see(features, align, monkeypatch):
    """Sizes and row strides that are multiples of 2, 4 or 8 but not of 16 (a 1000-class head) reach every
    GEMM of the layer as ALIGN, which keeps its loads and stores 16 bytes wide on a GPU (a wrong one would
    drop rows and columns: the values say so); all multiples of 16, or odd sizes, pass none."""
    import tritonlayers._gemm
    from tritonlayers._cache import BoundedCache
    monkeypatch.setattr(tritonlayers._gemm, "_PLANS", BoundedCache())
    x = make_input((16, 48), torch.float32, low=-1, high=1, requires_grad=True)
    weight = make_input((features, 48), torch.float32, low=-1, high=1, requires_grad=True)
    bias = make_input((features,), torch.float32, requires_grad=True)
    _compare(lambda: TF.linear(x, weight, bias, activation="log_softmax"),
             lambda x, w, b: F.log_softmax(F.linear(x, w, b), -1), [x, weight, bias], torch.float32, 48)
    plans = list(tritonlayers._gemm._PLANS.values())
    assert len(plans) == 3  # forward, grad input, grad weight
    assert [plan.constexprs.get("ALIGN", 0) for plan in plans] == [align] * 3


@pytest.mark.parametrize("activation", ["relu", "gelu", "hardswish", torch.nn.ReLU6()], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_conv2d_fused_activation(activation, layout):
    x = make_input((2, 6, 5, 7), torch.float32, layout, low=-1, high=1, requires_grad=True)
    weight = make_input((8, 3, 1, 1), torch.float32, low=-1, high=1, requires_grad=True)
    bias = make_input((8,), torch.float32, requires_grad=True)
    _compare(lambda: TF.conv2d(x, weight, bias, 2, groups=2, activation=activation),
             lambda x, w, b: activate(F.conv2d(x, w, b, 2, groups=2), activation), [x, weight, bias],
             torch.float32, 70)


# (input shape, kernel == stride, out channels per group, groups, layout)
TRANSPOSE_CASES = [
    ((2, 6, 5, 4), (2, 2), 4, 1, "contiguous"),  # 2x upsampling (U-Net decoders)
    ((2, 6, 5, 4), (2, 3), 4, 1, "channels_last"),  # non-square taps, NHWC
    ((2, 6, 3, 4), (3, 3), 2, 3, "contiguous"),  # grouped
    ((2, 6, 5, 4), (1, 1), 5, 1, "strided"),  # 1x1 stride 1: a plain channel mix
    ((6, 5, 4), (2, 2), 3, 1, "contiguous"),  # unbatched
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape,kernel,out_group,groups,layout", TRANSPOSE_CASES,
                         ids=[f"{c[0]}-k{c[1]}-o{c[2]}-g{c[3]}-{c[4]}" for c in TRANSPOSE_CASES])
def test_conv_transpose2d_matches_torch(shape, kernel, out_group, groups, layout, dtype):
    x = make_input(shape, dtype, layout, low=-1, high=1, requires_grad=True)
    weight = make_input((shape[-3], out_group, *kernel), dtype, low=-1, high=1, requires_grad=True)
    bias = make_input((out_group * groups,), dtype, requires_grad=True)
    y = _compare(lambda: TF.conv_transpose2d(x, weight, bias, kernel, groups=groups, activation=None),
                 lambda x, w, b: F.conv_transpose2d(x, w, b, kernel, groups=groups), [x, weight, bias], dtype,
                 x.numel() // shape[-3])
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)


def test_conv_transpose2d_fused_activation():
    x = make_input((2, 4, 3, 5), torch.float32, "channels_last", low=-1, high=1, requires_grad=True)
    weight = make_input((4, 3, 2, 2), torch.float32, low=-1, high=1, requires_grad=True)
    bias = make_input((3,), torch.float32, requires_grad=True)
    _compare(lambda: TF.conv_transpose2d(x, weight, bias, 2, activation="silu"),
             lambda x, w, b: F.silu(F.conv_transpose2d(x, w, b, 2)), [x, weight, bias], torch.float32, 30)


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d", "linear", "linear-head-across-tiles"])
def test_gradcheck_fp64(op, monkeypatch):
    bias = make_input((4,), torch.float64, requires_grad=True)
    if op == "conv2d":
        x, weight = make_input((1, 4, 3, 2), torch.float64), make_input((4, 2, 1, 1), torch.float64)
        fn = lambda x, w, b: TF.conv2d(x, w, b, 2, groups=2, activation="gelu")  # noqa: E731
    elif op == "conv_transpose2d":
        x, weight = make_input((1, 4, 2, 1), torch.float64), make_input((4, 1, 2, 2), torch.float64)
        bias = make_input((2,), torch.float64, requires_grad=True)
        fn = lambda x, w, b: TF.conv_transpose2d(x, w, b, 2, groups=2, activation="tanh")  # noqa: E731
    elif op == "linear":
        x, weight = make_input((3, 5), torch.float64), make_input((4, 5), torch.float64)
        fn = lambda x, w, b: TF.linear(x, w, b, activation="log_softmax")  # noqa: E731
    else:  # rows of 130 features: two column tiles' statistics, combined
        x, weight = make_input((2, 3), torch.float64), make_input((130, 3), torch.float64)
        bias = make_input((130,), torch.float64, requires_grad=True)
        monkeypatch.setattr(tritonlayers.linear, "softmax_epilogue_config", lambda features: None)
        fn = lambda x, w, b: TF.linear(x, w, b, activation="softmax")  # noqa: E731
    gradcheck(fn, x.requires_grad_(), weight.requires_grad_(), bias, fast_mode=True)


TF32_CASES = {  # layer: (ours, torch's, the torch.backends switch it follows, input shape, weight shape)
    "linear": (TF.linear, F.linear, torch.backends.cuda.matmul, (256, 512), (384, 512)),
    "conv2d": (TF.conv2d, F.conv2d, torch.backends.cudnn, (4, 512, 8, 8), (96, 512, 1, 1)),
}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="TF32 exists on the GPU only")
@pytest.mark.parametrize("allow_tf32", [False, True], ids=["fp32", "tf32"])
@pytest.mark.parametrize("layer", list(TF32_CASES))
def test_tf32_follows_torch_switches(layer, allow_tf32):
    ours, theirs, switch, input_shape, weight_shape = TF32_CASES[layer]
    switch.allow_tf32 = allow_tf32  # the autouse fixture restores it
    x, weight = make_input(input_shape, torch.float32), make_input(weight_shape, torch.float32)
    exact = theirs(x.double(), weight.double())

    def error(y):
        return ((y.double() - exact).abs().max() / exact.abs().max()).item()

    # Two TF32 products round differently, so compare error sizes, not values: TF32's relative error is ~1e-4,
    # fp32's ~1e-7; the same class as torch's error means the same switch was honoured.
    ours_error, torch_error = error(ours(x, weight)), error(theirs(x, weight))
    assert torch_error / 8 < ours_error < torch_error * 8, (ours_error, torch_error)


MODULE_CASES = [
    ("Linear", dict(in_features=9, out_features=7), (5, 9)),
    ("Conv2d", dict(in_channels=6, out_channels=4, kernel_size=1, stride=2, groups=2), (2, 6, 5, 5)),
    ("ConvTranspose2d", dict(in_channels=6, out_channels=4, kernel_size=2, stride=2), (2, 6, 3, 3)),
]


@pytest.mark.parametrize("name,kwargs,shape", MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_modules_match_torch_twins(name, kwargs, shape):
    theirs = getattr(torch.nn, name)(**kwargs).to(DEVICE)
    ours = getattr(tnn, name)(**kwargs).to(DEVICE)
    assert isinstance(ours, type(theirs)) and repr(ours) == repr(theirs)
    ours.load_state_dict(theirs.state_dict())
    x = make_input(shape, torch.float32, requires_grad=True)
    y, expected = ours(x), theirs(x)
    assert_close(y, expected, scale_atol=10)
    grads = torch.autograd.grad(y.sum(), [x, *ours.parameters()])
    expected_grads = torch.autograd.grad(expected.sum(), [x, *theirs.parameters()])
    for grad, expected_grad in zip(grads, expected_grads):
        assert_close(grad, expected_grad, scale_atol=100)


@pytest.mark.parametrize("layer", ["linear", "linear_softmax", "conv2d", "conv_transpose2d"])
def test_strided_bias(layer):
    """A bias that is a strided view (every other element of a buffer, or one value expanded): the GEMMs walk
    the bias with unit strides, so it is read as a dense copy (the strided one gave other features' values)."""
    dtype = torch.float64
    for bias_values in (make_input((12,), dtype, "strided"), make_input((1,), dtype).expand(12)):
        bias = bias_values.detach().requires_grad_()
        if layer.startswith("linear"):
            x = make_input((5, 7), dtype, requires_grad=True)
            weight = make_input((12, 7), dtype, requires_grad=True)
            activation = "softmax" if layer == "linear_softmax" else None
            _compare(lambda: TF.linear(x, weight, bias, activation=activation),
                     lambda x, w, b: _head(F.linear(x, w, b), activation), [x, weight, bias], dtype, 7)
        elif layer == "conv2d":
            x = make_input((2, 6, 3, 4), dtype, requires_grad=True)
            weight = make_input((12, 3, 1, 1), dtype, requires_grad=True)
            _compare(lambda: TF.conv2d(x, weight, bias, groups=2), lambda x, w, b: F.conv2d(x, w, b, groups=2),
                     [x, weight, bias], dtype, 12)
        else:
            x = make_input((2, 6, 3, 4), dtype, requires_grad=True)
            weight = make_input((6, 6, 2, 2), dtype, requires_grad=True)
            _compare(lambda: TF.conv_transpose2d(x, weight, bias, 2, groups=2),
                     lambda x, w, b: F.conv_transpose2d(x, w, b, 2, groups=2), [x, weight, bias], dtype, 12)


def test_module_activation_and_refusals():
    assert "activation='softmax'" in repr(tnn.Linear(3, 4, activation="softmax"))
    assert tnn.Conv2d(3, 4, 1, activation="relu").state_dict().keys() == torch.nn.Conv2d(3, 4, 1).state_dict().keys()
    with pytest.raises(NotImplementedError, match="kernel_size=\\(3, 3\\) is not supported"):
        tnn.Conv2d(3, 4, 3)
    with pytest.raises(NotImplementedError, match="padding=\\(1, 1\\)"):
        tnn.Conv2d(3, 4, 1, padding=1)
    with pytest.raises(NotImplementedError, match="stride=\\(1, 1\\)"):
        tnn.ConvTranspose2d(3, 4, 2)
    module = tnn.ConvTranspose2d(3, 4, 2, 2).to(DEVICE)
    x = torch.randn(1, 3, 4, 4, device=DEVICE)
    assert module(x, output_size=[8, 8]).shape == (1, 4, 8, 8)
    with pytest.raises(NotImplementedError, match="output_size"):
        module(x, output_size=[9, 9])


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("kind", ["conv", "transpose", "linear"])
def test_fold_batchnorm(kind, dtype, atol):
    if kind == "conv":
        layer, bn, shape = tnn.Conv2d(6, 8, 1, bias=False), torch.nn.BatchNorm2d(8), (2, 6, 4, 5)
    elif kind == "transpose":
        layer, bn, shape = tnn.ConvTranspose2d(6, 4, 2, 2, groups=2), torch.nn.BatchNorm2d(4), (2, 6, 3, 3)
    else:
        layer, bn, shape = torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5), (7, 6)
    layer, bn = layer.to(DEVICE, dtype).eval(), bn.to(DEVICE, dtype).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    folded = tritonlayers.fold_batchnorm(layer, bn)
    assert type(folded) is type(layer) and folded is not layer
    x = make_input(shape, dtype)
    with torch.no_grad():
        assert_close(folded(x), bn(layer(x)), atol=atol, rtol=atol)


def test_fold_batchnorm_refuses_what_it_cannot_fold():
    with pytest.raises(ValueError, match="no running statistics"):
        tritonlayers.fold_batchnorm(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4, track_running_stats=False))
    with pytest.raises(ValueError, match="applies an activation"):
        tritonlayers.fold_batchnorm(tnn.Linear(3, 4, activation="relu"), torch.nn.BatchNorm1d(4))
    with pytest.raises(ValueError, match="4 output channels, 'bn' 5"):
        tritonlayers.fold_batchnorm(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(5))


def test_bad_inputs_raise_like_torch():
    x = torch.randn(1, 5, 4, 4, device=DEVICE)
    cases = [
        (NotImplementedError, "kernel size \\(3, 3\\) is not supported",
         lambda: TF.conv2d(x, torch.randn(4, 5, 3, 3, device=DEVICE))),
        (NotImplementedError, "padding=1 is not supported", lambda: TF.conv2d(x, torch.randn(4, 5, 1, 1, device=DEVICE),
                                                                             padding=1)),
        (RuntimeError, "Given groups=2, weight of size \\[4, 3, 1, 1\\], expected input\\[1, 5, 4, 4\\] to have 6 "
                       "channels, but got 5 channels instead",
         lambda: TF.conv2d(x, torch.randn(4, 3, 1, 1, device=DEVICE), groups=2)),
        (RuntimeError, "expected weight to be divisible by 2 at dimension 0",
         lambda: TF.conv2d(x, torch.randn(3, 5, 1, 1, device=DEVICE), groups=2)),
        (RuntimeError, "expected bias to be 1-dimensional with 4 elements, but got bias of size \\[3\\]",
         lambda: TF.conv2d(x, torch.randn(4, 5, 1, 1, device=DEVICE), torch.randn(3, device=DEVICE))),
        (RuntimeError, "padding='same' is not supported for strided convolutions",
         lambda: TF.conv2d(x, torch.randn(4, 5, 1, 1, device=DEVICE), stride=2, padding="same")),
        (RuntimeError, "same dtype", lambda: TF.conv2d(x, torch.randn(4, 5, 1, 1, device=DEVICE, dtype=torch.float64))),
        (RuntimeError, "non-positive stride is not supported",
         lambda: TF.conv2d(x, torch.randn(4, 5, 1, 1, device=DEVICE), stride=(1, 0))),
        (RuntimeError, "non-positive dilation is not supported",
         lambda: TF.conv2d(x, torch.randn(4, 5, 1, 1, device=DEVICE), dilation=0)),
        (RuntimeError, "negative padding is not supported",
         lambda: TF.conv2d(x, torch.randn(4, 5, 1, 1, device=DEVICE), padding=-1)),
        (RuntimeError, "Invalid padding string: 'full'",
         lambda: TF.conv2d(x, torch.randn(4, 5, 1, 1, device=DEVICE), padding="full")),
        (TypeError, "'stride' must be an int or a pair of ints, got True",
         lambda: TF.conv2d(x, torch.randn(4, 5, 1, 1, device=DEVICE), stride=True)),
        (RuntimeError, "negative output_padding is not supported",
         lambda: TF.conv_transpose2d(x, torch.randn(5, 3, 2, 2, device=DEVICE), stride=2, output_padding=-1)),
        (NotImplementedError, "dilation=\\(2, 2\\) is not supported",
         lambda: TF.conv_transpose2d(x, torch.randn(5, 3, 2, 1, device=DEVICE), stride=(2, 1), dilation=2)),
        (NotImplementedError, "stride=\\(1, 1\\) is not supported",
         lambda: TF.conv_transpose2d(x, torch.randn(5, 3, 2, 2, device=DEVICE))),
        (NotImplementedError, "padding=\\(1, 1\\)",
         lambda: TF.conv_transpose2d(x, torch.randn(5, 3, 2, 2, device=DEVICE), stride=2, padding=1)),
        (RuntimeError, "expected input\\[1, 5, 4, 4\\] to have 4 channels",
         lambda: TF.conv_transpose2d(x, torch.randn(4, 3, 2, 2, device=DEVICE), stride=2)),
        (RuntimeError, "mat1 and mat2 shapes cannot be multiplied \\(2x3 and 5x4\\)",
         lambda: TF.linear(torch.randn(2, 3, device=DEVICE), torch.randn(4, 5, device=DEVICE))),
        (RuntimeError, "same dtype", lambda: TF.linear(torch.randn(2, 3, device=DEVICE),
                                                       torch.randn(4, 3, device=DEVICE, dtype=torch.float64))),
        (ValueError, "'activation' must be one of",
         lambda: TF.linear(torch.randn(2, 3, device=DEVICE), torch.randn(4, 3, device=DEVICE), activation="swish")),
        (NotImplementedError, "'input' has dtype torch.int64",
         lambda: TF.linear(torch.ones(2, 3, dtype=torch.int64, device=DEVICE),
                           torch.ones(4, 3, dtype=torch.int64, device=DEVICE))),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()


def test_geometry_torch_expands_or_ignores():
    """A one-element stride is both dims' (as torch expands it), and a 1-wide kernel dim never dilates, in
    transposed convolutions (functional and module) as in conv2d."""
    x = make_input((2, 6, 3, 5), torch.float64)
    weight = make_input((4, 6, 1, 1), torch.float64)
    assert_close(TF.conv2d(x, weight, stride=(2,)), torch.nn.functional.conv2d(x, weight, stride=(2,)))
    transposed = make_input((6, 2, 2, 1), torch.float64)
    assert_close(TF.conv_transpose2d(x, transposed, stride=(2, 1), dilation=(1, 3)),
                 torch.nn.functional.conv_transpose2d(x, transposed, stride=(2, 1), dilation=(1, 3)))
    ours = tnn.ConvTranspose2d(6, 4, 1, dilation=2).to(DEVICE, torch.float64)
    theirs = torch.nn.ConvTranspose2d(6, 4, 1, dilation=2).to(DEVICE, torch.float64)
    theirs.load_state_dict(ours.state_dict())
    assert_close(ours(x), theirs(x))
