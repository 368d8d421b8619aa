"""The seed's CIFAR CNN as a Ray Tune trainable: 1-4 unpadded 3x3 convs, 1-3 linear layers.

The network is the seed's ``Net``: each conv is 3x3 with no padding followed by ReLU, the feature
map is flattened (its size computed from the input size) and fed to the linear layers (ReLU
between them). The optimiser is ``getattr(torch.optim, optimizer)(params, lr=lr)`` as in the seed.
Channels, input size and class count come from the dataset, so it runs on CIFAR-100 (default),
CIFAR-10, MNIST and Fashion-MNIST; with the ``cifar_cnn_res`` space the input resolution is
searched too. Training speed-ups: see :mod:`trainables.classifier`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from spaces.options import parse_options
from trainables.classifier import ClassifierSettings, evaluate_classifier, train_classifier

__all__ = ["CnnSettings", "Net", "build_net", "cnn_run", "evaluate_cnn", "train_cnn"]

KERNEL_SIZE = 3


@dataclass(frozen=True)
class CnnSettings(ClassifierSettings):
    """Fixed settings of a seed-CNN trial (the classifier settings; lr is searched)."""


class Net(nn.Module):
    """The seed's CNN: unpadded 3x3 conv + ReLU layers, flatten, linear layers."""

    def __init__(self, *, in_channels: int, in_size: int, classes: int,
                 filters: list[int], neurons: list[int]) -> None:
        super().__init__()
        out_size = in_size - len(filters) * (KERNEL_SIZE - 1)
        if out_size < 1:
            raise ValueError(
                f"{len(filters)} unpadded 3x3 convs shrink a {in_size}x{in_size} input below 1x1."
            )
        channels = [in_channels, *filters]
        self.convs = nn.ModuleList(
            nn.Conv2d(channels[i], channels[i + 1], KERNEL_SIZE) for i in range(len(filters))
        )
        widths = [filters[-1] * out_size * out_size, *neurons, classes]
        self.fcs = nn.ModuleList(
            nn.Linear(widths[i], widths[i + 1]) for i in range(len(widths) - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.relu(conv(x))
        x = torch.flatten(x, 1)
        for fc in self.fcs[:-1]:
            x = F.relu(fc(x))
        return self.fcs[-1](x)


def build_net(config: dict[str, Any], *, in_channels: int, in_size: int, classes: int) -> Net:
    """The seed's ``Net`` from a ``cifar_cnn`` space config."""
    filters = [int(config[f"num_filter_{i}"]) for i in range(int(config["num_conv_layers"]))]
    neurons = [int(config[f"num_neurons_{i}"]) for i in range(int(config["num_fc_layers"]) - 1)]
    return Net(in_channels=in_channels, in_size=in_size, classes=classes,
               filters=filters, neurons=neurons)


def _factories(config: dict[str, Any]) -> dict[str, Any]:
    def build(channels: int, size: int, classes: int) -> nn.Module:
        return build_net(config, in_channels=channels, in_size=size, classes=classes)

    def make_optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return getattr(torch.optim, str(config["optimizer"]))(params, lr=float(config["lr"]))

    return {"build": build, "make_optimizer": make_optimizer}


def train_cnn(config: dict[str, Any], settings: dict[str, Any] | CnnSettings | None = None
              ) -> None:
    """Ray Tune trainable: the seed's CNN, one ``tune.report`` with a checkpoint per epoch.

    Args:
        config: a ``cifar_cnn`` (or ``cifar_cnn_res``) space config.
        settings: :class:`CnnSettings` or its mapping (passed with ``tune.with_parameters``).
    """
    if not isinstance(settings, CnnSettings):
        settings = parse_options(CnnSettings, settings or {}, "train")
    train_classifier(config, settings, **_factories(config))


def evaluate_cnn(config: dict[str, Any], settings: dict[str, Any] | CnnSettings,
                 checkpoint_dir: str | Path) -> dict[str, float]:
    """Test accuracy and loss of a trained trial's checkpoint (the final model only)."""
    if not isinstance(settings, CnnSettings):
        settings = parse_options(CnnSettings, settings, "train")
    return evaluate_classifier(config, settings, checkpoint_dir, **_factories(config))


def cnn_run(config: dict[str, Any], settings: CnnSettings, device: torch.device,
            splits: Any = None) -> Any:
    """A :class:`~trainables.classifier.ClassifierRun` of the seed CNN (tests, benchmarks)."""
    from trainables.classifier import ClassifierRun

    return ClassifierRun(config, settings, device, splits=splits, **_factories(config))
