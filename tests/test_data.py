from __future__ import annotations

import logging

import pytest
import torch

from trainables.data import DataSettings, DatasetNotFound, load_splits, load_test, locate

from conftest import shared_data, write_cifar100, write_idx


def test_cifar100_real_loader_on_tiny_files_in_the_real_format(tmp_path, caplog):
    root = write_cifar100(tmp_path / "data")
    settings = DataSettings(name="cifar100", root=str(root), val_size=50)
    with caplog.at_level(logging.WARNING):
        splits = load_splits(settings, "cpu")
    assert "do not match the published checksums" in caplog.text
    assert splits.x_train.shape == (250, 3, 32, 32) and splits.x_val.shape == (50, 3, 32, 32)
    assert splits.classes == 100 and splits.y_train.dtype == torch.int64
    assert int(splits.y_train.max()) < 100
    # normalised with the train split's statistics
    assert torch.allclose(splits.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    x_test, y_test = load_test(settings, splits)
    assert x_test.shape == (100, 3, 32, 32) and y_test.shape == (100,)


def test_idx_gz_folder_is_unpacked_and_read_by_torchvision(tmp_path):
    root = write_idx(tmp_path / "fm", n_train=300, n_test=50)
    settings = DataSettings(name="fashion_mnist", root=str(root), val_size=0.2, train_size=100)
    splits = load_splits(settings, "cpu")
    assert splits.x_train.shape == (100, 1, 28, 28) and splits.x_val.shape == (60, 1, 28, 28)
    assert (root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_split_is_the_same_for_every_trial(tmp_path):
    root = write_idx(tmp_path / "fm", n_train=300, n_test=50)
    a = load_splits(DataSettings(name="mnist", root=str(root), val_size=40), "cpu")
    load_splits.cache_clear()
    b = load_splits(DataSettings(name="mnist", root=str(root), val_size=40), "cpu")
    assert torch.equal(a.y_val, b.y_val) and torch.equal(a.x_train, b.x_train)


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFound, match="apt-get install dataset-fashion-mnist"):
        locate(DataSettings(name="fashion_mnist", root=str(tmp_path)))
    with pytest.raises(DatasetNotFound, match="cifar-100-python"):
        locate(DataSettings(name="cifar100", root=str(tmp_path)))


def test_real_fashion_mnist_from_shared_data():
    root = shared_data("fashion-mnist")
    # the shared copy is read-only: files are unpacked into the cache instead
    splits = load_splits(DataSettings(name="fashion_mnist", root=str(root), val_size=10000,
                                      train_size=1000), "cpu")
    assert splits.x_train.shape == (1000, 1, 28, 28) and splits.x_val.shape[0] == 10000
    assert len(torch.unique(splits.y_val)) == 10


def test_image_size_averages_cifar_down_as_imagenet16_was_made(tmp_path):
    root = write_cifar100(tmp_path / "data")
    full = load_splits(DataSettings(name="cifar100", root=str(root), val_size=50))
    small = load_splits(DataSettings(name="cifar100", root=str(root), val_size=50,
                                     image_size=16))
    assert small.x_train.shape[1:] == (3, 16, 16) and small.x_val.shape[1:] == (3, 16, 16)
    assert torch.equal(small.y_train, full.y_train)  # the same split, the same labels
    # each pixel is the mean of a 2x2 block of the original (before normalisation)
    raw = full.x_train * full.std.view(1, -1, 1, 1) + full.mean.view(1, -1, 1, 1)
    boxed = torch.nn.functional.avg_pool2d(raw, 2)
    back = small.x_train * small.std.view(1, -1, 1, 1) + small.mean.view(1, -1, 1, 1)
    assert torch.allclose(back, boxed, atol=1e-4)
    test_x, _ = load_test(DataSettings(name="cifar100", root=str(root), val_size=50,
                                       image_size=16), small)
    assert test_x.shape[1:] == (3, 16, 16)


def test_image_size_larger_than_the_dataset_is_refused():
    with pytest.raises(ValueError, match="image_size"):
        DataSettings(name="fashion_mnist", image_size=32)
    with pytest.raises(ValueError, match="image_size"):
        DataSettings(name="cifar10", image_size=0)


def test_cifar10_jpeg_copy_is_written_as_the_real_pickles_and_loads(tmp_path):
    import io
    import sys
    import tarfile
    from pathlib import Path

    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from cifar10_jpeg import CLASSES, convert

    tarball = tmp_path / "cifar10-jpeg.tar.gz"
    rng = np.random.default_rng(0)
    with tarfile.open(tarball, "w:gz") as tar:
        for split, n in (("train", 3), ("test", 1)):
            for name in CLASSES:
                for i in range(n):
                    buf = io.BytesIO()
                    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                        buf, format="JPEG")
                    info = tarfile.TarInfo(f"cifar10-jpeg/{split}/{name}/{i:04d}.jpg")
                    info.size = len(buf.getvalue())
                    tar.addfile(info, io.BytesIO(buf.getvalue()))
    root = convert(tarball, tmp_path / "data")
    splits = load_splits(DataSettings(name="cifar10", root=str(root), val_size=10,
                                      image_size=16))
    assert splits.x_train.shape == (20, 3, 16, 16) and splits.classes == 10
    assert sorted(torch.cat([splits.y_train, splits.y_val]).tolist()) == sorted(
        list(range(10)) * 3)  # every class's images, labelled in the published order
    assert convert(tarball, tmp_path / "data") == root  # written once
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo("cifar10-jpeg/train/unicorn/0.jpg")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ValueError, match="unicorn.*airplane"):
        convert(bad, tmp_path / "other")
