from __future__ import annotations

import pytest
import torch

from spaces import get_space
from trainables.cells import OPS, Cell, CellCnnSettings, CellNetwork
from trainables.classifier import ClassifierRun
from trainables.data import DataSettings

from conftest import write_idx

BEST = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_op_keeps_the_shape(op):
    x = torch.randn(2, 8, 10, 10)
    assert OPS[op](8)(x).shape == x.shape


def test_cell_leaves_out_none_edges_and_handles_a_dead_node():
    space = get_space("nb201")
    cfg = space.from_arch("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|")
    cell = Cell(cfg, 8)
    assert set(cell.edges) == {"edge_2_0", "edge_3_2"}
    x = torch.randn(2, 8, 6, 6)
    assert cell(x).shape == x.shape


def test_network_skeleton_shapes():
    cfg = get_space("nb201").from_arch(BEST)
    net = CellNetwork(lambda c: Cell(cfg, c), in_channels=3, classes=10, channels=8,
                      cells_per_stage=2)
    assert len(net.cells) == 3 * 2 + 2  # cells plus two residual reductions
    assert net(torch.randn(3, 3, 32, 32)).shape == (3, 10)


def test_cell_cnn_trains_on_a_tiny_dataset(tmp_path):
    from trainables.cells import _factories

    root = write_idx(tmp_path / "fm", n_train=300, n_test=50)
    settings = CellCnnSettings(
        data=DataSettings(name="fashion_mnist", root=str(root), val_size=60), epochs=2,
        batch_size=32, channels=4, cells_per_stage=1, lr=0.05)
    cfg = get_space("nb201").from_arch(BEST)
    run = ClassifierRun(cfg, settings, torch.device("cpu"), **_factories(cfg, settings))
    _, loss0 = run.evaluate(run.x_val, run.splits.y_val)
    losses = [run.train_epoch() for _ in range(2)]
    _, loss = run.evaluate(run.x_val, run.splits.y_val)
    assert losses[1] < losses[0] and loss < loss0
