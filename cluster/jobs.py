"""Experiments as Ray jobs: submit through Ray's Job Submission SDK, then status, logs, stop.

A submitted job runs ``python -m cluster.cli run env:HPNAS_EXPERIMENT`` on the cluster's head
node as the job's driver. Its runtime environment carries the project: the five packages
(``spaces``, ``search``, ``results``, ``trainables``, ``cluster``) as ``py_modules`` and the
validated experiment file in a variable; a trainable of the user's adds its code folder as one
more ``py_modules`` folder (less its excludes), so nothing else on the submitting machine is
uploaded. The cluster's Python needs the project's dependencies (torch, Ray, Optuna, ...)
installed, as the cluster configs in ``cluster/`` do; ``--no-upload`` uses an ``hpnas``
installed on the cluster instead of uploading the packages.

Authentication works as Ray's own CLI does: token auth is on by default in Ray 2.60 clusters;
with ``RAY_AUTH_MODE=token`` the token is read from ``$RAY_AUTH_TOKEN``, else the file
``$RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token`` (``ray get-auth-token`` on the head prints
it) and sent as a Bearer header; without it no token is sent.
"""

from __future__ import annotations

import os
import secrets
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from cluster.spec import ENV_PREFIX, ExperimentSpec, SpecError
from cluster.user_code import SHIPPED_PREFIX, code_excludes

__all__ = ["PACKAGES", "auth_headers", "job_client", "submit_experiment",
           "submit_when_agent_is_up"]

PACKAGES = ("spaces", "search", "results", "trainables", "cluster")
EXPERIMENT_VAR = "HPNAS_EXPERIMENT"
_PROBE_TIMEOUT_S = 10.0
AGENT_WAIT_S = 60.0  # how long `hpnas submit` waits for a starting head node's job agent


def read_token() -> tuple[str, str] | None:
    """(token, where it came from), looked up as Ray's CLI does, or None.

    As with ``ray job``, a token is sent only when ``RAY_AUTH_MODE=token``; then it comes from
    ``$RAY_AUTH_TOKEN``, else the file ``$RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return None
    token = os.environ.get("RAY_AUTH_TOKEN")
    if token and token.strip():
        return token.strip(), "$RAY_AUTH_TOKEN"
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return (text, str(path)) if text else None


def auth_headers() -> dict[str, str]:
    found = read_token()
    return {"Authorization": f"Bearer {found[0]}"} if found else {}


def job_address(address: str | None) -> str:
    """The job server's HTTP address from ``--address`` or ``$RAY_ADDRESS``."""
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        raise SpecError("no cluster address: pass --address http://HEAD:8265 (the dashboard's "
                        "address) or set RAY_ADDRESS.")
    if "://" not in address:
        address = f"http://{address}"
    if not address.startswith(("http://", "https://")):
        raise SpecError(f"--address is {address!r}, but job commands talk to the dashboard's HTTP "
                        "address: pass http://HEAD:8265.")
    return address.rstrip("/")


def job_client(address: str | None) -> Any:
    """A ``JobSubmissionClient`` for ``address``, checked to answer within a few seconds (the
    SDK itself would wait on an unreachable host for minutes)."""
    import requests
    from ray.job_submission import JobSubmissionClient

    address = job_address(address)
    headers = auth_headers()
    try:
        r = requests.get(f"{address}/api/version", headers=headers, timeout=_PROBE_TIMEOUT_S)
    except requests.exceptions.RequestException as e:
        raise SpecError(f"cannot reach the Ray job server at {address} ({type(e).__name__}); "
                        "check the address (the head's dashboard, port 8265 by default) and "
                        "that the cluster is up.") from None
    if r.status_code == 401:
        raise SpecError(f"the Ray cluster at {address} wants a token (401): set "
                        "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or put the token in "
                        "~/.ray/auth_token; `ray get-auth-token` on the head prints it).")
    if r.status_code == 403:
        found = read_token()
        raise SpecError(f"the Ray cluster at {address} rejected the token from "
                        f"{found[1] if found else '?'} (403); get the cluster's own with "
                        "`ray get-auth-token` on its head.")
    if r.status_code != 200:
        raise SpecError(f"{address} is not a Ray job server (GET /api/version answered "
                        f"{r.status_code}); pass the head's dashboard address.")
    return JobSubmissionClient(address, headers=headers)


