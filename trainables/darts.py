"""DARTS (Liu et al. 2019, "DARTS: Differentiable Architecture Search") on the NAS-Bench-201 cell.

The supernet is NAS-Bench-201's skeleton (:class:`~trainables.cells.CellNetwork`) whose cells put
a *mixed op* on every edge: the softmax of that edge's architecture weights ``alpha`` times each
op's output, summed (ops from the one table :data:`~trainables.cells.OPS`). The alphas are owned
by :class:`Architect`, the search step, and passed to the network in ``forward``; the network
holds only the weights ``w``.

Bilevel optimisation: ``w`` on one half of the training split (SGD, momentum, cosine decay),
``alpha`` on the other half (Adam), alternating one step each. First order uses
``grad_alpha L_val(w, alpha)``; second order unrolls one virtual step
``w' = w - xi grad_w L_train(w, alpha)`` and uses

    grad_alpha L_val(w', alpha) - xi * (grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)) / (2 eps)

with ``w+- = w +- eps grad_w' L_val(w', alpha)`` and ``eps = 0.01 / ||grad_w' L_val||`` (the
paper's finite-difference Hessian-vector product).

The derived genotype is the argmax op per edge (NAS-Bench-201's rule, ``none`` included), as an
arch string. Plain DARTS is known to collapse on this space to cells of skip connections and
``none`` (15.61 on CIFAR-100 in NAS-Bench-201's paper). Three remedies are selectable:

* ``early_stop`` (DARTS+, Liang et al. 2019): stop the search when the derived cell holds
  ``max_skip`` or more skip connections, and keep the genotype of the epoch before;
* ``aux_skip`` (DARTS-, Chu et al. 2021): an auxiliary skip connection ``beta * x`` on every edge,
  ``beta`` decaying linearly from 1 (first epoch) to ``1 / epochs`` (last epoch), as the authors'
  code does, which takes over the skip's role of easing optimisation so the ``skip_connect`` op
  is chosen only on merit;
* ``beta_reg`` (beta-DARTS, Ye et al. 2022): the architecture loss gains
  ``lambda * mean_edges logsumexp(alpha_edge)``, the Beta-Decay regularisation, which pulls the
  largest alphas of an edge down hardest and so keeps any op from running away with the edge
  before the weights have learnt what the others can do; ``lambda`` grows linearly from 0 (first
  epoch) to ``beta_reg_weight`` (last epoch). The authors' code adds the term to the first-order
  alpha step only, with ``lambda`` growing by 0.5 an epoch (0 to 50 over 100 epochs); here it is
  added to either order's hypergradient, and the default (10 at the last of 20 epochs) grows at
  about the same rate.

Every report carries the search's trajectory: alpha steps taken so far, each edge's op
distribution, the share of the alphas' softmax on parameter-free ops (``none``, ``skip_connect``,
``avg_pool_3x3``), the derived cell, its parameter-free op count and its NAS-Bench-201 accuracy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from spaces.cells import NB201_EDGES, NB201_OPS, edge_name, nb201_space
from spaces.options import check_range, parse_options
from trainables import metrics as M
from trainables.cells import OPS, CellNetwork
from trainables.data import DataSettings, load_splits
from trainables.loop import batches, setup_device, train_epochs

__all__ = ["PARAMETER_FREE", "Architect", "DartsSettings", "MixedOp", "SearchCell", "crop_flip",
           "derive_genotype", "genotype_counts", "make_supernet", "parameter_free_share",
           "train_darts"]

# Ops without weights: the ones DARTS drifts to when it collapses.
PARAMETER_FREE = ("none", "skip_connect", "avg_pool_3x3")


class MixedOp(nn.Module):
    """Every op of the table on one edge; ``forward(x, w)`` is ``sum_k w_k op_k(x)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(OPS[name](channels, True) for name in NB201_OPS)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops))  # type: ignore[return-value]


