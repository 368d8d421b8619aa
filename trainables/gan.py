"""The seed's conditional GAN (a DCGAN for 28x28 digits) as a trainable, with a quality metric.

Model, as the seed builds it: generator blocks ``ConvTranspose2d + BatchNorm2d + ReLU`` and a
final ``ConvTranspose2d + Tanh``; discriminator blocks ``Conv2d + BatchNorm2d + LeakyReLU(0.2)``
and a final ``Conv2d`` alone; labels one-hot; the generator reads noise and one-hot concatenated
(``z_dim + n_classes`` inputs), the discriminator the image with one-hot maps as extra channels
(``channels + n_classes``); ``BCEWithLogitsLoss``. The seed also describes StyleGAN's way to
condition: ``conditioning: adain`` maps noise and label through an MLP (the mapping network) to
a style ``w``, and each generator block's BatchNorm becomes AdaIN, ``y_s * (x - mu) / sigma +
y_b`` with ``(y_s, y_b)`` a learned affine map ("A") of ``w``.

Quality, per epoch (:mod:`trainables.gan_metric`): the Frechet distance between real validation
images and generated ones in the feature space of a small classifier trained once per dataset
and cached (``fd``, lower is better, the search metric), and conditional accuracy, the share of
generated images that classifier assigns to the label they were conditioned on (``cond_acc``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spaces.options import check_range, parse_options
from trainables import metrics as M
from trainables.data import DataSettings, load_splits
from trainables.gan_metric import QualityMeter
from trainables.loop import batches, load_optimizer, setup_device, train_epochs

__all__ = ["Discriminator", "GanSettings", "Generator", "render_gan", "save_grid", "train_gan"]


def make_gen_block(c_in: int, c_out: int, kernel: int = 3, stride: int = 2,
                   final: bool = False) -> nn.Sequential:
    """The seed's generator block: ConvTranspose2d, BatchNorm2d, ReLU; final: Tanh."""
    if final:
        return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, kernel, stride), nn.Tanh())
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, kernel, stride), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


def make_disc_block(c_in: int, c_out: int, kernel: int = 4, stride: int = 2,
                    final: bool = False) -> nn.Sequential:
    """The seed's discriminator block: Conv2d, BatchNorm2d, LeakyReLU(0.2); final: Conv2d."""
    if final:
        return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride))
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.2, inplace=True))


def input_dimensions(z_dim: int, channels: int, n_classes: int) -> tuple[int, int]:
    """The seed's ``get_input_dimensions``: (generator input, discriminator channels)."""
    return z_dim + n_classes, channels + n_classes


class AdaIN(nn.Module):
    """Adaptive instance norm: ``y_s * (x - mu) / sigma + y_b``, (y_s, y_b) = A(w)."""

    def __init__(self, channels: int, w_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels)
        self.affine = nn.Linear(w_dim, 2 * channels)  # StyleGAN's "A" block
        nn.init.zeros_(self.affine.weight)
        with torch.no_grad():
            self.affine.bias[:channels] = 1.0  # start as plain instance norm
            self.affine.bias[channels:] = 0.0

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        scale, bias = self.affine(w).chunk(2, dim=1)
        return scale[..., None, None] * self.norm(x) + bias[..., None, None]


