"""Resuming a search: the search state Tune restores, and its agreement with the trials.

Tune saves three files per experiment snapshot, each named by the session (the run of the
experiment, by its start time) that wrote it: the experiment snapshot (``experiment_state-*``,
with the trials), its search generator's state (``search_gen_state-*``, with the concurrency
limiter's) and the searcher's (``searcher-state-*``). It copies them to storage one at a time,
and on restore takes the newest of each kind by name, the snapshot from storage and the search
state from the driver's staging folder (which a Ray cluster that outlived a killed driver still
holds, with that driver's newer files). So a crash can pair a snapshot with a search state from
a later session, or from a step before or after it in the same session.

* :class:`PairedSearchGenerator` restores the search state of the snapshot's own session (never
  a later one), and never restores a "finished" flag: the searcher says so again if no budget
  is left.
* A search state cut short (the driver killed while Tune copied it to storage, which is not
  atomic) is not restored: the searcher starts afresh, and the reconciling below replays the
  restored trials to it.
* :class:`SearcherSync`, a callback, then reconciles the limiter and the searcher with the
  trials Tune restored (:func:`reconcile`), before the first suggestion.
"""

from __future__ import annotations

import logging
import pickle
from contextlib import contextmanager
from typing import Any, Iterator

import pyarrow.fs as pafs
import ray.cloudpickle as cloudpickle
from ray.tune import Callback
from ray.tune.search import ConcurrencyLimiter, SearchGenerator, Searcher

from results.storage import Location
from search.adapter import SpaceSearcher
from search.outcome import ENDED

__all__ = ["PairedSearchGenerator", "SearcherSync", "newest_session", "reconcile",
           "restoring_from"]

logger = logging.getLogger(__name__)

_restoring_from: str | None = None  # the experiment directory Tune is restoring, if known
_extend_by: int | None = None  # trials to add to a restored search (``hpnas extend``)

SNAPSHOT = ("experiment_state-", ".json")
GENERATOR_STATE = ("search_gen_state-", ".json")
SEARCHER_STATE = ("searcher-state-", ".pkl")


def _names(where: str | Location) -> list[str]:
    """The file names in ``where`` (none if it cannot be listed)."""
    where = Location(where)
    try:
        return [i.base_name for i in where.fs.get_file_info(pafs.FileSelector(where.path))]
    except (FileNotFoundError, OSError):
        return []


def _sessions(names: list[str], kind: tuple[str, str]) -> list[str]:
    """The session names of the files of ``kind`` among ``names``, oldest first."""
    prefix, suffix = kind
    return sorted(n[len(prefix):-len(suffix)] for n in names
                  if n.startswith(prefix) and n.endswith(suffix))


_CUT_SHORT = object()


def _load(path: str) -> Any:
    """The object pickled at ``path``, or ``_CUT_SHORT`` if it does not load whole (a copy cut
    short by a kill)."""
    try:
        with open(path, "rb") as f:
            return cloudpickle.load(f)
    except (EOFError, pickle.UnpicklingError, ValueError):
        return _CUT_SHORT


def newest_session(where: str | Location, kind: tuple[str, str] = SNAPSHOT) -> str | None:
    """The session name of the newest file of ``kind`` in ``where`` (None if none or
    unreadable)."""
    sessions = _sessions(_names(where), kind)
    return sessions[-1] if sessions else None


@contextmanager
def restoring_from(directory: str, extend_by: int | None = None) -> Iterator[None]:
    """While Tune restores the experiment in ``directory`` (``Tuner.restore(...).fit()``): the
    directory whose snapshots the search state is paired with (the one recorded when the
    experiment was built may since have been copied or moved). ``extend_by``: the restored
    searcher may hand out this many trials more than the experiment has (``hpnas extend``)."""
    global _restoring_from, _extend_by
    previous = _restoring_from, _extend_by
    _restoring_from, _extend_by = directory, extend_by
    try:
        yield
    finally:
        _restoring_from, _extend_by = previous


