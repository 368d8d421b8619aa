"""``hpnas report``: one self-contained HTML page of plots for one or more experiments.

The page embeds PNGs (matplotlib, Agg backend) as data URIs, so it can be mailed or attached
as one file:

* best so far against wall time and against trials, one line per experiment (to compare
  searchers on one axis);
* learning curves of every trial (the metric per epoch), pruned trials faded, failed ones red;
* parallel coordinates of the searched parameters, each trial coloured by its best metric;
* parameter importance: Optuna's fANOVA (a random forest's functional ANOVA, Hutter et al.
  2014) over the complete trials;
* the Pareto front of the metric against a cost (parameter count where trials report
  ``params``, else trial seconds);
* for DARTS searches, the derived cell's NAS-Bench-201 accuracy and the share of parameter-free
  ops against alpha steps, one line per search (remedy, order, seed);
* the leaderboard.

It reads the Parquet files as they are, so a running experiment can be reported at any time.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from results.analysis import Experiments, best_so_far, best_trial, leaderboard, pareto_front

__all__ = ["PLOTS", "param_importance", "render_plots", "write_report"]

STATUS_STYLE = {  # colour, alpha, line style
    "complete": ("C0", 0.9, "-"),
    "running": ("C1", 0.9, "-"),
    "pruned": ("0.5", 0.25, "-"),
    "failed": ("C3", 0.35, "--"),
    "stopped": ("0.5", 0.25, ":"),
}


MAX_DRAWN = 300  # curves or lines per plot; past it, the best and a seeded random sample
MAX_FANOVA = 2000  # complete trials fANOVA's forest is fitted on (a seeded sample past it)


def drawn_trials(trials: pd.DataFrame, metric: str, mode: str, limit: int = MAX_DRAWN
                 ) -> tuple[pd.DataFrame, str]:
    """At most ``limit`` trials to draw: all of them, or the ``limit // 6`` best by
    ``best_<metric>`` and a seeded random sample of the others; and a note saying which."""
    if len(trials) <= limit:
        return trials, ""
    column = f"best_{metric}"
    ranked = trials.sort_values(column, ascending=mode == "min", na_position="last",
                                kind="stable") if column in trials.columns else trials
    best = ranked.head(limit // 6)
    rest = ranked.iloc[limit // 6:].sample(n=limit - len(best), random_state=0)
    return (pd.concat([rest, best]),
            f" ({limit} of {len(trials)} trials drawn: the {len(best)} best and a random sample)")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11,
            color="0.3", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _label(runs: Experiments, name: str) -> str:
    searcher = runs.trials.loc[runs.trials["experiment"] == name, "searcher"]
    return f"{name} ({searcher.iloc[0]})" if len(searcher) else name


def plot_best_so_far(runs: Experiments, by: str) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    curves = best_so_far(runs, by=by)
    if curves.empty:
        _empty(ax, "no trial has reported the metric yet")
    minutes = by == "time" and not curves.empty and curves["x"].max() > 180
    for name, curve in curves.groupby("experiment", sort=False):
        x = curve["x"].to_numpy()
        if minutes:
            x = x / 60.0
        ax.step(x, curve["best"], where="post", label=_label(runs, name), linewidth=2)
        ax.plot(x[-1:], curve["best"].to_numpy()[-1:], "o", color=ax.lines[-1].get_color())
    ax.set_xlabel(("wall time (minutes)" if minutes else "wall time (seconds)") if by == "time"
                  else "trials ended")
    if by == "trials":
        ax.xaxis.set_major_locator(_plt().MaxNLocator(integer=True))
    ax.set_ylabel(f"best {runs.metric} so far")
    ax.set_title(f"Best {runs.metric} so far ({runs.mode}) against "
                 + ("wall time" if by == "time" else "trials"))
    if not curves.empty:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _png(fig)


def plot_learning_curves(runs: Experiments) -> bytes:
    plt = _plt()
    names = runs.names
    cols = min(len(names), 3)
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.6 * rows), squeeze=False)
    status = runs.trials.set_index(["experiment", "trial_id"])["status"]
    its = runs.iterations
    for ax, name in zip(axes.flat, names):
        mine = its[its["experiment"] == name] if runs.metric in its.columns else its.iloc[0:0]
        mine = mine.dropna(subset=[runs.metric]) if len(mine) else mine
        ax.set_title(_label(runs, name), fontsize=10)
        if mine.empty:
            _empty(ax, "no epoch reported yet")
            continue
        drawn = set()
        shown, note = drawn_trials(runs.trials[runs.trials["experiment"] == name], runs.metric,
                                   runs.mode)
        if note:
            mine = mine[mine["trial_id"].isin(shown["trial_id"])]
            ax.set_title(_label(runs, name) + note.replace(" (", "\n("), fontsize=9)
        # Faded (pruned, failed) first, so the complete and running trials are drawn on top.
        order = sorted(mine.groupby("trial_id", sort=False),
                       key=lambda kv: status.get((name, kv[0]), "running") in ("complete",
                                                                               "running"))
        for trial_id, curve in order:
            state = status.get((name, trial_id), "running")
            colour, alpha, style = STATUS_STYLE.get(state, STATUS_STYLE["running"])
            ax.plot(curve["iteration"], curve[runs.metric], style, color=colour, alpha=alpha,
                    linewidth=1.4, marker="." if len(curve) < 3 else None,
                    label=state if state not in drawn else None)
            drawn.add(state)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set_ylabel(runs.metric)
        if drawn:
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("Learning curves (pruned trials faded)")
    return _png(fig)


def _param_columns(trials: pd.DataFrame) -> list[str]:
    """Searched parameters that vary across trials."""
    cols = [c for c in trials.columns if c.startswith("config/")]
    return [c for c in cols if trials[c].dropna().astype(str).nunique() > 1]


def _numeric(values: pd.Series) -> pd.Series | None:
    """``values`` as floats when every present value is a number (not a bool), else None."""
    present = values.dropna()
    if pd.api.types.is_bool_dtype(present) or any(isinstance(v, bool) for v in present):
        return None
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.astype(float) if numbers.notna().sum() == len(present) else None


def _axis_values(values: pd.Series) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """A parameter's values on [0, 1] (inactive: -0.1) and its tick labels."""
    numbers = _numeric(values)
    present = (numbers if numbers is not None else values).dropna()
    if numbers is not None:
        v = present.astype(float)
        log = (v > 0).all() and v.max() / v.min() > 20
        t = np.log10(v) if log else v
        lo, hi = float(t.min()), float(t.max())
        scaled = (t - lo) / (hi - lo) if hi > lo else t * 0 + 0.5
        ticks = [(0.0, f"{v.min():.3g}"), (1.0, f"{v.max():.3g}")]
    else:
        cats = sorted(present.astype(str).unique())
        pos = {c: (i / (len(cats) - 1) if len(cats) > 1 else 0.5) for i, c in enumerate(cats)}
        scaled = present.astype(str).map(pos)
        ticks = [(p, c) for c, p in pos.items()]
    out = np.full(len(values), -0.1)
    out[values.notna().to_numpy()] = scaled.to_numpy(dtype=float)
    if values.isna().any():
        ticks.append((-0.1, "off"))
    return out, ticks


