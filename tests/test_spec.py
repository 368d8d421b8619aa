from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cluster.cli import main
from cluster.spec import SpecError, load_spec, spec_from_mapping
from search import SEARCHERS
from spaces import SPACES
from trainables import TRAINABLE_INFO

from conftest import write_idx


@pytest.fixture
def base(tmp_path: Path) -> dict:
    root = write_idx(tmp_path / "fm")
    return {"trainable": "cifar_cnn", "searcher": "optuna", "scheduler": "asha",
            "samples": 4, "data": {"name": "fashion_mnist", "root": str(root)},
            "train": {"epochs": 2}, "storage": str(tmp_path / "results"), "name": "x"}


def test_valid_spec_resolves_defaults(base):
    spec = spec_from_mapping(base)
    assert spec.metric == "val_acc" and spec.mode == "max"
    assert spec.max_epochs == 2 and spec.settings.data.name == "fashion_mnist"
    assert Path(spec.storage).is_absolute()
    assert spec.space.names[0] == "num_conv_layers"


BAD = [
    ({"trainable": "cifar_cn"}, f"`trainable` is 'cifar_cn', but must be one of "
                                f"{', '.join(sorted(TRAINABLE_INFO))}. Did you mean 'cifar_cnn'?"),
    ({"searcher": "optunaa"}, f"`searcher` is 'optunaa', but must be one of "
                              f"{', '.join(sorted(SEARCHERS))}. Did you mean 'optuna'?"),
    ({"scheduler": {"name": "ashaa"}}, "`scheduler` is 'ashaa', but must be one of asha, bohb, "
                                       "fifo, hyperband, median, pb2, pbt. Did you mean 'asha'?"),
    ({"samples": -3}, "`samples` is -3, but must be >= 1."),
    ({"samples": 0}, "`samples` is 0, but must be >= 1."),
    ({"samples": "ten"}, "`samples` is 'ten', but must be an integer >= 1."),
    ({"samples": None}, "`samples` is null and `time_budget_s` is not set"),
    ({"time_budget_s": -5}, "`time_budget_s` is -5, but must be a number of seconds > 0."),
    ({"max_concurrent_trials": 0}, "`max_concurrent_trials` is 0, but must be >= 1."),
    ({"mode": "maximize"}, "`mode` is 'maximize', but must be 'max' or 'min'."),
    ({"epochs": 3}, "`epochs` is not a setting."),
    ({"train": {"epochs": 0}}, "`train.epochs` is 0, but must be >= 1."),
    ({"train": {"epoch": 3}}, "`train.epoch` is not an option. Did you mean 'epochs'?"),
    ({"train": {"batch_size": "big"}}, "`train.batch_size` is 'big', but must be an integer."),
    ({"train": {"lr_schedule": "cosin"}}, "`train.lr_schedule` is 'cosin', but must be one of "
                                          "'constant', 'warmup_cosine', 'cosine'. Did you mean"),
    ({"data": {"name": "cifar1000"}}, "`data.name` is 'cifar1000', but must be one of 'mnist', "
                                      "'fashion_mnist', 'cifar10', 'cifar100'."),
    ({"data": {"name": "cifar100", "root": "/nonexistent/data"}},
     "dataset 'cifar100' was not found (looked in /nonexistent/data); to fix: set data.root"),
    ({"data": {"name": "fashion_mnist", "val_size": 1.5}}, "`data.val_size` is 1.5, but as a fraction must be < 1"),
    ({"resources": {"cpus": 0}}, "`resources.cpus` is 0.0, but must be > 0."),
    ({"resources": {"gpus": -1}}, "`resources.gpus` is -1.0, but must be >= 0."),
    ({"resources": {"gpu": 1}}, "`resources.gpu` is not an option. Did you mean 'gpus'?"),
    ({"space": {"name": "cifar_cnn", "overrides": {"lr": {"low": 0.1, "high": 0.01}}}},
     "`space.overrides`: `lr` has low 0.1 > high 0.01; swap them."),
    ({"space": {"name": "cifar_cnn", "overrides": {"lr": {"low": 0}}}},
     "`space.overrides`: `lr.low` is 0, but must be > 0 on a log scale"),
    ({"space": {"name": "cifar_cnn", "overrides": {"optimizer": {"choices": []}}}},
     "`space.overrides`: `optimizer.choices` is empty"),
    ({"space": {"name": "cifar_cnn", "overrides": {"num_filters_0": {"low": 48}}}},
     "Did you mean 'num_filter_0'"),
    ({"space": "cnn_cifar"}, f"`space` is 'cnn_cifar', but must be one of "
                             f"{', '.join(sorted(SPACES))}."),
    ({"space": "nb201"}, "`space` is 'nb201', but trainable 'cifar_cnn' takes configs of "
                         "cifar_cnn, cifar_cnn_res."),
    ({"searcher": {"name": "optuna", "sampler": "tpee"}},
     "`searcher.sampler` is 'tpee', but must be one of 'tpe',"),
    ({"searcher": {"name": "optuna", "samplr": "tpe"}},
     "`searcher.samplr` is not an option. Did you mean 'sampler'?"),
    ({"scheduler": {"name": "asha", "grace_period_epochs": 5}},
     "`grace_period_epochs` is 5, but must be <= the trial budget of 2 epochs."),
    ({"scheduler": {"name": "asha", "reduction_factor": 1}},
     "`scheduler.reduction_factor` is 1.0, but must be > 1."),
    ({"name": "a/b"}, "`name` is 'a/b', but must be a folder name"),
    ({"resources": {"gpus": float("inf")}}, "`resources.gpus` is inf, but must be a finite"),
    ({"resources": {"cpus": float("nan")}}, "`resources.cpus` is nan, but must be a finite"),
    ({"resources": {"cpus": 10**400}}, "int too large to convert to float"),
    ({"time_budget_s": float("nan"), "samples": None}, "`time_budget_s` is nan"),
    ({"seed": 2**70}, "`seed` is 1180591620717411303424, but must be < 2**32."),
    ({"storage": "nosuch://bucket/x"}, "which pyarrow cannot open"),
    ({"data": {"name": "fashion_mnist", "val_size": 1.0}}, "as a fraction must be < 1"),
    ({"space": {"name": "cifar_cnn", "overrides": {"optimizer": {"choices": "Adam"}}}},
     "`optimizer.choices` is 'Adam', but must be a list."),
    ({"space": {"name": "cifar_cnn", "overrides": {"optimizer": {"choices": ["AdamW"]}}}},
     "`optimizer.choices` may only narrow ['Adam', 'RMSprop', 'SGD'], but adds 'AdamW'."),
    ({"space": {"name": "cifar_cnn", "overrides": {"num_conv_layers": {"high": 6}}}},
     "`num_conv_layers` decides which parameters exist, so it may only narrow [1, 4]"),
    ({"space": {"name": "cifar_cnn", "overrides": {"optimizer": {"choices": [[1]]}}}},
     "`optimizer.choices` holds [1], but choices must be strings, numbers or booleans."),
]


