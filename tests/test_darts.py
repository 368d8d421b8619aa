"""DARTS: mixed ops, the second-order hypergradient, genotypes, remedies, the driver."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import write_idx
from torch.func import functional_call

from spaces import get_space
from spaces.cells import NB201_OPS
from trainables.darts import (
    Architect,
    DartsRun,
    DartsSettings,
    MixedOp,
    decision_margin,
    derive_genotype,
    genotype_counts,
    make_supernet,
    parameter_free_share,
)
from trainables.data import DataSettings


@pytest.mark.parametrize("k", range(len(NB201_OPS)), ids=list(NB201_OPS))
def test_mixed_op_with_one_hot_alpha_is_that_op(k):
    torch.manual_seed(0)
    mixed = MixedOp(4)
    x = torch.randn(3, 4, 6, 6)
    one_hot = F.one_hot(torch.tensor(k), len(NB201_OPS)).float()
    assert torch.allclose(mixed(x, one_hot), mixed.ops[k](x), atol=1e-6)
    # a near-one-hot softmax gives (nearly) the same
    alpha = 50 * one_hot
    assert torch.allclose(mixed(x, torch.softmax(alpha, -1)), mixed.ops[k](x), atol=1e-5)


def _smooth(module: torch.nn.Module) -> torch.nn.Module:
    """ReLUs replaced by tanh: finite differences of gradients of a ReLU network jump at its
    kinks (DARTS accepts that noise); a smooth network checks the formula itself."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU):
            setattr(module, name, torch.nn.Tanh())
        else:
            _smooth(child)
    return module