class SearchCell(nn.Module):
    """A cell of mixed ops; ``forward(x, (weights, beta))`` with ``weights`` of shape
    (edges, ops) and ``beta`` the auxiliary skip's weight (DARTS-; 0 turns it off)."""

    def __init__(self, channels: int, nodes: int = 4) -> None:
        super().__init__()
        self.nodes = nodes
        self.edges = nn.ModuleDict({edge_name(j, i): MixedOp(channels)
                                    for j in range(1, nodes) for i in range(j)})
        self.index = {edge_name(j, i): k for k, (j, i) in enumerate(NB201_EDGES)}

    def forward(self, x: torch.Tensor, arch: tuple[torch.Tensor, float]) -> torch.Tensor:
        weights, beta = arch
        states = [x]
        for j in range(1, self.nodes):
            total = 0
            for i in range(j):
                name = edge_name(j, i)
                out = self.edges[name](states[i], weights[self.index[name]])
                total = total + (out + beta * states[i] if beta else out)
            states.append(total)  # type: ignore[arg-type]
        return states[-1]


def make_supernet(*, in_channels: int, classes: int, channels: int, cells_per_stage: int
                  ) -> CellNetwork:
    return CellNetwork(SearchCell, in_channels=in_channels, classes=classes, channels=channels,
                       cells_per_stage=cells_per_stage, search=True)


def derive_genotype(alphas: torch.Tensor) -> str:
    """The argmax op per edge, as a NAS-Bench-201 arch string."""
    ops = alphas.argmax(dim=-1).tolist()
    config = {edge_name(j, i): NB201_OPS[k] for (j, i), k in zip(NB201_EDGES, ops)}
    return nb201_space().arch_string(config)


def parameter_free_share(weights: torch.Tensor) -> float:
    """The mean over edges of the op distribution's mass on :data:`PARAMETER_FREE` ops (0.6
    when every edge is uniform over NAS-Bench-201's five ops; 1 when fully collapsed)."""
    free = [NB201_OPS.index(op) for op in PARAMETER_FREE]
    return float(weights[:, free].sum(dim=-1).mean())


def genotype_counts(genotype: str) -> dict[str, int]:
    """A derived cell's ``skip_count`` and ``param_free_ops`` (edges holding an op of
    :data:`PARAMETER_FREE`)."""
    return {"skip_count": genotype.count("|skip_connect~"),
            "param_free_ops": sum(genotype.count(f"|{op}~") for op in PARAMETER_FREE)}


def decision_margin(weights: torch.Tensor) -> float:
    """The smallest gap, over edges, between an edge's two strongest ops' weights: near 0,
    the derived cell is decided by noise on some edge."""
    top = weights.topk(2, dim=-1).values
    return float((top[:, 0] - top[:, 1]).min())


