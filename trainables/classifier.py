"""The shared image-classifier trial: data on the device, the epoch loop, reports, test scoring.

Every classifier trainable (the seed's CNN, the cell CNN) is a model factory and an optimiser
factory over :class:`ClassifierRun`, which holds the speed-ups measured in
``benchmarks/throughput.py``: the data split lives on the device as one tensor and batches are
index slices of it; channels-last memory format; validation under ``inference_mode`` in batches
sized for the device; bf16 autocast (mixed precision: weights and optimiser in fp32) on GPUs and
on CPUs with native bf16 arithmetic.

A config may carry ``input_size`` (the ``cifar_cnn_res`` space searches it): the splits are then
resized on the device, once per trial, before training.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from spaces.options import check_range
from trainables import metrics as M
from trainables.data import DataSettings, TensorSplits, load_splits, load_test
from trainables.loop import (
    batches, bf16_native, load_optimizer, read_state, setup_device, train_epochs,
)

__all__ = ["ClassifierRun", "ClassifierSettings", "evaluate_classifier", "train_classifier"]

BuildModel = Callable[[int, int, int], nn.Module]  # (channels, size, classes) -> model
MakeOptimizer = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


@dataclass(frozen=True)
class ClassifierSettings:
    """Fixed (not searched) settings of a classifier trial."""

    data: DataSettings = field(default_factory=DataSettings)
    epochs: int = 10  # the trial's budget; ASHA's max_t
    batch_size: int = 64
    eval_batch_size: int | None = None  # None: 1024 on a GPU, 64 on a CPU (cache-friendly)
    lr_schedule: Literal["constant", "warmup_cosine", "cosine"] = "constant"
    warmup_epochs: float = 1.0  # linear warmup length for warmup_cosine
    channels_last: bool = True  # NHWC convolutions (faster on CPU and on tensor cores)
    amp: bool = True  # bf16 autocast where the device has native bf16 (GPU; AVX512-BF16/AMX)
    seed: int = 0  # weight init and batch order

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, low=1)
        check_range("batch_size", self.batch_size, low=1)
        check_range("eval_batch_size", self.eval_batch_size, low=1)
        check_range("warmup_epochs", self.warmup_epochs, low=0)


def _schedule(settings: ClassifierSettings, steps_per_epoch: int) -> Callable[[int], float]:
    """Per-step LR multiplier: constant, or (linear warmup then) cosine decay to zero."""
    if settings.lr_schedule == "constant":
        return lambda step: 1.0
    warmup = (0 if settings.lr_schedule == "cosine"
              else max(1, round(settings.warmup_epochs * steps_per_epoch)))
    total = max(warmup + 1, settings.epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / (total - warmup))))

    return factor


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False)


class ClassifierRun:
    """Everything one classifier trial trains: model, optimiser, LR schedule, data, RNG."""

    def __init__(self, config: dict[str, Any], settings: ClassifierSettings,
                 device: torch.device, *, build: BuildModel, make_optimizer: MakeOptimizer,
                 splits: TensorSplits | None = None) -> None:
        self.settings = settings
        self.device = device
        self.splits = splits if splits is not None else load_splits(settings.data, str(device))
        c, h, _ = self.splits.shape
        self.input_size = int(config.get("input_size", h))
        torch.manual_seed(settings.seed)
        self.model = build(c, self.input_size, self.splits.classes)
        self.memory_format = (
            torch.channels_last if settings.channels_last else torch.contiguous_format)
        self.model.to(device=device, memory_format=self.memory_format)
        self.optimizer = make_optimizer(self.model.parameters())
        steps = math.ceil(len(self.splits.y_train) / settings.batch_size)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _schedule(settings, steps))
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.autocast = settings.amp and bf16_native(device)
        self.eval_batch_size = settings.eval_batch_size or (
            1024 if device.type == "cuda" else 64)
        self.x_train = self.prepare(self.splits.x_train)
        self.x_val = self.prepare(self.splits.x_val)
        self.epoch = 0

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs as the model takes them: resized, in the run's memory format."""
        return _resize(x, self.input_size).contiguous(memory_format=self.memory_format)

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "optimizer_class": type(self.optimizer).__name__,
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        load_optimizer(self.optimizer, state["optimizer"], state.get("optimizer_class"),
                       self.scheduler, state["scheduler"])
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
        """(accuracy, mean cross-entropy) over prepared inputs ``x``."""
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


def train_classifier(config: dict[str, Any], settings: ClassifierSettings, *,
                     build: BuildModel, make_optimizer: MakeOptimizer) -> None:
    """The trainable body: resume from the trial's checkpoint, then one report per epoch."""
    run = ClassifierRun(config, settings, setup_device(), build=build,
                        make_optimizer=make_optimizer)

    def one_epoch() -> dict[str, Any]:
        start = time.perf_counter()
        train_loss = run.train_epoch()
        val_acc, val_loss = run.evaluate(run.x_val, run.splits.y_val)
        return {
            M.VAL_ACC: val_acc,
            M.VAL_LOSS: val_loss,
            M.TRAIN_LOSS: train_loss,
            M.EPOCH: run.epoch,
            M.EPOCH_S: time.perf_counter() - start,
            M.PARAMS: run.params,
            M.LR: run.optimizer.param_groups[0]["lr"],
        }

    train_epochs(run, settings.epochs, one_epoch)


def evaluate_classifier(config: dict[str, Any], settings: ClassifierSettings,
                        checkpoint_dir: str | Path, *, build: BuildModel,
                        make_optimizer: MakeOptimizer) -> dict[str, float]:
    """Test accuracy and loss of a trained trial's checkpoint (the final model only)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    run = ClassifierRun(config, settings, device, build=build, make_optimizer=make_optimizer)
    run.load(read_state(Path(checkpoint_dir)))
    x_test, y_test = load_test(settings.data, run.splits, str(device))
    acc, loss = run.evaluate(run.prepare(x_test), y_test)
    val_acc, _ = run.evaluate(run.x_val, run.splits.y_val)
    return {M.TEST_ACC: acc, M.TEST_LOSS: loss, M.VAL_ACC: val_acc, M.EPOCH: run.epoch}
