"""Training parameters are declared once, in TrainConfig and PretrainConfig; the commands
`pcst-train train` and `pcst-train pretrain` are built from them."""

import dataclasses

import pytest
from click.testing import CliRunner

from pcst_prep.errors import InputError
from pcst_train import cli
from pcst_train.config import MODEL_NAMES, PretrainConfig, TrainConfig
from pcst_train.models import MODELS


@pytest.mark.parametrize("config_class", [TrainConfig, PretrainConfig])
def test_every_parameter_is_declared_with_its_help(config_class):
    for field in dataclasses.fields(config_class):
        assert field.metadata.get("help"), field.name
    assert set(MODEL_NAMES) == set(MODELS)


@pytest.mark.parametrize("command, config_class, others", [
    (cli.train, TrainConfig, {"store", "out_dir", "resume", "overwrite", "no_progress"}),
    (cli.pretrain, PretrainConfig, {"image_dir", "out_dir", "preset", "resume", "overwrite",
                                    "no_progress"}),
])
def test_options_are_generated_from_the_config(command, config_class, others):
    options = {param.name: param for param in command.params}
    declared = [f for f in dataclasses.fields(config_class) if f.metadata["cli"]]
    for field in declared:
        assert options[field.name].help == field.metadata["help"]
    assert set(options) - {f.name for f in declared} == others


def test_the_command_line_builds_the_config(monkeypatch, tmp_path):
    seen = {}

    def fake_train(store, out_dir, config, resume=None, progress=True):
        seen.update(config=config, resume=resume, progress=progress)
        return {"steps": 5, "epochs": 1, "seconds": 0.0, "final": "final.pt",
                "before": None, "after": None, "device": "cpu", "precision": "float32"}

    monkeypatch.setattr("pcst_train.train.train", fake_train)
    result = CliRunner().invoke(cli.main, [
        "some.zarr", "--out", str(tmp_path), "--model", "dncnn", "--init", "m.pt",
        "--steps", "5", "--lr", "0.01", "--batch-size", "4", "--seed", "3", "--clean-targets",
        "--resume", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert seen == {"config": TrainConfig(model="dncnn", init="m.pt", steps=5, lr=0.01,
                                          batch_size=4, seed=3, clean_targets=True),
                    "resume": "auto", "progress": False}


def test_the_pixel_filter_is_a_factor_of_zero_or_more():
    assert TrainConfig().pixel_filter == 2.0
    assert TrainConfig(pixel_filter=0).pixel_filter == 0
    assert TrainConfig(pixel_filter=1).pixel_filter == 1
    for bad in (-1.0, 0.5, float("nan"), float("inf")):
        with pytest.raises(InputError, match="pixel filter"):
            TrainConfig(pixel_filter=bad)


def test_the_validation_filter_is_a_factor_of_zero_or_more():
    assert TrainConfig().validation_filter == 2.0
    assert TrainConfig(validation_filter=0).validation_filter == 0
    for bad in (-1.0, 0.5, float("nan"), float("inf")):
        with pytest.raises(InputError, match="validation filter"):
            TrainConfig(validation_filter=bad)


@pytest.mark.parametrize("option, value, field", [("--validation-filter", "1.5",
                                                   "validation_filter"),
                                                  ("--pixel-filter", "0", "pixel_filter")])
def test_filter_options_reach_the_config(monkeypatch, tmp_path, option, value, field):
    seen = {}

    def fake_train(store, out_dir, config, resume=None, progress=True):
        seen["config"] = config
        return {"steps": 5, "epochs": 1, "seconds": 0.0, "final": "final.pt",
                "before": None, "after": None, "device": "cpu", "precision": "float32"}

    monkeypatch.setattr("pcst_train.train.train", fake_train)
    result = CliRunner().invoke(cli.main, ["some.zarr", "--out", str(tmp_path),
                                           option, value, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert getattr(seen["config"], field) == float(value)


def test_the_validation_loss_follows_the_training_loss_unless_given():
    """Users who choose the squared error for linear data judge with it too; an explicit
    --validation-loss is kept; an unknown error is refused in one line."""
    assert (TrainConfig().loss, TrainConfig().validation_loss) == ("mae", "mae")
    assert TrainConfig(loss="mse").validation_loss == "mse"
    assert TrainConfig(loss="mse", validation_loss="mae").validation_loss == "mae"
    assert dataclasses.asdict(TrainConfig(loss="mse"))["validation_loss"] == "mse"  # recorded
    with pytest.raises(InputError, match="unknown loss 'l2'"):
        TrainConfig(loss="l2")
