"""The conditional GAN: shapes, the quality metric, training, and an end-to-end run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

from spaces import get_space
from trainables.data import DataSettings
from trainables.gan import (
    SEED_CONFIG, Discriminator, GanRun, GanSettings, Generator, input_dimensions,
)
from trainables.gan_metric import QualityMeter

from conftest import write_idx


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("HPNAS_CACHE", str(tmp_path / "cache"))
    root = write_idx(tmp_path / "mnist", n_train=600, n_test=100)
    return DataSettings(name="mnist", root=str(root), val_size=200)


def test_input_dimensions_follow_the_seed():
    assert input_dimensions(64, 1, 10) == (74, 11)


@pytest.mark.parametrize("conditioning", ["concat", "adain"])
def test_shapes(conditioning):
    gen = Generator(z_dim=64, n_classes=10, channels=1, hidden=16, conditioning=conditioning)
    labels = torch.arange(10)
    images = gen(torch.randn(10, 64), labels)
    assert images.shape == (10, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1  # Tanh
    disc = Discriminator(n_classes=10, channels=1, hidden=16)
    assert disc.blocks[0][0].in_channels == 11
    assert disc(images, labels).shape == (10,)


def test_every_space_config_builds():
    space = get_space("gan")
    for seed in range(10):
        cfg = space.sample(np.random.default_rng(seed))
        gen = Generator(z_dim=cfg["z_dim"], n_classes=10, channels=1, hidden=cfg["hidden"],
                        conditioning=cfg["conditioning"])
        assert gen(torch.randn(2, cfg["z_dim"]), torch.tensor([0, 9])).shape == (2, 1, 28, 28)
    space.validate(SEED_CONFIG)


def test_metric_is_near_zero_for_real_and_large_for_noise(tiny):
    meter = QualityMeter.for_data(tiny, torch.device("cpu"))
    run = GanRun(SEED_CONFIG, GanSettings(data=tiny, epochs=1, eval_samples=200),
                 torch.device("cpu"))
    real = meter.measure(lambda labels: run.x[labels * 0 + torch.arange(len(labels))],
                         200, 10)
    noise = meter.measure(lambda labels: torch.rand(len(labels), 1, 28, 28) * 2 - 1, 200, 10)
    assert real["fd"] < 0.1 * noise["fd"]
    assert noise["cond_acc"] < 0.3
    # the real images' own labels are what the classifier sees in them
    feats, logits = meter.features(run.x_val)
    assert float((logits.argmax(1) == run.y_val).float().mean()) > 0.9


def test_one_epoch_reduces_the_discriminator_loss(tiny):
    run = GanRun({**SEED_CONFIG, "batch_size": 64},
                 GanSettings(data=tiny, epochs=1, eval_samples=100), torch.device("cpu"))
    noise = torch.randn(200, SEED_CONFIG["z_dim"], generator=torch.Generator().manual_seed(1))
    real, labels = run.x[:200], run.y[:200]

    def d_loss() -> float:  # batch statistics, as the players see each other in training
        with torch.no_grad():
            d_real = run.disc(real, labels)
            d_fake = run.disc(run.gen(noise, labels), labels)
        return float(F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                     + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))

    before = d_loss()
    run.train_epoch()
    assert d_loss() < before


@pytest.mark.ray
@pytest.mark.slow
def test_hpnas_run_gan_writes_grids_and_parquet(tmp_path, tiny, local_ray, capsys):
    from cluster.cli import main

    path = tmp_path / "gan.yaml"
    path.write_text(yaml.safe_dump({
        "name": "gan-e2e", "trainable": "gan", "searcher": "random", "scheduler": "fifo",
        "samples": 2, "max_concurrent_trials": 2,
        "data": {"name": "mnist", "root": tiny.root, "val_size": 200},
        "train": {"epochs": 2, "eval_samples": 100, "images_every": 1},
        "storage": str(tmp_path / "results")}))
    assert main(["run", str(path), "--progress-interval", "1000"]) == 0
    directory = tmp_path / "results" / "gan-e2e"
    assert (directory / "best_grid.png").stat().st_size > 1000
    trials = pd.read_parquet(directory / "trials.parquet")
    iterations = pd.read_parquet(directory / "iterations.parquet")
    assert len(trials) == 2 and set(trials["status"]) == {"complete"}
    assert {"fd", "cond_acc", "loss_d", "loss_g"} <= set(iterations.columns)
    assert len(list(directory.glob("*/images/epoch_002.png"))) == 2
    assert "by fd (min)" in capsys.readouterr().out
    Path(directory / "best_grid.png").unlink()
