"""What hpnas does with a finished experiment's best trial (or a trial the user names).

* :func:`retrain_experiment`: its config as an experiment file that ``hpnas run`` retrains;
* :func:`evaluate_trial`: the test metrics of its final model (``evaluation.json``);
* :func:`draw_best`: a picture of its model, for trainables that draw one (the GAN's samples).

"The best trial" is one rule, :func:`results.best_trial`; the config a trials row was run with
is read back by :func:`results.config_of`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import yaml

from cluster.spec import ExperimentSpec, SpecError, load_saved, spec_from_mapping
from results import ExperimentDir, Location, best_trial, config_of, is_uri
from spaces import Float, get_space
from spaces.inline import INLINE
from trainables import TRAINABLE_INFO

__all__ = ["draw_best", "evaluate_trial", "experiment_yaml", "pick_trial",
           "retrain_experiment"]


def pick_trial(experiment: ExperimentDir, spec: ExperimentSpec, trial_id: str | None = None,
               *, with_checkpoint: bool = False) -> tuple[dict[str, Any], pd.Series]:
    """``(config, row)`` of ``trial_id``, else of the best trial (:func:`results.best_trial`);
    ``with_checkpoint``: only trials with a checkpoint qualify. ``SpecError`` if none does."""
    trials, _ = experiment.load()
    if trial_id is not None:
        rows = trials[trials["trial_id"] == trial_id]
        if rows.empty:
            raise SpecError(f"--trial is {trial_id!r}, but {experiment} has no such trial; "
                            f"its trials: {', '.join(trials['trial_id'].head(20))}.")
        row = rows.iloc[0]
        if with_checkpoint and pd.isna(row["checkpoint"]):
            raise SpecError(f"trial {trial_id} of {experiment} has no checkpoint; pick another "
                            "--trial.")
    else:
        try:
            row = best_trial(trials, spec.metric, spec.mode, with_checkpoint=with_checkpoint)
        except ValueError as e:
            raise SpecError(f"{experiment}: {e}.") from None
    return config_of(row, spec.space), row


@contextlib.contextmanager
def local_checkpoint(checkpoint: str) -> Iterator[str]:
    """A local directory holding ``checkpoint`` (downloaded when it is behind a URI)."""
    if not is_uri(checkpoint):
        yield checkpoint
        return
    with tempfile.TemporaryDirectory(prefix="hpnas-checkpoint-") as tmp:
        yield str(Location(checkpoint).download(tmp))


def retrain_experiment(experiment: ExperimentDir, *, trial_id: str | None = None,
                       epochs: int | None = None) -> tuple[dict[str, Any], str]:
    """The experiment file (a mapping) that retrains one trial's config, and that trial's id.

    The trial is ``trial_id``, else the best trial. The file is the experiment's own (same
    trainable, data and training settings) with every active parameter of the trial fixed (in
    ``space.overrides`` of a registered space; as fixed values of a space written in the file),
    one sample, random search, FIFO, named ``<name>-retrain-<trial>``; ``epochs`` changes
    ``train.epochs`` (and ``max_epochs`` of a trainable of the user's).
    """
    spec = load_saved(experiment, check_data=False)
    config, row = pick_trial(experiment, spec, trial_id)
    try:
        spec.space.validate(config)
    except ValueError as e:
        raise SpecError(f"trial {row['trial_id']}'s config does not fit the experiment's space "
                        f"({e}).") from None
    raw = experiment.settings()
    out = copy.deepcopy(raw)
    out.update(name=f"{spec.name}-retrain-{row['trial_id']}", samples=1, searcher="random",
               scheduler="fifo", max_concurrent_trials=1)
    out.pop("time_budget_s", None)
    out.pop("warm_start", None)  # one fixed config: nothing to learn from another experiment
    if spec.space.name == INLINE:
        out["space"] = dict(config)  # each parameter of the file's own space a fixed value
    else:
        out["space"] = _fixed_registered_space(raw, spec, config)
    if epochs is not None:
        if spec.user is None or "epochs" in (out.get("train") or {}):
            out["train"] = {**(out.get("train") or {}), "epochs": epochs}
        if spec.user is not None:
            out["max_epochs"] = epochs
    try:  # what `hpnas run` will check, so a bad --epochs fails here, before a file is written
        spec_from_mapping(out, source="--best-config", check_data=False)
    except SpecError as e:
        raise SpecError(f"the retraining experiment would be invalid: {e}") from None
    return out, str(row["trial_id"])


def _fixed_registered_space(raw: dict[str, Any], spec: ExperimentSpec,
                            config: dict[str, Any]) -> dict[str, Any]:
    """``space: {name, overrides}`` with every parameter of ``config`` fixed."""
    space = raw.get("space")
    space_name = space.get("name", spec.space.name) if isinstance(space, dict) else \
        (space or spec.space.name)
    overrides = dict((space or {}).get("overrides") or {}) if isinstance(space, dict) else {}
    base = get_space(space_name)
    for name, value in config.items():
        # A plain value is checked against the space's own range; outside it (a range the
        # experiment widened), fix the parameter by its bounds instead.
        param = base[name]
        if param.contains(value):
            overrides[name] = value
        elif isinstance(param, Float):
            overrides[name] = {"low": value, "high": value, "log": False}
        else:
            overrides[name] = {"low": value, "high": value}
    return {"name": space_name, "overrides": overrides}


def experiment_yaml(experiment: dict[str, Any], *, source: str, trial_id: str) -> str:
    return (f"# Retrain trial {trial_id} of {source} (written by `hpnas results --best-config`).\n"
            f"# Run: hpnas run THIS_FILE\n"
            + yaml.safe_dump(experiment, sort_keys=False))


def evaluate_trial(experiment: ExperimentDir, trial_id: str | None = None
                   ) -> tuple[dict[str, Any], pd.Series]:
    """Test metrics of the final model of ``trial_id`` (else of the best trial with a
    checkpoint), written to ``evaluation.json``, and that trial's row; ``SpecError`` (one line)
    for a trainable without a test evaluation, no such trial, or a checkpoint that cannot be
    read."""
    from trainables.loop import CheckpointError

    spec = load_saved(experiment, check_data=True)
    if spec.user is not None:
        raise SpecError(f"trainable {spec.trainable!r} is your own; `hpnas evaluate` runs the "
                        "test evaluation of the built-in trainables only. Load the best "
                        "trial's checkpoint (`checkpoint` in trials.parquet) in your code.")
    info = TRAINABLE_INFO[spec.trainable]
    if info.evaluate is None:
        raise SpecError(f"trainable {spec.trainable!r} has no test evaluation.")
    config, row = pick_trial(experiment, spec, trial_id, with_checkpoint=True)
    try:
        with local_checkpoint(row["checkpoint"]) as checkpoint:
            metrics = info.evaluate(config, dataclasses.asdict(spec.settings), checkpoint)
    except CheckpointError as e:
        raise SpecError(str(e)) from None
    result = {"trial_id": row["trial_id"], **metrics, "config": config}
    experiment.evaluation_file.write_text(json.dumps(result, indent=2))
    return result, row


def draw_best(experiment: ExperimentDir, spec: ExperimentSpec) -> tuple[str, Location] | None:
    """``(trial id, picture)``: the best trial's model drawn into ``best_grid.png``, for
    trainables that draw one; None for the others or when no trial has a checkpoint."""
    render = None if spec.user is not None else TRAINABLE_INFO[spec.trainable].render
    if render is None:
        return None
    try:
        config, row = pick_trial(experiment, spec, with_checkpoint=True)
    except SpecError:
        return None
    with local_checkpoint(row["checkpoint"]) as checkpoint, \
            tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / ExperimentDir.PICTURE_FILE
        render(config, dataclasses.asdict(spec.settings), checkpoint, str(image))
        experiment.picture_file.write_bytes(image.read_bytes())
    return str(row["trial_id"]), experiment.picture_file
