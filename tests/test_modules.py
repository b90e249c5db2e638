"""tritonlayers.nn modules: drop-in twins of torch.nn's (isinstance, state_dict, repr, hooks) with the
same results as their functional form and as torch's module."""
import pytest
import torch

import tritonlayers.functional as TF
import tritonlayers.nn as tnn
from helpers import DEVICE, assert_close, make_input

# (module name, constructor arguments, functional equivalent)
MODULES = [
    ("ReLU", {}, lambda x: TF.relu(x)),
    ("ReLU6", {}, lambda x: TF.relu6(x)),
    ("LeakyReLU", {"negative_slope": 0.2}, lambda x: TF.leaky_relu(x, 0.2)),
    ("ELU", {"alpha": 0.7}, lambda x: TF.elu(x, 0.7)),
    ("GELU", {"approximate": "tanh"}, lambda x: TF.gelu(x, approximate="tanh")),
    ("SiLU", {}, lambda x: TF.silu(x)),
    ("Mish", {}, lambda x: TF.mish(x)),
    ("Hardswish", {}, lambda x: TF.hardswish(x)),
    ("Hardsigmoid", {}, lambda x: TF.hardsigmoid(x)),
    ("Softplus", {"beta": 2.0, "threshold": 4.0}, lambda x: TF.softplus(x, 2.0, 4.0)),
    ("Sigmoid", {}, lambda x: TF.sigmoid(x)),
    ("Tanh", {}, lambda x: TF.tanh(x)),
    ("Softmax", {"dim": 1}, lambda x: TF.softmax(x, 1)),
    ("LogSoftmax", {"dim": 0}, lambda x: TF.log_softmax(x, 0)),
]


@pytest.mark.parametrize("name,kwargs,functional", MODULES, ids=[m[0] for m in MODULES])
def test_module_matches_functional_and_torch_twin(name, kwargs, functional):
    ours, theirs = getattr(tnn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert isinstance(ours, type(theirs))
    assert repr(ours) == repr(theirs)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    ours.load_state_dict(theirs.state_dict())
    x = make_input((3, 5, 4), torch.float32, requires_grad=True)
    y = ours(x)
    assert_close(y, functional(x))
    assert_close(y, theirs(x))
    y.sum().backward()
    grad = x.grad.clone()
    x.grad = None
    theirs(x).sum().backward()
    assert_close(grad, x.grad)


def test_forward_hooks_fire():
    module = tnn.ReLU()
    seen = []
    module.register_forward_hook(lambda mod, args, out: seen.append(out.shape))
    module.register_forward_pre_hook(lambda mod, args: seen.append("pre"))
    module(make_input((2, 3), torch.float32))
    assert seen == ["pre", torch.Size([2, 3])]


@pytest.mark.parametrize("name", ["ReLU", "ReLU6", "LeakyReLU", "ELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid"])
def test_inplace_modules_write_their_input(name):
    x = make_input((4, 6), torch.float32)
    expected = getattr(torch.nn, name)()(x.clone())
    out = getattr(tnn, name)(inplace=True)(x)
    assert out is x
    assert_close(x, expected)


@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
def test_softmax_modules_without_dim_warn_like_torch(name):
    x = make_input((2, 3, 4), torch.float32)
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        y = getattr(tnn, name)()(x)
    with pytest.warns(UserWarning):
        expected = getattr(torch.nn, name)()(x)
    assert_close(y, expected)


def test_module_in_sequential_trains_like_torch():
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.GELU(), torch.nn.Linear(5, 3),
                                    torch.nn.LogSoftmax(dim=1))
    ours = torch.nn.Sequential(torch.nn.Linear(6, 5), tnn.GELU(), torch.nn.Linear(5, 3), tnn.LogSoftmax(dim=1))
    ours.load_state_dict(reference.state_dict())
    reference.to(DEVICE), ours.to(DEVICE)
    x = torch.randn(7, 6, device=DEVICE)
    target = torch.randint(0, 3, (7,), device=DEVICE)
    losses = []
    for model in (reference, ours):
        loss = torch.nn.functional.nll_loss(model(x), target)
        loss.backward()
        losses.append(loss)
    assert_close(losses[1], losses[0])
    for p_ref, p_ours in zip(reference.parameters(), ours.parameters()):
        assert_close(p_ours.grad, p_ref.grad)
