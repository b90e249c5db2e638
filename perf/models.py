"""The networks the end-to-end benchmark and the profiler run: torchvision's ResNet-50 (v1.5: the stride on
the 3x3 convolution, one ReLU module shared within a block), written out here so perf/ needs no
torchvision, at any depth and width for the quick and dry variants."""
import torch
from torch import nn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels, width, stride):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, blocks=(3, 4, 6, 3), width=64, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_channels, stages = width, []
        for index, count in enumerate(blocks):
            stage = []
            for block in range(count):
                stride = 2 if index > 0 and block == 0 else 1
                stage.append(Bottleneck(in_channels, width * 2**index, stride))
                in_channels = width * 2**index * Bottleneck.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# name -> (constructor kwargs, batch, image size)
VARIANTS = {
    "resnet50": (dict(blocks=(3, 4, 6, 3), width=64, num_classes=1000), 32, 224),
    "resnet26-quick": (dict(blocks=(2, 2, 2, 2), width=64, num_classes=1000), 32, 128),
    "dry": (dict(blocks=(1, 1, 1, 1), width=4, num_classes=10), 2, 32),
}


def build(variant, seed=0):
    """(model, batch, image size) with weights drawn from `seed`."""
    kwargs, batch, size = VARIANTS[variant]
    torch.manual_seed(seed)
    return ResNet(**kwargs), batch, size


def autocast_dtype(device):
    """bf16, the training precision measured on a GPU; the CPU dry runs take fp16, because Triton's
    interpreter computes bf16 tl.dot wrongly (their losses would be garbage)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float16