def _tiny():
    torch.manual_seed(0)
    model = _smooth(make_supernet(in_channels=1, classes=3, channels=2,
                                  cells_per_stage=1)).double()
    gen = torch.Generator().manual_seed(0)
    architect = Architect(model, order="second", xi=0.5, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        architect.alphas.normal_(0, 0.5, generator=gen)
    train = (torch.randn(8, 1, 8, 8, dtype=torch.float64, generator=gen),
             torch.randint(0, 3, (8,), generator=gen))
    val = (torch.randn(8, 1, 8, 8, dtype=torch.float64, generator=gen),
           torch.randint(0, 3, (8,), generator=gen))
    return model, architect, train, val


def _unrolled_val_loss(model, alphas, train, val, xi, beta=0.0):
    """L_val(w - xi grad_w L_train(w, alpha), alpha), computed directly."""
    params = {k: p.detach().clone().requires_grad_(True) for k, p in model.named_parameters()}
    weights = torch.softmax(alphas, -1)
    loss = F.cross_entropy(functional_call(model, params, (train[0], (weights, beta))), train[1])
    grads = torch.autograd.grad(loss, list(params.values()))
    unrolled = {k: p - xi * g for (k, p), g in zip(params.items(), grads)}
    return F.cross_entropy(functional_call(model, unrolled, (val[0], (weights, beta))), val[1])


def test_second_order_gradient_matches_numerical_finite_differences():
    model, architect, train, val = _tiny()
    analytic = architect.hypergradient(train, val)
    numeric = torch.zeros_like(analytic)
    h = 1e-5
    base = architect.alphas.detach().clone()
    for idx in [(e, k) for e in range(6) for k in range(5)]:
        plus, minus = base.clone(), base.clone()
        plus[idx] += h
        minus[idx] -= h
        f_plus = _unrolled_val_loss(model, plus, train, val, architect.xi)
        f_minus = _unrolled_val_loss(model, minus, train, val, architect.xi)
        numeric[idx] = float(f_plus - f_minus) / (2 * h)
    # the Hessian-vector product's own finite difference (eps = 0.01 / |v|) costs ~1e-4 here
    assert (analytic - numeric).abs().max() < 1e-3
    # and the unrolled term matters: the first-order gradient is far off
    architect.order = "first"
    first = architect.hypergradient(train, val)
    assert (first - numeric).abs().max() > 2e-2


def test_genotype_is_the_argmax_per_edge():
    alphas = torch.zeros(6, 5)
    for edge, op in enumerate([3, 3, 3, 1, 3, 3]):
        alphas[edge, op] = 1.0
    assert derive_genotype(alphas) == ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                                       "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    get_space("nb201").from_arch(derive_genotype(torch.randn(6, 5)))
    assert genotype_counts(derive_genotype(alphas)) == {"skip_count": 1, "param_free_ops": 1}
    assert genotype_counts("|none~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|"
                           "nor_conv_1x1~1|nor_conv_3x3~2|") == {"skip_count": 2,
                                                                 "param_free_ops": 4}


def test_architect_step_moves_only_alphas():
    model, architect, train, val = _tiny()
    before = [p.detach().clone() for p in model.parameters()]
    alphas = architect.alphas.detach().clone()
    architect.step(train, val)
    assert not torch.equal(alphas, architect.alphas)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_beta_reg_gradient_is_each_edges_softmax_over_the_edge_count():
    _, architect, train, val = _tiny()
    expected = torch.softmax(architect.alphas.detach(), -1) / 6
    assert torch.allclose(architect.regulariser_gradient(), expected)
    # a step adds it, weighted, to the validation loss's hypergradient
    architect.order = "first"
    hyper = architect.hypergradient(train, val)
    architect.step(train, val, reg_weight=3.0)
    assert torch.allclose(architect.alphas.grad, hyper + 3.0 * expected)
    assert architect.steps == 1


def test_parameter_free_share_and_decision_margin():
    uniform = torch.full((6, 5), 0.2)
    assert parameter_free_share(uniform) == pytest.approx(0.6)
    assert decision_margin(uniform) == pytest.approx(0.0)
    skip = F.one_hot(torch.full((6,), NB201_OPS.index("skip_connect")), 5).float()
    assert parameter_free_share(skip) == pytest.approx(1.0)
    convs = F.one_hot(torch.full((6,), NB201_OPS.index("nor_conv_3x3")), 5).float()
    assert parameter_free_share(convs) == pytest.approx(0.0)
    mixed = uniform.clone()
    mixed[2] = torch.tensor([0.1, 0.1, 0.1, 0.45, 0.25])
    assert decision_margin(mixed) == pytest.approx(0.0)  # the other edges are ties
    assert decision_margin(torch.tensor([[0.1, 0.1, 0.1, 0.45, 0.25]])) == pytest.approx(0.2)


def _run(tmp_path, **settings) -> DartsRun:
    root = write_idx(tmp_path / "fm", n_train=160, n_test=20)
    return DartsRun(DartsSettings(
        data=DataSettings(name="fashion_mnist", root=str(root), val_size=32, image_size=12),
        batch_size=32, channels=2, **settings), torch.device("cpu"))


def test_remedy_schedules_beta_reg_grows_and_aux_skip_decays(tmp_path):
    run = _run(tmp_path, epochs=3, remedy="beta_reg", beta_reg_weight=4.0)
    assert [run.reg_weight_for(e) for e in range(3)] == [0.0, 2.0, 4.0]
    assert [run.beta_for(e) for e in range(3)] == [0.0, 0.0, 0.0]
    aux = _run(tmp_path, epochs=3, remedy="aux_skip")
    assert [aux.beta_for(e) for e in range(3)] == pytest.approx([1.0, 2 / 3, 1 / 3])
    assert [aux.reg_weight_for(e) for e in range(3)] == [0.0, 0.0, 0.0]


def test_alpha_steps_and_trajectory_metrics_survive_a_checkpoint(tmp_path):
    run = _run(tmp_path, epochs=2, remedy="beta_reg")
    run.train_epoch()  # 128 training images: 64 train w, 64 alpha -> 2 steps of 32
    metrics = run.alpha_metrics()
    assert metrics["alpha_steps"] == 2 == run.architect.steps
    assert 0.0 <= metrics["param_free_share"] <= 1.0 and metrics["alpha_margin"] >= 0.0
    again = _run(tmp_path, epochs=2, remedy="beta_reg")
    again.load(run.state())
    assert again.architect.steps == 2 and again.epoch == 1
    again.train_epoch()
    assert again.architect.steps == 4


def test_weight_steps_take_that_many_weight_batches_per_alpha_step(tmp_path, monkeypatch):
    """An epoch is one pass over the alpha half; with ``weight_steps`` 3 each alpha step is
    followed by 3 weight steps on distinct batches (3 passes over the weight half)."""
    steps = []
    real = torch.optim.SGD.step

    def counted(self, *args, **kwargs):  # patched before the runs' schedulers wrap it
        steps.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", counted)
    one = _run(tmp_path, epochs=1)
    three = _run(tmp_path, epochs=1, weight_steps=3)
    three.train_epoch()
    assert three.architect.steps == 2 and len(steps) == 6  # 64 + 64 images, batches of 32
    one.train_epoch()
    assert len(steps) == 8
    assert one.architect.steps == 2
    assert not torch.equal(one.architect.alphas, three.architect.alphas)
    with pytest.raises(ValueError, match="weight_steps"):
        DartsSettings(weight_steps=0)


def test_crop_flip_gives_each_image_a_padded_crop_and_maybe_a_flip():
    from trainables.darts import crop_flip

    x = torch.rand(64, 2, 5, 6)
    out = crop_flip(x, 1, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = F.pad(x, (1, 1, 1, 1))
    seen = set()
    for i in range(len(x)):
        crops = {(dy, dx): padded[i, :, dy:dy + 5, dx:dx + 6] for dy in range(3)
                 for dx in range(3)}
        found = [(dy, dx, flip) for (dy, dx), crop in crops.items() for flip in (0, 1)
                 if torch.equal(out[i], crop.flip(-1) if flip else crop)]
        assert found, i  # every output image is one crop of its padded image, flipped or not
        seen.update(found)
    assert len({f for _, _, f in seen}) == 2 and len({(dy, dx) for dy, dx, _ in seen}) > 5


def test_augment_changes_the_batches_and_only_when_asked(tmp_path):
    plain, again = _run(tmp_path, epochs=1), _run(tmp_path, epochs=1)
    augmented = _run(tmp_path, epochs=1, augment=True)
    idx = torch.arange(8)
    assert torch.equal(plain._batch(plain.x_w, idx), plain.x_w[idx])
    assert not torch.equal(augmented._batch(augmented.x_w, idx), augmented.x_w[idx])
    for run in (plain, again, augmented):
        run.train_epoch()
    assert torch.equal(plain.architect.alphas, again.architect.alphas)  # seeded
    assert not torch.equal(plain.architect.alphas, augmented.architect.alphas)


def test_early_stop_keeps_the_cell_before_two_skips(tmp_path):
    run = _run(tmp_path, epochs=2, remedy="early_stop", max_skip=2)
    conv, skip = NB201_OPS.index("nor_conv_3x3"), NB201_OPS.index("skip_connect")
    with torch.no_grad():
        run.architect.alphas.zero_()
        run.architect.alphas[:, conv] = 1.0
    run.update_genotype()
    before = run.genotype
    assert before.count("nor_conv_3x3") == 6 and not run.stopped
    with torch.no_grad():
        run.architect.alphas[:2, skip] = 2.0
    run.update_genotype()
    assert run.stopped and run.genotype == before
    assert run.genotype_margin == pytest.approx(decision_margin(torch.softmax(
        torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0]]), -1)))  # the kept cell's alphas, not the last
    plain = _run(tmp_path, epochs=2)
    with torch.no_grad():
        plain.architect.alphas.zero_()
        plain.architect.alphas[:, skip] = 1.0
    plain.update_genotype()
    assert plain.genotype.count("skip_connect") == 6 and not plain.stopped
    assert plain.genotype_margin == plain.alpha_metrics()["alpha_margin"]


