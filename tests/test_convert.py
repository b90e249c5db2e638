"""tritonlayers.convert on small ResNet- and MobileNetV2-style networks: same outputs, gradients and running
statistics as the unconverted model; the swaps, fusions and folds its report lists; hooks, state_dict keys,
modes and dtypes kept; forwards torch.fx cannot trace; inplace; models with nothing to convert.

Shapes are tiny (batch 2, 8x8 images, 3-24 channels): CPU runs go through Triton's interpreter."""
import copy
import io

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import perf.models as perf_models
import tritonlayers
import tritonlayers.nn as tnn
from helpers import DEVICE, assert_close
from tritonlayers._convert_fx import FoldedBatchNorm


class Bottleneck(perf_models.Bottleneck):
    """ResNet's: 1x1 -> BN -> ReLU -> 3x3 -> BN -> ReLU -> 1x1 -> BN, + shortcut, add, ReLU (one shared
    ReLU module, in-place, and torchvision's in-place `out += identity`)."""

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self, num_classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        # a strided block with a 1x1 conv + BN downsample, then one with the identity shortcut
        self.layer1 = nn.Sequential(Bottleneck(8, 4, stride=2), Bottleneck(16, 4, stride=1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def conv_bn_relu6(in_channels, out_channels, kernel_size, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups,
                                   bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2's: 1x1 expand -> BN -> ReLU6 -> depthwise 3x3 -> BN -> ReLU6 -> 1x1 project -> BN, plus the
    input when the shapes match."""

    def __init__(self, in_channels, out_channels, stride, expand_ratio):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        layers = [conv_bn_relu6(in_channels, hidden, 1)] if expand_ratio != 1 else []
        layers.append(conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden))
        self.features = nn.Sequential(*layers)
        self.project = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        out = self.project_bn(self.project(self.features(x)))
        return x + out if self.use_residual else out


class TinyMobileNetV2(nn.Module):
    def __init__(self, num_classes=5, dropout=0.2):
        super().__init__()
        self.features = nn.Sequential(conv_bn_relu6(3, 8, 3, stride=2), InvertedResidual(8, 8, 1, 1),
                                      InvertedResidual(8, 12, 2, 2), InvertedResidual(12, 12, 1, 2),
                                      conv_bn_relu6(12, 16, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(16, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def make_model(name, dtype=torch.float32, training=True):
    """A model with random BatchNorm statistics and affine parameters, so eval mode and folding do something.
    The MobileNet's dropout is 0 in training: tritonlayers' dropout draws other masks than torch's."""
    torch.manual_seed(0)
    model = TinyResNet() if name == "resnet" else TinyMobileNetV2(dropout=0.0 if training else 0.2)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.5, 0.5)
    return model.to(device=DEVICE, dtype=dtype).train(training)


def make_input(dtype=torch.float32):
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=dtype).to(DEVICE)


def buffers_named(model, suffixes=("running_mean", "running_var", "num_batches_tracked")):
    return {name: buffer for name, buffer in model.named_buffers() if name.endswith(suffixes)}


@pytest.fixture(autouse=True)
def exact_fp32_everywhere(exact_fp32):
    """fp32 convolutions without TF32 on both sides: the tolerances below are fp32's."""


# (dtype, atol, rtol): a dozen layers of fp32 BatchNorm / GEMM rounding
TOLERANCES = [(torch.float32, 1e-4, 1e-4), (torch.float64, 1e-10, 1e-9)]


@pytest.mark.parametrize("dtype,atol,rtol", TOLERANCES, ids=["fp32", "fp64"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", ["resnet", "mobilenet"])
def test_outputs_match_the_unconverted_model(name, training, dtype, atol, rtol):
    model = make_model(name, dtype, training)
    converted, _ = tritonlayers.convert(model)
    x = make_input(dtype)
    with torch.no_grad():
        assert_close(converted(x), model(x), atol=atol, rtol=rtol, name=f"{name} output")
    assert next(converted.parameters()).dtype == dtype
    assert [m.training for m in converted.modules()] == [training] * len(list(converted.modules()))


@pytest.mark.parametrize("name", ["resnet", "mobilenet"])
def test_training_step_matches_gradients_and_running_statistics(name):
    model = make_model(name)
    converted, _ = tritonlayers.convert(model)
    x = make_input()
    for network in (model, converted):
        network(x).square().sum().backward()
    reference = dict(model.named_parameters())
    for parameter_name, parameter in converted.named_parameters():
        assert_close(parameter.grad, reference[parameter_name].grad, atol=1e-4, rtol=1e-4,
                     name=f"grad of {parameter_name}")
    reference_buffers = buffers_named(model)
    for buffer_name, buffer in buffers_named(converted).items():
        assert_close(buffer, reference_buffers[buffer_name], torch.float64, atol=1e-5, rtol=1e-5, name=buffer_name)
    assert buffers_named(converted).keys() == reference_buffers.keys()


@pytest.mark.parametrize("name", ["resnet", "mobilenet"])
def test_converted_model_compiles_without_graph_breaks(name):
    """The fx-rewritten blocks and every custom op trace whole: one training step, compiled with fullgraph=True
    (aot_eager runs on the CPU), gives the eager converted model's loss and gradients."""
    converted, _ = tritonlayers.convert(make_model(name))
    twin = copy.deepcopy(converted)
    compiled = torch.compile(twin, backend="aot_eager", fullgraph=True)
    x = make_input().to(memory_format=torch.channels_last)
    losses = [network(x).square().sum() for network in (converted, compiled)]
    for loss in losses:
        loss.backward()
    assert_close(losses[1], losses[0], atol=1e-5, rtol=1e-5, name="loss")
    reference = dict(converted.named_parameters())
    for parameter_name, parameter in twin.named_parameters():
        assert_close(parameter.grad, reference[parameter_name].grad, atol=1e-5, rtol=1e-5,
                     name=f"grad of {parameter_name}")


def actions(report):
    return {entry.path: entry.action for entry in report}


def test_resnet_report_in_train_mode():
    converted, report = tritonlayers.convert(make_model("resnet"))
    got = actions(report)
    for block in ("layer1.0", "layer1.1"):
        assert got[block] == "rewritten"  # the residual reaches bn3 through the regenerated forward
        assert isinstance(converted.get_submodule(block), torch.fx.GraphModule)
        for bn in ("bn1", "bn2", "bn3"):
            assert got[f"{block}.{bn}"] == "fused"
            assert converted.get_submodule(f"{block}.{bn}").activation.name == "relu"
        assert report[f"{block}.bn3"].reason == f"residual add + relu from {block}.relu"
        assert got[f"{block}.relu"] == "fused"
        assert isinstance(converted.get_submodule(f"{block}.relu"), nn.Identity)
        assert got[f"{block}.conv1"] == got[f"{block}.conv3"] == "swapped"
        assert got[f"{block}.conv2"] == "left alone"
        assert "kernel_size=(3, 3)" in report[f"{block}.conv2"].reason
    assert got["layer1.0.downsample.0"] == got["layer1.0.downsample.1"] == "swapped"  # its output goes to an add
    assert (got["bn1"], got["relu"], got["maxpool"], got["avgpool"], got["fc"]) == (
        "fused", "fused", "swapped", "swapped", "swapped")
    assert type(converted) is TinyResNet and "" not in report  # the model's own forward only lost a ReLU call
    assert report["layer1.0.conv1"].original is nn.Conv2d
    assert type(converted.layer1[0].conv1) is tnn.Conv2d
    text = str(report)
    assert "layer1.0.bn3" in text and "residual add + relu" in text and "left alone" in text


def test_resnet_report_in_eval_mode_folds():
    converted, report = tritonlayers.convert(make_model("resnet", training=False))
    got = actions(report)
    for block in ("layer1.0", "layer1.1"):
        assert got[f"{block}.bn1"] == got[f"{block}.bn2"] == "folded"
        assert report[f"{block}.bn1"].reason == f"into {block}.conv1"
        assert isinstance(converted.get_submodule(f"{block}.bn1"), FoldedBatchNorm)
        # folded into the 1x1 conv, the ReLU joins its epilogue
        assert converted.get_submodule(f"{block}.conv1").activation.name == "relu"
        # bn3 keeps its kernel: it takes the residual add and the ReLU, fewer passes than a fold would leave
        assert got[f"{block}.bn3"] == "fused"
    assert got["layer1.0.downsample.1"] == "folded"
    assert got["bn1"] == "folded"  # into the stem's 3x3 torch conv, which fold_batchnorm handles too
    assert len(report.by_action("folded")) == 6


def test_mobilenet_report():
    converted, report = tritonlayers.convert(make_model("mobilenet"))
    got = actions(report)
    # Sequential chains: the BN takes the ReLU6, which becomes Identity; the Sequential keeps its forward
    assert got["features.0.1"] == "fused" and got["features.0.2"] == "fused"
    assert type(converted.features[0]) is nn.Sequential
    assert isinstance(converted.features[0][2], nn.Identity)
    assert got["features.0.0"] == got["features.2.features.1.0"] == "left alone"  # 3x3 and depthwise 3x3
    assert "kernel_size=(3, 3)" in report["features.2.features.1.0"].reason
    assert got["features.2.features.0.0"] == "swapped"  # 1x1 expansion
    assert converted.features[2].features[0][1].activation.name == "relu6"
    # residual blocks pass the input to the projection's BN; the strided block has nothing to fuse there
    assert got["features.1"] == got["features.3"] == "rewritten" and "features.2" not in report
    assert report["features.3.project_bn"].reason == "residual add"
    assert got["features.2.project_bn"] == "swapped" and type(converted.features[2]) is InvertedResidual
    assert got["classifier.0"] == got["classifier.1"] == "swapped"


def test_mobilenet_eval_folds_projection_and_expansion():
    converted, report = tritonlayers.convert(make_model("mobilenet", training=False))
    got = actions(report)
    assert got["features.2.project_bn"] == "folded"  # no residual: folded into the 1x1 projection
    assert got["features.3.project_bn"] == "fused"  # the residual add is worth more than the fold
    assert got["features.2.features.0.1"] == "folded"
    assert converted.features[2].features[0][0].activation.name == "relu6"
    assert got["features.2.features.0.2"] == "fused"


def test_hooks_still_fire():
    model = make_model("resnet")
    calls = []
    model.register_forward_hook(lambda *args: calls.append("model"))
    model.layer1[1].register_forward_pre_hook(lambda *args: calls.append("block"))  # becomes a GraphModule
    model.layer1[1].conv1.register_forward_hook(lambda *args: calls.append("conv"))
    model.layer1[1].conv3.register_full_backward_hook(lambda *args: calls.append("conv backward"))
    model.layer1[0].bn1.register_forward_hook(lambda *args: calls.append("bn"))
    converted, report = tritonlayers.convert(model)
    assert isinstance(converted.layer1[1], torch.fx.GraphModule)
    # a hook sees a module's output, which fusing would change: the watched BatchNorm keeps its ReLU apart
    assert report["layer1.0.bn1"].action == "swapped" and converted.layer1[0].bn1.activation is None
    converted(make_input()).sum().backward()
    assert sorted(calls) == ["block", "bn", "conv", "conv backward", "model"]
    calls.clear()
    with torch.no_grad():
        copy.deepcopy(converted)(make_input())  # GraphModule's deepcopy keeps only some hooks by itself
    assert sorted(calls) == ["block", "bn", "conv", "model"]


def test_state_dict_keys_and_values_are_kept():
    model = make_model("resnet")
    converted, _ = tritonlayers.convert(model)
    assert list(converted.state_dict()) == list(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(converted.state_dict()[key], value), key
    converted.load_state_dict(model.state_dict())


def test_converted_model_round_trips_through_torch_save():
    converted, _ = tritonlayers.convert(make_model("resnet", training=False))
    buffer = io.BytesIO()
    torch.save(converted, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    x = make_input()
    with torch.no_grad():
        assert_close(loaded(x), converted(x), atol=0, rtol=0)


class DataDependent(nn.Module):
    """A forward torch.fx cannot trace (it branches on a tensor's value) around BN -> activation chains."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8), nn.Hardswish())
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = self.body(x)
        if x.mean() > 0:
            x = x * 2
        return self.head(x.mean((2, 3)))


def test_untraceable_forward_still_converts_module_level_patterns():
    model = DataDependent().to(DEVICE)
    converted, report = tritonlayers.convert(model)
    assert report[""].action == "left alone" and "not traced by torch.fx" in report[""].reason
    assert report["body.1"].action == "fused" and report["body.2"].action == "fused"
    assert type(converted) is DataDependent and converted.body[1].activation.name == "hardswish"
    x = make_input()
    with torch.no_grad():
        assert_close(converted(x), model(x), atol=1e-5, rtol=1e-5)


class TrainingDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        x = self.bn(self.conv(x))
        return torch.sigmoid(x) if self.training else torch.tanh(x)


def test_forward_that_depends_on_the_mode_is_not_rewritten():
    converted, report = tritonlayers.convert(TrainingDependent().to(DEVICE))
    assert report[""].action == "left alone" and "self.training" in report[""].reason
    assert report["bn"].action == "swapped" and converted.bn.activation is None


class Functional(nn.Module):
    """Activations as functions and tensor methods, one BatchNorm output read twice, a BatchNorm called twice."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 1)
        self.bn1, self.bn2, self.bn3, self.bn4, self.shared = (nn.BatchNorm2d(6) for _ in range(5))

    def forward(self, x):
        x = self.conv(x)
        a = F.leaky_relu(self.bn1(x), 0.2)
        b = torch.sigmoid(self.bn2(x))
        c = self.bn3(x).relu()
        d = self.bn4(x)
        e = torch.relu(self.shared(x)) + torch.relu(self.shared(x + 1))
        return a + b + c + torch.tanh(d) * d + e


def test_functional_activations_fuse_through_the_graph():
    model = Functional().to(DEVICE)
    converted, report = tritonlayers.convert(model)
    assert isinstance(converted, torch.fx.GraphModule) and report[""].action == "rewritten"
    assert converted.bn1.activation == tritonlayers.ActivationSpec("leaky_relu", 0.2)
    assert report["bn1"].reason == "leaky_relu from leaky_relu()"
    assert (converted.bn2.activation.name, converted.bn3.activation.name) == ("sigmoid", "relu")
    assert converted.bn4.activation is None and report["bn4"].action == "swapped"  # its output is read twice
    assert converted.shared.activation is None  # called twice: one activation= cannot serve both calls
    x = make_input()
    with torch.no_grad():
        assert_close(converted(x), model(x), atol=1e-5, rtol=1e-5)


class ResidualCases(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn1, self.bn2, self.bn3 = (nn.BatchNorm2d(4) for _ in range(3))
        self.shortcut = nn.Conv2d(4, 4, 1)
        self.scale = nn.Parameter(torch.full((4, 1, 1), 0.5))

    def forward(self, x):
        out = self.bn1(x)
        y = F.relu(out + self.shortcut(x))  # the shortcut runs after bn1: the fused bn1 moves down to the add
        z = self.bn2(x) + self.scale  # a parameter addend broadcasts, which the fused residual does not
        w = self.bn3(y)
        y.mul_(2)  # writes what bn3 read: bn3 cannot move down to the add
        return z + (w + y)


def test_residual_fusion_keeps_order_and_shapes():
    # seeded: the shortcut's weights came from whatever the global generator held, and for about one draw in
    # 60 the three BatchNorms amplified fp32 rounding past 1e-5 (a fusion mistake is off by O(1))
    torch.manual_seed(0)
    model = ResidualCases().to(DEVICE)
    converted, report = tritonlayers.convert(model)
    assert report["bn1"].reason == "residual add + relu from relu()"
    assert report["bn2"].action == report["bn3"].action == "swapped"
    x = make_input()[:, :1].repeat(1, 4, 1, 1)
    with torch.no_grad():
        assert_close(converted(x), model(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_transposed_convolution_decoder(training):
    model = nn.Sequential(nn.ConvTranspose2d(3, 4, 2, stride=2), nn.BatchNorm2d(4), nn.SiLU()).to(DEVICE)
    model[1].running_var.uniform_(0.5, 2.0)
    model.train(training)
    converted, report = tritonlayers.convert(model)
    # train: the BatchNorm takes the SiLU; eval: it folds into the transposed convolution, which takes the SiLU
    expected = {"0": "swapped", "1": "fused", "2": "fused"} if training else {"0": "fused", "1": "folded",
                                                                               "2": "fused"}
    assert actions(report) == expected
    x = make_input()
    with torch.no_grad():
        assert_close(converted(x), model(x), atol=1e-5, rtol=1e-5)


def test_linear_batchnorm1d_fold_checks_the_output_is_two_dimensional():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU()).to(DEVICE).eval()
    model[1].running_mean.uniform_(-1, 1)
    converted, report = tritonlayers.convert(model)
    assert report["1"].action == "folded" and converted[0].activation.name == "relu"
    x = torch.randn(3, 4, device=DEVICE)
    with torch.no_grad():
        assert_close(converted(x), model(x), atol=1e-5, rtol=1e-5)
    # on (N, L, C) BatchNorm1d normalizes L, which the fold did not scale
    with pytest.raises(RuntimeError, match="folded into Linear"):
        converted(torch.randn(2, 4, 4, device=DEVICE))


def test_inplace_converts_the_model_itself():
    model = make_model("resnet")
    parameters = dict(model.named_parameters())
    converted, _ = tritonlayers.convert(model, inplace=True)
    assert converted is model and type(model.fc) is tnn.Linear
    for name, parameter in converted.named_parameters():
        assert parameter is parameters[name], name


def test_not_inplace_leaves_the_model_alone():
    model = make_model("resnet")
    before = copy.deepcopy(model.state_dict())
    types = [type(m) for m in model.modules()]
    converted, _ = tritonlayers.convert(model)
    assert [type(m) for m in model.modules()] == types
    assert all(a is not b for a, b in zip(converted.parameters(), model.parameters()))
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_nothing_supported_comes_back_unchanged_with_reasons():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.PReLU(), nn.Conv2d(4, 4, 1, padding=1)).to(DEVICE)
    converted, report = tritonlayers.convert(model)
    assert [type(m) for m in converted.modules()] == [type(m) for m in model.modules()]
    assert [entry.action for entry in report] == ["left alone"] * 3
    assert "kernel_size=(3, 3)" in report["0"].reason
    assert report["1"].reason == "no tritonlayers twin"
    assert "padding" in report["2"].reason
    x = make_input()
    with torch.no_grad():
        assert torch.equal(converted(x), model(x))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_converting_twice_changes_nothing(training):
    converted, _ = tritonlayers.convert(make_model("resnet", training=training))
    again, report = tritonlayers.convert(converted)
    assert repr(again) == repr(converted)
    assert {entry.action for entry in report} == {"left alone"}
    assert report["layer1.0.conv1"].reason == "already a tritonlayers module"


def test_subclasses_and_converted_modules_are_left_alone():
    class MyReLU(nn.ReLU):
        def forward(self, input):
            return super().forward(input) * 2

    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), MyReLU()).to(DEVICE)
    converted, report = tritonlayers.convert(model)
    assert type(converted[2]) is MyReLU and "subclass of torch.nn.ReLU" in report["2"].reason
    assert report["1"].action == "swapped"  # MyReLU is no activation tritonlayers knows: nothing fused
    again, second = tritonlayers.convert(converted)
    assert [entry.reason for entry in second][:2] == ["already a tritonlayers module"] * 2
    assert repr(again) == repr(converted)