class Architect:
    """Owns the architecture weights and their optimiser; computes their (hyper)gradient.

    Args:
        model: the supernet (called as ``model(x, (softmax(alpha), beta))``).
        order: ``first`` or ``second`` (one unrolled step, finite-difference Hessian).
        xi: the virtual step's learning rate for second order.
    """

    def __init__(self, model: nn.Module, *, lr: float = 3e-4, weight_decay: float = 1e-3,
                 order: str = "first", xi: float = 0.025, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> None:
        if order not in ("first", "second"):
            raise ValueError(f"`order` is {order!r}, but must be 'first' or 'second'.")
        self.model = model
        self.order = order
        self.xi = xi
        init = 1e-3 * torch.randn(len(NB201_EDGES), len(NB201_OPS), generator=generator,
                                  dtype=dtype)
        self.alphas = init.to(device or "cpu").requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.alphas], lr=lr, betas=(0.5, 0.999),
                                          weight_decay=weight_decay)
        self.steps = 0  # alpha updates so far

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.alphas, dim=-1)

    def _loss(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
              beta: float) -> torch.Tensor:
        return F.cross_entropy(functional_call(self.model, params, (x, (self.weights(), beta))), y)

    def hypergradient(self, train: tuple[torch.Tensor, torch.Tensor],
                      val: tuple[torch.Tensor, torch.Tensor], beta: float = 0.0) -> torch.Tensor:
        """d L_val / d alpha: first order, or through one unrolled step (second order)."""
        params = {k: p.detach() for k, p in self.model.named_parameters()}
        if self.order == "first":
            return torch.autograd.grad(self._loss(params, *val, beta), self.alphas)[0]
        # w' = w - xi * grad_w L_train(w, alpha)
        w = {k: p.requires_grad_(True) for k, p in
             {k: p.clone() for k, p in params.items()}.items()}
        grads = torch.autograd.grad(self._loss(w, *train, beta), list(w.values()))
        unrolled = {k: (p - self.xi * g).detach().requires_grad_(True)
                    for (k, p), g in zip(w.items(), grads)}
        d_alpha, *d_w = torch.autograd.grad(self._loss(unrolled, *val, beta),
                                            [self.alphas, *unrolled.values()])
        norm = torch.sqrt(sum((g * g).sum() for g in d_w))  # type: ignore[arg-type]
        eps = 0.01 / (norm + 1e-12)
        shifted = []
        for sign in (1.0, -1.0):
            moved = {k: p + sign * eps * g for (k, p), g in zip(params.items(), d_w)}
            shifted.append(torch.autograd.grad(self._loss(moved, *train, beta), self.alphas)[0])
        return d_alpha - self.xi * (shifted[0] - shifted[1]) / (2 * eps)

    def regulariser_gradient(self) -> torch.Tensor:
        """d/d alpha of beta-DARTS's Beta-Decay term, ``mean_edges logsumexp(alpha_edge)``."""
        alphas = self.alphas.detach().requires_grad_(True)
        return torch.autograd.grad(torch.logsumexp(alphas, dim=-1).mean(), alphas)[0]

    def step(self, train: tuple[torch.Tensor, torch.Tensor],
             val: tuple[torch.Tensor, torch.Tensor], beta: float = 0.0,
             reg_weight: float = 0.0) -> None:
        """One Adam step on the alphas: the hypergradient of the validation loss (``beta``: the
        auxiliary skip's weight), plus ``reg_weight`` times the Beta-Decay term's gradient."""
        self.optimizer.zero_grad()
        grad = self.hypergradient(train, val, beta)
        if reg_weight:
            grad = grad + reg_weight * self.regulariser_gradient()
        self.alphas.grad = grad
        self.optimizer.step()
        self.steps += 1


def crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Each image of the batch ``x`` (N, C, H, W) zero-padded by ``pad`` on every side, cropped
    back to H x W at a random offset and flipped left-right with probability 1/2, on x's
    device (offsets drawn from the CPU ``generator``)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    cols = torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + dx[:, None]  # (N, W)
    rows = torch.arange(h, device=x.device) + dy[:, None]  # (N, H)
    n_idx = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[n_idx, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous(memory_format=torch.contiguous_format)


@dataclass(frozen=True)
class DartsSettings:
    """Settings of one DARTS search (a config's ``order``/``remedy``/``seed`` override them)."""

    data: DataSettings = field(default_factory=DataSettings)
    epochs: int = 10
    batch_size: int = 64
    channels: int = 8  # C of the supernet (NAS-Bench-201's DARTS: 16)
    cells_per_stage: int = 1  # N (NAS-Bench-201's DARTS: 5)
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
    alpha_lr: float = 3e-4  # Adam typically moves each alpha by up to about this much a step
    alpha_weight_decay: float = 1e-3
    xi: float | None = None  # second order's virtual step; None: the current w learning rate
    order: Literal["first", "second"] = "first"
    remedy: Literal["none", "early_stop", "aux_skip", "beta_reg"] = "none"
    max_skip: int = 2  # early_stop: stop when the derived cell has this many skip connections
    aux_skip_decay: Literal["linear", "none"] = "linear"  # aux_skip: DARTS-'s linear decay of
    # the auxiliary skip's weight, or none (held at 1 for the whole search)
    beta_reg_weight: float = 10.0  # beta_reg: the Beta-Decay term's weight at the last epoch
    weight_steps: int = 1  # weight steps per alpha step, each on its own batch (an epoch is one
    # pass over the alpha half, so ``weight_steps`` passes over the weight half)
    augment: bool = False  # each batch of both halves randomly cropped (zero padding of an
    # eighth of the side: 4 pixels at 32x32) and flipped left-right, as DARTS's and DARTS-'s
    # CIFAR search code do; off: the images as loaded
    nb201_dataset: Literal["cifar10", "cifar100", "imagenet"] | None = "cifar100"  # lookup
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, low=1)
        check_range("batch_size", self.batch_size, low=1)
        check_range("channels", self.channels, low=1)
        check_range("cells_per_stage", self.cells_per_stage, low=1)
        for name in ("w_lr", "alpha_lr", "grad_clip"):
            check_range(name, getattr(self, name), low=0, low_open=True)
        check_range("xi", self.xi, low=0)
        check_range("beta_reg_weight", self.beta_reg_weight, low=0)
        check_range("max_skip", self.max_skip, low=1, high=len(NB201_EDGES))
        check_range("weight_steps", self.weight_steps, low=1)


