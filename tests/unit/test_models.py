"""Models and checkpoints: the reference files load unchanged and compute what the reference
architecture computes; loading never runs code; other architectures are named."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pcst_prep.errors import InputError
from pcst_train.checkpoints import load_model, read_checkpoint, save_checkpoint
from pcst_train.metrics import psnr
from pcst_train.models import BFDnCNN, BFUNet, build_model

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "reference_outputs.npz"


def reference_file(name: str, folder: Path = REFERENCE) -> Path:
    """The authors' checkpoint ``name`` (../shared/reference beside the project); skips the
    test when it is absent, saying which file was looked for where."""
    path = folder / name
    if not path.is_file():
        pytest.skip(f"reference checkpoint {name} not found: looked for {path}")
    return path


def test_a_missing_reference_file_is_named_in_the_skip_reason(tmp_path):
    with pytest.raises(pytest.skip.Exception) as skipped:
        reference_file("bf_unet_blind_gaussian.pt", folder=tmp_path)
    assert str(skipped.value) == ("reference checkpoint bf_unet_blind_gaussian.pt not found: "
                                  f"looked for {tmp_path / 'bf_unet_blind_gaussian.pt'}")


@pytest.mark.parametrize("name, file, cls", [
    ("dncnn", "bf_dncnn_blind_gaussian.pt", BFDnCNN),
    ("unet", "bf_unet_blind_gaussian.pt", BFUNet),
])
def test_reference_checkpoints_reproduce_the_reference_outputs(name, file, cls):
    model, data = load_model(reference_file(file))
    assert isinstance(model, cls) and data["source"] == f"reference-{name}"
    expected = np.load(FIXTURE)
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(expected["input"])).numpy()
    np.testing.assert_allclose(out, expected[name], rtol=1e-4, atol=2e-5)


def test_reference_file_for_another_architecture_names_the_keys():
    path = reference_file("bf_dncnn_blind_gaussian.pt")
    with pytest.raises(InputError) as err:
        load_model(path, expect="unet")
    message = str(err.value)
    assert "does not fit BFUNet" in message and "conv1.weight" in message
    assert "conv_layers.0.weight" in message


def test_our_checkpoint_round_trip(tmp_path):
    model = build_model("dncnn", channels=1, layers=5, kernels=8)
    path = save_checkpoint(tmp_path / "m.pt", model, "dncnn", epoch=3)
    loaded, data = load_model(path)
    assert isinstance(loaded, BFDnCNN) and loaded.config() == {"channels": 1, "layers": 5, "kernels": 8}
    assert data["epoch"] == 3
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    assert not (tmp_path / "m.pt.tmp").exists()


class Boom:
    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_loading_never_executes_code_from_the_file(tmp_path):
    marker = tmp_path / "pwned"
    evil = Boom()
    evil.target = str(marker)
    torch.save({"format": "pcst-checkpoint", "payload": evil}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="could run code when loaded") as caught:
        read_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    assert "weights_only" not in str(caught.value)  # torch's advice to load unsafely


@pytest.mark.parametrize("content", [b"hello, I am text\n", b"PK\x03\x04 truncated zip"])
def test_a_file_that_is_not_a_checkpoint_says_so_in_plain_words(tmp_path, content):
    (tmp_path / "x.pt").write_bytes(content)

    with pytest.raises(InputError, match="not a PyTorch checkpoint file") as caught:
        read_checkpoint(tmp_path / "x.pt")

    assert "weights_only" not in str(caught.value) and "\n" not in str(caught.value)


def test_not_a_checkpoint(tmp_path):
    torch.save({"something": torch.zeros(2)}, tmp_path / "x.pt")
    with pytest.raises(InputError, match="not a pcst checkpoint"):
        read_checkpoint(tmp_path / "x.pt")
    with pytest.raises(InputError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("shape", [(1, 3, 20, 20), (2, 3, 21, 18), (1, 3, 17, 33)])
def test_unet_keeps_shape_and_is_bias_free(shape):
    model = build_model("unet").eval()
    x = torch.rand(shape)
    with torch.no_grad():
        y = model(x)
        assert y.shape == x.shape
        # bias-free: scaling the input scales the output
        torch.testing.assert_close(model(3 * x), 3 * y, rtol=1e-4, atol=1e-5)


def test_dncnn_training_updates_running_sd():
    model = build_model("dncnn", layers=4, kernels=8)
    before = model.running_sd[0].clone()
    model.train()
    model(torch.rand(2, 3, 16, 16))
    assert not torch.equal(before, model.running_sd[0])
    assert not model.running_sd[0].requires_grad


def test_shipped_pretrained_unet_denoises_gaussian_noise(demo_frames):
    """The model shipped for `--init pretrained` (trained on frames the demo does not use)."""
    model, data = load_model("pretrained")
    assert isinstance(model, BFUNet) and data["pretrain"]["sigma_max"] == 55.0
    rng = np.random.default_rng(0)
    clean = torch.from_numpy(demo_frames[10, :96, :128].transpose(2, 0, 1).copy())[None]
    noisy = clean + torch.from_numpy(rng.normal(0, 25 / 255, clean.shape).astype(np.float32))
    with torch.no_grad():
        out = model.eval()(noisy)
    gain = float(psnr(out, clean, 1.0) - psnr(noisy, clean, 1.0))
    assert gain > 5.0


@pytest.mark.parametrize("name", ["unet", "dncnn"])
def test_an_rgb_model_as_grayscale_is_the_rgb_model_on_the_grey_frame_averaged(name):
    from pcst_train.models import as_grayscale, fit_channels

    torch.manual_seed(0)
    rgb = (load_model("pretrained")[0] if name == "unet"
           else build_model("dncnn", layers=5, kernels=16)).eval()
    if name == "dncnn":  # untrained gammas are tiny: the output would be the input
        for gamma in rgb.gammas:
            gamma.data.fill_(1.0)
    grey = as_grayscale(rgb).eval()
    x = torch.rand(2, 1, 37, 42)  # odd sizes: the UNet pads and crops

    with torch.no_grad():
        expected = rgb(x.repeat(1, 3, 1, 1)).mean(dim=1, keepdim=True)
        got = grey(x)

    assert grey.channels == 1 and got.shape == x.shape
    assert torch.allclose(got, expected, atol=1e-5)
    with torch.no_grad():  # the average, not one channel's output
        assert not torch.allclose(got, rgb(x.repeat(1, 3, 1, 1))[:, :1], atol=1e-5)
    assert fit_channels(rgb, 3) is rgb
    assert fit_channels(grey, 3) is None  # a grey model cannot make colour