def test_early_stop_at_the_first_epoch_keeps_the_initial_cell_and_says_it_is_a_near_tie(
        tmp_path):
    """DARTS+ stopped by its first epoch keeps the cell of the initial alphas (about 1e-3
    apart): its ``genotype_margin`` is theirs, so ``hpnas darts`` reports it as decided by noise
    even though the trained alphas' margin is large."""
    from cluster.darts_driver import near_tie_note, undecided

    run = _run(tmp_path, epochs=3, remedy="early_stop", max_skip=2)
    initial, initial_margin = run.genotype, run.genotype_margin
    assert initial_margin < 0.01
    with torch.no_grad():
        run.architect.alphas[:, NB201_OPS.index("skip_connect")] += 3.0
    run.update_genotype()
    assert run.stopped and run.genotype == initial and run.genotype_margin == initial_margin
    assert run.alpha_metrics()["alpha_margin"] > 0.5
    again = _run(tmp_path, epochs=3, remedy="early_stop", max_skip=2)
    again.load(run.state())  # the margin survives a checkpoint
    assert again.genotype_margin == initial_margin
    table = pd.DataFrame({"remedy": ["early_stop", "none"], "epochs": [1, 3],
                          "alpha_margin": [0.9, 0.3], "genotype_margin": [initial_margin, 0.3]})
    assert undecided(table)["remedy"].tolist() == ["early_stop"]
    assert undecided(table.drop(columns="genotype_margin")).empty  # older results: last alphas
    note = near_tie_note(table)
    assert note.startswith("1 of 2 derived cells are near-ties") and "1 early_stop (DARTS+)" in note
    assert near_tie_note(table.assign(epochs=[2, 3])).count("early_stop") == 0  # a later stop
    assert near_tie_note(table.assign(genotype_margin=[0.2, 0.3])) is None