class DartsRun:
    """One supernet search: model, architect, optimisers, data halves, early-stop state."""

    def __init__(self, settings: DartsSettings, device: torch.device) -> None:
        self.settings = settings
        self.device = device
        splits = load_splits(settings.data, str(device))
        c, _, _ = splits.shape
        half = len(splits.y_train) // 2  # DARTS: half the training split trains alpha
        self.x_w, self.y_w = splits.x_train[:half], splits.y_train[:half]
        self.x_a, self.y_a = splits.x_train[half:], splits.y_train[half:]
        self.x_val, self.y_val = splits.x_val, splits.y_val
        torch.manual_seed(settings.seed)
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.model = make_supernet(in_channels=c, classes=splits.classes,
                                   channels=settings.channels,
                                   cells_per_stage=settings.cells_per_stage).to(device)
        self.w_optimizer = torch.optim.SGD(self.model.parameters(), lr=settings.w_lr,
                                           momentum=settings.w_momentum,
                                           weight_decay=settings.w_weight_decay)
        self.w_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_optimizer, settings.epochs, eta_min=settings.w_lr_min)
        self.architect = Architect(self.model, lr=settings.alpha_lr,
                                   weight_decay=settings.alpha_weight_decay,
                                   order=settings.order,
                                   xi=settings.w_lr if settings.xi is None else settings.xi,
                                   generator=self.generator, device=device)
        self.epoch = 0
        self.stopped = False
        self.genotype, self.genotype_margin = self.derived()
        self.trained_beta = self.beta_for(0)

    def beta_for(self, epoch: int) -> float:
        """The auxiliary skip's weight in (0-based) ``epoch`` (DARTS-, as its code schedules
        it): 1 at the first epoch, decaying linearly by ``1 / epochs`` an epoch, so the last
        epoch trains with ``1 / epochs`` and the derived cell never holds the auxiliary skip."""
        if self.settings.remedy != "aux_skip":
            return 0.0
        if self.settings.aux_skip_decay == "none":
            return 1.0
        return 1.0 - epoch / self.settings.epochs

    def reg_weight_for(self, epoch: int) -> float:
        """The Beta-Decay term's weight in (0-based) ``epoch`` (beta-DARTS): 0 at the first
        epoch, growing linearly to ``beta_reg_weight`` at the last."""
        if self.settings.remedy != "beta_reg":
            return 0.0
        if self.settings.epochs == 1:  # a one-epoch search gets the full weight
            return self.settings.beta_reg_weight
        return self.settings.beta_reg_weight * epoch / (self.settings.epochs - 1)

    def state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "alphas": self.architect.alphas.detach(),
                "w_optimizer": self.w_optimizer.state_dict(),
                "a_optimizer": self.architect.optimizer.state_dict(),
                "w_scheduler": self.w_scheduler.state_dict(),
                "generator": self.generator.get_state(), "epoch": self.epoch,
                "stopped": self.stopped, "genotype": self.genotype,
                "genotype_margin": self.genotype_margin,
                "trained_beta": self.trained_beta, "alpha_steps": self.architect.steps}

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        with torch.no_grad():
            self.architect.alphas.copy_(state["alphas"])
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.architect.optimizer.load_state_dict(state["a_optimizer"])
        self.w_scheduler.load_state_dict(state["w_scheduler"])
        self.generator.set_state(state["generator"])
        self.epoch, self.stopped = int(state["epoch"]), bool(state["stopped"])
        self.genotype = state["genotype"]
        # Checkpoints from before the field: the current alphas' margin (what was reported).
        self.genotype_margin = float(state["genotype_margin"] if "genotype_margin" in state
                                     else self.derived()[1])
        self.trained_beta = float(state["trained_beta"])
        # Checkpoints from before the count: Adam's own step count is the same number.
        adam = state["a_optimizer"]["state"].get(0, {})
        self.architect.steps = int(state.get("alpha_steps", adam.get("step", 0)))

    def train_epoch(self) -> float:
        """One epoch of alternating alpha and w steps; the mean training loss of w."""
        self.model.train()
        beta = self.trained_beta = self.beta_for(self.epoch)
        reg_weight = self.reg_weight_for(self.epoch)
        if self.settings.xi is None:  # DARTS: the virtual step uses the current w lr
            self.architect.xi = self.w_optimizer.param_groups[0]["lr"]
        total, steps = 0.0, 0
        k = self.settings.weight_steps
        order_w = [idx for _ in range(k) for idx in batches(
            len(self.y_w), self.settings.batch_size, device=self.device, generator=self.generator)]
        order_a = list(batches(len(self.y_a), self.settings.batch_size, device=self.device,
                               generator=self.generator))
        for i, idx_a in enumerate(order_a):
            if i * k >= len(order_w):
                break
            total += self.step(order_w[i * k:(i + 1) * k], idx_a, beta, reg_weight)
            steps += 1
        self.w_scheduler.step()
        self.epoch += 1
        return total / max(1, steps)

    def step(self, idx_w: torch.Tensor | list[torch.Tensor], idx_a: torch.Tensor,
             beta: float = 0.0, reg_weight: float = 0.0) -> float:
        """One alpha step on the alpha half's batch ``idx_a`` (second order unrolls on the
        first weight batch), then a weight step on each of the weight half's batches ``idx_w``;
        the weights' mean training loss."""
        idx_ws = [idx_w] if isinstance(idx_w, torch.Tensor) else list(idx_w)
        xs_w = [self._batch(self.x_w, idx) for idx in idx_ws]
        train = (xs_w[0], self.y_w[idx_ws[0]])
        self.architect.step(train, (self._batch(self.x_a, idx_a), self.y_a[idx_a]), beta,
                            reg_weight)
        weights = self.architect.weights().detach()
        total = 0.0
        for x, idx in zip(xs_w, idx_ws):
            loss = F.cross_entropy(self.model(x, (weights, beta)), self.y_w[idx])
            self.w_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
            self.w_optimizer.step()
            total += float(loss.detach())
        return total / len(idx_ws)

    def _batch(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The images ``x[idx]``, cropped and flipped at random when ``augment``."""
        batch = x[idx]
        if self.settings.augment:
            batch = crop_flip(batch, max(1, batch.shape[-1] // 8), self.generator)
        return batch

    def derived(self) -> tuple[str, float]:
        """The current alphas' cell and their :func:`decision_margin`. The kept pair
        (``genotype``, ``genotype_margin``) is one of these: after a DARTS+ stop the epoch
        before's (the initial, untrained alphas' when the first epoch stopped it)."""
        return (derive_genotype(self.architect.alphas.detach()),
                decision_margin(self.architect.weights().detach()))

    def update_genotype(self) -> None:
        """Derive the cell after an epoch; DARTS+ (``early_stop``) stops the search instead
        when that cell has ``max_skip`` skip connections, keeping the one before."""
        current, margin = self.derived()
        if (self.settings.remedy == "early_stop"
                and current.count("skip_connect") >= self.settings.max_skip):
            self.stopped = True
        else:
            self.genotype, self.genotype_margin = current, margin

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """The supernet's accuracy and loss on the held-out validation split."""
        self.model.train()  # search BN uses batch statistics (cells have no running ones)
        arch = (self.architect.weights(), self.trained_beta)
        correct, loss = 0.0, 0.0
        for idx in batches(len(self.y_val), 256, device=self.device):
            logits = self.model(self.x_val[idx], arch)
            loss += float(F.cross_entropy(logits, self.y_val[idx], reduction="sum"))
            correct += float((logits.argmax(1) == self.y_val[idx]).sum())
        n = max(1, len(self.y_val))
        return correct / n, loss / n

    def alpha_metrics(self) -> dict[str, float]:
        """Each edge's op distribution (``alpha/<edge>/<op>``), the share of it on
        parameter-free ops, the smallest top-two margin and the alpha steps taken: all of the
        current alphas (after a DARTS+ stop, the kept genotype is the epoch before's)."""
        probs = self.architect.weights().detach().cpu()
        return {"alpha_steps": self.architect.steps,
                "param_free_share": parameter_free_share(probs),
                "alpha_margin": decision_margin(probs),
                **{f"alpha/{edge_name(j, i)}/{op}": float(probs[e, k])
                   for e, (j, i) in enumerate(NB201_EDGES) for k, op in enumerate(NB201_OPS)}}


