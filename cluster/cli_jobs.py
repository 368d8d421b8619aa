"""``hpnas submit``, ``status``, ``logs`` and ``stop``: a thin layer over :mod:`cluster.jobs`."""

from __future__ import annotations

import argparse
from typing import Any

from cluster.cli_common import Flags, describe, fail

__all__ = ["add_commands"]


def cmd_submit(args: argparse.Namespace) -> int:
    from cluster.cli_experiments import spec_from_args
    from cluster.jobs import submit_experiment
    from cluster.spec import DEFAULT_STORAGE, SpecError, read_yaml
    from results import is_uri

    try:
        # The data is checked on the cluster, where the job runs; the file is checked here.
        spec = spec_from_args(args, check_data=False)
        raw_storage = args.storage or (read_yaml(args.file) or {}).get("storage",
                                                                        DEFAULT_STORAGE)
        if isinstance(raw_storage, str) and not (is_uri(raw_storage)
                                                  or raw_storage.startswith("/")):
            raise SpecError(f"`storage` is {raw_storage!r}, a path relative to this machine; a "
                            "job writes on the cluster, so give an absolute path every node "
                            "sees or a URI (e.g. --storage /mnt/shared/hpnas or s3://b/hpnas).")
        job_id, address = submit_experiment(
            spec, args.address, upload=not args.no_upload,
            extra_args=["--skip-resource-check"] if args.skip_resource_check else [])
    except SpecError as e:
        return fail(str(e))
    except (RuntimeError, ValueError) as e:  # the job server refused the job or its packages
        return fail(f"the cluster did not accept the job: {str(e).splitlines()[0]}")
    at = f" --address {address}"
    print(f"hpnas: submitted {describe(spec)}\n"
          f"job id: {job_id}\n"
          f"results (on the cluster): {spec.directory}\n"
          f"next:\n"
          f"  hpnas status {job_id}{at}\n"
          f"  hpnas logs {job_id}{at} --follow\n"
          f"  hpnas stop {job_id}{at}\n"
          f"  hpnas results {spec.directory}        # where that path is visible\n"
          f"  dashboard: {address}/#/jobs/{job_id}", flush=True)
    if args.wait:
        return follow_job(args.address, job_id)
    return 0


def on_job(address: str | None, job_id: str | None, action: Any) -> int:
    """``action(client)`` against the job server at ``address``; a bad address, an unknown job
    or a refused request is one line and exit 2."""
    import aiohttp

    from cluster.jobs import job_client
    from cluster.spec import SpecError

    try:
        return int(action(job_client(address)))
    except SpecError as e:
        return fail(str(e))
    except (RuntimeError, aiohttp.ClientError) as e:
        return fail(f"job {job_id}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")


def follow_job(address: str | None, job_id: str) -> int:
    """Stream the job's logs until it ends; 0 if it succeeded."""
    import asyncio

    def follow(client: Any) -> int:
        async def tail() -> None:
            async for lines in client.tail_job_logs(job_id):
                print(lines, end="", flush=True)

        asyncio.run(tail())
        status = client.get_job_status(job_id)
        print(f"hpnas: job {job_id} {status.value}")
        return 0 if status.value == "SUCCEEDED" else 1

    return on_job(address, job_id, follow)


def cmd_status(args: argparse.Namespace) -> int:
    def every_job(client: Any) -> int:
        jobs = sorted(client.list_jobs(), key=lambda j: j.start_time or 0)
        rows = [j for j in jobs if (j.metadata or {}).get("hpnas_experiment")]
        if not rows:
            print("no hpnas jobs on this cluster")
        for j in rows:
            print(f"{j.submission_id}  {j.status.value:<9}  "
                  f"{j.metadata['hpnas_experiment']}  {j.metadata.get('hpnas_directory', '')}")
        return 0

    def one_job(client: Any) -> int:
        info = client.get_job_info(args.job)
        meta = info.metadata or {}
        print(f"job {args.job}: {info.status.value}"
              + (f" ({info.message})" if info.message else ""))
        if meta.get("hpnas_experiment"):
            print(f"experiment {meta['hpnas_experiment']}, results in "
                  f"{meta.get('hpnas_directory')}")
        return 0

    return on_job(args.address, args.job, every_job if args.job is None else one_job)


def cmd_logs(args: argparse.Namespace) -> int:
    if args.follow:
        return follow_job(args.address, args.job)

    def logs(client: Any) -> int:
        print(client.get_job_logs(args.job), end="")
        return 0

    return on_job(args.address, args.job, logs)


def cmd_stop(args: argparse.Namespace) -> int:
    def stop(client: Any) -> int:
        stopped = client.stop_job(args.job)
        print(f"job {args.job}: " + ("stop requested; its results so far stay in its "
                                     "experiment directory" if stopped else "already ended"))
        return 0

    return on_job(args.address, args.job, stop)


def add_commands(sub: Any, flags: Flags) -> None:
    submit = sub.add_parser(
        "submit", help="submit an experiment to a Ray cluster as a Ray job",
        parents=[flags.overrides, flags.resource_check, flags.job],
        description="Validate the experiment file here, then run it on the cluster as a Ray job "
                    "(Job Submission SDK; the project's packages travel in its runtime "
                    "environment). Prints the job id and the commands to follow it.",
        epilog="example: hpnas submit examples/nb201_evolution.yaml --address "
               "http://HEAD:8265 --storage /mnt/shared/hpnas")
    submit.add_argument("--no-upload", action="store_true",
                        help="use the hpnas installed on the cluster instead of uploading it")
    submit.add_argument("--wait", action="store_true",
                        help="follow the job's logs until it ends; exit 0 if it succeeded")
    submit.set_defaults(func=cmd_submit)

    for name, func, text in (("status", cmd_status, "a job's status (no JOB: every hpnas job)"),
                             ("logs", cmd_logs, "a job's driver output"),
                             ("stop", cmd_stop, "stop a running job")):
        p = sub.add_parser(name, help=text, description=text, parents=[flags.job],
                           epilog=f"example: hpnas {name} raysubmit_XXXX --address "
                                  "http://HEAD:8265")
        p.add_argument("job", nargs="?" if name == "status" else None,
                       help="job id (as `hpnas submit` printed it)")
        if name == "logs":
            p.add_argument("--follow", action="store_true", help="stream until the job ends")
        p.set_defaults(func=func)
