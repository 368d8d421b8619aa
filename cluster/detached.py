"""``hpnas`` in a process of its own, and everything it starts stopped with it.

The fault-injection benchmark and the reliability tests kill and interrupt real runs: each run
starts in a new session (its own process group), so a signal to the group reaches the driver
and every Ray process it started, and nothing else on the machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Mapping

__all__ = ["ROOT", "signal_group", "start_hpnas"]

ROOT = Path(__file__).resolve().parents[1]  # the project: `python -m cluster.cli` runs from it


def start_hpnas(*args: str, log: Path, env: Mapping[str, str] | None = None,
                snapshot_every_s: float | None = 1.0) -> subprocess.Popen:
    """``hpnas ARGS`` in its own process group, output appended to ``log``.

    ``snapshot_every_s``: how often Tune snapshots the experiment (``TUNE_GLOBAL_CHECKPOINT_S``;
    about every 10 s by default), so a short search has snapshots to resume from.
    """
    extra = {"TUNE_GLOBAL_CHECKPOINT_S": str(snapshot_every_s)} if snapshot_every_s else {}
    return subprocess.Popen([sys.executable, "-m", "cluster.cli", *args], cwd=ROOT,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=_default_sigint,
                            env={**os.environ, **extra, **(env or {})})


def _default_sigint() -> None:
    """A process started from a background job inherits an ignored SIGINT, and Python keeps
    ignoring it: give the run a terminal's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def signal_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to ``proc``'s whole process group (gone already: nothing to do); after a
    SIGKILL, wait for ``proc`` to be reaped."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    if sig == signal.SIGKILL:
        proc.wait()