def _space_key(spec: dict) -> tuple[str, str]:
    space = spec.get("space")
    name = space.get("name") if isinstance(space, dict) else space
    return str(spec.get("trainable")), str(name or spec.get("trainable"))


def same_space(runs: Experiments) -> list[str]:
    """The experiments that search the first experiment's space (pooling configs of different
    spaces would compare parameters that mean different things)."""
    first = _space_key(next(iter(runs.specs.values()), {}))
    return [n for n, spec in runs.specs.items() if _space_key(spec) == first]


def plot_parallel_coordinates(runs: Experiments) -> bytes:
    plt = _plt()
    column = f"best_{runs.metric}"
    names = same_space(runs)
    ok = runs.trials[(runs.trials["status"] != "failed") & runs.trials["experiment"].isin(names)]
    ok = ok.dropna(subset=[column]) if column in ok.columns else ok.iloc[0:0]
    params = _param_columns(ok)
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(params) + 2), 4.5))
    if ok.empty or not params:
        _empty(ax, "no finished trial with varying parameters yet")
        return _png(fig)
    total = len(ok)
    ok, note = drawn_trials(ok, runs.metric, runs.mode)
    values = ok[column].to_numpy(dtype=float)
    norm = plt.Normalize(values.min(), values.max() if values.max() > values.min()
                         else values.min() + 1e-9)
    cmap = plt.get_cmap("viridis" if runs.mode == "max" else "viridis_r")
    axes_values = [_axis_values(ok[p]) for p in params]
    ys = np.column_stack([a[0] for a in axes_values])
    for i in np.argsort(values if runs.mode == "max" else -values):  # best drawn last
        ax.plot(range(len(params)), ys[i], color=cmap(norm(values[i])), alpha=0.75,
                linewidth=1.3)
    for x, (_, ticks) in enumerate(axes_values):
        ax.axvline(x, color="0.2", linewidth=0.8)
        for y, text in ticks:
            ax.text(x + 0.03, y, text, fontsize=7, va="center", color="0.2")
    ax.set_xticks(range(len(params)))
    ax.set_xticklabels([p.removeprefix("config/") for p in params], rotation=30, ha="right",
                       fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.18, 1.08)
    ax.set_xlim(-0.2, len(params) - 0.5)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, label=f"best {runs.metric}")
    left_out = [n for n in runs.names if n not in names]
    ax.set_title(f"Parallel coordinates: {total} trials coloured by best {runs.metric}"
                 + (f"\n{note.strip()}" if note else "")
                 + (f"\n(space of {names[0]}; not shown: {', '.join(left_out)})" if left_out
                    else ""), fontsize=10)
    return _png(fig)


