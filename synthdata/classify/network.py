"""The downstream networks: a small ResNet (plain torch; also the domain classifier), MONAI and timm ones by name.

Three stages of two basic blocks (width, 2 x width, 4 x width channels; strides 1, 2, 2),
global average pooling, a linear head. ``features`` is the pooled penultimate layer, the
feature space of the FD-domain metrics.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from synthdata.errors import SynthdataError
from synthdata.settings import SettingError


class _Block(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    def __init__(self, num_classes: int, channels: int = 3, width: int = 16, blocks: int = 2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers, inputs = [], width
        for stage, stride in enumerate((1, 2, 2)):
            outputs = width * 2**stage
            for block in range(blocks):
                layers.append(_Block(inputs, outputs, stride if block == 0 else 1))
                inputs = outputs
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(inputs, num_classes)
        self.feature_dim = inputs

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


MONAI_NETWORKS = ("resnet10", "resnet18", "resnet34", "resnet50")
"""MONAI's 2-D ResNets a recipe may name as ``monai:<name>`` (random initialisation). Its DenseNet
and EfficientNet downsample 28-32 px inputs to nothing, so they are not offered."""
MODEL_NAME = re.compile(r"small-resnet|monai:[a-z0-9-]+|timm:[A-Za-z0-9_.-]+")
"""``utility.model``: the built-in network, a MONAI network or a timm architecture, by name."""


def build_network(name: str, num_classes: int, channels: int, width: int = 16) -> nn.Module:
    """The downstream network ``name``, randomly initialised; no weights are downloaded.

    ``small-resnet`` is :class:`SmallResNet` of ``width``; ``monai:resnet18`` and the other
    :data:`MONAI_NETWORKS` come from ``monai.networks.nets`` in 2-D; ``timm:<architecture>`` from
    ``timm.create_model(..., pretrained=False)`` where timm is installed (it needs torchvision).
    """
    if not MODEL_NAME.fullmatch(name):
        raise SettingError("utility.model", f"must be small-resnet, monai:<name> or timm:<name>, got {name!r}")
    if name == "small-resnet":
        return SmallResNet(num_classes, channels=channels, width=width)
    library, architecture = name.split(":", 1)
    if library == "monai":
        return _monai_network(architecture, num_classes, channels)
    try:
        import timm
    except ImportError as exc:
        raise SynthdataError(
            f"utility.model {name!r} needs timm, which is not importable here ({exc}); timm needs "
            "torchvision, which this CPU stack leaves out; use small-resnet or monai:resnet18"
        ) from None
    if architecture not in timm.list_models():
        raise SynthdataError(f"utility.model {name!r}: timm has no architecture {architecture!r}")
    return timm.create_model(architecture, pretrained=False, num_classes=num_classes, in_chans=channels)


def _monai_network(architecture: str, num_classes: int, channels: int) -> nn.Module:
    from monai.networks import nets

    if architecture not in MONAI_NETWORKS:
        raise SettingError(
            "utility.model", f"monai:{architecture} is not one of monai:{', monai:'.join(MONAI_NETWORKS)}"
        )
    return getattr(nets, architecture)(spatial_dims=2, n_input_channels=channels, num_classes=num_classes)
