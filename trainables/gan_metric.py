"""GAN quality for search: Frechet distance and conditional accuracy in a small classifier's space.

The feature network is a small CNN trained once per dataset on its real training images (in
[-1, 1], as the generator produces them) and cached on disk (``$HPNAS_CACHE/gan_features``), so
every trial of every experiment measures with the same ruler. The Frechet distance is FID's
formula, ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))``, over its 128-d penultimate
features, between the real validation split and generated images with uniformly drawn labels;
lower is better. Conditional accuracy is the share of generated images the classifier assigns to
the label they were conditioned on.
"""

from __future__ import annotations

import functools
import hashlib
import os
from typing import Callable

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from trainables.data import DataSettings, _cache_home, load_splits
from trainables.loop import batches

__all__ = ["FeatureNet", "QualityMeter", "frechet_distance"]


class FeatureNet(nn.Module):
    """conv-pool, conv-pool, 128-d features, classifier."""

    def __init__(self, channels: int, size: int, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        side = ((size - 2) // 2 - 2) // 2
        self.features = nn.Sequential(nn.Linear(64 * side * side, 128), nn.ReLU())
        self.head = nn.Linear(128, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(self.body(x))
        return f, self.head(f)


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray
                     ) -> float:
    # a small ridge keeps sqrtm stable when ReLU features leave a covariance singular
    ridge = 1e-6 * np.eye(len(s1))
    covmean, _ = scipy.linalg.sqrtm((s1 + ridge) @ (s2 + ridge), disp=False)
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def _stats(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    f = features.double().cpu().numpy()
    return f.mean(0), np.cov(f, rowvar=False)


def _to_gan_range(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x * std.view(1, -1, 1, 1).to(x.device) + mean.view(1, -1, 1, 1).to(x.device)) * 2 - 1


class QualityMeter:
    """Measures generated images against a dataset's real validation images."""

    def __init__(self, net: FeatureNet, real: torch.Tensor, device: torch.device) -> None:
        self.net = net.to(device).eval()
        self.device = device
        self.real_mu, self.real_cov = _stats(self.features(real)[0])

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, logits = [], []
        for idx in batches(len(x), 500, device=x.device):
            f, lg = self.net(x[idx].to(self.device))
            feats.append(f)
            logits.append(lg)
        return torch.cat(feats), torch.cat(logits)

    def measure(self, sample: Callable[[torch.Tensor], torch.Tensor], n: int,
                classes: int) -> dict[str, float]:
        """``fd`` and ``cond_acc`` of ``n`` images from ``sample(labels)``."""
        labels = torch.arange(n) % classes
        images = torch.cat([sample(labels[i:i + 500]) for i in range(0, n, 500)])
        feats, logits = self.features(images)
        mu, cov = _stats(feats)
        return {"fd": frechet_distance(self.real_mu, self.real_cov, mu, cov),
                "cond_acc": float((logits.argmax(1).cpu() == labels).float().mean())}

    @staticmethod
    @functools.lru_cache(maxsize=2)
    def for_data(settings: DataSettings, device: torch.device) -> QualityMeter:
        """The cached meter of a dataset (the feature net trained on first use)."""
        splits = load_splits(settings, str(device))
        c, h, _ = splits.shape
        x = _to_gan_range(splits.x_train, splits.mean, splits.std)
        real = _to_gan_range(splits.x_val, splits.mean, splits.std)
        key = hashlib.sha1(repr((settings.name, settings.root, settings.train_size,
                                 settings.val_size, settings.split_seed)
                                + ((settings.image_size,) if settings.image_size else ())
                                ).encode()).hexdigest()
        path = _cache_home() / "gan_features" / f"{settings.name}-{key[:12]}.pt"
        with torch.random.fork_rng(devices=[]):  # the same ruler whatever ran before
            torch.manual_seed(0)
            net = FeatureNet(c, h, splits.classes)
        if path.is_file():
            net.load_state_dict(torch.load(path, map_location="cpu"))
        else:
            _train_features(net, x, splits.y_train, device)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save(net.state_dict(), tmp)
            os.replace(tmp, path)  # atomic: concurrent trials never read half a file
        return QualityMeter(net, real, device)


def _train_features(net: FeatureNet, x: torch.Tensor, y: torch.Tensor, device: torch.device,
                    epochs: int = 2) -> None:
    net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for idx in batches(len(y), 128, device=x.device, generator=generator):
            loss = F.cross_entropy(net(x[idx].to(device))[1], y[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    net.eval()