class PairedSearchGenerator(SearchGenerator):
    """Tune's ``SearchGenerator`` that restores the search state paired with the experiment
    snapshot Tune restores: the newest state of a session no newer than the newest snapshot in
    the experiment directory (where Tune reads the snapshot from: the one given to
    :func:`restoring_from`, else ``experiment_dir``; the staging folder's snapshots when
    neither can be listed)."""

    def __init__(self, searcher: Searcher, experiment_dir: str | None = None) -> None:
        super().__init__(searcher)
        self.experiment_dir = experiment_dir

    def restore_from_dir(self, dirpath: str) -> None:
        where = _restoring_from or self.experiment_dir
        snapshot = (newest_session(where) if where else None) or newest_session(dirpath)
        staged = Location(dirpath)
        names, limit = _names(staged), snapshot or ""
        generator = [s for s in _sessions(names, GENERATOR_STATE) if s <= limit]
        searcher = [s for s in _sessions(names, SEARCHER_STATE) if s <= limit]
        newer = [s for s in _sessions(names, SEARCHER_STATE) if s > limit]
        if generator and searcher:
            chosen = {GENERATOR_STATE: generator[-1], SEARCHER_STATE: searcher[-1]}
        else:  # the files Tune's own choice below restores: the newest of each kind
            chosen = {kind: sessions[-1] for kind in (GENERATOR_STATE, SEARCHER_STATE)
                      if (sessions := _sessions(names, kind))}
        files = {kind: f"{kind[0]}{session}{kind[1]}" for kind, session in chosen.items()}
        loaded = {kind: _load(staged / name) for kind, name in files.items()}
        unreadable = [files[kind] for kind, value in loaded.items() if value is _CUT_SHORT]
        if unreadable:
            print(f"hpnas: the saved search state {', '.join(unreadable)} is cut short (the "
                  "run was killed while it was being copied); the searcher starts afresh and "
                  "the resumed run replays the restored trials to it.", flush=True)
        elif not generator or not searcher:
            if newer:
                print(f"hpnas: no search state was saved with the last experiment snapshot "
                      f"({snapshot}); restoring the newest ({newer[-1]}), which the resumed "
                      "run reconciles with the snapshot's trials.", flush=True)
            super().restore_from_dir(dirpath)  # Tune's own choice: the newest files
        else:
            if newer:
                print(f"hpnas: the search state of session {newer[-1]} is newer than the last "
                      f"experiment snapshot ({snapshot}): the run was killed before the snapshot "
                      f"was saved; restoring the search state saved with that snapshot instead.",
                      flush=True)
            state = loaded[GENERATOR_STATE]
            wrapper = self.searcher
            while hasattr(wrapper, "searcher"):  # the limiter's state, as Tune restores it
                key = f"name:{type(wrapper).__name__}"
                if key in state:
                    wrapper.set_state(state.pop(key))
                wrapper = wrapper.searcher
            wrapper.restore(str(staged / files[SEARCHER_STATE]))
            self.set_state(state)
        self._finished = False  # the searcher says FINISHED again at once if no budget is left


class SearcherSync(Callback):
    """Reconciles the concurrency limiter and the :class:`SpaceSearcher` inside a search
    generator with the trials Tune restored, once, before the first suggestion of a run or a
    resumed run.

    Pass the same object to ``TuneConfig(search_alg=...)`` and here: Tune pickles the tuner's
    configuration, callbacks included, in one file, so a restored callback still holds the
    search algorithm that Tune restores in place.
    """

    def __init__(self, search_alg: SearchGenerator | ConcurrencyLimiter | SpaceSearcher) -> None:
        self.search_alg = search_alg
        self.synced = False

    def setup(self, **info: Any) -> None:
        self.synced = False

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self.synced:
            return
        self.synced = True
        known = {t.trial_id: t for t in trials}
        alg = self.search_alg
        if isinstance(alg, SearchGenerator):
            alg = alg.searcher
        if isinstance(alg, ConcurrencyLimiter):
            inner = alg.searcher
            learned = inner.outcomes if isinstance(inner, SpaceSearcher) else {}
            for trial_id in list(alg.live_trials):
                trial = known.get(trial_id)
                if trial is None or (trial.status in ENDED and trial_id in learned):
                    # A trial Tune does not know, or one the searcher has already learned
                    # from: only its slot is left to free.
                    alg.live_trials.discard(trial_id)
                    alg.num_unfinished_live_trials = max(0, alg.num_unfinished_live_trials - 1)
                elif trial.status in ENDED:  # ended, but the snapshot's limiter missed it
                    alg.on_trial_complete(trial_id, trial.last_result,
                                          error=trial.status == "ERROR")
            for trial_id, trial in known.items():  # will run: count it against the limit
                if trial.status not in ENDED and trial_id not in alg.live_trials:
                    alg.live_trials.add(trial_id)
                    alg.num_unfinished_live_trials += 1
            alg = alg.searcher
        if isinstance(alg, SpaceSearcher):
            reconcile(alg, trials)
            if _extend_by is not None:  # the trials it has, and the ones asked for
                alg.max_trials = alg.suggested + _extend_by


