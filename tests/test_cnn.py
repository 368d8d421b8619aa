from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from spaces import get_space
from trainables.cnn import CnnSettings, build_net, cnn_run
from trainables.data import DataSettings

from conftest import write_idx


@pytest.mark.parametrize("convs,fcs,channels,size", [
    (1, 1, 3, 32), (4, 3, 3, 32), (2, 2, 1, 28), (4, 1, 1, 28)])
def test_net_shapes_follow_the_seed(convs, fcs, channels, size):
    cfg = {"num_conv_layers": convs, "num_fc_layers": fcs, "optimizer": "SGD", "lr": 0.01}
    cfg.update({f"num_filter_{i}": 40 + 8 * i for i in range(convs)})
    cfg.update({f"num_neurons_{i}": 32 for i in range(fcs - 1)})
    get_space("cifar_cnn").validate(cfg)
    net = build_net(cfg, in_channels=channels, in_size=size, classes=100)
    assert len(net.convs) == convs and len(net.fcs) == fcs
    assert all(c.kernel_size == (3, 3) and c.padding == (0, 0) for c in net.convs)
    out = size - 2 * convs
    assert net.fcs[0].in_features == cfg[f"num_filter_{convs - 1}"] * out * out
    assert net(torch.zeros(5, channels, size, size)).shape == (5, 100)


def _run(tmp_path, **settings):
    root = write_idx(tmp_path / "fm", n_train=600, n_test=100)
    cfg = {"num_conv_layers": 2, "num_fc_layers": 2, "num_filter_0": 40, "num_filter_1": 40,
           "num_neurons_0": 32, "optimizer": "Adam", "lr": 0.003}
    s = CnnSettings(data=DataSettings(name="fashion_mnist", root=str(root), val_size=100),
                    epochs=3, batch_size=32, **settings)
    return cnn_run(cfg, s, torch.device("cpu"))


def test_training_learns_the_planted_classes(tmp_path):
    run = _run(tmp_path)
    acc0, loss0 = run.evaluate(run.x_val, run.splits.y_val)
    losses = [run.train_epoch() for _ in range(3)]
    acc, loss = run.evaluate(run.x_val, run.splits.y_val)
    assert losses[-1] < losses[0] and loss < loss0
    assert acc > 0.8 > acc0


def test_checkpoint_state_resumes_identically(tmp_path):
    a = _run(tmp_path)
    a.train_epoch()
    buffer = io.BytesIO()  # through bytes, as a real checkpoint is
    torch.save(a.state(), buffer)
    buffer.seek(0)
    b = _run(tmp_path)
    b.load(torch.load(buffer, weights_only=False))
    assert b.epoch == 1
    la, lb = a.train_epoch(), b.train_epoch()
    assert la == pytest.approx(lb, rel=1e-5)
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.allclose(pa, pb, atol=1e-5)


def test_warmup_cosine_schedule(tmp_path):
    run = _run(tmp_path, lr_schedule="warmup_cosine", warmup_epochs=1.0)
    lrs = []
    for _ in range(3):
        run.train_epoch()
        lrs.append(run.optimizer.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.003, rel=0.05)  # warmed up to the searched lr
    assert lrs[0] > lrs[1] > lrs[2] >= 0  # then decays
    assert np.isfinite(lrs).all()