class Generator(nn.Module):
    """28x28 generator: 1 -> 3 -> 6 -> 13 -> 28 pixels; concat or AdaIN conditioning."""

    def __init__(self, *, z_dim: int, n_classes: int, channels: int, hidden: int,
                 conditioning: str = "concat") -> None:
        super().__init__()
        self.z_dim, self.n_classes, self.conditioning = z_dim, n_classes, conditioning
        widths = [hidden * 4, hidden * 2, hidden]
        kernels, strides = [3, 4, 3, 4], [2, 1, 2, 2]
        if conditioning == "concat":
            c_in, _ = input_dimensions(z_dim, channels, n_classes)
            self.blocks = nn.Sequential(
                *[make_gen_block(a, b, k, s) for a, b, k, s in
                  zip([c_in, *widths[:-1]], widths, kernels, strides)],
                make_gen_block(widths[-1], channels, kernels[-1], strides[-1], final=True))
        elif conditioning == "adain":
            w_dim = hidden * 2
            self.mapping = nn.Sequential(  # StyleGAN's mapping network, label-conditioned
                nn.Linear(z_dim + n_classes, w_dim), nn.LeakyReLU(0.2),
                nn.Linear(w_dim, w_dim), nn.LeakyReLU(0.2), nn.Linear(w_dim, w_dim))
            self.convs = nn.ModuleList(
                nn.ConvTranspose2d(a, b, k, s) for a, b, k, s in
                zip([z_dim, *widths[:-1]], widths, kernels, strides))
            self.norms = nn.ModuleList(AdaIN(c, w_dim) for c in widths)
            self.final = make_gen_block(widths[-1], channels, kernels[-1], strides[-1],
                                        final=True)
        else:
            raise ValueError(f"`conditioning` is {conditioning!r}, but must be 'concat' or "
                             "'adain'.")

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(labels, self.n_classes).float()
        if self.conditioning == "concat":
            return self.blocks(torch.cat([noise, one_hot], dim=1)[..., None, None])
        w = self.mapping(torch.cat([noise, one_hot], dim=1))
        x = noise[..., None, None]
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x), w))
        return self.final(x)


class Discriminator(nn.Module):
    """28x28 discriminator over the image with one-hot label maps as extra channels."""

    def __init__(self, *, n_classes: int, channels: int, hidden: int) -> None:
        super().__init__()
        self.n_classes = n_classes
        _, c_in = input_dimensions(0, channels, n_classes)
        self.blocks = nn.Sequential(make_disc_block(c_in, hidden),
                                    make_disc_block(hidden, hidden * 2),
                                    make_disc_block(hidden * 2, 1, final=True))

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        maps = F.one_hot(labels, self.n_classes).float()[..., None, None].expand(
            -1, -1, *images.shape[2:])
        return self.blocks(torch.cat([images, maps], dim=1)).view(len(images))


@dataclass(frozen=True)
class GanSettings:
    """Fixed settings of a GAN trial; the searched ones come from the ``gan`` space."""

    data: DataSettings = field(default_factory=lambda: DataSettings(name="mnist"))
    epochs: int = 10
    eval_samples: int = 2000  # generated images per quality measurement
    images_every: int = 0  # also save a PNG grid every this many epochs (0: never)
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, low=1)
        check_range("eval_samples", self.eval_samples, low=100)
        check_range("images_every", self.images_every, low=0)
        if self.data.image_size not in (None, 28):
            raise ValueError(f"`data.image_size` is {self.data.image_size}, but the GAN's generator and its "
                             "quality meter work on 28x28 images; leave image_size out.")


SEED_CONFIG = {"z_dim": 64, "hidden": 64, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5,
               "batch_size": 128, "d_steps": 1, "label_smoothing": 0.0,
               "conditioning": "concat"}


