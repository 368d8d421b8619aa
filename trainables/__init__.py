"""Ray Tune trainables wrapping torch models, and the datasets they train on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from trainables import metrics
from trainables.cells import CellCnnSettings, evaluate_cell_cnn, train_cell_cnn
from trainables.cnn import CnnSettings, evaluate_cnn, train_cnn
from trainables.darts import DartsSettings, train_darts
from trainables.gan import GanSettings, render_gan, train_gan
from trainables.word2vec import Word2VecSettings, train_word2vec
from trainables.nb201 import Nb201Settings, train_nb201

__all__ = ["TRAINABLE_INFO", "TrainableInfo", "metrics"]


@dataclass(frozen=True)
class TrainableInfo:
    """A registered trainable: its function, settings record, default space and metric."""

    fn: Callable[..., None]
    settings: type
    space: str
    metric: str
    mode: str
    evaluate: Callable[[dict[str, Any], Any, str], dict[str, float]] | None = None
    also_spaces: tuple[str, ...] = ()  # other spaces whose configs it accepts
    # (config, settings, checkpoint dir, PNG path) -> path: a picture of the best trial's model
    render: Callable[[dict[str, Any], Any, str, str], Any] | None = None
    reports: tuple[str, ...] = ()  # the metrics it reports every epoch (a search may use any)
    # metric -> the setting (a file) without which it is never reported
    needs: dict[str, str] = field(default_factory=dict)
    # parameters a run can change while continuing another config's checkpoint (PBT, PB2):
    # optimiser settings, not what shapes the model or the data
    mutable: tuple[str, ...] = ()


_CLASSIFIER = (metrics.VAL_ACC, metrics.VAL_LOSS, metrics.TRAIN_LOSS, metrics.EPOCH,
               metrics.EPOCH_S, metrics.PARAMS, metrics.LR)

TRAINABLE_INFO: dict[str, TrainableInfo] = {
    "cifar_cnn": TrainableInfo(train_cnn, CnnSettings, "cifar_cnn", metrics.VAL_ACC, "max",
                               evaluate_cnn, also_spaces=("cifar_cnn_res",), reports=_CLASSIFIER,
                               mutable=("lr", "optimizer")),
    "cell_cnn": TrainableInfo(train_cell_cnn, CellCnnSettings, "nb201", metrics.VAL_ACC, "max",
                              evaluate_cell_cnn, reports=_CLASSIFIER),
    "nb201": TrainableInfo(train_nb201, Nb201Settings, "nb201", metrics.VAL_ACC, "max",
                           reports=(metrics.VAL_ACC, "train_time_s", "latency_s", "params_mb",
                                    metrics.EPOCH)),
    "darts": TrainableInfo(train_darts, DartsSettings, "darts", metrics.VAL_ACC, "max",
                           reports=(*_CLASSIFIER[:5], "nb201_val_acc", "skip_count", "beta")),
    "gan": TrainableInfo(train_gan, GanSettings, "gan", "fd", "min", render=render_gan,
                         reports=("fd", "cond_acc", "loss_d", "loss_g", metrics.EPOCH,
                                  metrics.EPOCH_S),
                         mutable=("lr_g", "lr_d", "beta1", "label_smoothing", "d_steps",
                                  "batch_size")),
    "word2vec": TrainableInfo(train_word2vec, Word2VecSettings, "word2vec", "heldout_loss",
                              "min", reports=("heldout_loss", "wordsim", "analogy_acc",
                                              "train_loss", "words_per_s", metrics.EPOCH,
                                              metrics.EPOCH_S),
                              needs={"wordsim": "wordsim", "analogy_acc": "analogies"},
                              mutable=("lr", "negatives", "window", "batch_size")),
}