@pytest.mark.parametrize("change,message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_input_is_one_clear_error(base, change, message):
    with pytest.raises(SpecError) as info:
        spec_from_mapping({**base, **change})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_bad_input_exits_2_before_ray(tmp_path, base, capsys):
    import ray

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**base, "samples": 0}))
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "hpnas: error: `samples` is 0, but must be >= 1."
    assert not ray.is_initialized()


@pytest.mark.parametrize("text,message", [
    ("trainable: [cifar_cnn\n", "line 2, column 1: malformed YAML"),
    ("- just\n- a list\n", "must be a YAML mapping of settings, not list"),
    ("trainable: !!python/object/apply:os.system ['true']\n", "malformed YAML"),
])
def test_malformed_files(tmp_path, text, message):
    path = tmp_path / "e.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")


def test_cli_flags_override_the_file(tmp_path, base):
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(base))
    spec = load_spec(path, {"samples": 9, "name": "other", "storage": str(tmp_path / "s"),
                            "searcher": "random", "max_concurrent_trials": 3, "seed": None})
    assert (spec.samples, spec.name, spec.searcher, spec.max_concurrent_trials) == (
        9, "other", "random", 3)
    assert spec.storage == str(tmp_path / "s")


def test_examples_validate():
    examples = Path(__file__).resolve().parents[1] / "examples"
    paths = sorted(examples.glob("*.yaml"))
    assert {p.name for p in paths} >= {"fashion_mnist_cnn.yaml", "nb201_evolution.yaml",
                                       "darts.yaml", "gan_mnist.yaml", "word2vec.yaml"}
    for path in paths:
        spec = load_spec(path, check_data=False)
        assert spec.samples is not None or spec.time_budget_s is not None