def _lookup(settings: DartsSettings, arch: str) -> dict[str, float]:
    if settings.nb201_dataset is None:
        return {}
    from spaces.tables import load_nb201

    table = load_nb201(settings.nb201_dataset)
    # In [0, 1], as every accuracy hpnas reports (the table publishes percent).
    return {"nb201_val_acc": table.mean_val_acc(nb201_space().from_arch(arch)) / 100}


def train_darts(config: dict[str, Any], settings: dict[str, Any] | DartsSettings | None = None
                ) -> None:
    """Ray Tune trainable: one DARTS search, one report per epoch.

    ``config`` may set ``order``, ``remedy`` and ``seed`` (the ``darts`` space), which take
    precedence over ``settings``. Each report has the supernet's ``val_acc``, the derived
    ``genotype`` and its NAS-Bench-201 accuracy (``nb201_val_acc``), the skip count, the
    auxiliary skip's ``beta`` and every edge's op distribution (``alpha/<edge>/<op>``).
    """
    if isinstance(settings, DartsSettings):
        settings = {k: getattr(settings, k) for k in settings.__dataclass_fields__}
    merged = {**(settings or {}), **{k: config[k] for k in ("order", "remedy", "seed")
                                     if k in config}}
    parsed = parse_options(DartsSettings, merged, "train")
    if parsed.nb201_dataset is not None:
        from spaces.tables import load_nb201

        load_nb201(parsed.nb201_dataset)  # fail now, not after an epoch, if the table is missing
    run = DartsRun(parsed, setup_device())

    def one_epoch() -> dict[str, Any]:
        start = time.perf_counter()
        train_loss = run.train_epoch()
        if not math.isfinite(train_loss) or not torch.isfinite(run.architect.alphas).all():
            raise FloatingPointError(  # before reporting: no diverged checkpoint is saved
                f"DARTS diverged at epoch {run.epoch} (training loss {train_loss})")
        val_acc, val_loss = run.evaluate()
        run.update_genotype()
        return {
            M.VAL_ACC: val_acc, M.VAL_LOSS: val_loss, M.TRAIN_LOSS: train_loss,
            M.EPOCH: run.epoch, M.EPOCH_S: time.perf_counter() - start,
            "genotype": run.genotype, "genotype_margin": run.genotype_margin,
            **genotype_counts(run.genotype),
            "stopped_early": run.stopped, "beta": run.trained_beta,
            **_lookup(parsed, run.genotype), **run.alpha_metrics(),
        }

    train_epochs(run, parsed.epochs, one_epoch, stopped=lambda: run.stopped)
