"""Activation and softmax modules: torch.nn's own classes (constructor, state_dict, repr, hooks and
isinstance unchanged) whose forward runs tritonlayers' kernels."""
import torch

from .. import functional as F


class ReLU(torch.nn.ReLU):
    def forward(self, input):
        return F.relu(input, inplace=self.inplace)


class ReLU6(torch.nn.ReLU6):
    def forward(self, input):
        return F.relu6(input, inplace=self.inplace)


class LeakyReLU(torch.nn.LeakyReLU):
    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)


class ELU(torch.nn.ELU):
    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)


class GELU(torch.nn.GELU):
    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)


class SiLU(torch.nn.SiLU):
    def forward(self, input):
        return F.silu(input, inplace=self.inplace)


class Mish(torch.nn.Mish):
    def forward(self, input):
        return F.mish(input, inplace=self.inplace)


class Hardswish(torch.nn.Hardswish):
    def forward(self, input):
        return F.hardswish(input, inplace=self.inplace)


class Hardsigmoid(torch.nn.Hardsigmoid):
    def forward(self, input):
        return F.hardsigmoid(input, inplace=self.inplace)


class Softplus(torch.nn.Softplus):
    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)


class Sigmoid(torch.nn.Sigmoid):
    def forward(self, input):
        return F.sigmoid(input)


class Tanh(torch.nn.Tanh):
    def forward(self, input):
        return F.tanh(input)


class Softmax(torch.nn.Softmax):
    def forward(self, input):
        return F.softmax(input, self.dim, _stacklevel=5)


class LogSoftmax(torch.nn.LogSoftmax):
    def forward(self, input):
        return F.log_softmax(input, self.dim, _stacklevel=5)