class GanRun:
    """Generator, discriminator, their Adam optimisers, data in [-1, 1] on the device."""

    def __init__(self, config: dict[str, Any], settings: GanSettings,
                 device: torch.device) -> None:
        self.config, self.settings, self.device = config, settings, device
        splits = load_splits(settings.data, str(device))
        # undo the standardisation: the generator's Tanh produces [-1, 1]
        mean, std = splits.mean.to(device).view(1, -1, 1, 1), splits.std.to(device).view(
            1, -1, 1, 1)
        self.x = (splits.x_train * std + mean) * 2 - 1
        self.y = splits.y_train
        self.x_val = (splits.x_val * std + mean) * 2 - 1
        self.y_val = splits.y_val
        self.classes = splits.classes
        c = splits.shape[0]
        torch.manual_seed(settings.seed)
        self.gen = Generator(z_dim=int(config["z_dim"]), n_classes=self.classes, channels=c,
                             hidden=int(config["hidden"]),
                             conditioning=str(config["conditioning"])).to(device)
        self.disc = Discriminator(n_classes=self.classes, channels=c,
                                  hidden=int(config["hidden"])).to(device)
        betas = (float(config["beta1"]), 0.999)
        self.opt_g = torch.optim.Adam(self.gen.parameters(), lr=float(config["lr_g"]),
                                      betas=betas)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=float(config["lr_d"]),
                                      betas=betas)
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.epoch = 0

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, int(self.config["z_dim"]), generator=self.generator).to(
            self.device)

    def state(self) -> dict[str, Any]:
        return {"gen": self.gen.state_dict(), "disc": self.disc.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "generator": self.generator.get_state(), "epoch": self.epoch}

    def load(self, state: dict[str, Any]) -> None:
        self.gen.load_state_dict(state["gen"])
        self.disc.load_state_dict(state["disc"])
        load_optimizer(self.opt_g, state["opt_g"])  # this config's rates and betas kept (PBT)
        load_optimizer(self.opt_d, state["opt_d"])
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])

    def train_epoch(self) -> tuple[float, float]:
        """One pass; mean discriminator and generator losses."""
        self.gen.train()
        self.disc.train()
        smooth = float(self.config["label_smoothing"])
        d_total = g_total = torch.zeros((), device=self.device)
        steps = 0
        for step, idx in enumerate(batches(len(self.y), int(self.config["batch_size"]),
                                           device=self.device, generator=self.generator)):
            real, labels = self.x[idx], self.y[idx]
            fake = self.gen(self.noise(len(idx)), labels)
            d_real = self.disc(real, labels)
            d_fake = self.disc(fake.detach(), labels)
            loss_d = 0.5 * (
                F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, 1 - smooth))
                + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            d_total = d_total + loss_d.detach()
            steps += 1
            if step % int(self.config["d_steps"]):
                continue  # the discriminator takes d_steps steps per generator step
            d_gen = self.disc(fake, labels)
            loss_g = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            g_total = g_total + loss_g.detach()
        g_steps = max(1, -(-steps // int(self.config["d_steps"])))
        self.epoch += 1
        return float(d_total) / max(1, steps), float(g_total) / g_steps

    @torch.no_grad()
    def sample(self, labels: torch.Tensor) -> torch.Tensor:
        self.gen.eval()
        return self.gen(self.noise(len(labels)), labels.to(self.device))


def save_grid(run: GanRun, path: Path, per_class: int = 10) -> Path:
    """A PNG grid of generated images: one row per class."""
    from torchvision.utils import save_image

    labels = torch.arange(run.classes).repeat_interleave(per_class)
    images = run.sample(labels).cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image((images + 1) / 2, path, nrow=per_class)
    return path


def train_gan(config: dict[str, Any], settings: dict[str, Any] | GanSettings | None = None
              ) -> None:
    """Ray Tune trainable: the conditional GAN, one report (and checkpoint) per epoch."""
    if not isinstance(settings, GanSettings):
        settings = parse_options(GanSettings, settings or {}, "train")
    device = setup_device()
    run = GanRun(config, settings, device)
    meter = QualityMeter.for_data(settings.data, device)

    def one_epoch() -> dict[str, Any]:
        start = time.perf_counter()
        loss_d, loss_g = run.train_epoch()
        seconds = time.perf_counter() - start
        quality = meter.measure(run.sample, settings.eval_samples, run.classes)
        if settings.images_every and run.epoch % settings.images_every == 0:
            from ray import tune

            save_grid(run, Path(tune.get_context().get_trial_dir()) / "images" /
                      f"epoch_{run.epoch:03d}.png")
        return {**quality, "loss_d": loss_d, "loss_g": loss_g, M.EPOCH: run.epoch,
                M.EPOCH_S: seconds}

    train_epochs(run, settings.epochs, one_epoch)


def render_gan(config: dict[str, Any], settings: dict[str, Any] | GanSettings,
               checkpoint_dir: str | Path, out: str | Path) -> Path:
    """The PNG grid (one row per class) of a trained trial's generator."""
    from trainables.loop import read_state

    if not isinstance(settings, GanSettings):
        settings = parse_options(GanSettings, settings, "train")
    run = GanRun(config, settings, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    run.load(read_state(Path(checkpoint_dir)))
    return save_grid(run, Path(out))