@pytest.mark.ray
@pytest.mark.slow
def test_darts_driver_end_to_end(tmp_path, local_ray, capsys):
    from cluster.cli import main

    root = write_idx(tmp_path / "fm", n_train=240, n_test=40)
    path = tmp_path / "darts.yaml"
    path.write_text(yaml.safe_dump({
        "name": "darts-e2e",
        "space": {"name": "darts", "overrides": {"seed": {"high": 0},
                                                 "remedy": {"choices": ["none", "aux_skip"]}}},
        "max_concurrent_trials": 2,
        "data": {"name": "fashion_mnist", "root": str(root), "val_size": 40},
        "train": {"epochs": 2, "batch_size": 50, "channels": 4},
        "storage": str(tmp_path / "results")}))
    assert main(["darts", str(path), "--progress-interval", "1000", "--train-cells", "1"]) == 0
    out = capsys.readouterr().out
    assert "derived cells" in out
    trials = pd.read_parquet(tmp_path / "results" / "darts-e2e" / "trials.parquet")
    iterations = pd.read_parquet(tmp_path / "results" / "darts-e2e" / "iterations.parquet")
    assert len(trials) == 4 and set(trials["status"]) == {"complete"}
    assert set(trials["config/order"]) == {"first", "second"}
    assert len(iterations) == 8
    alpha_cols = [c for c in iterations.columns if c.startswith("alpha/")]
    assert len(alpha_cols) == 30
    sums = iterations[alpha_cols].to_numpy().reshape(-1, 6, 5).sum(-1)
    assert abs(sums - 1).max() < 1e-5  # a distribution per edge
    assert iterations["nb201_val_acc"].between(0, 100).all()
    assert iterations["genotype"].map(get_space("nb201").from_arch).notna().all()
    # trajectories: alpha steps grow by an epoch's batches, shares and margins are in range
    for _, trial in iterations.sort_values("iteration").groupby("trial_id"):
        assert trial["alpha_steps"].tolist() == [2, 4]  # 200 images: 100 alpha, batch 50
    assert iterations["param_free_share"].between(0, 1).all()
    assert iterations["param_free_ops"].between(0, 6).all()
    assert (iterations["alpha_margin"] >= 0).all()
    assert (iterations["genotype_margin"] >= 0).all()
    assert "near-ties" in out  # 4 alpha steps decide nothing
    aux = iterations[iterations["trial_id"].isin(
        trials.loc[trials["config/remedy"] == "aux_skip", "trial_id"])]
    assert sorted(aux["beta"].unique()) == [0.5, 1.0]  # 2 epochs: 1 then 1/2
    final = iterations.sort_values("iteration").groupby("trial_id").tail(1)["genotype"]
    assert all(genotype in out for genotype in final)  # every derived cell is printed
    cells = pd.read_parquet(tmp_path / "results" / "darts-e2e-cells" / "trials.parquet")
    assert len(cells) == iterations.groupby("trial_id").tail(1)["genotype"].nunique()
    # hpnas report draws the trajectories, one line per search
    from results.analysis import load
    from results.report import darts_curves, write_report

    runs = load(tmp_path / "results" / "darts-e2e")
    curves = darts_curves(runs)
    assert curves["label"].nunique() == 4 and len(curves) == 8
    assert {"none first 0", "aux_skip second 0"} <= set(curves["label"])
    page = write_report(runs, tmp_path / "report.html", png_dir=tmp_path / "png")
    assert "DARTS trajectories" in page.read_text() and (tmp_path / "png" / "darts.png").is_file()


