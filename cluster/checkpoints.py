"""Checkpoint clean-up that a crash cannot outrun.

Tune, told to keep one checkpoint per trial, deletes the old one the moment a new one registers;
but its experiment snapshot, which ``hpnas resume`` restores from, is written a step later. A
driver killed between the two leaves a snapshot that points at a deleted checkpoint, and that
trial fails on resume ("does not exist on storage anymore"). So Tune keeps every checkpoint and
this callback deletes a trial's old ones only once a snapshot written after newer ones exists:
of the checkpoints registered before the newest snapshot, the last two stay (the one the
snapshot names and, for a snapshot synced late, the one before), and the older ones go; the
newest checkpoint always stays. A resumed run adopts the checkpoints its restored trials left,
up to the one the snapshot names (newer ones were written after it and are Tune's to reuse).
"""

from __future__ import annotations

import logging
import os
import posixpath
import time
from collections import defaultdict
from typing import Any

import pyarrow.fs as pafs
from ray.tune import Callback, Checkpoint

from cluster.resume import SNAPSHOT
from results import Location
from search.outcome import ENDED

__all__ = ["CheckpointJanitor"]

logger = logging.getLogger(__name__)


class CheckpointJanitor(Callback):
    """Deletes checkpoints no snapshot can need any more (see the module docstring)."""

    def __init__(self, directory: Location | str, *, keep_before_snapshot: int = 2,
                 snapshot_cache_s: float = 0.5) -> None:
        self.directory = Location(directory)
        self.keep = keep_before_snapshot
        # Listing the experiment folder (a folder per trial) for every checkpoint grew with the
        # experiment; the newest snapshot's time is read at most this often. A stamp at most
        # this stale is still older than any later snapshot's (Tune snapshots every >= 1 s),
        # and the two checkpoints kept before a snapshot cover the one it names.
        self.snapshot_cache_s = snapshot_cache_s
        self._snapshot: tuple[float, float] | None = None  # (read at, snapshot time)
        self.registered: dict[str, list[tuple[float, Any]]] = defaultdict(list)
        self.adopted = False
        self.orphans: dict[str, list[Any]] = {}  # per restored trial: checkpoints after its own

    def setup(self, **info: Any) -> None:
        self.adopted = False
        self._snapshot = None

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if not self.adopted:
            self.adopted = True
            self.adopt(trials)

    def adopt(self, trials: list) -> None:
        """Register the checkpoints restored ``trials`` wrote before a crash, oldest first, up
        to the one Tune restored each trial from; remember the later ones, which the trial may
        write again under the same names, to delete if it ends without doing so."""
        snapshot = self._last_snapshot()
        for trial in trials:
            latest = trial.checkpoint
            if latest is None or self.registered.get(trial.trial_id):
                continue
            parent, last = posixpath.split(latest.path.rstrip("/"))
            try:
                infos = latest.filesystem.get_file_info(pafs.FileSelector(parent))
            except (FileNotFoundError, OSError):
                continue
            names = sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory
                           and i.base_name.startswith("checkpoint_"))
            self.registered[trial.trial_id].extend(
                (snapshot, Checkpoint(posixpath.join(parent, n), filesystem=latest.filesystem))
                for n in names if n < last)
            self.registered[trial.trial_id].append((snapshot, latest))
            later = [Checkpoint(posixpath.join(parent, n), filesystem=latest.filesystem)
                     for n in names if n > last]
            if later:
                self.orphans[trial.trial_id] = later

    def drop_orphans(self, trial: Any) -> None:
        """Delete the pre-crash checkpoints of an ended ``trial`` named after its last one."""
        latest = getattr(trial, "checkpoint", None)
        last = posixpath.basename(latest.path.rstrip("/")) if latest is not None else ""
        for checkpoint in self.orphans.pop(trial.trial_id, []):
            if posixpath.basename(checkpoint.path) > last:  # not written again by this run
                self._delete(checkpoint)

    def _delete(self, checkpoint: Any) -> None:
        try:
            checkpoint.filesystem.delete_dir(checkpoint.path)
        except FileNotFoundError:
            pass
        except OSError as e:  # never let clean-up end the experiment
            logger.warning("could not delete old checkpoint %s: %s", checkpoint.path, e)

    def _last_snapshot(self) -> float:
        """Modification time of the newest experiment snapshot (0 if none yet), read at most
        every ``snapshot_cache_s`` seconds."""
        now = time.monotonic()
        if self._snapshot is not None and now - self._snapshot[0] < self.snapshot_cache_s:
            return self._snapshot[1]
        newest = self._read_last_snapshot()
        self._snapshot = (now, newest)
        return newest

    def _read_last_snapshot(self) -> float:
        local = self.directory.local
        if local is not None:  # names first, a stat only of the snapshots (a folder per trial)
            try:
                with os.scandir(local) as entries:
                    return max((e.stat().st_mtime for e in entries
                                if e.name.startswith(SNAPSHOT[0])), default=0.0)
            except OSError:
                return 0.0
        fs = self.directory.fs
        try:
            infos = fs.get_file_info(pafs.FileSelector(self.directory.path))
        except (FileNotFoundError, OSError):
            return 0.0
        times = [i.mtime.timestamp() for i in infos
                 if i.base_name.startswith(SNAPSHOT[0]) and i.mtime is not None]
        return max(times, default=0.0)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any,
                      **info: Any) -> None:
        # Stamped with the newest snapshot's time as the storage's clock tells it (not this
        # machine's): a later snapshot, with a newer time, was written after this registered.
        snapshot = self._last_snapshot()
        self.registered[trial.trial_id].append((snapshot, checkpoint))
        self.collect(snapshot)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.drop_orphans(trial)
        if self.registered:  # nothing to delete in a search whose trials never checkpoint
            self.collect()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for trial in trials:
            if trial.status in ENDED:
                self.drop_orphans(trial)
        self.collect()

    def collect(self, snapshot: float | None = None) -> None:
        """Delete what no snapshot can name; ``snapshot``: the newest snapshot's time, if the
        caller just read it."""
        if snapshot is None:
            snapshot = self._last_snapshot()
        for entries in self.registered.values():
            before = [e for e in entries if e[0] < snapshot]  # a snapshot came after these
            stale = before[:-self.keep] if len(before) > self.keep else []
            for entry in stale:
                entries.remove(entry)
                self._delete(entry[1])