def _same_config(searcher: SpaceSearcher, config: dict[str, Any],
                 trial_config: dict[str, Any] | None) -> bool:
    given = {k: v for k, v in (trial_config or {}).items() if k in searcher.space.names}
    return dict(config) == given


def reconcile(searcher: SpaceSearcher, trials: list) -> None:
    """Make a restored ``searcher`` agree with Tune's restored ``trials`` (objects with
    ``trial_id``, ``status``, ``config`` and ``last_result``).

    Tune copies the experiment snapshot and the searcher state to storage as separate files,
    so a crash between the copies can restore a searcher a snapshot newer or older than the
    trials:

    * a live trial Tune does not know was handed out after the snapshot: its proposal is
      abandoned (:meth:`SpaceSearcher.abandon`);
    * a live trial Tune has already ended is completed with its last result;
    * trials Tune has that this (older) state never handed out are replayed: the core is
      asked once per such trial, and a proposal equal to one of their configs is tracked as
      that trial (and learned from when it ends). Cores whose proposals follow from their
      saved state (random search, grids and point lists, Optuna before it has learned)
      propose them again; where learning since changed the proposals, the unmatched
      proposals are abandoned and those trials run without the core learning from them;
    * an errored trial that Tune runs again (``--retry-errored``) is not learned from a
      second time (the core was told of the failure).

    A trial the core does not learn from has its outcome recorded when it ends, and is not
    replayed by a later resume. The budget spent is the number of trials Tune knows, so the
    experiment ends with ``max_trials`` trials either way.
    """
    by_id = {t.trial_id: t for t in trials}
    for trial_id in list(searcher.live):
        trial = by_id.get(trial_id)
        if trial is None:
            logger.warning("%s searcher: trial %s is not in the restored experiment (it "
                           "started after the last snapshot); abandoned.", searcher.name,
                           trial_id)
            searcher.abandon(searcher.live.pop(trial_id))
        elif trial.status in ENDED:
            searcher.on_trial_complete(trial_id, trial.last_result,
                                       error=trial.status == "ERROR")
    unseen = []
    for trial in trials:
        if trial.trial_id in searcher.live or trial.trial_id in searcher.unlearned:
            continue
        if trial.trial_id in searcher.outcomes:
            if trial.status not in ENDED:  # errored, and run again
                searcher.unlearned.add(trial.trial_id)
            continue
        unseen.append(trial)
    proposals = [p for p in (searcher.strategy.ask() for _ in unseen) if p is not None]
    for trial in unseen:
        match = next((p for p in proposals if _same_config(searcher, p[0], trial.config)), None)
        if match is None:
            logger.warning("%s searcher: trial %s was handed out after the restored searcher "
                           "state was saved, and the searcher does not propose it again; it "
                           "runs without the searcher learning from it.", searcher.name,
                           trial.trial_id)
            searcher.unlearned.add(trial.trial_id)
            if trial.status in ENDED:
                searcher.on_trial_complete(trial.trial_id, trial.last_result,
                                           error=trial.status == "ERROR")
            continue
        proposals.remove(match)
        searcher.live[trial.trial_id] = match[1]
        if trial.status in ENDED:
            searcher.on_trial_complete(trial.trial_id, trial.last_result,
                                       error=trial.status == "ERROR")
    for proposal in proposals:
        searcher.abandon(proposal[1])
    searcher.suggested = len(trials)
