"""Metric keys reported by the trainables (one place, so searchers and results agree)."""

from __future__ import annotations

__all__ = [
    "EPOCH", "EPOCH_S", "LR", "PARAMS", "TEST_ACC", "TEST_LOSS", "TRAIN_LOSS", "VAL_ACC",
    "VAL_LOSS",
]

VAL_ACC = "val_acc"  # validation accuracy in [0, 1]: the classifiers' search metric (max)
VAL_LOSS = "val_loss"  # mean cross-entropy on the validation split
TRAIN_LOSS = "train_loss"  # mean cross-entropy over the epoch's training batches
TEST_ACC = "test_acc"  # only for final models (`hpnas evaluate`), never searched on
TEST_LOSS = "test_loss"
EPOCH = "epoch"  # 1-based epoch just finished
EPOCH_S = "epoch_s"  # wall seconds of the epoch (training and validation)
PARAMS = "params"  # trainable parameter count
LR = "lr"  # learning rate at the end of the epoch
