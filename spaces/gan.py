"""The conditional GAN's search space: sizes, both players' optimisers, the training game, and
how the generator is conditioned (the seed's concatenated one-hot, or StyleGAN-style AdaIN)."""

from __future__ import annotations

from spaces.space import Categorical, Float, Space

__all__ = ["gan_space"]


def gan_space() -> Space:
    return Space("gan", (
        Categorical("z_dim", (32, 64, 100)),
        Categorical("hidden", (32, 64)),
        Float("lr_g", 5e-5, 2e-3, log=True),
        Float("lr_d", 5e-5, 2e-3, log=True),
        Categorical("beta1", (0.0, 0.5, 0.9)),
        Categorical("batch_size", (64, 128, 256)),
        Categorical("d_steps", (1, 2)),  # discriminator steps per generator step
        Categorical("label_smoothing", (0.0, 0.1)),  # one-sided, on real labels
        Categorical("conditioning", ("concat", "adain")),
    ))
