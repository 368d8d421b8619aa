"""The cell CNN: NAS-Bench-201's network skeleton around any cell of the ``nb201`` space.

Skeleton (Dong & Yang 2020): a 3x3 conv stem with C channels, three stages of N cells (C, 2C and
4C channels) joined by residual reduction blocks (stride 2), then BN, ReLU, global average
pooling and a linear classifier. In a cell, node ``j`` sums ``op(j, i)(node i)`` over the earlier
nodes; the last node is the output. This is the real evaluation of any architecture the searchers
or DARTS produce. Ops come from one table of factories, :data:`OPS` (DARTS' supernet uses it too).

Training follows NAS-Bench-201's recipe by default: SGD with Nesterov momentum 0.9, lr 0.1,
weight decay 5e-4, cosine decay.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

import torch
from torch import nn

from spaces.cells import edge_name, nb201_space
from spaces.options import check_range, parse_options
from trainables.classifier import ClassifierSettings, evaluate_classifier, train_classifier

__all__ = ["OPS", "Cell", "CellCnnSettings", "CellNetwork", "evaluate_cell_cnn",
           "train_cell_cnn"]


class ReLUConvBN(nn.Sequential):
    """ReLU, conv, BN. In a supernet (``search=True``) BN has no affine weights and uses batch
    statistics only, as in DARTS' search: architecture weights, not BN, scale each op."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 search: bool = False) -> None:
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out, affine=not search,
                                        track_running_stats=not search))


class Zero(nn.Module):
    """The ``none`` op: no connection (zeros of the input's shape)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


# name -> factory(channels, search): the one table of ops, for cells and DARTS' mixed ops.
OPS: dict[str, Callable[[int, bool], nn.Module]] = {
    "none": lambda c, search=False: Zero(),
    "skip_connect": lambda c, search=False: nn.Identity(),
    "nor_conv_1x1": lambda c, search=False: ReLUConvBN(c, c, 1, 1, 0, search),
    "nor_conv_3x3": lambda c, search=False: ReLUConvBN(c, c, 3, 1, 1, search),
    "avg_pool_3x3": lambda c, search=False: nn.AvgPool2d(3, stride=1, padding=1,
                                                         count_include_pad=False),
}


class Cell(nn.Module):
    """One cell: ``ops`` maps each edge name ``edge_<to>_<from>`` to an op name."""

    def __init__(self, ops: dict[str, str], channels: int, nodes: int = 4) -> None:
        super().__init__()
        self.nodes = nodes
        # 'none' edges contribute nothing: they are left out of the graph entirely.
        self.edges = nn.ModuleDict({
            edge_name(j, i): OPS[ops[edge_name(j, i)]](channels, False)
            for j in range(1, nodes) for i in range(j) if ops[edge_name(j, i)] != "none"
        })

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        for j in range(1, self.nodes):
            inputs = [self.edges[edge_name(j, i)](states[i]) for i in range(j)
                      if edge_name(j, i) in self.edges]
            states.append(sum(inputs[1:], inputs[0]) if inputs else torch.zeros_like(x))
        return states[-1]


class ResidualReduction(nn.Module):
    """NAS-Bench-201's residual block between stages: stride 2, channels doubled."""

    def __init__(self, c_in: int, c_out: int, search: bool = False) -> None:
        super().__init__()
        self.a = ReLUConvBN(c_in, c_out, 3, 2, 1, search)
        self.b = ReLUConvBN(c_out, c_out, 3, 1, 1, search)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) + self.shortcut(x)


class CellNetwork(nn.Module):
    """Stem, three stages of ``cells_per_stage`` cells with reductions between, classifier.

    ``make_cell(channels)`` builds each cell, so DARTS' supernet reuses the skeleton: its cells
    take the architecture weights as a second argument, passed through ``forward(x, weights)``.
    """

    def __init__(self, make_cell: Callable[[int], nn.Module], *, in_channels: int, classes: int,
                 channels: int = 16, cells_per_stage: int = 5, search: bool = False) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage:
                layers.append(ResidualReduction(c, 2 * c, search))
                c *= 2
            layers += [make_cell(c) for _ in range(cells_per_stage)]
        self.cells = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.cells:
            x = layer(x) if weights is None or isinstance(layer, ResidualReduction) else layer(
                x, weights)
        return self.head(x)


@dataclass(frozen=True)
class CellCnnSettings(ClassifierSettings):
    """Classifier settings plus the skeleton's size and NAS-Bench-201's optimiser."""

    channels: int = 16  # C: channels of the first stage (NAS-Bench-201: 16)
    cells_per_stage: int = 5  # N (NAS-Bench-201: 5)
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    lr_schedule: Literal["constant", "warmup_cosine", "cosine"] = "cosine"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("channels", self.channels, low=1)
        check_range("cells_per_stage", self.cells_per_stage, low=1)
        check_range("lr", self.lr, low=0, low_open=True)
        check_range("momentum", self.momentum, low=0, high=1)
        check_range("weight_decay", self.weight_decay, low=0)


def _factories(config: dict[str, Any], settings: CellCnnSettings) -> dict[str, Any]:
    space = nb201_space()
    cell = {name: config[name] for name in space.names}
    space.validate(cell)

    def build(channels: int, size: int, classes: int) -> nn.Module:
        return CellNetwork(lambda c: Cell(cell, c), in_channels=channels, classes=classes,
                           channels=settings.channels,
                           cells_per_stage=settings.cells_per_stage)

    def make_optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum,
                               weight_decay=settings.weight_decay, nesterov=settings.nesterov)

    return {"build": build, "make_optimizer": make_optimizer}


def train_cell_cnn(config: dict[str, Any],
                   settings: dict[str, Any] | CellCnnSettings | None = None) -> None:
    """Ray Tune trainable: train the NAS-Bench-201 network of the cell in ``config``."""
    if not isinstance(settings, CellCnnSettings):
        settings = parse_options(CellCnnSettings, settings or {}, "train")
    train_classifier(config, settings, **_factories(config, settings))


def evaluate_cell_cnn(config: dict[str, Any], settings: dict[str, Any] | CellCnnSettings,
                      checkpoint_dir: str | Path) -> dict[str, float]:
    """Test accuracy and loss of a trained cell network's checkpoint."""
    if not isinstance(settings, CellCnnSettings):
        settings = parse_options(CellCnnSettings, settings, "train")
    return evaluate_classifier(config, settings, checkpoint_dir, **_factories(config, settings))
