"""Shared fixtures: tiny datasets in the real file formats, the shared data folder, local Ray."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(os.environ.get(
    "HPNAS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared_data(sub: str) -> Path:
    """A folder of ../shared/data, or a skip that says clearly that it is missing."""
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"needs {path} (the workplace's ../shared/data beside the checkout, or "
                    "$HPNAS_SHARED_DATA); it is missing here")
    return path


def planted_images(n: int, classes: int, shape: tuple[int, ...], seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images whose class is a bright square at a class-specific place (learnable)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(classes, size=n)
    images = rng.integers(0, 60, size=(n, *shape), dtype=np.uint8)
    for i, c in enumerate(labels):
        r, col = divmod(int(c), 4)
        images[i, r * 6 + 2: r * 6 + 6, col * 6 + 2: col * 6 + 6] = 250
    return images, labels.astype(np.uint8)


def write_idx(folder: Path, n_train: int = 600, n_test: int = 200) -> Path:
    """MNIST-format IDX ``.gz`` files (the layout Debian's dataset packages install)."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = planted_images(n, 10, (28, 28), seed)
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, n) + labels.tobytes())
    return folder


def write_cifar100(root: Path, n_train: int = 300, n_test: int = 100) -> Path:
    """Tiny files in the real ``cifar-100-python`` pickle format (train, test, meta)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        images, _ = planted_images(n, 12, (32, 32, 3), seed)
        fine = np.random.default_rng(seed).integers(100, size=n)
        data = images.transpose(0, 3, 1, 2).reshape(n, -1)  # rows are R, G, B planes
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "fine_labels": fine.tolist(),
                         "coarse_labels": (fine // 5).tolist(),
                         "filenames": [f"{i}.png" for i in range(n)]}, f, protocol=2)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"class{i}" for i in range(100)],
                     "coarse_label_names": [f"super{i}" for i in range(20)]}, f, protocol=2)
    return root


@pytest.fixture
def tiny_fmnist(tmp_path: Path) -> Path:
    return write_idx(tmp_path / "fmnist")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray for this module only, stopped by handle (never `ray stop`)."""
    import ray

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # Workers import trainables defined in test modules, so they get the tests folder on their path.
    tests = str(Path(__file__).resolve().parent)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": tests}})
    yield ray
    ray.shutdown()


# Files that start Ray end to end, longest first (seconds of one serial run, 2026-12-07): with
# `--dist loadfile --no-loadscope-reorder` the two workers take them first and finish together,
# instead of one of them starting the longest file last. Other files follow in name order.
LONGEST_FIRST = ("test_reliability.py", "test_newcomer.py", "test_e2e.py", "test_analysis.py",
                 "test_cluster.py", "test_tracking.py", "test_simulator.py", "test_schedulers.py",
                 "test_user_trainable.py", "test_extend.py", "test_warm_start.py", "test_darts.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a file


# The suite leaves native threads behind in this process (about 45 at the end: the in-process
# Ray driver's gRPC and IO threads, which ray.shutdown() does not join, the AWS SDK's event loop
# that pyarrow starts for an s3:// URI, torch's pools). Python's teardown races them: once,
# after every test had passed, the process died of a segmentation fault there (exit 139), and
# CI read that as a failure. So the run ends as soon as pytest is done, with pytest's exit
# status; nothing of the tests' outcome is lost (the summary is written by then).
_FINISHED: list[pytest.Session] = []  # the session, once every sessionfinish hook has run


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session):
    """Note the session as finished once the other sessionfinish hooks (the summary, junitxml)
    are through, or ended it with pytest.exit; an error in one of them is left to pytest to
    report, with its usual teardown."""
    try:
        result = yield
    except pytest.exit.Exception:
        _FINISHED.append(session)
        raise
    _FINISHED.append(session)
    return result


def _pytest_is_the_program(config) -> bool:
    """This process is a plain ``pytest`` / ``python -m pytest`` run: not a pytest-xdist
    worker, not under coverage (which writes its data at exit), not ``pytest.main()`` called
    from another program."""
    main = Path(sys.argv[0])
    return (main.name in ("pytest", "py.test") or main.parts[-2:] == ("pytest", "__main__.py")) \
        and not hasattr(config, "workerinput") \
        and not any(v in os.environ for v in ("COV_CORE_SOURCE", "COVERAGE_RUN"))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config) -> None:
    if not _FINISHED or os.environ.get("HPNAS_TEST_NORMAL_EXIT") \
            or not _pytest_is_the_program(config):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(_FINISHED[-1].exitstatus))
