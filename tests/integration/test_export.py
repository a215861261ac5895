"""pcst-train export: TorchScript and ONNX models that compute what PyTorch computes (within
1e-5, run by torch.jit and onnxruntime on real demo frames of any size), and a model card."""

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from click.testing import CliRunner

from pcst_prep.bursts import read_image
from pcst_train.checkpoints import load_model
from pcst_train.cli import main
from pcst_train.config import ONNX_OPSET, TrainConfig
from pcst_train.train import train

pytestmark = [pytest.mark.slow,  # torch.jit is deprecated, yet what libtorch loads today
              pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")]
DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "bigbuckbunny"
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"


def export(checkpoint, out_dir):
    result = CliRunner().invoke(main, ["export", str(checkpoint), str(out_dir)])
    assert result.exit_code == 0, result.output
    return result, json.loads((out_dir / "model.json").read_text())


def frame_batch(size=None) -> torch.Tensor:
    """Demo frame 17 (a held-out one), whole [1, 3, 180, 320] or cropped to ``size``."""
    frame = read_image(DEMO / "frame_017.png")
    if size is not None:
        frame = frame[:size[0], :size[1]]
    return torch.from_numpy(np.ascontiguousarray(frame.transpose(2, 0, 1)))[None]


def assert_exports_match_pytorch(checkpoint, out_dir, frames):
    model, _ = load_model(checkpoint)
    model.eval()
    scripted = torch.jit.load(str(out_dir / "model.ts"))
    session = onnxruntime.InferenceSession(str(out_dir / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    for x in frames:
        with torch.no_grad():
            expected = model(x).numpy()
            via_torchscript = scripted(x).numpy()
        (via_onnx,) = session.run(["denoised"], {"noisy": x.numpy()})
        assert via_onnx.shape == via_torchscript.shape == expected.shape == x.shape
        assert np.abs(via_torchscript - expected).max() <= 1e-5
        assert np.abs(via_onnx - expected).max() <= 1e-5


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("export") / "shipped"
    result, card = export("pretrained", out_dir)
    return out_dir, result, card


def test_shipped_unet_runs_in_onnxruntime_and_torchscript_like_pytorch(shipped):
    out_dir, result, _ = shipped

    assert_exports_match_pytorch("pretrained", out_dir,
                                 [frame_batch(), frame_batch((97, 131)),
                                  torch.cat([frame_batch((64, 80))] * 3)])
    assert f"(opset {ONNX_OPSET})" in result.output


def test_the_onnx_file_states_its_opset_and_dynamic_axes(shipped):
    import onnx

    out_dir, _, card = shipped
    model = onnx.load(str(out_dir / "model.onnx"))

    assert {o.domain: o.version for o in model.opset_import}[""] == ONNX_OPSET
    assert card["files"]["onnx_opset"] == ONNX_OPSET
    (graph_input,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert graph_input.name == "noisy" and dims == ["batch", 3, "height", "width"]


def test_the_model_card_of_the_shipped_unet(shipped):
    _, _, card = shipped

    assert card["format"] == "pcst-model-card" and card["version"] == 1
    assert card["architecture"]["name"] == "unet" and card["architecture"]["bias_free"]
    assert card["channels"] == 3
    assert card["input"]["value_range"] == [0.0, 1.0] and card["input"]["layout"] == "NCHW"
    assert card["files"] == {**card["files"], "torchscript": "model.ts", "onnx": "model.onnx"}
    assert card["training"]["kind"] == "blind Gaussian pre-training"
    assert card["training"]["settings"]["sigma_max"] == 55.0
    assert max(card["check"]["max_abs_diff"].values()) <= 1e-5


def test_a_trained_run_exports_with_its_store_settings_and_validation(held_out_store, tmp_path):
    config = TrainConfig(model="dncnn", init="scratch", steps=6, batch_size=8,
                         validate_every=3)
    train(held_out_store, tmp_path / "run", config, progress=False)

    _, card = export(tmp_path / "run" / "best.pt", tmp_path / "exported")

    assert card["architecture"]["name"] == "dncnn"
    assert card["training"]["kind"] == "patch-craft adaptation"
    assert card["training"]["store"] == str(Path(held_out_store).resolve())
    assert card["training"]["settings"]["steps"] == 6
    assert card["training"]["store_parameters"]["patch_size"] == 7
    validation = card["validation"]
    assert set(validation["after"]) == {"val_loss", "val_psnr"}
    assert validation["before"]["val_psnr"] > 0 and validation["after"]["val_loss"] > 0
    assert_exports_match_pytorch(tmp_path / "run" / "best.pt", tmp_path / "exported",
                                 [frame_batch((90, 120))])


@pytest.mark.parametrize("name", ["bf_dncnn_blind_gaussian.pt", "bf_unet_blind_gaussian.pt"])
def test_the_authors_networks_export(name, tmp_path):
    path = REFERENCE / name
    if not path.is_file():
        pytest.skip(f"reference checkpoint {name} not found: looked for {path}")

    _, card = export(path, tmp_path)

    assert card["training"]["source"].startswith("reference-")
    assert_exports_match_pytorch(path, tmp_path, [frame_batch((75, 101))])


@pytest.mark.parametrize("content", [b"hello, not a checkpoint", None])
def test_a_bad_checkpoint_is_one_line_and_exit_2(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content is not None:
        path.write_bytes(content)

    result = CliRunner().invoke(main, ["export", str(path), str(tmp_path / "out")])

    assert result.exit_code == 2
    assert result.output.startswith(f"pcst-train: error: {path}: ")
    assert result.output.count("\n") == 1
    assert not (tmp_path / "out" / "model.json").exists()


def test_a_grayscale_model_exports_for_grey_frames(tmp_path):
    """A model trained on grey footage (an RGB start's grayscale copy) exports as a 1-channel
    network that computes what PyTorch computes, and its card says 1 channel."""
    from pcst_train.checkpoints import save_checkpoint
    from pcst_train.models import as_grayscale

    checkpoint = save_checkpoint(tmp_path / "grey.pt", as_grayscale(load_model("pretrained")[0]),
                                 "unet")
    _, card = export(checkpoint, tmp_path / "out")

    assert card["channels"] == 1
    grey = [frame_batch().mean(dim=1, keepdim=True), frame_batch((37, 53)).mean(dim=1,
                                                                                keepdim=True)]
    assert_exports_match_pytorch(checkpoint, tmp_path / "out", grey)