def test_train_epoch_steps_alphas_with_the_epochs_remedy_weights(tmp_path, monkeypatch):
    run = _run(tmp_path, epochs=3, remedy="beta_reg", beta_reg_weight=4.0)
    seen = []
    real = Architect.step

    def spy(self, train, val, beta=0.0, reg_weight=0.0):
        seen.append((beta, reg_weight))
        return real(self, train, val, beta, reg_weight)

    monkeypatch.setattr(Architect, "step", spy)
    for _ in range(3):
        run.train_epoch()
    assert seen == [(0.0, 0.0)] * 2 + [(0.0, 2.0)] * 2 + [(0.0, 4.0)] * 2
    held = _run(tmp_path, epochs=2, remedy="aux_skip", aux_skip_decay="none")
    seen.clear()
    held.train_epoch()
    held.train_epoch()
    assert seen == [(1.0, 0.0)] * 4
    single = _run(tmp_path, epochs=1, remedy="beta_reg", beta_reg_weight=4.0)
    assert single.reg_weight_for(0) == 4.0  # a one-epoch search is not plain DARTS


def _darts_runs(configs: dict[str, list[dict]]):
    """Experiments holding DARTS-like trials: experiment -> a config (or {}) per trial."""
    from results.analysis import Experiments

    trials, iterations = [], []
    for name, rows in configs.items():
        for i, config in enumerate(rows):
            trial_id = f"t{i}"
            trials.append({"experiment": name, "trial_id": trial_id, "status": "complete",
                           "searcher": "grid", **{f"config/{k}": v for k, v in config.items()}})
            for epoch, share in ((1, 0.6), (2, 0.7)):
                iterations.append({"experiment": name, "trial_id": trial_id,
                                   "iteration": epoch, "val_acc": 0.5,
                                   "alpha_steps": 10 * epoch, "param_free_share": share,
                                   "nb201_val_acc": 0.7 - 0.1 * epoch})
    return Experiments(pd.DataFrame(trials), pd.DataFrame(iterations), "val_acc", "max",
                       {name: {} for name in configs})


def test_darts_curves_one_line_per_trial_with_readable_labels():
    from results.report import darts_curves, plot_darts_trajectories

    one = {"order": "first", "seed": 0}
    runs = _darts_runs({"a": [{**one, "remedy": "none"}, {**one, "remedy": "none"}],
                        "b": [{}]})  # a repeated config; an experiment without configs
    curves = darts_curves(runs)
    assert curves.groupby("trial").size().to_dict() == {"a/t0": 2, "a/t1": 2, "b/t0": 2}
    labels = set(curves["label"])
    assert labels == {"a: none first 0 (t0)", "a: none first 0 (t1)", "b: t0"}
    assert plot_darts_trajectories(curves).startswith(b"\x89PNG")
    # without table lookups the share is still drawn
    bare = runs.iterations.drop(columns="nb201_val_acc")
    from results.analysis import Experiments

    curves = darts_curves(Experiments(runs.trials, bare, "val_acc", "max", runs.specs))
    assert curves["nb201_val_acc"].isna().all() and len(curves) == 6
    assert plot_darts_trajectories(curves).startswith(b"\x89PNG")
    # not a DARTS experiment: nothing to draw
    plain = runs.iterations.drop(columns=["alpha_steps", "param_free_share"])
    assert darts_curves(Experiments(runs.trials, plain, "val_acc", "max", runs.specs)).empty
