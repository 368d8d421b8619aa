"""A local multi-node Ray test cluster: a head and workers on this machine, with fake GPU counts
and bounded memory, stopped by handle (exactly the processes it started, never ``ray stop``).

Every node is a separate raylet with its own resources, so Ray schedules across them as it would
across machines; ``--gpus-per-node`` makes Ray believe in GPUs that are not there (each trial
still gets its own ``CUDA_VISIBLE_DEVICES``), which tests placement without hardware.

As a script it runs in the foreground until Ctrl-C (or SIGTERM), then stops its nodes::

    python -m cluster.local_cluster --nodes 2 --gpus-per-node 4
    # in another shell:
    hpnas submit examples/nb201_evolution.yaml --address http://127.0.0.1:8265

In Python (tests, benchmarks)::

    with LocalCluster(nodes=2, gpus_per_node=4) as cluster:
        ray.init(address=cluster.address)
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["LocalCluster", "free_port"]


def free_port() -> int:
    """A TCP port free on this machine now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalCluster:
    """``nodes`` Ray nodes on this machine (the first is the head, with the dashboard and the
    job server on ``dashboard_port``), each with ``cpus_per_node`` CPUs, ``gpus_per_node`` fake
    GPUs and at most ``memory_gb`` of task memory plus ``object_store_gb`` of object store."""

    nodes: int = 2
    cpus_per_node: int = 4
    gpus_per_node: float = 4
    memory_gb: float = 2.0
    object_store_gb: float = 0.25
    dashboard_port: int = 8265
    metrics_export_port: int | None = None
    include_dashboard: bool = True
    node_gpus: tuple[float, ...] | None = None  # per node, instead of gpus_per_node

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ValueError(f"`nodes` is {self.nodes}, but a cluster needs at least 1 (the head).")
        if self.cpus_per_node < 1 or self.gpus_per_node < 0 or self.memory_gb <= 0:
            raise ValueError("cpus_per_node must be >= 1, gpus_per_node >= 0, memory_gb > 0.")
        if self.node_gpus is not None and len(self.node_gpus) != self.nodes:
            raise ValueError(f"`node_gpus` has {len(self.node_gpus)} entries for {self.nodes} "
                             "nodes; give one GPU count per node.")
        self._cluster: Any = None

    def _node_args(self, index: int) -> dict[str, Any]:
        gpus = self.node_gpus[index] if self.node_gpus is not None else self.gpus_per_node
        # Each node's dashboard agent on a port of its own: Ray's default (52365) is one port
        # for the machine, so a second node, or a Ray already running here, leaves the head's
        # agent without it, and the job server then refuses every job ("No available agent").
        return {"num_cpus": self.cpus_per_node, "num_gpus": gpus,
                "memory": int(self.memory_gb * 2**30),
                "object_store_memory": int(self.object_store_gb * 2**30),
                "dashboard_agent_listen_port": free_port()}

    def start(self) -> LocalCluster:
        from ray.cluster_utils import Cluster

        head = {**self._node_args(0), "include_dashboard": self.include_dashboard,
                "dashboard_host": "127.0.0.1", "dashboard_port": self.dashboard_port}
        if self.metrics_export_port is not None:
            head["metrics_export_port"] = self.metrics_export_port
        # The nodes (and so the jobs' entrypoints) find this Python first on their PATH.
        path = os.environ.get("PATH", "")
        os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), path])
        try:
            self._cluster = Cluster(initialize_head=True, head_node_args=head)
            for index in range(1, self.nodes):
                self._cluster.add_node(**self._node_args(index))
            self._cluster.wait_for_nodes()
        except BaseException:
            self.stop()
            raise
        finally:
            os.environ["PATH"] = path
        return self

    def stop(self) -> None:
        """Stop every process this cluster started (and nothing else); a driver of this
        process still connected to it is disconnected first."""
        import ray

        if self._cluster is not None:
            if ray.is_initialized():
                ray.shutdown()
            self._cluster.shutdown()
            self._cluster = None

    def workers(self) -> list[Any]:
        """The worker nodes now running (``ray._private.node.Node`` handles)."""
        return list(self._cluster.worker_nodes)

    def kill_node(self, node: Any) -> None:
        """Kill a worker node's processes at once, as a lost machine would vanish."""
        self._cluster.remove_node(node, allow_graceful=False)

    def add_worker(self, gpus: float | None = None) -> Any:
        """Start one more worker node (``gpus`` fake GPUs; default ``gpus_per_node``)."""
        args = self._node_args(0)
        args["num_gpus"] = self.gpus_per_node if gpus is None else gpus
        return self._cluster.add_node(**args)

    @property
    def address(self) -> str:
        """The GCS address for ``ray.init(address=...)`` and ``hpnas run --address``."""
        if self._cluster is None:
            raise RuntimeError("the cluster is not started")
        return str(self._cluster.address)

    @property
    def dashboard_url(self) -> str:
        """The dashboard and job-submission address for ``hpnas submit --address``."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def head_node(self) -> Any:
        return self._cluster.head_node

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cluster.local_cluster",
        description="Start a local multi-node Ray test cluster with fake GPUs; Ctrl-C stops "
                    "exactly the processes it started.")
    parser.add_argument("--nodes", type=int, default=2, help="nodes, head included (default 2)")
    parser.add_argument("--cpus-per-node", type=int, default=4)
    parser.add_argument("--gpus-per-node", type=float, default=4,
                        help="fake GPUs per node (default 4)")
    parser.add_argument("--memory-gb", type=float, default=2.0,
                        help="task memory per node in GiB (default 2)")
    parser.add_argument("--dashboard-port", type=int, default=8265)
    args = parser.parse_args(argv)
    try:
        cluster = LocalCluster(nodes=args.nodes, cpus_per_node=args.cpus_per_node,
                               gpus_per_node=args.gpus_per_node, memory_gb=args.memory_gb,
                               dashboard_port=args.dashboard_port)
    except ValueError as e:
        parser.error(str(e))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    cluster.start()
    try:
        print(f"local Ray cluster: {args.nodes} nodes x ({args.cpus_per_node} CPUs, "
              f"{args.gpus_per_node:g} fake GPUs, {args.memory_gb:g} GiB)\n"
              f"  hpnas run FILE --address {cluster.address}\n"
              f"  hpnas submit FILE --address {cluster.dashboard_url}\n"
              f"  dashboard: {cluster.dashboard_url}\n"
              "Ctrl-C stops it.", flush=True)
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
        print("local Ray cluster stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