def param_importance(trials: pd.DataFrame, metric: str, mode: str, *,
                     seed: int = 0) -> pd.Series:
    """fANOVA importance of each varying parameter over the complete trials (Optuna's
    ``FanovaImportanceEvaluator``), largest first, summing to 1. An inactive (conditional)
    number counts as 0 and an inactive choice as ``"off"``, so every parameter is scored.
    ``ValueError`` with fewer than 4 complete trials."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    column = f"best_{metric}"
    done = trials[trials["status"] == "complete"]
    done = done.dropna(subset=[column]) if column in done.columns else done.iloc[0:0]
    if len(done) < 4:
        raise ValueError(f"parameter importance needs at least 4 complete trials; "
                         f"there are {len(done)}")
    params = _param_columns(done)
    if not params:
        raise ValueError("no searched parameter varies across the complete trials")
    if done[column].astype(float).nunique() < 2:
        raise ValueError(f"every complete trial has the same {metric}; nothing to explain")
    if len(done) > MAX_FANOVA:  # the forest's cost grows with the trials; a sample ranks alike
        done = done.sample(n=MAX_FANOVA, random_state=seed)
    distributions: dict[str, Any] = {}
    columns: dict[str, list] = {}
    for p in params:
        name = p.removeprefix("config/")
        values = done[p]
        numbers = _numeric(values)
        if numbers is not None:
            filled = numbers.fillna(0.0)
            lo, hi = float(filled.min()), float(filled.max())
            distributions[name] = FloatDistribution(lo, hi if hi > lo else lo + 1.0)
            columns[name] = filled.tolist()
        else:
            filled = values.astype(object).where(values.notna(), "off").astype(str)
            distributions[name] = CategoricalDistribution(sorted(filled.unique()))
            columns[name] = filled.tolist()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    for row, value in enumerate(done[column].astype(float)):
        study.add_trial(optuna.trial.create_trial(
            params={n: columns[n][row] for n in distributions}, distributions=distributions,
            value=value))
    scores = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed))
    return pd.Series(scores, name="importance", dtype=float)  # largest first


def plot_importance(runs: Experiments) -> bytes:
    """fANOVA importance per experiment (grouped bars), each over its own complete trials."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    shown = same_space(runs)
    scores, skipped = {}, [f"{n}: another space" for n in runs.names if n not in shown]
    for name in shown:
        try:
            scores[name] = param_importance(runs.trials[runs.trials["experiment"] == name],
                                            runs.metric, runs.mode)
        except ValueError as e:
            skipped.append(f"{name}: {e}")
    if not scores:
        _empty(ax, "no importance yet: " + "; ".join(skipped))
        return _png(fig)
    table = pd.DataFrame(scores).fillna(0.0)
    table = table.loc[table.max(axis=1).sort_values().index]  # largest at the top
    height = 0.8 / len(table.columns)
    for k, name in enumerate(table.columns):
        y = np.arange(len(table)) + (k - (len(table.columns) - 1) / 2) * height
        ax.barh(y, table[name].to_numpy(), height=height, label=_label(runs, name))
        for yy, v in zip(y, table[name].to_numpy()):
            ax.text(v, yy, f" {v:.2f}", va="center", fontsize=7)
    ax.set_yticks(np.arange(len(table)))
    ax.set_yticklabels(table.index)
    ax.set_xlim(0, max(1e-9, float(table.to_numpy().max())) * 1.2)
    ax.set_xlabel(f"fANOVA importance for {runs.metric} (sums to 1 per experiment)")
    scored = runs.trials[runs.trials["experiment"].isin(list(scores))]
    done = int((scored["status"] == "complete").sum())
    ax.set_title(f"Parameter importance over {done} complete trials (pruned ones left out)"
                 + (f"\nnot shown: {'; '.join(skipped)}" if skipped else ""), fontsize=10)
    if len(table.columns) > 1:
        ax.legend(fontsize=8)
    return _png(fig)


