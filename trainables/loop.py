"""The shared per-epoch machinery of every trainable: device, threads, checkpoint, report."""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import torch

__all__ = ["CheckpointError", "Resumable", "batches", "bf16_native", "load_optimizer",
           "load_state", "read_state", "report_epoch", "setup_device", "train_epochs"]


class CheckpointError(RuntimeError):
    """A checkpoint that is missing or cannot be read; its message is one line for the user."""

logger = logging.getLogger(__name__)

STATE_FILE = "state.pt"


def setup_device() -> torch.device:
    """The device Ray assigned this trial, and torch's thread count set to its CPUs.

    Ray sets ``CUDA_VISIBLE_DEVICES`` per trial, so an assigned GPU is always ``cuda:0`` here.
    Outside Ray (tests, benchmarks) the CPU is used with torch's default threads.
    """
    import ray

    cpus = None
    gpus: list[Any] = []
    if ray.is_initialized():
        try:
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
            gpus = ray.get_gpu_ids()
        except Exception:  # not inside a Ray worker
            cpus, gpus = None, []
    if cpus:
        torch.set_num_threads(max(1, int(cpus)))
    if gpus and torch.cuda.is_available():
        return torch.device("cuda", 0)
    return torch.device("cpu")


def bf16_native(device: torch.device) -> bool:
    """Whether bf16 autocast is fast on ``device``: CUDA GPUs with bf16, CPUs with AVX512-BF16
    or AMX (elsewhere bf16 on a CPU is emulated and slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(
            including_emulation=False)
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def batches(n: int, batch_size: int, *, device: torch.device,
            generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Index tensors for one pass over ``n`` items; shuffled when ``generator`` is given."""
    if generator is None:
        order = torch.arange(n, device=device)
    else:
        order = torch.randperm(n, generator=generator).to(device)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def load_state() -> dict[str, Any] | None:
    """The state saved by the last :func:`report_epoch` of this trial, or ``None``.

    Loaded on the CPU: ``load_state_dict`` copies weights and optimiser state onto the
    parameters' device, and RNG states must stay CPU byte tensors.
    """
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return read_state(Path(folder))


def read_state(folder: Path) -> dict[str, Any]:
    """Read a checkpoint folder written by :func:`report_epoch` onto the CPU; clear error when
    it is missing or corrupt."""
    path = Path(folder) / STATE_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} cannot be read ({str(e).splitlines()[0]}); it "
                              "is missing or corrupt: evaluate another trial (--trial) or rerun "
                              "this one.") from None


def load_optimizer(optimizer: torch.optim.Optimizer, saved: dict[str, Any],
                   saved_class: str | None = None,
                   scheduler: torch.optim.lr_scheduler.LambdaLR | None = None,
                   saved_scheduler: dict[str, Any] | None = None) -> None:
    """Load an optimiser's (and its ``LambdaLR``'s) saved state but keep *this* run's settings.

    Population-based training continues a trial from another trial's checkpoint with a mutated
    config, and ``load_state_dict`` would bring the donor's learning rate, betas and momentum
    back with its moment estimates. The settings ``optimizer`` was built with (from this run's
    config) are written back over the loaded ones, and the schedule's base rates with them, so
    the run goes on at the donor's step with its own hyperparameters. A checkpoint of another
    optimiser class (``saved_class``) keeps the weights only: its moment estimates mean nothing
    to this one, which starts fresh."""
    if saved_class is not None and saved_class != type(optimizer).__name__:
        if scheduler is not None and saved_scheduler is not None:
            scheduler.last_epoch = int(saved_scheduler["last_epoch"])
            _apply_schedule(scheduler)
        return
    settings = [{k: v for k, v in group.items() if k != "params"}
                for group in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, own in zip(optimizer.param_groups, settings):
        group.update(own)
    if scheduler is not None and saved_scheduler is not None:
        scheduler.load_state_dict(saved_scheduler)
        scheduler.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        _apply_schedule(scheduler)


def _apply_schedule(scheduler: torch.optim.lr_scheduler.LambdaLR) -> None:
    """Each group's rate at the scheduler's step, from this run's base rates."""
    groups = scheduler.optimizer.param_groups
    for group, base, factor in zip(groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in groups]


class Resumable(Protocol):
    """A training run that counts its epochs and saves and loads its whole state."""

    epoch: int

    def state(self) -> dict[str, Any]: ...

    def load(self, state: dict[str, Any]) -> None: ...


def train_epochs(run: Resumable, epochs: int, one_epoch: Callable[[], dict[str, Any]], *,
                 stopped: Callable[[], bool] = lambda: False) -> None:
    """The loop every trainable runs: resume ``run`` from the trial's checkpoint (if Tune
    restored one), then, until ``run.epoch`` reaches ``epochs`` (or ``stopped()``), train one
    epoch (``one_epoch()`` returns the metrics to report) and report them with a checkpoint of
    ``run.state()``."""
    state = load_state()
    if state is not None:
        run.load(state)
    while run.epoch < epochs and not stopped():
        report_epoch(one_epoch(), run.state())


def report_epoch(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
    """``tune.report`` one epoch's metrics with a checkpoint of ``state`` (if given)."""
    from ray import tune

    if state is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix="hpnas-ckpt-") as folder:
        torch.save(state, os.path.join(folder, STATE_FILE))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
