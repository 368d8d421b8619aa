"""The seed's CIFAR CNN as a Ray Tune trainable: 1-4 unpadded 3x3 convs, 1-3 linear layers.

The network is the seed's ``Net``: each conv is 3x3 with no padding followed by ReLU, the feature
map is flattened (its size computed from the input size) and fed to the linear layers (ReLU
between them). The optimiser is ``getattr(torch.optim, optimizer)(params, lr=lr)`` as in the seed.
Channels, input size and class count come from the dataset, so it runs on CIFAR-100 (default),
CIFAR-10, MNIST and Fashion-MNIST.

What differs from the seed's loop, for speed (see ``benchmarks/throughput.py``): the data lives on
the device as one tensor and batches are index slices; channels-last memory format on CPU;
validation under ``inference_mode`` in batches sized for the device; bf16 autocast (mixed
precision: weights and optimiser in fp32) on GPUs and on CPUs with native bf16 arithmetic, where
it is 2-3x faster than fp32 (``amp: false`` turns it off).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from spaces.options import check_range, parse_options
from trainables import metrics as M
from trainables.data import DataSettings, TensorSplits, load_splits, load_test
from trainables.loop import (
    batches, bf16_native, load_state, read_state, report_epoch, setup_device,
)

__all__ = ["CnnSettings", "Net", "build_net", "evaluate_cnn", "train_cnn"]

KERNEL_SIZE = 3


@dataclass(frozen=True)
class CnnSettings:
    """Fixed (not searched) settings of a CNN trial."""

    data: DataSettings = field(default_factory=DataSettings)
    epochs: int = 10  # the trial's budget; ASHA's max_t
    batch_size: int = 64
    eval_batch_size: int | None = None  # None: 1024 on a GPU, 64 on a CPU (cache-friendly)
    lr_schedule: Literal["constant", "warmup_cosine"] = "constant"  # the seed's is constant
    warmup_epochs: float = 1.0  # linear warmup length for warmup_cosine
    channels_last: bool = True  # NHWC convolutions (faster on CPU and on tensor cores)
    amp: bool = True  # bf16 autocast where the device has native bf16 (GPU; AVX512-BF16/AMX)
    seed: int = 0  # weight init and batch order

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, low=1)
        check_range("batch_size", self.batch_size, low=1)
        check_range("eval_batch_size", self.eval_batch_size, low=1)
        check_range("warmup_epochs", self.warmup_epochs, low=0)


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
        self.fcs = nn.ModuleList(nn.Linear(widths[i], widths[i + 1]) for i in range(len(widths) - 1))

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


def _schedule(settings: CnnSettings, steps_per_epoch: int) -> Any:
    """Per-step LR multiplier: constant, or linear warmup then cosine decay to zero."""
    if settings.lr_schedule == "constant":
        return lambda step: 1.0
    warmup = max(1, round(settings.warmup_epochs * steps_per_epoch))
    total = max(warmup + 1, settings.epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / (total - warmup))))

    return factor


class CnnRun:
    """Everything one CNN trial trains: model, optimiser, LR schedule, data, RNG."""

    def __init__(self, config: dict[str, Any], settings: CnnSettings, device: torch.device,
                 splits: TensorSplits | None = None) -> None:
        self.settings = settings
        self.device = device
        self.splits = splits if splits is not None else load_splits(settings.data, str(device))
        c, h, _ = self.splits.shape
        torch.manual_seed(settings.seed)
        self.model = build_net(config, in_channels=c, in_size=h, classes=self.splits.classes)
        self.memory_format = (
            torch.channels_last if settings.channels_last else torch.contiguous_format
        )
        self.model.to(device=device, memory_format=self.memory_format)
        optimizer_cls = getattr(torch.optim, str(config["optimizer"]))
        self.optimizer = optimizer_cls(self.model.parameters(), lr=float(config["lr"]))
        steps = math.ceil(len(self.splits.y_train) / settings.batch_size)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _schedule(settings, steps))
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.autocast = settings.amp and bf16_native(device)
        self.eval_batch_size = settings.eval_batch_size or (
            1024 if device.type == "cuda" else 64)
        self.x_train = self.splits.x_train.contiguous(memory_format=self.memory_format)
        self.x_val = self.splits.x_val.contiguous(memory_format=self.memory_format)
        self.epoch = 0

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])

    def train_epoch(self) -> float:
        """One pass over the training split; the mean training loss."""
        self.model.train()
        y = self.splits.y_train
        total = torch.zeros((), device=self.device)
        steps = 0
        for idx in batches(len(y), self.settings.batch_size, device=self.device,
                           generator=self.generator):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                loss = F.cross_entropy(self.model(self.x_train[idx]), y[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            total += loss.detach()  # summed on the device: no host sync per step
            steps += 1
        self.epoch += 1
        return float(total) / max(1, steps)

    @torch.inference_mode()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """(accuracy, mean cross-entropy) over ``x``, in large batches."""
        self.model.eval()
        correct = torch.zeros((), device=self.device)
        loss = torch.zeros((), device=self.device)
        for idx in batches(len(y), self.eval_batch_size, device=self.device):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                logits = self.model(x[idx]).float()
            loss += F.cross_entropy(logits, y[idx], reduction="sum")
            correct += (logits.argmax(1) == y[idx]).sum()
        n = max(1, len(y))
        return float(correct) / n, float(loss) / n


def train_cnn(config: dict[str, Any], settings: dict[str, Any] | CnnSettings | None = None
              ) -> None:
    """Ray Tune trainable: the seed's CNN, one ``tune.report`` with a checkpoint per epoch.

    Args:
        config: a ``cifar_cnn`` space config (layer counts and widths, optimizer, lr).
        settings: :class:`CnnSettings` or its mapping (passed with ``tune.with_parameters``).
    """
    if not isinstance(settings, CnnSettings):
        settings = parse_options(CnnSettings, settings or {}, "train")
    device = setup_device()
    run = CnnRun(config, settings, device)
    state = load_state()
    if state is not None:
        run.load(state)
    while run.epoch < settings.epochs:
        start = time.perf_counter()
        train_loss = run.train_epoch()
        val_acc, val_loss = run.evaluate(run.x_val, run.splits.y_val)
        report_epoch(
            {
                M.VAL_ACC: val_acc,
                M.VAL_LOSS: val_loss,
                M.TRAIN_LOSS: train_loss,
                M.EPOCH: run.epoch,
                M.EPOCH_S: time.perf_counter() - start,
                M.PARAMS: run.params,
                M.LR: run.optimizer.param_groups[0]["lr"],
            },
            run.state(),
        )


def evaluate_cnn(config: dict[str, Any], settings: dict[str, Any] | CnnSettings,
                 checkpoint_dir: str | Path) -> dict[str, float]:
    """Test accuracy and loss of a trained trial's checkpoint (the final model only)."""
    if not isinstance(settings, CnnSettings):
        settings = parse_options(CnnSettings, settings, "train")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    run = CnnRun(config, settings, device)
    run.load(read_state(Path(checkpoint_dir)))
    x_test, y_test = load_test(settings.data, run.splits, str(device))
    acc, loss = run.evaluate(x_test.contiguous(memory_format=run.memory_format), y_test)
    val_acc, _ = run.evaluate(run.x_val, run.splits.y_val)
    return {M.TEST_ACC: acc, M.TEST_LOSS: loss, M.VAL_ACC: val_acc, M.EPOCH: run.epoch}
