"""CIFAR-10 from the JPEG copy in ``../shared/data`` as the real ``cifar-10-batches-py`` pickles.

hpnas reads CIFAR-10 with torchvision's loader, which wants the published pickle batches. The
machines that run the benchmarks hold CIFAR-10 only as JPEG folders (``train/<class>/*.jpg``,
``test/<class>/*.jpg``, lossy, quality about 75), so this writes the same images in the real
format once (five training batches of 10,000, a test batch, ``batches.meta``) and returns the
folder to use as ``data.root``. Accuracies on it are relative only: the files differ from the
published ones, and hpnas's loader says so in a warning.

    .venv/bin/python benchmarks/cifar10_jpeg.py            # prints the data.root it wrote
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np

TARBALL = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"
# The published label order (batches.meta's label_names).
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")


def default_root() -> Path:
    cache = Path(os.environ.get("HPNAS_CACHE", Path.home() / ".cache" / "hpnas"))
    return cache / "cifar10-from-jpeg"


def convert(tarball: Path = TARBALL, root: Path | None = None) -> Path:
    """Write (once) and return a data root holding ``cifar-10-batches-py`` made from ``tarball``."""
    from PIL import Image

    root = root or default_root()
    folder = root / "cifar-10-batches-py"
    if (folder / "batches.meta").is_file():
        return root
    if not tarball.is_file():
        sys.exit(f"CIFAR-10 JPEG copy not found at {tarball}; it lives in ../shared/data beside "
                 "the checkout on development and CI machines.")
    images: dict[str, list[tuple[str, int, np.ndarray]]] = {"train": [], "test": []}
    with tarfile.open(tarball) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) != 4 or parts[3].startswith("."):
                continue
            if parts[1] not in images or parts[2] not in CLASSES:
                raise ValueError(f"{member.name} in {tarball} is not <top>/train|test/<class>/"
                                 f"<image>, with <class> one of {', '.join(CLASSES)}")
            split, label = parts[1], CLASSES.index(parts[2])
            with Image.open(io.BytesIO(tar.extractfile(member).read())) as img:  # type: ignore[union-attr]
                pixels = np.asarray(img.convert("RGB"), dtype=np.uint8)
            if pixels.shape != (32, 32, 3):
                raise ValueError(f"{member.name} is {pixels.shape}, not 32x32 RGB")
            images[split].append((member.name, label, pixels))
    for split, rows in images.items():
        if not rows:
            raise ValueError(f"{tarball} holds no {split}/<class>/*.jpg images")
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)  # the published batches are shuffled, not sorted by class
    for split, names in (("train", [f"data_batch_{i}" for i in range(1, 6)]),
                         ("test", ["test_batch"])):
        rows = sorted(images[split])
        order = rng.permutation(len(rows))
        for name, chunk in zip(names, np.array_split(order, len(names))):
            data = np.stack([rows[i][2].transpose(2, 0, 1).reshape(-1) for i in chunk])
            with open(tmp / name, "wb") as f:
                pickle.dump({"batch_label": name, "labels": [rows[i][1] for i in chunk],
                             "data": data, "filenames": [Path(rows[i][0]).name for i in chunk]},
                            f, protocol=4)
    with open(tmp / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CLASSES),
                     "num_cases_per_batch": -(-len(images["train"]) // 5), "num_vis": 3072},
                    f, protocol=4)
    tmp.rename(folder)
    return root


if __name__ == "__main__":
    print(convert())
