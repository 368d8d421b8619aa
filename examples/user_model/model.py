"""A user's own model: a searchable CNN for Fashion-MNIST, as a plain Ray Tune trainable.

Nothing here is hpnas-specific; ``fit`` runs under ``tune.Tuner`` unchanged. ``config`` holds
the searched values: ``lr``, ``optimizer`` (adam or sgd), ``momentum`` (sgd only), ``layers``
(1-3) and per layer k ``op_k`` (a key of OPS) and ``width_k``. Fixed settings are keyword
arguments (an hpnas experiment's ``train:`` mapping). Each epoch reports ``val_acc`` with a
checkpoint, and a restored trial continues after its saved epoch.
"""

from __future__ import annotations

import gzip
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import ray
import torch
import torch.nn.functional as F
from ray import tune
from torch import nn


def conv(c_in: int, c_out: int, k: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


def sep_conv(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


def skip(c_in: int, c_out: int) -> nn.Module:
    return nn.Identity() if c_in == c_out else nn.Sequential(
        nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


OPS = {"conv3": lambda i, o: conv(i, o, 3), "conv5": lambda i, o: conv(i, o, 5),
       "sep3": sep_conv, "skip": skip}


def build_model(config: dict) -> nn.Module:
    """Stem, one OPS block per layer (the first two max-pooled), global pooling, linear head."""
    layers = config["layers"]
    if layers not in (1, 2, 3):
        raise ValueError(f"`layers` is {layers!r}, but must be 1, 2 or 3.")
    blocks, c_in = [conv(1, int(config["width_1"]), 3)], int(config["width_1"])
    for k in range(1, layers + 1):
        op, width = config[f"op_{k}"], config[f"width_{k}"]
        if op not in OPS:
            raise ValueError(f"`op_{k}` is {op!r}, but must be one of {sorted(OPS)}.")
        if float(width) != int(width) or int(width) < 1:
            raise ValueError(f"`width_{k}` is {width!r}, but must be a whole number >= 1.")
        blocks.append(OPS[op](c_in, int(width)))
        if k <= 2:
            blocks.append(nn.MaxPool2d(2))
        c_in = int(width)
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 10))


def make_optimizer(config: dict, params) -> torch.optim.Optimizer:
    if config["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=config["lr"])
    momentum = config.get("momentum", 0.0)
    if config["optimizer"] != "sgd" or not 0 <= momentum < 1:
        key = "optimizer" if config["optimizer"] != "sgd" else "momentum"
        raise ValueError(f"`{key}` is {config[key]!r}, but must be adam/sgd, momentum in [0, 1).")
    return torch.optim.SGD(params, lr=config["lr"], momentum=momentum)


def load_fashion_mnist(data_dir: str | Path, train_size: int, val_size: int, seed: int):
    """A seeded split of the training images: (x_train, y_train, x_val, y_val) tensors."""
    folder = Path(data_dir)
    files = [folder / f"train-{n}-ubyte.gz" for n in ("images-idx3", "labels-idx1")]
    if not all(f.is_file() for f in files):
        raise FileNotFoundError(f"{folder} has no {files[0].name}: install Debian's "
                                "dataset-fashion-mnist package, or pass data_dir=FOLDER.")
    images = np.frombuffer(gzip.open(files[0]).read(), np.uint8, offset=16).reshape(-1, 28, 28)
    labels = np.frombuffer(gzip.open(files[1]).read(), np.uint8, offset=8)
    order = np.random.default_rng(seed).permutation(len(labels))[:train_size + val_size]
    x = (torch.tensor(images[order], dtype=torch.float32)[:, None] / 255 - 0.286) / 0.353
    y = torch.tensor(labels[order], dtype=torch.long)
    return x[:train_size], y[:train_size], x[train_size:], y[train_size:]


def save_checkpoint(folder, model, optimizer, epoch: int) -> None:
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "epoch": epoch}, os.path.join(folder, "checkpoint.pt"))


def load_checkpoint(folder, model, optimizer) -> int:
    """Load the state saved in ``folder``; returns its epoch."""
    state = torch.load(os.path.join(folder, "checkpoint.pt"), map_location="cpu")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["epoch"]


def fit(config: dict, data_dir: str = "/usr/share/datasets/fashion-mnist", epochs: int = 4,
        train_size: int = 5000, val_size: int = 1000, batch_size: int = 128,
        seed: int = 0) -> None:
    use_gpu = ray.is_initialized() and bool(ray.get_gpu_ids()) and torch.cuda.is_available()
    device = torch.device("cuda" if use_gpu else "cpu")
    torch.manual_seed(seed)
    model = build_model(config).to(device)
    optimizer = make_optimizer(config, model.parameters())
    x, y, x_val, y_val = (t.to(device) for t in
                          load_fashion_mnist(data_dir, train_size, val_size, seed))
    start = 1
    if tune.get_checkpoint() is not None:
        with tune.get_checkpoint().as_directory() as folder:
            start = load_checkpoint(folder, model, optimizer) + 1
    for epoch in range(start, epochs + 1):
        model.train()
        generator = torch.Generator().manual_seed(seed * 1000 + epoch)  # same after a resume
        order = torch.randperm(len(y), generator=generator).to(device)
        total = 0.0
        for batch in order.split(batch_size):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val_loss = F.cross_entropy(logits, y_val).item()
            val_acc = (logits.argmax(1) == y_val).float().mean().item()
        if not math.isfinite(total) or not math.isfinite(val_loss):
            raise FloatingPointError(f"the loss diverged in epoch {epoch} (lr {config['lr']}).")
        with tempfile.TemporaryDirectory() as folder:
            save_checkpoint(folder, model, optimizer, epoch)
            tune.report({"val_acc": val_acc, "val_loss": val_loss,
                         "train_loss": total / len(y), "epoch": epoch},
                        checkpoint=tune.Checkpoint.from_directory(folder))
