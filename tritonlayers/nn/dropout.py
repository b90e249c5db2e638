"""Dropout modules: torch.nn's classes whose forward runs tritonlayers' mask-free kernels."""
import torch

from .. import functional as F


class Dropout(torch.nn.Dropout):
    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout1d(torch.nn.Dropout1d):
    def forward(self, input):
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(torch.nn.Dropout2d):
    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(torch.nn.Dropout3d):
    def forward(self, input):
        return F.dropout3d(input, self.p, self.training, self.inplace)
