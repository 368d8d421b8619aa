"""Trainable throughput: our CNN epoch vs the seed's DataLoader loop, same model, same data.

Model: the seed's CNN at its largest (4 conv layers of 64 filters, 1 linear layer, 100 classes).
Data: CIFAR-100 files in the real ``cifar-100-python`` format (written here with random pixels,
since CIFAR-100 is not obtainable offline; pixel values do not change the arithmetic).
The seed's loop: ``torchvision.datasets.CIFAR100(transform=ToTensor())`` in a default
``DataLoader`` (PIL image per item, no workers), ``.to(device)`` per batch, ``zero_grad``,
forward, loss, backward, step; then the validation pass the same way. Ours: ``CnnRun`` from
``trainables.classifier`` (the trainable's own code): the split on the device as one tensor, index
batches, channels-last, large-batch ``inference_mode`` validation, bf16 autocast on GPU.

Each variant runs one warm-up epoch, then ``--repeats`` timed epochs (train + validation); the
table gives the median images per second (training images / epoch seconds) and the ratio to the
seed's loop at the same batch size, all measured in this one run.

    .venv/bin/python benchmarks/throughput.py            # CPU, 5,000 train + 1,000 val images
    .venv/bin/python benchmarks/throughput.py --device cuda --train 50000 --val 10000
"""

from __future__ import annotations

import argparse
import logging
import pickle
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from trainables.cnn import CnnSettings, build_net, cnn_run
from trainables.data import DataSettings

logging.getLogger("trainables.data").setLevel(logging.ERROR)  # random pixels: no MD5 match

CONFIG = {"num_conv_layers": 4, "num_fc_layers": 1, "num_filter_0": 64, "num_filter_1": 64,
          "num_filter_2": 64, "num_filter_3": 64, "optimizer": "SGD", "lr": 0.008}


def write_cifar100(root: Path, n_train: int, n_test: int) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = rng.integers(100, size=n)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
                         "fine_labels": fine.tolist(), "coarse_labels": (fine // 5).tolist(),
                         "filenames": [f"{i}.png" for i in range(n)]}, f, protocol=2)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [str(i) for i in range(100)],
                     "coarse_label_names": [str(i) for i in range(20)]}, f, protocol=2)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def seed_epoch_fn(root: Path, batch: int, device: torch.device, n_train: int, n_val: int):
    """The seed's loop, as in the seed document (DataLoader over PIL images, ToTensor)."""
    import torchvision
    import torchvision.transforms as T

    from trainables.data import _lenient_cifar

    dataset = _lenient_cifar(torchvision.datasets.CIFAR100)(
        root=str(root), train=True, transform=T.ToTensor())
    train = torch.utils.data.Subset(dataset, range(n_train))
    val = torch.utils.data.Subset(dataset, range(n_train, n_train + n_val))
    train_loader = torch.utils.data.DataLoader(train, batch_size=batch, shuffle=True)
    val_loader = torch.utils.data.DataLoader(val, batch_size=batch, shuffle=False)
    torch.manual_seed(0)
    model = build_net(CONFIG, in_channels=3, in_size=32, classes=100).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=CONFIG["lr"])
    criterion = torch.nn.CrossEntropyLoss()

    def epoch() -> None:
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(x.to(device)), y.to(device))
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val_loader:
                _, predicted = torch.max(model(x.to(device)).data, 1)
                correct += (predicted == y.to(device)).sum().item()

    return epoch


def ours_epoch_fn(root: Path, batch: int, device: torch.device, n_train: int, n_val: int,
                  **settings):
    data = DataSettings(name="cifar100", root=str(root), train_size=n_train, val_size=n_val)
    run = cnn_run(CONFIG, CnnSettings(data=data, batch_size=batch, epochs=100, **settings),
                  device)

    def epoch() -> None:
        run.train_epoch()
        run.evaluate(run.x_val, run.splits.y_val)

    return epoch


def measure(epoch, device: torch.device, repeats: int) -> float:
    epoch()  # warm-up: allocator, cuDNN autotuning, caches
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        epoch()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--train", type=int, default=5000)
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {device}"
          + (f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda" else ""))
    from trainables.loop import bf16_native

    print(f"# native bf16 on this device: {bf16_native(device)}")
    print(f"# one epoch = {args.train} training images + a validation pass over {args.val}; "
          f"median of {args.repeats} after one warm-up epoch")
    variants = [
        ("seed loop (DataLoader, ToTensor)", lambda r, b: seed_epoch_fn(
            r, b, device, args.train, args.val)),
        ("ours, fp32, NCHW (device-resident data only)", lambda r, b: ours_epoch_fn(
            r, b, device, args.train, args.val, channels_last=False, amp=False)),
        ("ours, fp32, channels-last", lambda r, b: ours_epoch_fn(
            r, b, device, args.train, args.val, amp=False)),
        ("ours, default (bf16 autocast, channels-last)", lambda r, b: ours_epoch_fn(
            r, b, device, args.train, args.val)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_cifar100(root, args.train + args.val, 10)
        print("\n| batch | variant | images/s | vs seed |\n|---:|---|---:|---:|")
        for batch in args.batches:
            base = None
            for name, make in variants:
                seconds = measure(make(root, batch), device, args.repeats)
                rate = args.train / seconds
                base = base or rate
                print(f"| {batch} | {name} | {rate:,.0f} | {rate / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