def cost_column(trials: pd.DataFrame) -> str:
    """The cost the Pareto plot trades the metric against."""
    return "last/params" if "last/params" in trials.columns and \
        trials["last/params"].notna().any() else "wall_s"


def plot_pareto(runs: Experiments, cost: str | None = None) -> bytes:
    plt = _plt()
    cost = cost or cost_column(runs.trials)
    column = f"best_{runs.metric}"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if column not in runs.trials.columns or cost not in runs.trials.columns:
        _empty(ax, f"no trials with both {runs.metric} and {cost} yet")
        return _png(fig)
    ok = runs.trials[runs.trials["status"] != "failed"].dropna(subset=[column, cost])
    if ok.empty:
        _empty(ax, f"no trials with both {runs.metric} and {cost} yet")
        return _png(fig)
    for name, group in ok.groupby("experiment", sort=False):
        done = group["status"] == "complete"
        points = ax.scatter(group.loc[done, cost], group.loc[done, column], s=20, alpha=0.8,
                            label=_label(runs, name))
        ax.scatter(group.loc[~done, cost], group.loc[~done, column], s=14, alpha=0.25,
                   color=points.get_facecolor()[0] if done.any() else None)
    # The front of complete trials: a pruned trial's value comes from fewer epochs.
    complete = ok[ok["status"] == "complete"]
    basis = complete if not complete.empty else ok
    front = pareto_front(basis, {column: runs.mode, cost: "min"}).sort_values(cost)
    which = "complete trials" if not complete.empty else "trials"
    ax.step(front[cost], front[column], where="post",  # the best reachable at each cost
            color="k", linewidth=1.5, label=f"Pareto front of {which} ({len(front)})")
    ax.scatter(front[cost], front[column], s=40, facecolors="none", edgecolors="k")
    if (ok[cost] > 0).all() and ok[cost].max() / max(ok[cost].min(), 1e-12) > 20:
        ax.set_xscale("log")
    label = {"last/params": "parameters", "wall_s": "trial seconds"}.get(cost, cost)
    ax.set_xlabel(f"{label} (lower is better)")
    ax.set_ylabel(f"best {runs.metric}")
    ax.set_title(f"{runs.metric} against {label} (pruned and running trials faded)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


DARTS_COLUMNS = ("alpha_steps", "param_free_share")  # what marks a DARTS search's epochs
DARTS_SETTINGS = ("config/remedy", "config/order", "config/seed")


def _setting(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a seed read back as float next to experiments without one
    return str(value)


def darts_curves(runs: Experiments) -> pd.DataFrame:
    """The DARTS searches' trajectories: one row per (trial, epoch) with ``trial`` (one line
    each), ``label`` (remedy, order and seed, prefixed by the experiment when several are
    loaded; the trial id where trials share those) and :data:`DARTS_COLUMNS`, with
    ``nb201_val_acc`` where the trials looked their cells up; empty when no trial reported them.
    """
    its = runs.iterations
    columns = ["trial", "label", *DARTS_COLUMNS, "nb201_val_acc"]
    if not set(DARTS_COLUMNS) <= set(its.columns):
        return pd.DataFrame(columns=columns)
    its = its.dropna(subset=list(DARTS_COLUMNS))
    if "nb201_val_acc" not in its.columns:
        its = its.assign(nb201_val_acc=float("nan"))
    trials = runs.trials.drop_duplicates(["experiment", "trial_id"]).set_index(
        ["experiment", "trial_id"])
    settings = [c for c in DARTS_SETTINGS if c in trials.columns]
    keys = list(dict.fromkeys(zip(its["experiment"], its["trial_id"])))
    labels = {}
    for key in keys:
        parts = [p for c in settings if key in trials.index
                 and (p := _setting(trials.at[key, c])) is not None]
        prefix = f"{key[0]}: " if len(runs.names) > 1 else ""
        labels[key] = prefix + (" ".join(parts) if parts else key[1])
    repeated = pd.Series(labels).duplicated(keep=False)
    for key, twice in zip(labels, repeated):
        if twice:
            labels[key] = f"{labels[key]} ({key[1]})"
    rows = list(zip(its["experiment"], its["trial_id"]))
    return its.assign(trial=[f"{e}/{t}" for e, t in rows],
                      label=[labels[k] for k in rows]).sort_values(
        ["label", "alpha_steps"])[columns].reset_index(drop=True)


def plot_darts_trajectories(curves: pd.DataFrame, title: str = "") -> bytes:
    """Two panels against alpha steps, one line per ``trial`` (or ``label``): the derived
    cell's NAS-Bench-201 accuracy (the table's, in [0, 1] or percent as given; left empty
    without lookups) and the share of the alphas' softmax on parameter-free ops (``none``,
    ``skip_connect``, ``avg_pool_3x3``). Lines of one ``group`` (a method over seeds, say)
    share a colour and a legend entry; without groups each label has its own."""
    plt = _plt()
    fig, (acc, share) = plt.subplots(1, 2, figsize=(11, 4))
    if curves.empty:
        _empty(acc, "no DARTS search has reported an epoch")
        _empty(share, "")
        return _png(fig)
    curves = curves.reset_index(drop=True)
    lines = curves["trial"] if "trial" in curves.columns else curves["label"]
    groups = curves["group"] if "group" in curves.columns else curves["label"]
    colours = {g: f"C{i % 10}" for i, g in enumerate(sorted(set(groups)))}
    named: set[str] = set()
    for _, curve in curves.groupby(lines, sort=False):
        curve = curve.sort_values("alpha_steps")
        group = groups[curve.index[0]]
        style = {"color": colours[group], "linewidth": 1.6, "alpha": 0.85,
                 "label": None if group in named else group,
                 "marker": "." if len(curve) < 3 else None}
        named.add(group)
        if "nb201_val_acc" in curve.columns and curve["nb201_val_acc"].notna().any():
            acc.plot(curve["alpha_steps"], curve["nb201_val_acc"], **style)
        share.plot(curve["alpha_steps"], curve["param_free_share"], **style)
    if not acc.lines:
        _empty(acc, "no NAS-Bench-201 lookups (train.nb201_dataset: null)")
    else:
        acc.set_ylabel("derived cell's NAS-Bench-201 accuracy")
        acc.set_xlabel("alpha steps")
        acc.grid(alpha=0.3)
    share.set_ylabel("share of parameter-free ops")
    share.axhline(0.6, color="0.5", linestyle=":", linewidth=1)  # uniform over the 5 ops
    share.set_xlabel("alpha steps")
    share.grid(alpha=0.3)
    share.legend(fontsize=8)
    fig.suptitle(title or "DARTS: derived cell and parameter-free share against alpha steps")
    return _png(fig)


# name (of the PNG file) -> (title on the page, what draws it from the runs and a cost column)
PLOTS: dict[str, tuple[str, Callable[[Experiments, str | None], bytes]]] = {
    "best_so_far_time": ("Best so far against wall time",
                         lambda runs, cost: plot_best_so_far(runs, "time")),
    "best_so_far_trials": ("Best so far against trials",
                           lambda runs, cost: plot_best_so_far(runs, "trials")),
    "learning_curves": ("Learning curves", lambda runs, cost: plot_learning_curves(runs)),
    "parallel_coordinates": ("Parallel coordinates",
                             lambda runs, cost: plot_parallel_coordinates(runs)),
    "importance": ("Parameter importance (fANOVA)", lambda runs, cost: plot_importance(runs)),
    "pareto": ("Pareto front", plot_pareto),
}


def render_plots(runs: Experiments, cost: str | None = None) -> dict[str, bytes]:
    """Every plot of the report as PNG bytes, by name (see :data:`PLOTS`), and DARTS's
    trajectories (``darts``) when a DARTS search is among the runs."""
    plots = {name: draw(runs, cost) for name, (_, draw) in PLOTS.items()}
    curves = darts_curves(runs)
    if not curves.empty:
        plots["darts"] = plot_darts_trajectories(curves)
    return plots


def _summary(runs: Experiments) -> pd.DataFrame:
    rows = []
    column = f"best_{runs.metric}"
    for name in runs.names:
        mine = runs.trials[runs.trials["experiment"] == name]
        counts = mine["status"].value_counts()
        try:
            best = best_trial(mine, runs.metric, runs.mode)[column]
        except ValueError:
            best = float("nan")
        rows.append({"experiment": name, "searcher": mine["searcher"].iloc[0] if len(mine)
                     else "", "trials": len(mine),
                     **{s: int(counts.get(s, 0)) for s in ("complete", "pruned", "failed",
                                                           "running", "stopped")},
                     f"best {runs.metric}": best})
    return pd.DataFrame(rows)


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}", border=0,
                      classes="table")


