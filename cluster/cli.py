"""The ``hpnas`` command line: argument parsing and printing over the runner, jobs and results.

Exit codes: 0 success; 1 the experiment ran but something failed at run time; 2 bad input
(experiment file, flags, data), reported as one line before any work starts; 130 interrupted.

The commands live in three modules, each adding its own subparsers: :mod:`cluster.cli_experiments`
(run, darts, resume), :mod:`cluster.cli_jobs` (submit, status, logs, stop) and
:mod:`cluster.cli_results` (results, report, evaluate); the flags they share are declared once in
:class:`cluster.cli_common.Flags`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from typing import Sequence

from cluster import cli_experiments, cli_jobs, cli_results
from cluster.cli_common import EXIT_INTERRUPTED, Flags

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpnas", description="Hyperparameter and architecture search on Ray Tune.")
    sub = parser.add_subparsers(dest="command", required=True)
    flags = Flags()
    for commands in (cli_experiments, cli_jobs, cli_results):
        commands.add_commands(sub, flags)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*experimental.*")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:  # before a command had anything to keep (its imports, its checks)
        print("hpnas: interrupted before anything was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `hpnas results DIR | head -1`: the reader has what it wanted
        # Python would report the pipe again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