def _project_root() -> Path:
    return Path(__file__).resolve().parents[1]


def runtime_env(spec: ExperimentSpec, *, upload: bool = True) -> dict[str, Any]:
    """The job's runtime environment: the packages as ``py_modules`` and the validated
    experiment in ``$HPNAS_EXPERIMENT``. No ``working_dir``: Ray re-creates a job's working
    directory when its trial workers set the same environment up, pulling it from under the
    running driver (its ``os.getcwd()`` then fails)."""
    from cluster.runner import TUNE_ENV

    raw = dict(spec.raw)
    modules = [str(_project_root() / name) for name in PACKAGES] if upload else []
    if spec.user is not None:
        # The user's code folder travels as one more py_modules folder (with its excludes);
        # the job's driver finds it by name (`code: shipped:NAME`), the trial workers get the
        # trainable's modules by value.
        code = raw.get("code") or {}
        modules.append(spec.user.code_dir)
        env_excludes = code_excludes(code)
        raw["code"] = {"dir": f"{SHIPPED_PREFIX}{Path(spec.user.code_dir).name}",
                       "exclude": code.get("exclude", [])}
    env: dict[str, Any] = {"env_vars": {**TUNE_ENV, EXPERIMENT_VAR: yaml.safe_dump(
        raw, sort_keys=False)}}
    if modules:
        env["py_modules"] = modules
    if spec.user is not None:
        env["excludes"] = env_excludes
    return env


def submit_experiment(spec: ExperimentSpec, address: str | None, *, upload: bool = True,
                      extra_args: list[str] | None = None) -> tuple[str, str]:
    """Submit ``spec`` as a Ray job; returns (job id, job server address)."""
    client = job_client(address)
    entrypoint = " ".join(shlex.quote(a) for a in [
        "python", "-m", "cluster.cli", "run", f"{ENV_PREFIX}{EXPERIMENT_VAR}", "--no-dashboard",
        "--progress-interval", "30", *(extra_args or [])])
    job_id = submit_when_agent_is_up(
        client, entrypoint=entrypoint, runtime_env=runtime_env(spec, upload=upload),
        metadata={"hpnas_experiment": spec.name, "hpnas_directory": str(spec.directory)})
    return job_id, client.get_address()


_NO_AGENT = "No available agent to submit job"  # Ray's job server: "please try again later"


def submit_when_agent_is_up(client: Any, *, wait_s: float = AGENT_WAIT_S,
                            sleep: Callable[[float], None] = time.sleep,
                            clock: Callable[[], float] = time.monotonic, **job: Any) -> str:
    """``client.submit_job(**job)``, tried again for up to ``wait_s`` while the job server
    answers that the head node's job agent is not up (it waits 10 s for one, and a cluster that
    has just started, or a busy head, can take longer). Every try names the same submission
    id, so a try whose answer was lost cannot start a second job. Returns the job id."""
    submission_id = "raysubmit_" + secrets.token_hex(8)
    deadline, told = clock() + wait_s, False
    while True:
        try:
            return client.submit_job(submission_id=submission_id, **job)
        except RuntimeError as e:
            if told and "already exists" in str(e):  # an earlier try went through after all
                return submission_id
            if _NO_AGENT not in str(e) or clock() >= deadline:
                raise
        if not told:
            print(f"hpnas: the cluster's job agent is not up yet; trying again for up to "
                  f"{wait_s:.0f} s", file=sys.stderr, flush=True)
            told = True
        sleep(2.0)