def write_report(runs: Experiments, path: str | Path, *, top: int = 10,
                 cost: str | None = None, png_dir: str | Path | None = None) -> Path:
    """Write the HTML report to ``path`` (and each PNG into ``png_dir`` if given)."""
    import datetime

    plots = render_plots(runs, cost)
    if png_dir is not None:
        Path(png_dir).mkdir(parents=True, exist_ok=True)
        for name, data in plots.items():
            (Path(png_dir) / f"{name}.png").write_bytes(data)
    pooled = []
    for name in runs.names:
        board = leaderboard(runs.trials[runs.trials["experiment"] == name], metric=runs.metric,
                            mode=runs.mode, top=top)
        if not board.empty:
            pooled.append(board.assign(experiment=name))
    board = pd.concat(pooled, ignore_index=True) if pooled else pd.DataFrame()
    if not board.empty:
        board = board.sort_values(f"best_{runs.metric}", ascending=runs.mode == "min",
                                  kind="stable").head(top)
        board = board[["experiment", *[c for c in board.columns if c != "experiment"]]]
    running = bool((runs.trials["status"] == "running").any())
    titles = {**{name: title for name, (title, _) in PLOTS.items()},
              "darts": "DARTS trajectories"}
    figures = "\n".join(
        f'<h2>{titles[name]}</h2>\n<img alt="{name}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode()}">' for name, data in plots.items())
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>hpnas report: {html.escape(', '.join(runs.names))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
table.table {{ border-collapse: collapse; font-size: 13px; }}
table.table td, table.table th {{ padding: 3px 8px; border-bottom: 1px solid #ddd;
  text-align: right; }}
.note {{ color: #666; }}
</style></head><body>
<h1>hpnas report</h1>
<p class="note">{html.escape(', '.join(runs.names))}: metric {html.escape(runs.metric)}
({runs.mode}); written {datetime.datetime.now():%Y-%m-%d %H:%M:%S}{
    '; <b>still running</b>: this is a snapshot' if running else ''}.</p>
<h2>Experiments</h2>
{_table(_summary(runs))}
<h2>Leaderboard (top {top})</h2>
{_table(board) if not board.empty else '<p>no finished trials yet</p>'}
{figures}
</body></html>
"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
