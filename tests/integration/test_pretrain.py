"""pcst-train pretrain on tiny crops of the demo frames: training checkpoints, exact resume,
the preset file."""

from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pcst_train import pretrain as pretrain_module
from pcst_train.checkpoints import load_model, read_checkpoint
from pcst_train.cli import main
from pcst_train.config import PretrainConfig
from pcst_train.pretrain import pretrain

PRESET = Path(__file__).resolve().parents[2] / "pipelines" / "pretrain" / "unet.toml"
TINY = PretrainConfig(model="dncnn", layers=4, steps=6, epoch_steps=2, batch_size=4, crop=16,
                      device="cpu", seed=1)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory, demo_frames):
    folder = tmp_path_factory.mktemp("pretrain_images") / "clip"
    folder.mkdir()
    for i, (y, x) in enumerate([(20, 40), (90, 150), (100, 250)]):
        crop = np.round(demo_frames[i, y:y + 40, x:x + 48] * 65535).astype(np.uint16)
        (folder / f"f{i}.png").write_bytes(imagecodecs.png_encode(crop))
    return folder.parent


def weights(path) -> dict:
    return read_checkpoint(path)["state_dict"]


def test_pretraining_writes_resumable_training_checkpoints(image_dir, tmp_path):
    result = pretrain(image_dir, tmp_path, TINY, progress=False)
    last = read_checkpoint(tmp_path / "last.pt")
    assert {"optimizer", "scheduler", "rng"} <= set(last) and last["step"] == 6
    assert last["epoch"] == 3 and last["pretrain"]["sigma_max"] == 55.0
    model, final = load_model(result["final"])
    assert final["model"] == "dncnn" and model.config()["layers"] == 4
    assert final["pretrain"]["image_dir"] == str(image_dir)
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert log[0] == "epoch,step,loss,lr,samples,val_loss,val_psnr,seconds" and len(log) == 7
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_interrupted_and_resumed_pretraining_reaches_the_same_weights(image_dir, tmp_path,
                                                                      monkeypatch):
    pretrain(image_dir, tmp_path / "straight", TINY, progress=False)

    batches = pretrain_module.GaussianBatches.epoch

    def interrupted(self, epoch):
        for i, batch in enumerate(batches(self, epoch)):
            if epoch == 1 and i == 1:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(pretrain_module.GaussianBatches, "epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrain(image_dir, tmp_path / "resumed", TINY, progress=False)
    assert read_checkpoint(tmp_path / "resumed" / "last.pt")["step"] == 2
    monkeypatch.undo()
    pretrain(image_dir, tmp_path / "resumed", TINY, resume="auto", progress=False)

    straight = weights(tmp_path / "straight" / "final.pt")
    resumed = weights(tmp_path / "resumed" / "final.pt")
    for name, value in straight.items():
        assert torch.equal(value, resumed[name]), name
    log = (tmp_path / "resumed" / "log.csv").read_text().splitlines()
    assert [row.split(",")[1] for row in log[1:]] == ["1", "2", "3", "4", "5", "6"]


def test_the_preset_file_fills_the_config_and_options_override_it(image_dir, tmp_path,
                                                                  monkeypatch):
    seen = {}

    def fake_pretrain(image_dir, out_dir, config, resume=None, progress=True):
        seen.update(config=config, resume=resume)
        return {"steps": config.steps, "seconds": 0.0, "final": "final.pt"}

    monkeypatch.setattr("pcst_train.pretrain.pretrain", fake_pretrain)
    result = CliRunner().invoke(main, ["pretrain", str(image_dir), "--out", str(tmp_path),
                                       "--config", str(PRESET), "--steps", "7", "--resume"])
    assert result.exit_code == 0, result.output
    assert seen == {"config": PretrainConfig(model="unet", sigma_max=55.0, steps=7,
                                             epoch_steps=1000, batch_size=32, crop=64, lr=1e-3,
                                             seed=0),
                    "resume": "auto"}
    result = CliRunner().invoke(main, ["pretrain", str(image_dir), "--out", str(tmp_path)])
    assert result.exit_code == 0 and seen["config"] == PretrainConfig()
    assert PretrainConfig().model == "unet"


def test_unknown_preset_fields_are_refused(image_dir, tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text('name = "x"\nsteps = 3\nimages = "somewhere"\n')
    result = CliRunner().invoke(main, ["pretrain", str(image_dir), "--out", str(tmp_path / "r"),
                                       "--config", str(preset)])
    assert result.exit_code == 2
    assert result.output.startswith("pcst-train: error: ") and "['images']" in result.output


def test_the_pretrain_command_resumes(image_dir, tmp_path):
    args = ["pretrain", str(image_dir), "--out", str(tmp_path), "--model", "dncnn",
            "--layers", "3", "--steps", "2", "--epoch-steps", "1", "--batch-size", "2",
            "--crop", "16", "--device", "cpu", "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, [*args, "--steps", "3", "--resume"])  # the last wins
    assert result.exit_code == 0, result.output
    assert "pre-trained dncnn for 3 steps" in result.output
    assert read_checkpoint(tmp_path / "last.pt")["step"] == 3
